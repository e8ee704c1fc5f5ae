"""Token clients on the managed Mosquitto: ``POST /api/mqtt/credentials``.

A client holding a signed token (``jwtauth.py``) posts it as ``Authorization: Bearer``; the
server registers a broker client (dynamic-security plugin, ``dynsec.py``) whose username is
the token's ``sub`` and whose password is the token itself, with one role made from the
token's ``channels`` grants. The client then CONNECTs with that username and the JWT as
password, and from there the *broker* enforces the grants: talking to Mosquitto directly
bypasses nothing. Answer: ``{"username", "expires_at", "url"}``.

Bounds (``ServerConfig``): at most ``mqtt_max_token_clients`` registrations at once (then
``503 too_many_connections``), ``mqtt_token_rate`` per second with a burst of
``mqtt_token_burst`` (then ``429 rate_limited``), a token of at most ``jwtauth.MAX_TOKEN``
characters. A registration ends at the token's ``exp`` (at most ``mqtt_token_max_ttl``
later): the server deletes the broker client, and Mosquitto disconnects a connected one with
MQTT 5 reason code 0x98 "Administrative action" (§3.14.2.1), within about a second.
Registering the same token again changes nothing (clients do so on every connect);
registering a new token for the same ``sub`` replaces the old one (the connections made with
the old one are closed: its password no longer holds). A ``sub`` that is not a safe
MQTT username (``[A-Za-z0-9_.@-]``, 1–64, not the bridge's or a ``--mqtt-user``'s) gets
``400 bad_param``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from transports import rights
from transports.auth import Principal, bearer_token
from transports.errors import TransportError
from transports.httpio import error_response
from transports.jwtauth import expires_in
from transports.limits import TokenBucket
from transports.mqtt.dynsec import DynSecControl, DynSecError, grant_acls, public_acls

log = logging.getLogger("transports.mqtt.credentials")

USERNAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


class TokenClients:
    """Registrations by username, each with the timer that deletes it at expiry."""

    def __init__(
        self,
        control: DynSecControl,
        prefix: str,
        reserved: set[str],
        *,
        max_clients: int,
        rate: float,
        burst: int,
        max_ttl: float,
    ) -> None:
        self.control, self.prefix, self.reserved = control, prefix, reserved
        self.max_clients, self.max_ttl = max_clients, max_ttl
        self.bucket = TokenBucket(rate, burst)
        self.principals: dict[str, Principal] = {}
        self._tokens: dict[str, str] = {}
        self._until: dict[str, float] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._lock = asyncio.Lock()
        self.counters = {"registered": 0, "expired": 0, "refused": 0}

    def principal(self, username: str) -> Principal | None:
        """The token principal behind a broker username (the bridge checks inbound publishes
        against its full grants)."""
        return self.principals.get(username)

    async def register(self, principal: Principal, token: str) -> dict[str, Any]:
        left = expires_in(principal)
        if principal.anonymous or left is None:
            raise TransportError("unauthorized", "MQTT credentials need a signed token (exp)")
        username = principal.id
        if not USERNAME.fullmatch(username) or username in self.reserved:
            raise TransportError("bad_param", "the token's sub is not a usable MQTT username")
        known = self.principals.get(username)
        if known is not None and self._tokens.get(username) == token:
            # The same token again (a client reconnecting): nothing changes, nobody is kicked.
            return {"username": username, "expires_at": self._until[username]}
        if not self.bucket.take():
            raise TransportError("rate_limited", "too many MQTT credential requests")
        if username not in self.principals and len(self.principals) >= self.max_clients:
            raise TransportError("too_many_connections", "MQTT token client limit reached")
        role = f"token-{username}"
        acls = grant_acls(self.prefix, username, rights.grants_of(principal), principal.is_admin)
        async with self._lock:  # one registration of a name at a time
            # Delete, then create: the old password (token) stops working and the plugin
            # disconnects any client connected with it.
            await self.control.run(
                [
                    {"command": "deleteClient", "username": username},
                    {"command": "deleteRole", "rolename": role},
                ]
            )
            errors = await self.control.run(
                [
                    {
                        "command": "createRole",
                        "rolename": role,
                        "acls": [*acls, *public_acls(self.prefix)],
                    },
                    {
                        "command": "createClient",
                        "username": username,
                        "password": token,
                        "roles": [{"rolename": role}],
                    },
                ]
            )
            if any(errors):
                raise DynSecError(f"broker refused the registration: {errors}")
            self.principals[username] = principal
            ttl = min(left, self.max_ttl)
            self._tokens[username] = token
            self._until[username] = time.time() + ttl
            old = self._timers.pop(username, None)
            if old is not None:
                old.cancel()
            loop = asyncio.get_running_loop()
            self._timers[username] = loop.call_later(max(ttl, 0.0), self._expire, username)
        self.counters["registered"] += 1
        return {"username": username, "expires_at": time.time() + ttl}

    def _expire(self, username: str) -> None:
        self._timers.pop(username, None)
        task = asyncio.ensure_future(self.remove(username))
        task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    async def remove(self, username: str) -> None:
        async with self._lock:
            self._tokens.pop(username, None)
            self._until.pop(username, None)
            if self.principals.pop(username, None) is None:
                return
            try:
                await self.control.run(
                    [
                        {"command": "deleteClient", "username": username},
                        {"command": "deleteRole", "rolename": f"token-{username}"},
                    ]
                )
            except DynSecError as exc:
                log.warning("could not remove MQTT token client %s: %s", username, exc)
                return
        self.counters["expired"] += 1
        log.info("MQTT token client %s expired: removed from the broker", username)

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()


async def credentials_endpoint(
    request: Request, clients: TokenClients | None, admit: Any, url: str
) -> Response:
    """``POST /api/mqtt/credentials`` with ``Authorization: Bearer <JWT>``."""
    try:
        if clients is None:
            raise TransportError(
                "not_ready", "this broker has no token clients (managed Mosquitto only)"
            )
        # Authorization only, never the cookie: a cross-site form cannot set this header.
        token = bearer_token(request.headers)
        principal: Principal = await admit("mqtt", request)
        if token is None or principal.anonymous:
            raise TransportError("unauthorized", "MQTT credentials need a signed token")
        answer = await clients.register(principal, token)
    except DynSecError as exc:
        error = TransportError("not_ready", str(exc)[:200])
        log.warning("mqtt credentials: %s", error.detail)
        return error_response(error)
    except TransportError as error:
        if clients is not None:
            clients.counters["refused"] += 1
        log.warning("mqtt credentials refused %s: %s", error.reason, error.detail)
        return error_response(error)
    return JSONResponse({**answer, "url": url})
