"""How the command line reports a user's mistake: one line on stderr and exit code 2.

Typer would draw a framed box for a usage error, and any other exception would end in a
traceback — neither is what someone who typed a wrong name should read. :func:`run` calls
the app without typer's standalone handling and turns

- usage errors (typer's own, e.g. ``--clients 0``, and :class:`UserError` raised by the
  commands through :func:`fail`: unknown names, missing files) into
  ``transport-lab: error: ...``;
- a network failure into one line that says what was tried (``GET http://...``) and why;

both with exit code 2. Ctrl-C exits with 130 (after a command's own summary). Anything else
is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import httpx
import typer

PROG = "transport-lab"


class UserError(Exception):
    """A mistake in the command line (not a bug): shown as one line, exit code 2."""


def fail(message: str) -> NoReturn:
    """Stop the command: ``message`` is shown as the one line of a usage error."""
    raise UserError(message)


def one_line(text: str) -> str:
    return " ".join(text.split())


def network_message(exc: BaseException) -> str | None:
    """The line for a network failure, or None if ``exc`` is not one."""
    if isinstance(exc, httpx.TransportError):
        try:
            request = exc.request
            tried = f"{request.method} {request.url}"
        except RuntimeError:  # no request attached
            tried = "the server"
        return (
            f"could not reach the server: tried {tried}: {one_line(str(exc)) or type(exc).__name__}"
        )
    if isinstance(exc, httpx.HTTPStatusError):
        r = exc.response
        return (
            f"{r.request.method} {r.request.url} answered {r.status_code}: {one_line(r.text)[:200]}"
        )
    if isinstance(exc, ConnectionError | TimeoutError):
        return f"network error: {type(exc).__name__}: {one_line(str(exc))}"
    return None


def run(app: Any, args: list[str] | None = None) -> NoReturn:
    """Run a typer app with one-line errors (see the module docstring)."""
    try:
        code = app(args=args, prog_name=PROG, standalone_mode=False)
    except UserError as exc:
        _error(str(exc))
    except typer.TyperException as exc:  # typer's usage errors (its vendored click's)
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
            print(ctx.get_help())
            sys.exit(0)
        fmt = getattr(exc, "format_message", None)
        message = fmt() if callable(fmt) else str(exc)
        hint = f" (see: {ctx.command_path} --help)" if ctx is not None else ""
        _error(f"{message}{hint}")
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        line = network_message(exc)
        if line is None:
            raise
        _error(line)
    sys.exit(code if isinstance(code, int) else 0)


def _error(line: str) -> NoReturn:
    print(f"{PROG}: error: {one_line(line)}", file=sys.stderr)
    sys.exit(2)
