"""The authentication/authorization seam every transport passes through.

Each transport builds a :class:`ConnectionRequest` from whatever it has at connect time
(HTTP headers and query for WebSocket/SSE/polling, the signalling request for WebRTC, the
bridge's upgrade request for MQTT over WebSocket) and awaits the configured
:data:`Authenticator`. It returns a :class:`Principal` or raises
``TransportError("unauthorized" | "forbidden" | "bad_origin")``, which the transport reports
in its documented form (HTTP status + JSON, or WebSocket close code ``4000 + status``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ConnectionRequest:
    transport: str
    path: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    client: tuple[str, int] | None = None


@dataclass(frozen=True, slots=True)
class Principal:
    id: str
    claims: dict[str, Any] = field(default_factory=dict)


Authenticator = Callable[[ConnectionRequest], Awaitable[Principal]]

ANONYMOUS = Principal("anonymous")


async def allow_anonymous(request: ConnectionRequest) -> Principal:
    """The default hook: everyone is ``anonymous``."""
    return ANONYMOUS
