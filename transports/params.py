"""Parsing of the cursor and the other query parameters, shared by every HTTP-based endpoint.

Strict on purpose: an unknown parameter is a ``bad_param`` error rather than silently
ignored, because a misspelt ``afer=10`` that is ignored would silently mean "live only".
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping

from transports.errors import TransportError

COMMON = frozenset({"after", "epoch", "token"})


def check_known(query: Mapping[str, str], allowed: Iterable[str]) -> None:
    # Once per long poll: a lookup per name in a set made once per ``allowed``, instead of
    # three sets and a sorted list per call.
    known = _known(tuple(allowed))
    for name in query:
        if name not in known:
            unknown = sorted(set(query) - known)
            raise TransportError("bad_param", f"unknown query parameter(s): {', '.join(unknown)}")


@functools.lru_cache(maxsize=64)
def _known(allowed: tuple[str, ...]) -> frozenset[str]:
    return COMMON.union(allowed)


def parse_after(raw: str | None, source: str = "after") -> int | None:
    """A cursor is a non-negative decimal integer; absent means live only."""
    if raw is None or raw == "":
        return None
    text = raw.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise TransportError("bad_cursor", f"{source}={raw[:40]!r} is not a non-negative integer")
    return int(text)


def parse_epoch(raw: str | None) -> str | None:
    if raw is None or raw == "":
        return None
    if len(raw) > 64 or not raw.isascii() or not raw.isalnum():
        raise TransportError("bad_param", "epoch must be 1-64 ASCII letters or digits")
    return raw


def parse_float(raw: str | None, name: str, default: float, low: float, high: float) -> float:
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise TransportError("bad_param", f"{name}={raw[:40]!r} is not a number") from None
    if not low <= value <= high:
        raise TransportError("bad_param", f"{name}={value} is outside [{low}, {high}]")
    return value


def parse_int(raw: str | None, name: str, default: int, low: int, high: int) -> int:
    value = parse_float(raw, name, default, low, high)
    if value != int(value):
        raise TransportError("bad_param", f"{name} must be an integer")
    return int(value)
