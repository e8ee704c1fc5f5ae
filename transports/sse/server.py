"""SSE endpoint ``GET /sse?after=SEQ&epoch=E`` (or the ``Last-Event-ID`` header).

Built on sse-starlette. Each message is one event with ``id:`` = seq and ``data:`` = the
message JSON; control frames are named events (``event: hello|gap|reset|close``) without
``id:``, so they never move the browser's last event ID (WHATWG HTML §9.2.6: an event without
an id field leaves the last event ID buffer unchanged). The first event carries ``retry:``.

Heartbeats are comment lines (``: ping``) every ``sse_ping_interval`` seconds; a reader that
does not take a frame within ``send_timeout`` seconds is disconnected (sse-starlette's
``send_timeout``), so a frozen client cannot pin a server task forever.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from transports import codec
from transports.errors import TransportError
from transports.feed import Subscription
from transports.message import Control, Message
from transports.params import check_known, parse_after, parse_epoch
from transports.server import ServerTransport, error_response

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

    def info(self, base_url: str) -> dict[str, Any]:
        return {
            "url": base_url + "/sse",
            "ping_interval": self.ctx.config.sse_ping_interval,
            "retry_ms": self.ctx.config.sse_retry_ms,
        }

    async def endpoint(self, request: Request) -> Response:
        ctx = self.ctx
        try:
            check_known(request.query_params, ())
            # Last-Event-ID is what a browser's EventSource advanced to; it wins over the
            # `after` it was first opened with (the URL does not change on reconnect).
            header = request.headers.get("last-event-id")
            if header is not None and header.strip():
                after = parse_after(header, "Last-Event-ID")
            else:
                after = parse_after(request.query_params.get("after"))
            epoch = parse_epoch(request.query_params.get("epoch"))
            await ctx.admit(self.name, request)
            sub = ctx.feed.subscribe(after, epoch)
        except TransportError as error:
            ctx.reject(self.name, request, error)
            return error_response(error)
        return EventSourceResponse(
            self._events(sub),
            headers=ANTI_BUFFERING,
            ping=ctx.config.sse_ping_interval,
            # Under our uvicorn protocol (protocols.py) a frozen reader is aborted at
            # send_timeout; this later one is the fallback under other ASGI servers.
            send_timeout=ctx.config.send_timeout + 1.0,
            sep=SEP,
        )

    async def _events(self, sub: Subscription) -> AsyncIterator[ServerSentEvent]:
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
                    event = ServerSentEvent(data=text, id=str(frame.seq), retry=retry, sep=SEP)
                else:
                    event = ServerSentEvent(data=text, event=frame.type, retry=retry, sep=SEP)
                stats.sent(size)
                yield event
            reason = sub.closed_reason or "closed"
            if reason != "closed":
                close = codec.encode(Control("close", {"reason": reason}))
                yield ServerSentEvent(data=close, event="close", sep=SEP)
        finally:
            # A subscription closed for overflow explains why the stream ended, even when
            # the stream is torn down later by the send timeout or the client going away.
            if sub.closed_reason not in (None, "closed"):
                reason = sub.closed_reason
            sub.close()
            stats.ended(reason)
