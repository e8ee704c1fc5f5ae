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
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping

from starlette.types import ASGIApp, Receive, Scope, Send

METHODS = frozenset({"GET", "HEAD"})


class Shortcuts:
    """ASGI middleware: ``paths[scope["path"]]`` for GET/HEAD HTTP requests, else ``app``."""

    __slots__ = ("app", "paths")

    def __init__(self, app: ASGIApp, paths: Mapping[str, ASGIApp]) -> None:
        self.app = app
        self.paths = dict(paths)

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine: it hands back the chosen app's awaitable, so it holds no frame of
        # its own for as long as a poll is held.
        if scope["type"] == "http" and scope["method"] in METHODS and not scope.get("root_path"):
            direct = self.paths.get(scope["path"])
            if direct is not None:
                return direct(scope, receive, send)
        return self.app(scope, receive, send)
