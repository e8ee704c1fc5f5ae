"""The documented errors, one table for every transport.

Each reason maps to how each transport says it: an HTTP status with a JSON body
``{"error": reason, "detail": ...}`` for HTTP endpoints, and a WebSocket close code in the
private range 4000-4999 (RFC 6455 §7.4.2) built as ``4000 + HTTP status`` so the two read
alike. ``retryable`` tells ``follow()`` whether reconnecting can help.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ErrorKind:
    reason: str
    status: int
    retryable: bool
    description: str

    @property
    def ws_code(self) -> int:
        return 4000 + self.status


_KINDS = [
    ErrorKind("bad_cursor", 400, False, "'after' or Last-Event-ID is not a non-negative integer"),
    ErrorKind("bad_param", 400, False, "unknown query parameter or a value out of range"),
    ErrorKind("bad_sdp", 400, False, "WebRTC offer body is not a usable SDP offer"),
    ErrorKind(
        "bad_message",
        400,
        False,
        "not strict JSON (UTF-8, no NaN/Infinity, no lone surrogates, bounded nesting) "
        "or not a valid message",
    ),
    ErrorKind("bad_host", 400, False, "Host header is not a name this server serves"),
    ErrorKind("bad_channel", 400, False, "channel name outside the grammar or namespace unknown"),
    ErrorKind("too_many_channels", 400, False, "more channels than the documented limit"),
    ErrorKind("unauthorized", 401, False, "no valid credentials"),
    ErrorKind(
        "token_expired", 401, False, "the token's exp passed (at connect or while connected)"
    ),
    ErrorKind("forbidden", 403, False, "credentials valid but not allowed here"),
    ErrorKind("bad_origin", 403, False, "Origin header not in the allowed list"),
    ErrorKind("cursor_ahead", 409, False, "'after' is beyond the last seq of this epoch"),
    ErrorKind("too_large", 413, False, "a frame larger than the configured limit"),
    ErrorKind("head_timeout", 408, False, "the request head was not complete in time"),
    ErrorKind("body_timeout", 408, False, "the request body was not complete in time"),
    ErrorKind("head_too_large", 431, False, "request head larger or with more fields than allowed"),
    ErrorKind("bad_media_type", 415, False, "a write endpoint accepts application/json only"),
    ErrorKind("slow_consumer", 429, True, "the client's queue overflowed; resume from cursor"),
    ErrorKind("rate_limited", 429, True, "the client sent frames faster than allowed"),
    ErrorKind("too_many_connections", 503, True, "connection limit reached"),
    ErrorKind("shutting_down", 503, True, "server is stopping; reconnect later"),
    ErrorKind("not_ready", 503, True, "a backend the server needs is unreachable (see /readyz)"),
    ErrorKind("admin_disconnect", 503, True, "an administrator closed this connection; reconnect"),
]
KINDS: dict[str, ErrorKind] = {k.reason: k for k in _KINDS}


class ConnectionLost(Exception):
    """The connection ended without a documented reason (retryable; ``follow()`` uses it)."""


class TransportError(Exception):
    """An error with a documented reason; raised by servers, clients and the auth hook."""

    def __init__(self, reason: str, detail: str = "") -> None:
        if reason not in KINDS:
            raise ValueError(f"undocumented error reason {reason!r}")
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.kind = KINDS[reason]
        self.detail = detail

    @property
    def reason(self) -> str:
        return self.kind.reason

    @property
    def retryable(self) -> bool:
        return self.kind.retryable

    def body(self) -> dict[str, str]:
        return {"error": self.reason, "detail": self.detail or self.kind.description}


def from_status(status: int, reason: str | None = None, detail: str = "") -> TransportError:
    """Rebuild a server error on the client side from what the transport reported."""
    if reason in KINDS:
        return TransportError(reason, detail)
    for kind in _KINDS:
        if kind.status == status:
            return TransportError(kind.reason, detail)
    raise ValueError(f"no documented error for status {status}")


def from_response(response: Any) -> TransportError | Exception:
    """The one client-side decoder of an HTTP error answer (an ``httpx.Response``):
    ``{"error": reason, "detail": ...}`` with its status, as the documented error; an
    answer that is not one of ours (e.g. a proxy's) becomes a retryable connection loss."""
    try:
        body = response.json()
    except ValueError:
        body = None
    reason = body.get("error") if isinstance(body, dict) else None
    detail = str(body.get("detail", "")) if isinstance(body, dict) else str(response.text)[:200]
    try:
        return from_status(int(response.status_code), reason, detail)
    except ValueError:
        return ConnectionLost(f"HTTP {response.status_code}: {detail}")
