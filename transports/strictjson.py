"""Strict JSON at the door: what every client-sent body or frame is parsed with.

Python's :mod:`json` accepts (and would re-emit) things no browser can read back:
``NaN``/``Infinity`` (RFC 8259 §6 has no such numbers; ``JSON.parse`` rejects them), numbers
that overflow to infinity (``1e999``), lone UTF-16 surrogates from ``\\ud800`` escapes
(RFC 8259 §8.2: not Unicode characters, so they cannot be encoded as UTF-8, RFC 3629 §3),
and nesting deep enough to exhaust the recursion limit. A value that passed here is safe to
store and to send to every subscriber; anything else is ``TransportError("bad_message")``,
refused before it is stored.

The standard library parses; this module only adds the checks the standard library has no
switch for (``parse_constant``/``parse_float`` are its hooks for the numbers).
"""

from __future__ import annotations

import json
import math
from typing import Any

from transports.errors import TransportError

MAX_DEPTH = 32


def _no_constant(name: str) -> Any:
    raise TransportError("bad_message", f"{name} is not JSON (RFC 8259 §6)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise TransportError("bad_message", f"number {text[:40]} overflows a double")
    return value


def loads(raw: str | bytes, *, max_depth: int = MAX_DEPTH, max_bytes: int | None = None) -> Any:
    """Parse ``raw`` strictly; raise ``TransportError("bad_message")`` (or ``too_large``
    when it is longer than ``max_bytes``)."""
    if max_bytes is not None and len(raw) > max_bytes:
        raise TransportError("too_large", f"{len(raw)} bytes > {max_bytes}")
    if isinstance(raw, bytes | bytearray | memoryview):
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TransportError("bad_message", f"invalid UTF-8 at byte {exc.start}") from None
    else:
        text = raw
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError:
        # The C scanner guards its recursion: very deep input ends here, not in a crash.
        raise TransportError("bad_message", f"nested deeper than {max_depth}") from None
    except ValueError as exc:  # JSONDecodeError, and int() of a 4300+-digit number
        raise TransportError("bad_message", f"not JSON: {str(exc)[:120]}") from None
    check(value, max_depth=max_depth)
    return value


def _bad_text(s: str) -> bool:
    if s.isascii():
        return False
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def check(value: Any, *, max_depth: int = MAX_DEPTH) -> None:
    """Check an already-decoded value by the same rules (JSON types only, finite numbers,
    strings that are valid Unicode, keys included, nesting at most ``max_depth``)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if _bad_text(item):
                raise TransportError("bad_message", "a string holds a lone surrogate")
        elif isinstance(item, bool) or item is None or isinstance(item, int):
            continue
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise TransportError("bad_message", f"{item} is not a JSON number")
        elif isinstance(item, dict | list | tuple):
            if depth > max_depth:
                raise TransportError("bad_message", f"nested deeper than {max_depth}")
            if isinstance(item, dict):
                for key, inner in item.items():
                    if not isinstance(key, str) or _bad_text(key):
                        raise TransportError("bad_message", "object keys must be valid strings")
                    stack.append((inner, depth + 1))
            else:
                stack.extend((inner, depth + 1) for inner in item)
        else:
            raise TransportError("bad_message", f"{type(item).__name__} is not a JSON value")
