"""The server: ``create_app(feed, transports)`` builds one Starlette app serving the feed.

Each transport is a :class:`ServerTransport` in its own sub-package (``websocket/server.py``,
``sse/server.py``, ...), imported lazily by name so that optional dependencies (aiortc,
paho-mqtt) are needed only when their transport is enabled — the habit copied from
*broadcaster*'s URL-scheme backends. Transports are write-only towards the client: they get
frames from a :class:`~transports.feed.Subscription` via :func:`pump` and frame them for their
protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from transports import codec, strictjson
from transports.auth import (
    Authenticator,
    ConnectionRequest,
    Principal,
    allow_anonymous,
    refuse_url_token,
    with_admin_token,
)
from transports.channels_api import channel_routes
from transports.config import ServerConfig
from transports.errors import KINDS, TransportError
from transports.feed import Feed, Subscription
from transports.headermap import HeaderMap
from transports.hosts import HostCheck
from transports.httpio import admin_json as admin_json
from transports.httpio import error_response as error_response
from transports.httpio import read_body as read_body
from transports.httpio import refused as refused
from transports.hub import Hub
from transports.jwtauth import jwt_authenticator
from transports.limits import ConnectionLimits, TokenBucket
from transports.message import Control, Frame
from transports.ops.admin import ops_routes
from transports.ops.hooks import Operations, url_path
from transports.publisher import Ticker
from transports.shortcuts import Shortcuts
from transports.stats import TransportStats
from transports.streams import MultiSubscription
from transports.tickets import TicketBook, with_tickets

log = logging.getLogger("transports.server")

REGISTRY: dict[str, str] = {
    "ws": "transports.websocket.server:WebSocketTransport",
    "sse": "transports.sse.server:SSETransport",
    "poll": "transports.longpoll.server:LongPollTransport",
    "webrtc": "transports.webrtc.server:WebRTCTransport",
    "mqtt": "transports.mqtt.server:MQTTTransport",
}
ALL = tuple(REGISTRY)


class ServerContext:
    """What every transport handler shares: the feed, settings, the auth hook, counters."""

    def __init__(self, feed: Feed, config: ServerConfig, auth: Authenticator) -> None:
        self.feed = feed
        self.config = config
        # Generated when not configured; `serve` and LiveServer set it up front so it stays
        # the same across a server restart (the dashboard keeps using it).
        self.admin_token = config.admin_token or secrets.token_urlsafe(32)
        if config.jwt is not None and auth is allow_anonymous:
            auth = jwt_authenticator(config.jwt)
        self.tickets = TicketBook()
        self.auth = with_admin_token(self.admin_token, with_tickets(self.tickets, auth))
        self.hub = Hub(feed, config)  # named channels; the feed is its default channel
        self.stats: dict[str, TransportStats] = {}
        self.ticker = Ticker(feed, config.rate, config.payload_bytes)
        self.transports: dict[str, ServerTransport] = {}
        self.ops = Operations(traffic=config.traffic_log, traffic_payload=config.traffic_payload)
        feed.on_subscribe = self.ops.subscribed
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        """Start a background task that shutdown will cancel and await (no stray tasks)."""
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def cancel_tasks(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def drain(self) -> None:
        """First step of shutdown: stop publishing and end every stream with shutting_down.

        uvicorn waits for open responses to finish *before* it runs the lifespan shutdown, and
        an SSE stream or a held poll never finishes by itself; ending them here lets clients
        see a clean close (WS 1001, SSE ``close`` event, poll answered) at once.
        """
        await self.ticker.stop()
        self.feed.drain("shutting_down")
        self.hub.drain()
        for transport in self.transports.values():
            await transport.drain()
        # Give handlers a moment to send their own close (bounded: 1 s) before uvicorn
        # closes what is left with its generic 1012.
        for _ in range(100):
            if all(s.active == 0 for s in self.stats.values()):
                break
            await asyncio.sleep(0.01)

    def request_of(
        self, transport: str, conn: HTTPConnection, headers: Mapping[str, str] | None = None
    ) -> ConnectionRequest:
        client = (conn.client.host, conn.client.port) if conn.client else None
        # Starlette's read-only query mapping, not a copy: a long poll passes here on every
        # request, and dict copies per poll showed in profiles. Headers: one HeaderMap per
        # admission (headermap.py) rather than Starlette's scanning, KeyError-raising lookups.
        if headers is None:
            headers = HeaderMap(conn.scope["headers"])
        return ConnectionRequest(transport, url_path(conn), headers, conn.query_params, client)

    async def admit(self, transport: str, conn: HTTPConnection) -> Principal:
        """Origin check, then the auth hook. Raises TransportError with a documented reason."""
        refuse_url_token(conn.query_params)
        headers = HeaderMap(conn.scope["headers"])
        origin = headers.get("origin")
        if origin is not None:
            own = (
                f"{'https' if conn.url.scheme in ('https', 'wss') else 'http'}://"
                f"{headers.get('host', '')}"
            )
            if origin != own and origin not in self.config.allowed_origins:
                raise TransportError("bad_origin", f"Origin {origin[:100]!r} is not allowed")
        principal = await self.auth(self.request_of(transport, conn, headers))
        self.ops.admitted(transport, conn, principal)
        return principal

    async def require_admin(self, conn: HTTPConnection) -> Principal:
        """Admission for write/admin endpoints: Origin check, the auth hook (with the admin
        token in front), then the ``admin`` role. Raises ``unauthorized`` / ``forbidden``."""
        principal = await self.admit("admin", conn)
        if principal.is_admin:
            return principal
        if principal.anonymous:
            raise TransportError(
                "unauthorized", "this endpoint needs the admin token (Authorization: Bearer ...)"
            )
        raise TransportError("forbidden", f"{principal.id!r} has no admin role")

    def frame_bucket(self) -> TokenBucket:
        """A fresh per-connection meter for the frames a client sends (see limits.py)."""
        return TokenBucket(self.config.client_frame_rate, self.config.client_frame_burst)

    def reject(self, transport: str, conn: HTTPConnection, error: TransportError) -> None:
        stats = self.stats.get(transport)
        if stats is not None:
            stats.refuse(error.reason)
        self.ops.rejected(transport, conn, error)


class ServerTransport:
    """Base for one protocol's server side. Subclasses set ``name`` and ``capabilities``."""

    name: ClassVar[str]
    # centrifuge-style capability flags, published in /api/info.
    capabilities: ClassVar[dict[str, Any]] = {}

    # Set by create_app at startup, once the feed (bound to the server's loop) exists; the
    # transport is built before that so its routes can be mounted.
    ctx: ServerContext

    def routes(self) -> list[BaseRoute]:
        return []

    def direct_paths(self) -> dict[str, ASGIApp]:
        """Paths whose GET/HEAD requests skip the router (:mod:`transports.shortcuts`): each
        app must also be on one of :meth:`routes`, and must never raise ``HTTPException``."""
        return {}

    def direct_websockets(self) -> dict[str, ASGIApp]:
        """Paths whose WebSocket sessions skip the router likewise: each app must also be
        on one of :meth:`routes`, and must never raise ``WebSocketException``."""
        return {}

    def info(self, base_url: str) -> dict[str, Any]:
        return {}

    async def startup(self) -> None:
        return None

    async def drain(self) -> None:
        """Shutdown has begun: end connections that no feed subscription ends (e.g. a
        bridge). Runs before uvicorn waits for open connections; :meth:`shutdown` after."""
        return None

    async def shutdown(self) -> None:
        return None


async def pump(
    sub: Subscription | MultiSubscription,
    send: Callable[[Frame, str], Awaitable[None]],
    stats: TransportStats,
) -> str:
    """Move frames from a subscription to a transport until it closes; return the reason.

    ``send`` gets the frame and its encoded JSON (encoded once here, so every transport sends
    identical bytes).
    """
    async for frame in sub:
        text, size = codec.wire(frame)
        await send(frame, text)
        stats.sent(size, 1, frame)
    return sub.closed_reason or "closed"


def answer_client_frame(
    raw: str | bytes, limit: int, bucket: TokenBucket | None = None
) -> tuple[str | None, str | None]:
    """Check one frame a client sent on a bidirectional transport (WebSocket, data channel).

    Clients may only send ``{"type":"ping","id":…}``. Returns ``(pong_text, None)`` for a
    ping, or ``(None, reason)`` with the documented error to close with: ``too_large``,
    ``bad_message`` (not strict JSON, see ``strictjson``), ``bad_param`` (not a ping) or
    ``rate_limited`` (more frames than the connection's ``bucket`` allows).
    """
    if bucket is not None and not bucket.take():
        return None, "rate_limited"
    if len(raw) > limit:
        return None, "too_large"
    try:
        obj = strictjson.loads(raw)
    except TransportError as error:
        return None, error.reason
    if not isinstance(obj, dict) or obj.get("type") != "ping":
        return None, "bad_param"
    return codec.encode(Control("pong", {"id": obj.get("id")})), None


def load_transport(name: str) -> ServerTransport:
    if name not in REGISTRY:
        raise ValueError(f"unknown transport {name!r}; choose from {', '.join(ALL)}")
    module_name, class_name = REGISTRY[name].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    transport: ServerTransport = cls()
    return transport


def create_app(
    feed: Feed | None = None,
    transports: Sequence[str] = ("ws", "sse", "poll"),
    config: ServerConfig | None = None,
    auth: Authenticator = allow_anonymous,
    extra_routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """Build the Starlette app serving ``feed`` over ``transports``.

    The feed is created at startup when not given (so its asyncio primitives bind to the
    server's loop). ``app.state.ctx`` is the :class:`ServerContext`.
    """
    config = config or ServerConfig()
    holder: dict[str, ServerContext] = {}

    def ctx() -> ServerContext:
        return holder["ctx"]

    async def api_info(request: Request) -> Response:
        c = ctx()
        base = str(request.base_url).rstrip("/")
        return JSONResponse(
            {
                "epoch": c.feed.epoch,
                "last_seq": c.feed.last_seq,
                "first_seq": c.feed.history.first_seq,
                "history": type(c.feed.history).__name__,
                "transports": {
                    name: {**t.info(base), "capabilities": t.capabilities}
                    for name, t in c.transports.items()
                },
                "publisher": c.ticker.settings(),
                "channels": c.hub.describe(),
                "errors": {
                    k.reason: {"status": k.status, "ws_code": k.ws_code, "retryable": k.retryable}
                    for k in KINDS.values()
                },
            }
        )

    async def api_stats(request: Request) -> Response:
        c = ctx()
        return JSONResponse(
            {
                "epoch": c.feed.epoch,
                "last_seq": c.feed.last_seq,
                "subscribers": c.feed.subscribers,
                "published": c.feed.stats.published,
                "slow_consumer_disconnects": c.feed.stats.slow_consumer_disconnects,
                "transports": {n: s.as_dict() for n, s in c.stats.items()},
            }
        )

    async def api_publish(request: Request) -> Response:
        try:
            obj = await admin_json(ctx(), request)
            if not isinstance(obj, dict) or "data" not in obj:
                raise TransportError("bad_message", 'body must be {"data": ...}')
            topic = obj.get("topic", "ticker")
            if not isinstance(topic, str) or not topic or len(topic) > 200:
                raise TransportError("bad_param", "topic must be a short string")
        except TransportError as error:
            return refused(request, error)
        message = ctx().feed.publish(obj["data"], topic)
        client = f"{request.client.host}:{request.client.port}" if request.client else "?"
        ctx().ops.published("http", message, client)
        return JSONResponse(message.to_dict())

    async def api_tickets(request: Request) -> Response:
        # Same-origin (admit checks Origin) and a JSON or empty body only: no simple-request
        # CSRF can make a browser mint a ticket with its cookie.
        try:
            kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
            body = await read_body(request, 1024)
            if body and kind != "application/json":
                raise TransportError("bad_media_type", f"Content-Type {kind[:60]!r}")
            ticket = ctx().tickets.issue(await ctx().admit("http", request))
        except TransportError as error:
            return refused(request, error)
        return JSONResponse({"ticket": ticket, "expires_in": ctx().tickets.ttl})

    async def api_publisher(request: Request) -> Response:
        if request.method == "POST":
            try:
                obj = await admin_json(ctx(), request)
                if not isinstance(obj, dict):
                    raise TransportError("bad_param", 'body must be {"rate": ..., ...}')
                try:
                    ctx().ticker.configure(
                        rate=obj.get("rate"), payload_bytes=obj.get("payload_bytes")
                    )
                except (ValueError, TypeError) as exc:
                    raise TransportError("bad_param", str(exc)[:200]) from None
            except TransportError as error:
                return refused(request, error)
        return JSONResponse(ctx().ticker.settings())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        from transports.history import open_history

        the_feed = feed or Feed(
            open_history(config.history_url), config.queue_size, config.poll_linger
        )
        c = ServerContext(the_feed, config, auth)
        holder["ctx"] = c
        app.state.ctx = c
        for name in transports:
            c.stats[name] = TransportStats(hooks=c.ops.hooks(name))
            c.transports[name] = loaded[name]
            loaded[name].ctx = c
        if config.engine_url:  # before the transports: the MQTT bridge elects through it
            from transports.engine import open_engine

            c.hub.engine = open_engine(config.engine_url)
            await c.hub.engine.start(c.hub)
        for t in c.transports.values():
            await t.startup()
        c.ops.metrics.bind(c)
        metrics_server = c.ops.metrics.serve(config.metrics_host, config.metrics_port)
        c.ticker.start(c.spawn)
        if config.gc_young is not None:
            gc.set_threshold(config.gc_young, *gc.get_threshold()[1:])
        if config.gc_freeze:
            gc.collect()
            gc.freeze()
        log.info("serving epoch %s on %s", the_feed.epoch, ", ".join(transports))
        try:
            yield
        finally:
            await c.ticker.stop()
            the_feed.close("shutting_down")
            c.hub.close()
            for t in reversed(list(c.transports.values())):
                await t.shutdown()
            if c.hub.engine is not None:
                await c.hub.engine.close()
            await c.cancel_tasks()
            c.ops.limiter.flush()
            if metrics_server is not None:
                metrics_server.shutdown()
                metrics_server.server_close()

    # Transports are constructed before the app so their routes can be mounted; they get
    # their context at startup.
    loaded = {name: load_transport(name) for name in transports}
    routes: list[BaseRoute] = [
        Route("/api/info", api_info),
        Route("/api/stats", api_stats),
        Route("/api/publish", api_publish, methods=["POST"]),
        Route("/api/publisher", api_publisher, methods=["GET", "POST"]),
        Route("/api/tickets", api_tickets, methods=["POST"]),
    ]
    routes.extend(channel_routes(ctx, read_body))
    if config.engine_url:
        from transports.engine.routes import engine_routes

        routes.extend(engine_routes(ctx))
    direct: dict[str, ASGIApp] = {}
    direct_ws: dict[str, ASGIApp] = {}
    for t in loaded.values():
        routes.extend(t.routes())
        direct.update(t.direct_paths())
        direct_ws.update(t.direct_websockets())
    routes.extend(ops_routes(ctx, metrics_here=config.metrics_port is None))
    routes.extend(extra_routes)
    middleware = [
        Middleware(HostCheck, allowed=config.allowed_hosts),
        Middleware(
            ConnectionLimits,
            max_connections=config.max_connections,
            max_per_ip=config.max_connections_per_ip,
        ),
        # Innermost: hot paths skip ExceptionMiddleware and the router, not the checks above.
        Middleware(Shortcuts, paths=direct, websockets=direct_ws),
    ]
    return Starlette(routes=routes, lifespan=lifespan, middleware=middleware)
