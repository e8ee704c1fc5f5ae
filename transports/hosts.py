"""Host header check against DNS rebinding (every HTTP request and WebSocket upgrade).

A page on ``evil.example`` can re-point that name at 127.0.0.1 after it loaded; the browser
then sends ``Host: evil.example:PORT`` *and* ``Origin: http://evil.example:PORT``, so an
Origin-equals-Host check passes and the page reads the feed and drives the API. The defence
is to serve only names we know (RFC 9110 §7.2: the server decides which authorities it is
an origin for): the loopback names, the address the client actually connected to (the
ASGI ``server`` entry, i.e. the accepted socket's local address, so ``--host 0.0.0.0`` works
by IP from anywhere), and ``ServerConfig.allowed_hosts`` (``serve --allow-host``; ``*``
turns the check off). Starlette's ``TrustedHostMiddleware`` needs the list up front and
cannot allow "the address this socket is bound to", hence this small middleware.

Refused: HTTP ``400 bad_host`` with the JSON body; a WebSocket is accepted and closed
``4400 bad_host`` (the documented form of every WebSocket refusal).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Iterable
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from transports.errors import TransportError

log = logging.getLogger("transports.server")
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
SEEN_MAX = 256  # remembered (Host, local address) answers


def host_name(header: str) -> str:
    """The host part of a Host header value (RFC 9110 §7.2), lower case, without the port."""
    value = header.strip().lower()
    if value.startswith("["):  # IPv6 literal, RFC 3986 §3.2.2
        return value[1 : value.find("]")] if "]" in value else value
    name = value.rsplit(":", 1)[0] if value.count(":") == 1 else value
    return name.rstrip(".")


class HostCheck:
    def __init__(self, app: ASGIApp, allowed: Iterable[str] = ()) -> None:
        self.app = app
        names = {host_name(h) for h in allowed}
        self.any = "*" in names
        self.allowed = LOOPBACK_NAMES | names
        # (Host header, the socket's local address) -> allowed: a long poll is checked on
        # every request with the same few values. Bounded (SEEN_MAX short keys): emptied when full.
        self._seen: dict[tuple[str, Any], bool] = {}

    def allows(self, scope: Scope, header: str) -> bool:
        if self.any:
            return True
        name = host_name(header)
        server = scope.get("server")
        bound = str(server[0]).lower() if server else None
        return name in self.allowed or (bound is not None and name == bound)

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine: an allowed request is handed the inner app's awaitable, so this
        # check holds no frame for as long as a WebSocket or SSE stream stays open.
        if scope["type"] not in ("http", "websocket"):
            return self.app(scope, receive, send)
        header = ""
        found = False
        for key, value in scope.get("headers", ()):
            if key == b"host":
                if found:  # RFC 9112 §3.2: more than one Host field is a 400
                    return self._refuse(scope, receive, send, header, "more than one Host")
                header, found = value.decode("latin-1"), True
        server = scope.get("server")
        if server is not None and type(server) is not tuple:  # ASGI allows any pair
            server = tuple(server)
        key = (header, server)
        ok = self._seen.get(key)
        if ok is None:
            ok = self.allows(scope, header)
            if len(header) <= 300:  # a DNS name is at most 253 characters, plus a port
                if len(self._seen) >= SEEN_MAX:
                    self._seen.clear()
                self._seen[key] = ok
        if ok:
            return self.app(scope, receive, send)
        return self._refuse(scope, receive, send, header)

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, header: str, why: str = ""
    ) -> None:
        error = TransportError("bad_host", why or f"Host {header[:100]!r} is not served here")
        client = scope.get("client")
        log.warning("%s %s rejected bad_host: %s", scope["type"], client, error.detail)
        if scope["type"] == "http":
            response = JSONResponse(error.body(), status_code=error.kind.status)
            await response(scope, receive, send)
        else:
            ws = WebSocket(scope, receive, send)
            await ws.accept()
            await ws.close(error.kind.ws_code, error.reason)
