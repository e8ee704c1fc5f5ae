"""Signed tokens (JWT, RFC 7519) as an auth hook: HS256 with a shared secret, RS256/ES256
with a public key (PyJWT does the signature and time checks; ``cryptography`` for RSA/EC).

Claims the server reads:

- ``sub`` (required): the principal's id;
- ``exp`` (required): expiry, seconds since the epoch. A connection whose token expires is
  closed with ``token_expired`` (WS 4401, a ``close`` frame elsewhere, 401 on the next poll);
- ``roles``: e.g. ``["admin"]`` for the write/admin endpoints;
- ``channels``: per-channel rights, ``{"chat:*": ["subscribe", "publish"]}`` (``rights.py``);
- ``aud`` / ``iss`` when the server is configured with an audience / issuer.

Where the token travels (never in a URL, OWASP: URLs end up in logs and Referer headers):
``Authorization: Bearer`` (SSE, polling, WebRTC signalling, HTTP publish), the HttpOnly
cookie :data:`COOKIE`, or WebSocket's ``Sec-WebSocket-Protocol: transport-lab,
bearer.<token>`` (the only header a browser's ``WebSocket`` can set; the server answers
with ``transport-lab``). An EventSource, which can set no header, uses a single-use ticket
(``tickets.py``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from transports import rights
from transports.auth import ANONYMOUS, Authenticator, ConnectionRequest, Principal, bearer_token
from transports.errors import TransportError

COOKIE = "transport_lab_token"
SUBPROTOCOL = "transport-lab"  # what the server answers when a bearer.<token> came along
BEARER_PROTOCOL = "bearer."
ALGORITHMS = ("HS256", "RS256", "ES256")
MAX_TOKEN = 8192  # characters; a longer "token" is refused before any parsing


@dataclass(frozen=True, slots=True)
class JWTSettings:
    key: str  # HS256 secret, or a PEM public key for RS256/ES256
    algorithm: str = "HS256"
    audience: str | None = None
    issuer: str | None = None
    leeway: float = 0.0  # seconds of clock skew accepted on exp/nbf

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"jwt algorithm must be one of {', '.join(ALGORITHMS)}")
        if self.algorithm == "HS256" and len(self.key.encode()) < 32:
            # RFC 7518 §3.2: the HMAC key must be at least as long as the hash (256 bits).
            raise ValueError("an HS256 key must be at least 32 bytes")


def read_key(value: str) -> str:
    """``@path`` (or the path of an existing PEM file) → the file's text; else ``value``."""
    path = Path(value[1:] if value.startswith("@") else value)
    if value.startswith("@") or (len(value) < 4096 and value.endswith(".pem") and path.exists()):
        return path.read_text()
    return value


def token_from(headers: Mapping[str, str]) -> str | None:
    """The token from ``Authorization``, the WebSocket subprotocol list, or the cookie."""
    token = bearer_token(headers)
    if token:
        return token
    for item in headers.get("sec-websocket-protocol", "").split(","):
        item = item.strip()
        if item.startswith(BEARER_PROTOCOL):
            return item[len(BEARER_PROTOCOL) :]
    for part in headers.get("cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE and value:
            return value
    return None


def verify(token: str, settings: JWTSettings) -> Principal:
    """Decode and check ``token``; raise ``unauthorized`` or ``token_expired``."""
    if len(token) > MAX_TOKEN:
        raise TransportError("unauthorized", "token too long")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            settings.key,
            # Only the configured algorithm: never "none", never HS256 with an RSA public key
            # taken as the HMAC secret (the classic algorithm-confusion attack).
            algorithms=[settings.algorithm],
            audience=settings.audience,
            issuer=settings.issuer,
            leeway=settings.leeway,
            options={"require": ["exp", "sub"]},
        )
    except jwt.ExpiredSignatureError:
        raise TransportError("token_expired", "the token has expired") from None
    except jwt.PyJWTError as exc:
        raise TransportError("unauthorized", f"invalid token: {exc}"[:200]) from None
    return principal_of(claims)


def principal_of(claims: dict[str, Any]) -> Principal:
    sub, roles = claims.get("sub"), claims.get("roles", [])
    if not isinstance(sub, str) or not 0 < len(sub) <= 128 or sub == "anonymous":
        raise TransportError("unauthorized", "claim 'sub' must be a 1-128 character id")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise TransportError("unauthorized", "claim 'roles' must be a list of strings")
    if "channels" in claims:
        claims = {**claims, "channels": rights.check_grants(claims["channels"])}
    return Principal(sub, claims, frozenset(roles))


def jwt_authenticator(settings: JWTSettings) -> Authenticator:
    """No token → anonymous (public channels only); a bad or expired one → refused."""

    async def authenticate(request: ConnectionRequest) -> Principal:
        token = token_from(request.headers)
        if token is None:
            return ANONYMOUS
        return verify(token, settings)

    return authenticate


def expires_in(principal: Principal) -> float | None:
    """Seconds until the principal's token expires (None: it does not)."""
    exp = principal.claims.get("exp")
    if isinstance(exp, int | float) and not isinstance(exp, bool):
        return float(exp) - time.time()
    return None


def mint(
    key: str,
    sub: str,
    *,
    ttl: float = 3600.0,
    algorithm: str = "HS256",
    channels: Mapping[str, Sequence[str]] | None = None,
    roles: Sequence[str] = (),
    audience: str | None = None,
    issuer: str | None = None,
) -> str:
    """A signed token (``key``: the HS256 secret or a PEM private key) for tests and demos."""
    if algorithm == "HS256" and len(key.encode()) < 32:
        raise ValueError("an HS256 key must be at least 32 bytes (RFC 7518 §3.2)")
    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub, "iat": now, "exp": now + int(ttl)}
    if channels is not None:
        claims["channels"] = {p: list(r) for p, r in channels.items()}
    if roles:
        claims["roles"] = list(roles)
    if audience is not None:
        claims["aud"] = audience
    if issuer is not None:
        claims["iss"] = issuer
    return jwt.encode(claims, key, algorithm=algorithm)
