"""WebSocket endpoint ``GET /ws?after=SEQ&epoch=E`` or ``GET /ws?channel=A&channel=B&cursor=T``.

One text frame per feed frame (message or control). Heartbeats are RFC 6455 §5.5.2 ping /
§5.5.3 pong: uvicorn sends pings at ``ws_ping_interval`` and closes a peer that does not
answer within ``ws_ping_timeout``; clients may ping too (the Python client does, to detect a
dead server). Browsers cannot send protocol pings, so the server also answers an
application-level ``{"type":"ping"}`` with ``{"type":"pong"}``.

With ``channel`` parameters the connection is multi-channel: frames name their channel and
the client may subscribe, unsubscribe and publish with frames (:mod:`transports.inbound`).

Errors are reported by accepting and then closing with ``4000 + HTTP status`` (see
``errors.py``): a close before accept would reach a browser only as an opaque 403.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from typing import Any, ClassVar

from starlette.routing import BaseRoute, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from transports import closing, codec, inbound
from transports.admission import admit_stream
from transports.errors import TransportError
from transports.feed import Subscription
from transports.jwtauth import SUBPROTOCOL
from transports.message import Frame, Message
from transports.server import ServerTransport, pump
from transports.streams import MultiSubscription
from transports.websocket.fast import FastConnection
from transports.wsframes import direct_frames

log = logging.getLogger("transports.websocket")
CLIENT_ERRORS = frozenset(
    {"bad_message", "bad_param", "too_large", "rate_limited"}
)  # logged, one line each
_PARSED = ("_url", "_headers", "_query_params", "_cookies")  # Starlette's HTTPConnection caches


class WebSocketTransport(ServerTransport):
    name = "ws"
    capabilities: ClassVar[dict[str, Any]] = {
        "bidirectional": True,
        "heartbeat": "ws ping/pong",
        "resume": "after+epoch query",
        "framing": "text frame per message",
    }

    def routes(self) -> list[BaseRoute]:
        return [WebSocketRoute("/ws", self.endpoint)]

    def direct_websockets(self) -> dict[str, ASGIApp]:
        # The route's endpoint without the router in front (shortcuts.py); it raises no
        # WebSocketException: every refusal is an accept and a 4xxx close.
        return {"/ws": self.session}

    def session(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # A plain function, as the route's app but with no frame of its own.
        return self.endpoint(WebSocket(scope, receive, send))

    def info(self, base_url: str) -> dict[str, Any]:
        return {
            "url": base_url.replace("http", "ws", 1) + "/ws",
            "compression": self.ctx.config.ws_compression,
            "ping_interval": self.ctx.config.ws_ping_interval,
        }

    async def endpoint(self, ws: WebSocket) -> None:
        ctx, stats = self.ctx, self.ctx.stats[self.name]
        # A browser carries its token as `Sec-WebSocket-Protocol: transport-lab, bearer.<jwt>`
        # (jwtauth.py); RFC 6455 §4.2.2 has the server name one offered subprotocol back.
        chosen = SUBPROTOCOL if SUBPROTOCOL in ws.scope.get("subprotocols", ()) else None
        try:
            sub = (await admit_stream(ctx, self.name, ws)).open()
        except TransportError as error:
            await ws.accept(subprotocol=chosen)
            await ws.close(error.kind.ws_code, error.reason)
            return
        await ws.accept(subprotocol=chosen)
        stats.opened()
        # Admission parsed the URL, headers and query; Starlette caches each on the
        # connection (and parses again if read again), which an open stream would keep
        # for its whole life: ~0.6 KB per idle connection.
        for cached in _PARSED:
            ws.__dict__.pop(cached, None)
        if isinstance(sub, Subscription):
            # The single-stream endpoint (the default channel): the fan-out hot path.
            cfg = ctx.config
            conn = FastConnection(
                ws, sub, stats, ctx.frame_bucket(), cfg.max_frame_bytes, cfg.send_timeout
            )
            reason = await conn.serve()
        else:
            # Its own coroutine: its closures' cells and locals are not carried by every
            # single-stream connection's frame.
            reason = await self._serve_multi(ws, sub)
        await self._close(ws, reason)

    async def _serve_multi(self, ws: WebSocket, sub: MultiSubscription) -> str:
        ctx, stats = self.ctx, self.ctx.stats[self.name]
        lock = asyncio.Lock()
        reason = "closed"
        bucket = ctx.frame_bucket()
        frames = direct_frames(ws.scope)

        if frames is not None:
            owner = stats.owner()  # direct() runs in the publisher's task

            def direct(message: Message) -> bool:
                # Idle stream (MultiSubscription.write_directly) and no send in flight: the
                # publisher writes the message's one shared frame now, if the socket has room.
                if lock.locked():
                    return False
                text, size = message._wire or codec.wire(message)
                if not frames.send_text_now(text):
                    return False
                stats.sent_message(size, message, owner)
                return True

            sub.write_directly(direct)

        async def send(frame: Frame, text: str) -> None:
            # The pump is this stream's one writer: with room in the socket the protocol
            # writes the frame now, one frame per message shared by its channel's
            # subscribers (wsframes.py), with no lock, timeout object or ASGI send per frame.
            if frames is not None and not lock.locked() and frames.send_text_now(text):
                return
            async with lock, asyncio.timeout(ctx.config.send_timeout):
                await ws.send_text(text)

        async def read() -> str:
            # Starlette reports a disconnect only through receive(): a send-only handler
            # would never notice a client that went away while the feed is quiet.
            while True:
                msg = await ws.receive()
                if msg["type"] == "websocket.disconnect":
                    return "client_gone"
                raw = msg.get("text") or msg.get("bytes") or b""
                if bucket is not None and not bucket.take():
                    return "rate_limited"
                # Replies travel through the stream, in order with its frames.
                error = await inbound.handle(ctx, sub, raw)
                if error is not None:
                    return error

        pump_task = asyncio.ensure_future(pump(sub, send, stats))
        read_task = asyncio.ensure_future(read())
        # A pump blocked in send() on a full socket would not see its subscription being
        # closed for overflow; watching the close lets us drop that client at once.
        closed_task = asyncio.ensure_future(sub.closed.wait())
        tasks = (pump_task, read_task, closed_task)
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finished = done.pop()
            exc = finished.exception()
            if finished is closed_task:
                reason = sub.closed_reason or "closed"
            elif isinstance(exc, TimeoutError):
                reason = "send_timeout"
            elif isinstance(exc, WebSocketDisconnect | OSError):
                reason = "client_gone"
            elif exc is not None:
                raise exc
            else:
                reason = str(finished.result())
        finally:
            sub.close()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            stats.ended(reason)
        return reason

    async def _close(self, ws: WebSocket, reason: str) -> None:
        if ws.client_state != WebSocketState.CONNECTED or reason in ("client_gone",):
            return
        code = closing.ws_code(reason)
        if reason in CLIENT_ERRORS:
            client = f"{ws.client.host}:{ws.client.port}" if ws.client else "?"
            log.warning("ws %s closed %d %s: bad client frame", client, code, reason)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await ws.close(code, reason)
