"""SSE endpoint ``GET /sse?after=SEQ&epoch=E`` (or the ``Last-Event-ID`` header), and
``GET /sse?channel=A&channel=B&cursor=TOKEN`` for several channels.

The single-stream endpoint is served by :mod:`transports.sse.fast` (the fan-out hot path,
same wire); multi-channel streams by sse-starlette. Each message is one event with
``id:`` = seq and ``data:`` = the message JSON; control frames are named events
(``event: hello|gap|reset|close``) without ``id:``, so they never move the browser's last
event ID (WHATWG HTML §9.2.6: an event without an id field leaves the last event ID buffer
unchanged). The first event carries ``retry:``.
On a multi-channel stream ``id:`` is the cursor token of every channel, so the browser's
automatic reconnect (``Last-Event-ID``) resumes all of them.

Heartbeats are comment lines (``: ping``) every ``sse_ping_interval`` seconds; a reader that
does not take a frame within ``send_timeout`` seconds is disconnected (sse-starlette's
``send_timeout``), so a frozen client cannot pin a server task forever.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from transports import closing, codec
from transports.admission import admit_stream
from transports.channels import DEFAULT, encode_token
from transports.errors import TransportError
from transports.feed import Subscription
from transports.httpgzip import GzipStream, accepts_gzip
from transports.hub import Channel
from transports.message import Control, Cursor, Message
from transports.server import ServerTransport, error_response
from transports.sse.fast import EventCache, FastEventStream
from transports.streams import MultiSubscription

# Proxies (nginx) and some CDNs buffer responses unless told not to.
# LF line ends (allowed by §9.2.5): one byte less per line than the CRLF default.
SEP = "\n"
ANTI_BUFFERING = {"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"}


class SSETransport(ServerTransport):
    name = "sse"
    capabilities: ClassVar[dict[str, Any]] = {
        "bidirectional": False,
        "heartbeat": "comment lines",
        "resume": "Last-Event-ID",
        "framing": "text/event-stream event per message",
    }

    def routes(self) -> list[BaseRoute]:
        return [Route("/sse", self.endpoint)]

    @functools.cached_property
    def _cache(self) -> EventCache:
        return EventCache()

    def info(self, base_url: str) -> dict[str, Any]:
        return {
            "url": base_url + "/sse",
            "ping_interval": self.ctx.config.sse_ping_interval,
            "retry_ms": self.ctx.config.sse_retry_ms,
        }

    async def endpoint(self, request: Request) -> Response:
        ctx = self.ctx
        try:
            # Last-Event-ID is what a browser's EventSource advanced to; it wins over the
            # cursor it was first opened with (the URL does not change on reconnect).
            header = request.headers.get("last-event-id")
            admitted = await admit_stream(ctx, self.name, request, last_event_id=header)
            sub = admitted.open()
        except TransportError as error:
            return error_response(error)
        response: Response
        if isinstance(sub, Subscription) and admitted.channels is None:
            # The single-stream endpoint: the fan-out hot path (fast.py says why not
            # sse-starlette here).
            response = FastEventStream(
                sub,
                ctx.stats[self.name],
                self._cache,
                ANTI_BUFFERING,
                ctx.config.sse_ping_interval,
                ctx.config.send_timeout + 1.0,
                ctx.config.sse_retry_ms,
            )
        else:
            response = self._general(sub, admitted.channels)
        if ctx.config.http_compression and accepts_gzip(request.headers):
            return GzipStream(response, ctx.config.http_compression_level)
        return response

    def _general(
        self,
        sub: Subscription | MultiSubscription,
        channels: list[tuple[Channel, Cursor | None]] | None,
    ) -> Response:
        ctx = self.ctx
        ids = _Ids(channels) if channels is not None else None
        return EventSourceResponse(
            self._events(sub, ids),
            headers=ANTI_BUFFERING,
            ping=ctx.config.sse_ping_interval,
            # Under our uvicorn protocol (protocols.py) a frozen reader is aborted at
            # send_timeout; this later one is the fallback under other ASGI servers.
            send_timeout=ctx.config.send_timeout + 1.0,
            sep=SEP,
        )

    async def _events(
        self, sub: Subscription | MultiSubscription, ids: _Ids | None
    ) -> AsyncIterator[ServerSentEvent]:
        stats = self.ctx.stats[self.name]
        stats.opened()
        reason = "client_gone"
        first = True
        try:
            async for frame in sub:
                text, size = codec.wire(frame)
                retry = self.ctx.config.sse_retry_ms if first else None
                first = False
                if isinstance(frame, Message):
                    id_ = str(frame.seq) if ids is None else ids.after(frame)
                    event = ServerSentEvent(data=text, id=id_, retry=retry, sep=SEP)
                else:
                    if ids is not None:
                        ids.control(frame)
                    event = ServerSentEvent(data=text, event=frame.type, retry=retry, sep=SEP)
                stats.sent(size, 1, frame)
                yield event
            reason = sub.closed_reason or "closed"
            if closing.told(reason):
                close = codec.encode(Control("close", {"reason": reason}))
                yield ServerSentEvent(data=close, event="close", sep=SEP)
        finally:
            # A subscription closed for overflow explains why the stream ended, even when
            # the stream is torn down later by the send timeout or the client going away.
            if sub.closed_reason not in (None, "closed"):
                reason = sub.closed_reason
            sub.close()
            stats.ended(reason)


class _Ids:
    """The ``id:`` of a multi-channel stream: the cursor token of *all* its channels after
    the event (``docs/wire.md``), so the browser's own ``Last-Event-ID`` resumes them all."""

    def __init__(self, channels: list[tuple[Channel, Cursor | None]]) -> None:
        self.cursors: dict[str, Cursor | None] = {c.name: cur for c, cur in channels}

    def after(self, message: Message) -> str:
        name = message.channel or DEFAULT
        old = self.cursors.get(name)
        self.cursors[name] = Cursor(old.epoch if old else None, message.seq)
        return encode_token(list(self.cursors.values()))

    def control(self, frame: Control) -> None:
        name = frame.get("channel")
        if name not in self.cursors:
            return
        old = self.cursors[name]
        epoch = frame.get("epoch")
        if frame.type == "hello":
            self.cursors[name] = (
                Cursor(epoch, int(frame.get("last_seq", 0)))
                if old is None
                else Cursor(epoch if old.epoch is None else old.epoch, old.seq)
            )
        elif frame.type == "reset":
            self.cursors[name] = Cursor(epoch, 0)
        elif frame.type == "gap" and old is not None:
            self.cursors[name] = Cursor(old.epoch, int(frame.get("first", 1)) - 1)
