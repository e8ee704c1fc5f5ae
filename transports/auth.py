"""The authentication/authorization seam every transport passes through.

Each transport builds a :class:`ConnectionRequest` from whatever it has at connect time
(HTTP headers and query for WebSocket/SSE/polling, the signalling request for WebRTC, the
bridge's upgrade request for MQTT over WebSocket) and awaits the configured
:data:`Authenticator`. It returns a :class:`Principal` or raises
``TransportError("unauthorized" | "forbidden" | "bad_origin")``, which the transport reports
in its documented form (HTTP status + JSON, or WebSocket close code ``4000 + status``).

Write and admin endpoints additionally need a principal with the ``admin`` role. The server
has one admin token (``ServerConfig.admin_token``, generated at start-up when not set, and
printed by ``serve`` in the dashboard URL); :func:`with_admin_token` puts a check for
``Authorization: Bearer <admin token>`` in front of whatever hook is configured, so the token
works with the default hook and with custom ones alike.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from transports.errors import TransportError


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
    roles: frozenset[str] = frozenset()

    @property
    def anonymous(self) -> bool:
        return self.id == "anonymous" and not self.roles

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


Authenticator = Callable[[ConnectionRequest], Awaitable[Principal]]

ANONYMOUS = Principal("anonymous")


async def allow_anonymous(request: ConnectionRequest) -> Principal:
    """The default hook: everyone is ``anonymous``."""
    return ANONYMOUS


ADMIN = Principal("admin", roles=frozenset({"admin"}))


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (RFC 6750 §2.1), if any."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


URL_TOKEN_PARAMS = ("access_token",)
WHERE_TOKENS_GO = (
    "tokens do not go in URLs (logged, leaked by Referer; OWASP): send Authorization: "
    "Bearer, on a WebSocket Sec-WebSocket-Protocol: transport-lab, bearer.<token>, or for "
    "an EventSource a single-use ticket from POST /api/tickets (?ticket=)"
)


def refuse_url_token(query: Mapping[str, str]) -> None:
    """Refuse RFC 6750 §2.3's ``access_token`` query parameter with ``bad_param`` (400).

    RFC 6750 §2.3 itself says it SHOULD NOT be used; a refusal that names the right place
    teaches more than silently treating the client as anonymous would.
    """
    for name in URL_TOKEN_PARAMS:
        if name in query:
            raise TransportError("bad_param", f"{name}: {WHERE_TOKENS_GO}")


def with_admin_token(token: str, inner: Authenticator = allow_anonymous) -> Authenticator:
    """``inner``, except that the admin bearer token maps to :data:`ADMIN`."""
    expected = token.encode()

    async def authenticate(request: ConnectionRequest) -> Principal:
        given = bearer_token(request.headers)
        # Constant-time: the comparison must not tell an attacker how much of a guess is right.
        if given is not None and hmac.compare_digest(given.encode(), expected):
            return ADMIN
        return await inner(request)

    return authenticate
