"""Direct dispatch for hot request paths, in front of Starlette's exception middleware and router.

A held long poll (``GET /poll``) otherwise keeps, for its whole wait, the coroutine frames of
``ExceptionMiddleware`` (plus the handler-wrapping closure it builds per request), the
``Router`` and the matched ``Route`` — ~1.6 KB and a dozen GC-tracked objects per held poll
(tracemalloc, 500 held polls), and a linear route match per request. Starlette has no hook to
skip them for one path, hence this small middleware; it is the innermost user middleware, so
``ServerErrorMiddleware`` (500s), CORS, :class:`~transports.hosts.HostCheck` and
:class:`~transports.limits.ConnectionLimits` still wrap every request exactly as before.

Only the methods the route itself serves are dispatched (``GET``, and ``HEAD`` which
Starlette adds to every GET route); any other method, a ``root_path`` mount, or another path
goes through the router unchanged, which keeps its ``405`` with ``Allow``, its ``404`` and
its redirects. The app given here must be the one on the route, and must not raise
``HTTPException`` (nothing would turn it into a response here: it would become a 500).

WebSocket sessions (``websockets``, e.g. ``/ws``) are dispatched the same way, by their own
table, so a plain HTTP request to that path still gets the router's 404. Each connect then
skips the two exception-handling layers (ExceptionMiddleware's and the route's), the route
match and the session wrapper (2000 clients connecting: ~4 % of the server's CPU), and the
app's frames go to uvicorn's ``send`` itself instead of through the route's ``sender``
closure (~6 % of the fan-out's CPU in py-spy, ``docs/fanout.md``). Such an app must not
raise ``WebSocketException`` (the router's handler would have turned it into a close).
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping

from starlette.types import ASGIApp, Receive, Scope, Send

METHODS = frozenset({"GET", "HEAD"})


class Shortcuts:
    """ASGI middleware: ``paths[scope["path"]]`` for GET/HEAD HTTP requests,
    ``websockets[scope["path"]]`` for WebSocket sessions, else ``app``."""

    __slots__ = ("app", "paths", "websockets")

    def __init__(
        self,
        app: ASGIApp,
        paths: Mapping[str, ASGIApp],
        websockets: Mapping[str, ASGIApp] | None = None,
    ) -> None:
        self.app = app
        self.paths = dict(paths)
        self.websockets = dict(websockets or {})

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine: it hands back the chosen app's awaitable, so it holds no frame of
        # its own for as long as a poll or a session is held.
        kind = scope["type"]
        if kind == "http":
            if scope["method"] in METHODS and not scope.get("root_path"):
                direct = self.paths.get(scope["path"])
                if direct is not None:
                    return direct(scope, receive, send)
        elif kind == "websocket" and not scope.get("root_path"):
            direct = self.websockets.get(scope["path"])
            if direct is not None:
                return direct(scope, receive, send)
        return self.app(scope, receive, send)
