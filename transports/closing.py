"""One place mapping why a stream ends to how each protocol says it.

- WebSocket: RFC 6455 §7.4.1 codes where one fits (``1001`` going away for
  ``shutting_down``, ``1009`` too big for ``too_large``), ``4000 + HTTP status`` for the
  other documented reasons (``errors.py``), ``1000`` for an ordinary end;
- SSE, WebRTC data channel and long polling: a ``{"type":"close","reason":…}`` frame (an SSE
  event named ``close``; the poll answer's last frame) for every documented reason, since
  those protocols have no close code of their own. Reasons that are not documented errors
  (``client_gone``, ``closed``, ``send_timeout`` …) are told where the client can still hear.
"""

from __future__ import annotations

from transports.errors import KINDS

NORMAL_CLOSE = 1000
GOING_AWAY = 1001  # RFC 6455 §7.4.1: server going down
TOO_BIG = 1009  # RFC 6455 §7.4.1: message too big to process

# Reasons worth a close frame on protocols without close codes.
TOLD = {*KINDS, "send_timeout"} - {"closed"}


def ws_code(reason: str) -> int:
    if reason == "shutting_down":
        return GOING_AWAY
    if reason == "too_large":
        return TOO_BIG
    kind = KINDS.get(reason)
    return kind.ws_code if kind is not None else NORMAL_CLOSE


def told(reason: str) -> bool:
    """Whether a stream ending for ``reason`` says so in a ``close`` frame."""
    return reason in TOLD
