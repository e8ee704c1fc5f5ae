"""One single-stream ``/ws`` connection: the fan-out hot path, in one task and a few slots.

A caught-up subscriber gets each message written by the publisher's own call
(:attr:`~transports.feed.Subscription.direct`, ``writer.py``), with no task wake-up, no
lock and no timeout object per send. What queues meanwhile (hello, replay, backlog while a
send waits for a slow socket) is written by :meth:`FastConnection.pump_queued`, called at
connect and each time a waiting send completes. So the ASGI handler's own task is the
connection's only task: it reads (pongs, disconnects), and is woken by a cancel when the
subscription ends under it (overflow, shutdown, token expiry), a cancel it then absorbs
(``Task.uncancel``, as ``asyncio.timeout`` does).

Why a class with ``__slots__`` rather than closures: an idle connection's memory is the
server's memory at scale (``docs/fanout.md``); a second task, its frame and the closures
with their cells were most of what a connection cost beyond raw Starlette's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, cast

from starlette.websockets import WebSocket, WebSocketDisconnect

from transports import codec
from transports.feed import Subscription, SubscriptionClosed
from transports.limits import TokenBucket
from transports.message import Message
from transports.server import answer_client_frame
from transports.websocket.writer import Writer
from transports.wsframes import DirectFrames, direct_frames

if TYPE_CHECKING:
    from transports.stats import TransportStats


class FastConnection:
    __slots__ = (
        "_armed",
        "_asgi_send",
        "_frames",
        "_task",
        "_woken",
        "bucket",
        "max_bytes",
        "owner",
        "stats",
        "sub",
        "writer",
        "ws",
    )

    def __init__(
        self,
        ws: WebSocket,
        sub: Subscription,
        stats: TransportStats,
        bucket: TokenBucket | None,
        max_bytes: int,
        send_timeout: float,
    ) -> None:
        self.ws, self.sub, self.stats = ws, sub, stats
        self.bucket, self.max_bytes = bucket, max_bytes
        self.owner = stats.owner()  # direct() runs in the publisher's task
        # The ASGI send under Starlette's WebSocket.send_text: that layer re-checks the
        # connection state and message type on every frame (~6 % of the server's CPU at
        # 1000 clients in py-spy); only text frames go this way, after accept and before
        # close, so the state it tracks cannot change here. A dead peer still raises
        # (uvicorn's ClientDisconnected, an OSError), which the writer turns into an end.
        # It is uvicorn's ``async def send`` (the /ws shortcut, shortcuts.py), or behind the
        # router Starlette's exception handler's ``async def sender``: a coroutine
        # function either way, whose coroutines the writer steps by hand.
        self._asgi_send = cast(Callable[[dict[str, Any]], Coroutine[Any, Any, None]], ws._send)
        # Below that, the protocol itself writes a frame built once per message
        # (``transports/wsframes.py``) when the connection has room; None on a server
        # without it (a plain uvicorn protocol class), which then takes the ASGI send.
        self._frames: DirectFrames | None = direct_frames(ws.scope)
        self.writer: Writer[str] = Writer(
            self._send_text, send_timeout, sub.close, self.pump_queued
        )
        # armed: the subscription's end should wake the handler; woken: it was cancelled for
        # that (and not by uvicorn or a shutdown of the loop).
        self._armed = self._woken = False
        self._task: asyncio.Task[object] | None = None

    def _send_text(self, text: str) -> Coroutine[Any, Any, None]:
        return self._asgi_send({"type": "websocket.send", "text": text})

    def direct(self, message: Message) -> bool:
        """The publisher's call (``Feed.publish``): write now, or False to have it queued."""
        writer = self.writer
        if writer.pending is not None:
            return False
        text, size = message._wire or codec.wire(message)  # encoded once per message
        frames = self._frames
        if frames is None or not frames.send_text_now(text):
            # Writes paused, closing or closed: the ASGI send waits (or raises) as before.
            writer.start(self._send_text(text))
        self.stats.sent_message(size, message, self.owner)
        return True

    def pump_queued(self) -> None:
        writer, sub = self.writer, self.sub
        try:
            while writer.pending is None:
                frame = sub.get_nowait()
                if frame is None:
                    return  # caught up: publish writes the next message directly
                text, size = codec.wire(frame)
                writer.write(text)
                self.stats.sent(size, frame=frame, owner=self.owner)
        except SubscriptionClosed:
            return  # ended() has woken the handler

    def ended(self, reason: str) -> None:
        if self._armed and self._task is not None:
            self._armed, self._woken = False, True
            self._task.cancel()

    async def serve(self) -> str:
        """Run the connection in the current task; return the close reason."""
        ws, sub, writer = self.ws, self.sub, self.writer
        self._task = asyncio.current_task()
        self._armed = True
        reason = "closed"
        sub.on_close = self.ended
        sub.direct = self.direct
        try:
            try:
                self.pump_queued()
                # Starlette reports a disconnect only through receive(): a send-only handler
                # would never notice a client that went away while the feed is quiet.
                while True:
                    msg = await ws.receive()
                    if msg["type"] == "websocket.disconnect":
                        reason = "client_gone"
                        break
                    raw = msg.get("text") or msg.get("bytes") or b""
                    pong, error = answer_client_frame(raw, self.max_bytes, self.bucket)
                    if pong is None:
                        reason = error or "bad_param"
                        break
                    await writer.write_when_idle(pong)
            finally:
                self._armed = False
            if self._woken:
                # The cancel is still pending when reading ended on its own meanwhile.
                await asyncio.sleep(0)
        except asyncio.CancelledError:
            if not self._woken or self._task is None or self._task.uncancel() > 0:
                raise
            self._woken = False
        except (WebSocketDisconnect, OSError):
            reason = "client_gone"
        finally:
            sub.direct = None
            sub.on_close = None
            sub.close(reason)
            reason = sub.closed_reason or reason  # the first end wins (e.g. slow_consumer)
            writer.cancel()
            if writer.pending is not None:
                await asyncio.gather(writer.pending, return_exceptions=True)
            self.stats.ended(reason)
        return reason
