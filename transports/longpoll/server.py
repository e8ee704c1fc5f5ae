"""Long polling ``GET /poll?after=SEQ&epoch=E&timeout=S&limit=N``, or with
``channel=A&channel=B&cursor=TOKEN`` for several channels.

Returns ``{"epoch", "last_seq", "messages": [...]}`` at once when something newer than
``after`` exists (up to ``limit`` frames, so a client that fell behind catches up in
batches), otherwise holds the request until a message arrives or ``timeout`` seconds pass
(an empty batch then doubles as the heartbeat). ``timeout`` is bounded by
``poll_max_timeout``: proxies commonly cut idle requests at 60 s.

Long polling needs no subscription: each request reads history from its cursor, so there is
no per-client queue to overflow and no slow-consumer state kept between requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from transports import codec
from transports.admission import Admitted, admit_stream, token_of
from transports.errors import TransportError
from transports.feed import Feed
from transports.httpgzip import accepts_gzip, gzip_body
from transports.message import Control
from transports.params import parse_float, parse_int
from transports.protocols import DISCONNECT, DisconnectWatch
from transports.querymap import QueryMap
from transports.server import ServerTransport, error_response


class LongPollTransport(ServerTransport):
    name = "poll"
    capabilities: ClassVar[dict[str, Any]] = {
        "bidirectional": False,
        "heartbeat": "empty response at timeout",
        "resume": "after+epoch query",
        "framing": "JSON batch per response",
    }

    def routes(self) -> list[BaseRoute]:
        return [Route("/poll", self._app, methods=["GET"])]

    def direct_paths(self) -> dict[str, ASGIApp]:
        # The same app as on the route: GET/HEAD /poll skip ExceptionMiddleware and the router.
        return {"/poll": self._app}

    @functools.cached_property
    def _app(self) -> _PollApp:
        return _PollApp(self.endpoint)

    def info(self, base_url: str) -> dict[str, Any]:
        return {
            "url": base_url + "/poll",
            "default_timeout": self.ctx.config.poll_default_timeout,
            "max_timeout": self.ctx.config.poll_max_timeout,
        }

    async def endpoint(self, request: Request) -> Response:
        ctx, stats = self.ctx, self.ctx.stats[self.name]
        cfg = ctx.config
        # Parsed once, as a QueryParams whose get does not raise (querymap.py); admission and
        # the auth hook read the same object through request.query_params, which Starlette
        # (1.10) caches in ``_query_params`` (were that renamed, they would parse it again:
        # slower, same answers).
        q = request._query_params = QueryMap(request.scope["query_string"])
        try:
            try:
                timeout = parse_float(
                    q.get("timeout"), "timeout", cfg.poll_default_timeout, 0, cfg.poll_max_timeout
                )
                limit = parse_int(
                    q.get("limit"), "limit", cfg.poll_batch_limit, 1, cfg.poll_batch_limit
                )
            except TransportError as error:
                ctx.reject(self.name, request, error)
                raise
            admitted = await admit_stream(ctx, self.name, request, allowed=("timeout", "limit"))
            after, epoch = admitted.after, admitted.epoch
            try:
                if admitted.multi:
                    return await self._channels(request, admitted, timeout, limit)
                if after is None:
                    after = ctx.feed.last_seq
                    epoch = None
                frames = ctx.feed.read(after, epoch, limit)
            except TransportError as error:
                raise admitted.reject(error) from None
        except TransportError as error:
            return error_response(error)
        stats.opened()
        reason = "served"
        try:
            if not frames and timeout > 0:
                watch = request.scope.get(DISCONNECT)
                if watch is not None:
                    here = await _hold_news(((ctx.feed, after),), watch, timeout)
                else:  # another server than ours (protocols.py): watch receive() in a task
                    here = await self._hold(request, after, timeout)
                if not here:
                    reason = "client_gone"
                    return Response(status_code=204)
                frames = ctx.feed.read(after, epoch, limit)
            if ctx.feed.draining:
                # Tell the client why the next poll will fail, as the streams do.
                frames.append(Control("close", {"reason": "shutting_down"}))
                reason = "shutting_down"
            # The messages' encoded text is reused (memoised on each Message, shared with
            # every other transport), not re-encoded per response; same bytes as json.dumps
            # of {"epoch", "last_seq", "messages"} with compact separators.
            body = (
                f'{{"epoch":{_json_text(ctx.feed.epoch)},"last_seq":{ctx.feed.last_seq},'
                f'"messages":[{",".join(codec.wire(f)[0] for f in frames)}]}}'
            ).encode()
            stats.sent_batch(len(body), frames)
            if not cfg.http_compression:
                return _Batch(body, _PLAIN)
            if len(body) >= cfg.poll_compress_min_bytes and accepts_gzip(request.headers):
                return _Batch(gzip_body(body, cfg.http_compression_level), _GZIPPED)
            return _Batch(body, _VARY)
        finally:
            stats.ended(reason)

    async def _channels(
        self, request: Request, admitted: Admitted, timeout: float, limit: int
    ) -> Response:
        """A multi-channel poll: ``{"cursor": TOKEN, "channels": {...}, "messages": [...]}``;
        the next request sends ``cursor=TOKEN`` back (docs/wire.md)."""
        stats = self.ctx.stats[self.name]
        channels = admitted.channels or []
        frames, cursors = admitted.read(limit)
        stats.opened()
        reason = "served"
        try:
            if not frames and timeout > 0:
                feeds = [
                    (c.feed, cur.seq)
                    for (c, _), cur in zip(channels, cursors, strict=True)
                    if cur is not None
                ]
                watch = request.scope.get(DISCONNECT)
                if watch is not None:  # with no channel named, only the timeout ends it
                    here = await _hold_news(feeds, watch, timeout)
                else:
                    waits: list[Coroutine[Any, Any, bool]] = [
                        feed.wait(seq, timeout) for feed, seq in feeds
                    ] or [asyncio.sleep(timeout, False)]
                    here = await self._hold(request, waits)
                if not here:
                    reason = "client_gone"
                    return Response(status_code=204)
                frames, cursors = admitted.read(limit)
            if self.ctx.feed.draining:
                frames.append(Control("close", {"reason": "shutting_down"}))
                reason = "shutting_down"
            body = json.dumps(
                {
                    "cursor": token_of(cursors),
                    "channels": {
                        c.name: {"epoch": c.feed.epoch, "last_seq": c.feed.last_seq}
                        for c, _ in channels
                    },
                    "messages": [f.to_dict() for f in frames],
                },
                separators=(",", ":"),
                ensure_ascii=False,
            ).encode()
            stats.sent_batch(len(body), frames)
            return Response(
                body, media_type="application/json", headers={"Cache-Control": "no-store"}
            )
        finally:
            stats.ended(reason)

    async def _hold(
        self, request: Request, waits: int | list[Coroutine[Any, Any, bool]], timeout: float = 0
    ) -> bool:
        """Wait for news or timeout; False if the client disconnected meanwhile."""
        if isinstance(waits, int):
            waits = [self.ctx.feed.wait(waits, timeout)]
        news = [asyncio.ensure_future(w) for w in waits]
        gone = asyncio.ensure_future(_disconnected(request))
        try:
            await asyncio.wait({*news, gone}, return_when=asyncio.FIRST_COMPLETED)
            return not gone.done()
        finally:
            for task in (*news, gone):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*news, gone, return_exceptions=True)


async def _hold_news(
    feeds: Sequence[tuple[Feed, int]], watch: DisconnectWatch, timeout: float
) -> bool:
    """Wait for a message after ``after`` on any of the ``(feed, after)`` pairs, the timeout
    or the client's disconnect, on one future; False if the client went away meanwhile.

    A held poll's wait, without tasks: each feed's next publish (or its drain, or the end
    of its ``poll_linger``) sets the future's result to True, a timer sets True at the
    timeout (the empty batch is the heartbeat), and the connection's protocol sets False when
    the connection is lost. One publish suffices: each ``after`` is at most its feed's
    ``last_seq`` here (a cursor ahead is refused), so any new message is newer than it.
    """
    if any(feed.last_seq > after for feed, after in feeds):
        return True
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[bool] = loop.create_future()
    for feed, _ in feeds:
        feed.notify_next(waiter)
    timer = loop.call_later(timeout, _settle, waiter)
    watch.waiter = waiter
    try:
        return await waiter
    finally:
        timer.cancel()
        for feed, _ in feeds:
            feed.forget(waiter)
        if watch.waiter is waiter:
            watch.waiter = None


def _settle(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(True)


# A batch's headers before Content-Length and Content-Type, as Starlette's Response builds
# them from {"Cache-Control": "no-store"[, "Vary": ...][, "Content-Encoding": "gzip"]}.
_PLAIN = ((b"cache-control", b"no-store"),)
_VARY = (*_PLAIN, (b"vary", b"Accept-Encoding"))
_GZIPPED = (*_VARY, (b"content-encoding", b"gzip"))
_JSON = (b"content-type", b"application/json")
_json_text = functools.lru_cache(maxsize=8)(json.dumps)  # the epoch, a str, as JSON


class _Batch(Response):
    """A poll's 200 response: what ``Response(body, media_type="application/json",
    headers=...)`` makes, without rendering the content and encoding the header names and
    values again for every poll (tests/test_poll_hold.py compares the two; Starlette 1.10's
    ``Response`` sends ``status_code``, ``raw_headers`` and ``body``, then ``background``)."""

    def __init__(self, body: bytes, head: tuple[tuple[bytes, bytes], ...]) -> None:
        self.status_code = 200
        self.media_type = "application/json"
        self.background = None
        self.body = body
        self.raw_headers = [*head, (b"content-length", b"%d" % len(body)), _JSON]


class _PollApp:
    """The endpoint as a plain ASGI app, without Starlette's ``request_response`` wrapper.

    That wrapper adds two closures and an exception-handler frame per request, held for
    the whole poll (~2 KB per held poll in tracemalloc) to turn ``HTTPException`` into a
    response — which this endpoint never raises: every refusal is returned as its
    documented error response, and anything else still reaches ``ServerErrorMiddleware``.
    ``methods=["GET"]`` on the route keeps 405 for other methods (HEAD is added by Starlette).
    """

    __slots__ = ("endpoint",)

    def __init__(self, endpoint: Callable[[Request], Awaitable[Response]]) -> None:
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.endpoint(Request(scope, receive, send))
        await response(scope, receive, send)


async def _disconnected(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return
