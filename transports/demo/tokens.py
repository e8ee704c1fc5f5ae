"""Who may read and write in the demos: signed per-user tokens (``docs/demos.md``).

A demo token is ``NAME.ROLE.SIG``: ``NAME`` is 1-24 of ``A-Z a-z 0-9 _``, ``ROLE`` is ``w``
(writer) or ``r`` (read-only observer) and ``SIG`` the first 24 hex digits of
HMAC-SHA256(key, ``NAME.ROLE``) (RFC 2104), the key derived from the server's admin token so
tokens stay valid across a fault-lab server restart.

How a token reaches the server:

- ``Authorization: Bearer <token>`` (Python clients, ``fetch``: long polling, WebRTC
  signalling, channel POSTs, ``POST /api/tickets``);
- a browser's WebSocket: ``Sec-WebSocket-Protocol: transport-lab, bearer.<token>`` (the one
  header it can set, RFC 6455 §4.1); an EventSource, which can set none, opens
  ``/sse?ticket=T`` with a single-use 30 s ticket from ``POST /api/tickets``
  (``transports/tickets.py``: the server redeems it for this hook's principal);
- never in the URL: ``?access_token=`` is refused ``400 bad_param`` (``auth.py``), since URLs
  end up in logs, history and ``Referer`` headers (OWASP); the page gets its invite in the
  URL *fragment* (``#token=``), which the browser never sends;
- the admin token keeps working (it maps to the ``admin`` principal, allowed everything).

MQTT: the managed broker only lets *named* users (a static password file) write, each to its
own inbound topic, so every demo writer connects as one shared broker user, ``MQTT_USER``,
with a password derived like the key (``GET /demos/api/mqtt`` hands both to a writer), and
puts its personal token in the publish's data as ``"token"``; the demo's ``on_publish`` hook
verifies and strips it (:meth:`Signer.principal_of`). Observers connect anonymously: the
broker itself lets them read and not write.

``mint`` is the only way to get a token: ``POST /demos/api/token`` with a token of the same
or a stronger role (a writer invite mints writer or observer tokens for any name; an
observer mints observers). Names are chosen by their users and not verified: this is a
classroom demo of *what* a token lets a client do, not an identity system.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from transports.auth import ANONYMOUS, Authenticator, ConnectionRequest, Principal
from transports.errors import TransportError
from transports.jwtauth import token_from

MQTT_USER = "demo-writers"
NAME = re.compile(r"[A-Za-z0-9_]{1,24}")
ROLES = {"w": "writer", "r": "observer"}
SIG_HEX = 24


@dataclass(frozen=True, slots=True)
class Signer:
    key: bytes

    @classmethod
    def from_admin_token(cls, admin_token: str) -> Signer:
        return cls(hashlib.sha256(b"transport-lab demo tokens\0" + admin_token.encode()).digest())

    def _sig(self, name: str, role: str) -> str:
        mac = hmac.new(self.key, f"{name}.{role}".encode(), hashlib.sha256)
        return mac.hexdigest()[:SIG_HEX]

    def mint(self, name: str, role: str) -> str:
        """A token for ``name`` with ``role`` (``writer``/``observer``); ``bad_param`` else."""
        code = {v: k for k, v in ROLES.items()}.get(role)
        if code is None or not NAME.fullmatch(name):
            raise TransportError(
                "bad_param", "user must be 1-24 of A-Z a-z 0-9 _ and role writer|observer"
            )
        return f"{name}.{code}.{self._sig(name, code)}"

    def verify(self, token: str) -> Principal | None:
        """The principal a token stands for, or None when it is not a valid demo token."""
        name, _, rest = token.partition(".")
        code, _, sig = rest.partition(".")
        if code not in ROLES or not NAME.fullmatch(name) or len(sig) != SIG_HEX:
            return None
        if not hmac.compare_digest(sig, self._sig(name, code)):
            return None
        return Principal(name, {"role": ROLES[code]}, frozenset({ROLES[code]}))

    def mqtt_password(self) -> str:
        return hmac.new(self.key, b"mqtt broker user", hashlib.sha256).hexdigest()[:32]

    def principal_of(self, principal: Principal, data: object = None) -> Principal:
        """The principal a publish speaks for: the connection's, or for the shared MQTT
        user the personal token in ``data["token"]`` (verified; anonymous if it is not)."""
        if principal.roles or principal.anonymous or principal.id != MQTT_USER:
            return principal
        token = data.get("token") if isinstance(data, dict) else None
        return (self.verify(token) if isinstance(token, str) else None) or ANONYMOUS

    def authenticator(self) -> Authenticator:
        async def authenticate(request: ConnectionRequest) -> Principal:
            token = token_from(request.headers)
            if not token:
                return ANONYMOUS
            principal = self.verify(token)
            if principal is None:
                raise TransportError("unauthorized", "not a valid demo token")
            return principal

        return authenticate


def can_write(principal: Principal) -> bool:
    return principal.is_admin or "writer" in principal.roles


def can_read(principal: Principal) -> bool:
    return can_write(principal) or "observer" in principal.roles
