"""The single-stream ``/sse`` response: the fan-out hot path, written as a plain ASGI app.

Why not sse-starlette here: it sends every event from one task, each send under a fresh anyio
cancel scope (its ``send_timeout``) and a lock shared with its ping task, and encodes each
event per client through ``io.StringIO``. At 1000 subscribers the fan-out benchmark
(``docs/fanout.md``) measured that per-event machinery as about a fifth of the server's CPU,
plus one task wake-up per subscriber per message. This app does what ``/ws`` does
(``websocket/writer.py``, ``feed.py`` "Fast path"): while a subscriber is caught up, the
publisher's own call writes the already-encoded event bytes — identical for every subscriber
of the stream, so built once per message — to its connection; only a write that has to wait
for the socket goes to a task bounded by ``send_timeout``, and meanwhile the subscription
queues (bounded) as before, so a slow consumer still overflows and is dropped.

The wire is what sse-starlette wrote (``docs/wire.md``): the same headers, field order
(``id``, ``event``, ``data``, ``retry``), LF line ends, ``retry:`` on the first event,
``: ping - <UTC time>`` comment heartbeats every ``sse_ping_interval`` seconds (0 disables),
and a ``close`` event when the stream ends for a reason the client is told. The frozen-reader
deadline stays with the uvicorn protocol (``protocols.py``); the writer's own bound of
``send_timeout + 1`` s is the fallback under other ASGI servers, as sse-starlette's was.
Multi-channel streams keep sse-starlette (``server.py``): their ``id:`` differs per client.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from transports import closing, codec
from transports.feed import Subscription
from transports.message import Control, Frame, Message
from transports.websocket.writer import Writer, drain

if TYPE_CHECKING:
    from transports.stats import TransportStats

_LINE_SEP = re.compile(r"\r\n|\r|\n")  # §9.2.5 line ends: a data line may not contain one


def encode_event(
    data: str, id: str | None = None, event: str | None = None, retry: int | None = None
) -> bytes:
    """One event in sse-starlette's field order, LF line ends (WHATWG HTML §9.2.5/§9.2.6)."""
    parts: list[str] = []
    if id is not None:
        parts.append(f"id: {_LINE_SEP.sub('', id)}\n")
    if event is not None:
        parts.append(f"event: {_LINE_SEP.sub('', event)}\n")
    if "\n" in data or "\r" in data:
        parts.extend(f"data: {line}\n" for line in _LINE_SEP.split(data))
    else:
        parts.append(f"data: {data}\n")
    if retry is not None:
        parts.append(f"retry: {retry}\n")
    parts.append("\n")
    return "".join(parts).encode("utf-8")


class EventCache:
    """The last message's event bytes: publish hands one message to every subscriber in a
    row, so each message is encoded once per stream, not once per client."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: tuple[Message | None, bytes] = (None, b"")

    def get(self, message: Message) -> bytes:
        last = self._last
        if last[0] is message:
            return last[1]
        text, _ = codec.wire(message)
        data = encode_event(text, id=str(message.seq))
        self._last = (message, data)
        return data


class FastEventStream(Response):
    """ASGI app serving one :class:`Subscription` as ``text/event-stream`` (a Response only
    so an endpoint may return it; Starlette just calls it)."""

    def __init__(
        self,
        sub: Subscription,
        stats: TransportStats,
        cache: EventCache,
        headers: dict[str, str],
        ping: float,
        send_timeout: float,
        retry_ms: int,
    ) -> None:
        self.background = None
        self.sub, self.stats, self.cache = sub, stats, cache
        self.ping, self.send_timeout, self.retry_ms = ping, send_timeout, retry_ms
        base = {
            "content-type": "text/event-stream; charset=utf-8",
            "cache-control": "no-store",
            "connection": "keep-alive",
        }
        base.update({k.lower(): v for k, v in headers.items()})
        base["x-accel-buffering"] = "no"
        self.raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in base.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sub = self.sub
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        if scope.get("method") == "HEAD":  # headers only; the stream never starts
            sub.close()
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return

        async def body(data: bytes) -> None:
            await send({"type": "http.response.body", "body": data, "more_body": True})

        writer: Writer[bytes] = Writer(body, self.send_timeout, sub.close)
        stats, cache = self.stats, self.cache
        self.stats.opened()
        owner = stats.owner()  # direct() runs in the publisher's task

        def direct(message: Message) -> bool:
            if writer.busy:
                return False
            writer.write(cache.get(message))
            stats.sent(codec.wire(message)[1], 1, message, owner)
            return True

        listener = asyncio.ensure_future(_until_disconnect(receive))
        # The client going away ends the subscription, which ends the pump below.
        listener.add_done_callback(lambda _: sub.close("client_gone"))
        timer = _Heartbeat(writer, self.ping) if self.ping > 0 else None
        reason = "client_gone"
        try:
            sub.direct = direct
            reason = await self._pump(writer)
            if sub.closed_reason not in (None, "closed"):
                reason = sub.closed_reason or reason
            if closing.told(reason) and reason != "send_timeout" and not listener.done():
                # (after a send timeout the socket is unusable: nothing more is written)
                close = codec.encode(Control("close", {"reason": reason}))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.send_timeout):
                        await writer.write_when_idle(encode_event(close, event="close"))
        finally:
            sub.direct = None
            if timer is not None:
                timer.cancel()
            sub.close()
            writer.cancel()
            listener.cancel()
            pending = (writer.pending,) if writer.pending is not None else ()
            await asyncio.gather(listener, *pending, return_exceptions=True)
            stats.ended(reason)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _pump(self, writer: Writer[bytes]) -> str:
        """Write what queued (hello, replay, backlog while a send waited); return the reason."""
        stats, cache = self.stats, self.cache
        first = True

        def emit(frame: Frame) -> None:
            nonlocal first
            if first or not isinstance(frame, Message):
                data = _event(frame, self.retry_ms if first else None)
            else:
                data = cache.get(frame)
            first = False
            writer.write(data)
            stats.sent(codec.wire(frame)[1], 1, frame)

        return await drain(self.sub, writer, emit)


def _event(frame: Frame, retry: int | None) -> bytes:
    text, _ = codec.wire(frame)
    if isinstance(frame, Message):
        return encode_event(text, id=str(frame.seq), retry=retry)
    return encode_event(text, event=frame.type, retry=retry)


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class _Heartbeat:
    """``: ping`` comments from a loop timer, not a task: skipped while a send is pending
    (the connection is not idle then, and the bytes would only queue behind it)."""

    def __init__(self, writer: Writer[bytes], interval: float) -> None:
        self.writer, self.interval = writer, interval
        self.handle = asyncio.get_running_loop().call_later(interval, self._tick)

    def _tick(self) -> None:
        if not self.writer.busy:
            stamp = datetime.now(UTC)
            self.writer.write(encode_event_comment(f"ping - {stamp}"))
        self.handle = asyncio.get_running_loop().call_later(self.interval, self._tick)

    def cancel(self) -> None:
        self.handle.cancel()


def encode_event_comment(text: str) -> bytes:
    return "".join(f": {line}\n" for line in _LINE_SEP.split(text)).encode("utf-8") + b"\n"
