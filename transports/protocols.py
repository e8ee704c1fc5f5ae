"""uvicorn's connection protocols with the bounds uvicorn itself does not set.

Hand-written because no setting of uvicorn (0.54) covers these, and the ASGI scope gives the
application no access to the socket. Each bound is per connection and applies to every HTTP
transport alike (WebSocket, SSE, long polling, signalling, the ``/mqtt`` bridge):

- **Request head size and count** (``max_header_bytes``, ``max_headers``). uvicorn's default
  httptools parser buffers a header of any size (a never-ending value reached 64 MiB) and any
  number of them. Bytes received while the head is incomplete are counted; past the bound, or
  past ``max_headers`` fields, the answer is ``431 Request Header Fields Too Large``
  (RFC 6585 §5) and the connection is closed.
- **Head deadline** (``header_timeout``) against slowloris: a request head must be complete
  that many seconds after the connection opened (or after the next request's first byte);
  otherwise ``408 Request Timeout`` (RFC 9110 §15.5.9) and close. uvicorn's
  ``timeout_keep_alive`` only covers the idle time between requests.
- **Body deadline** (``body_timeout``): a request body must be complete that many seconds
  after its head. uvicorn sets none: an endpoint reading the body (``/webrtc/offer``,
  ``/api/tickets``, a channel publish — all open to anonymous clients) waited forever for a
  ``Content-Length`` that never came, and a body still trickling in after the answer kept
  cancelling the keep-alive timer, so any endpoint's connection was held for good. Late:
  ``408 body_timeout`` and close if no answer was started, else just the close.
- **Pipelined requests** (:attr:`BoundedHTTP.max_pipelined`, 16): uvicorn parses every request
  of a read and queues each behind the one being answered, with its scope, cycle and event —
  ~2 KB for a 40-byte request: one connection writing 6000 behind a held poll cost +13 MB.
  Beyond the bound the rest of the input is not read; the queued requests are answered in
  order, the last with ``connection: close`` (RFC 9112 §9.3.2: a client retries the others).
- **Frozen readers** (``send_timeout``): asyncio calls ``pause_writing`` when a connection's
  write buffer passes its high-water mark; a peer that lets it stay paused for
  ``send_timeout`` seconds takes no data, and the connection is aborted (one log line).
  Kernel send buffers grow to megabytes by autotuning (``tcp_wmem``), so the accepted socket
  gets a fixed ``SO_SNDBUF`` (``send_buffer_bytes``; setting it turns autotuning off, see
  ``tcp(7)``) and the pause comes after kilobytes, not minutes of a slow feed.

Memory: uvicorn's ``FlowControl`` makes an ``asyncio.Event`` per connection for "writable
again", whose empty waiter deque alone is ~0.6 KB; :class:`_LazyFlow` makes it only when
writing first pauses, which an idle connection or a held poll never does (tracemalloc, 500
held polls: ~0.75 KB less per connection). Its queue of pipelined requests is likewise a
``deque`` whose first block (~0.7 KB) exists from the first byte; :class:`_Pipeline` is a list
(empty: 56 bytes) — pipelining is rare and the queue stays a few entries long.

Held long polls: each request's scope carries the connection's :class:`DisconnectWatch`
(key :data:`DISCONNECT`), which :meth:`BoundedHTTP.connection_lost` fires. A held poll waits on
one future (news, its timeout, or this) instead of a task reading ``receive()`` for
``http.disconnect`` beside a task waiting for news (two tasks, ``asyncio.wait`` and a
``gather`` per held poll: ~15 % of the server's CPU at 1000 polling clients, py-spy).

:func:`protocol_classes` builds the two classes for one :class:`ServerConfig`; ``live.py``
passes them to ``uvicorn.Config(http=..., ws=...)``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from typing import Any

# httptools comes with uvicorn[standard] (a dependency): uvicorn's faster parser.
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _HTTP
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import SecurityError
from websockets.protocol import State

from transports.config import ServerConfig
from transports.errors import TransportError
from transports.limits import TokenBucket
from transports.wsframes import DirectFrames

log = logging.getLogger("transports.server")


LINGER = 1.0  # seconds a refused connection is kept half-closed (see _write_error)


def _peer(transport: Any) -> str:
    addr = transport.get_extra_info("peername") if transport is not None else None
    return f"{addr[0]}:{addr[1]}" if isinstance(addr, tuple) else "?"


_REASONS = {
    400: "Bad Request",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
}


def _error_bytes(status: int, kind: str, detail: str) -> bytes:
    """A whole ``connection: close`` answer with the documented JSON error body."""
    body = json.dumps(TransportError(kind, detail).body()).encode()
    head = (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode()
    return head + body


class _LazyFlow(FlowControl):
    """uvicorn's flow control with the "writable" event made at the first write pause.

    Same behaviour: :meth:`drain` returns at once unless writing is paused, and then waits
    for :meth:`resume_writing`.
    """

    def __init__(self, transport: asyncio.Transport) -> None:  # no super(): no Event yet
        self._transport = transport
        self.read_paused = False
        self.write_paused = False
        self._writable: asyncio.Event | None = None

    async def drain(self) -> None:
        if self.write_paused and self._writable is not None:
            await self._writable.wait()

    def pause_writing(self) -> None:
        if not self.write_paused:
            self.write_paused = True
            if self._writable is None:
                self._writable = asyncio.Event()
            else:
                self._writable.clear()

    def resume_writing(self) -> None:
        if self.write_paused:
            self.write_paused = False
            if self._writable is not None:
                self._writable.set()


class _Pipeline(list[Any]):
    """uvicorn's pipelined-request queue: it calls only ``appendleft``, ``pop`` and ``bool``."""

    __slots__ = ()

    def appendleft(self, item: Any) -> None:
        self.insert(0, item)


DISCONNECT = "transports.disconnect"  # scope key of the connection's DisconnectWatch


class DisconnectWatch:
    """Per connection: the future of the request now waiting for the client to go, if any.

    uvicorn (0.54) reports a lost connection to the application only through ``receive()``
    (``http.disconnect`` once ``connection_lost`` set the cycle's event), which needs a task
    blocked in it for the whole wait. This is the same signal as a callback: the protocol
    sets ``waiter``'s result to False when the connection is lost. A top-level scope key
    rather than ``scope["extensions"]``, which uvicorn does not create for HTTP (a dict per
    request just to hold it).
    """

    __slots__ = ("waiter",)

    def __init__(self) -> None:
        self.waiter: asyncio.Future[bool] | None = None

    def fire(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(False)


class _WriteDeadline:
    """Mixin: abort a connection whose writes stay paused for ``send_timeout`` seconds."""

    send_timeout: float = 10.0
    transport: Any
    _frozen_timer: asyncio.TimerHandle | None = None

    def pause_writing(self) -> None:
        super().pause_writing()  # type: ignore[misc]
        if self._frozen_timer is None and self.send_timeout > 0:
            loop = asyncio.get_running_loop()
            self._frozen_timer = loop.call_later(self.send_timeout, self._frozen)

    def resume_writing(self) -> None:
        self._disarm_frozen()
        super().resume_writing()  # type: ignore[misc]

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_frozen()
        super().connection_lost(exc)  # type: ignore[misc]

    def _disarm_frozen(self) -> None:
        if self._frozen_timer is not None:
            self._frozen_timer.cancel()
            self._frozen_timer = None

    def _frozen(self) -> None:
        self._frozen_timer = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        log.warning(
            "%s took no data for %.0f s (%d bytes waiting): closed as a frozen reader",
            _peer(transport),
            self.send_timeout,
            transport.get_write_buffer_size(),
        )
        transport.abort()


class BoundedHTTP(_WriteDeadline, _HTTP):
    """uvicorn's HTTP protocol with head bounds, a head deadline and a fixed SO_SNDBUF."""

    max_header_bytes = 16 * 1024
    max_headers = 100
    header_timeout = 10.0
    body_timeout = 10.0
    max_pipelined = 16
    send_buffer_bytes = 32 * 1024
    # Slots, not instance-dict entries: uvicorn's protocol already sets ~30 attributes, and
    # six more made CPython turn each connection's shared-key __dict__ into a combined one
    # (tracemalloc: ~1.5 KB more per idle connection).
    __slots__ = (
        "_body_timer",
        "_discarding",
        "_disconnect",
        "_head_bytes",
        "_head_timer",
        "_header_count",
        "_in_body",
        "_in_head",
        "_refusal",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pipeline = _Pipeline()  # type: ignore[assignment]
        self._in_head = True
        self._head_bytes = 0
        self._header_count = 0
        self._refusal: tuple[int, str] | None = None
        self._discarding = False
        self._head_timer: asyncio.TimerHandle | None = None
        self._in_body = False
        self._body_timer: asyncio.TimerHandle | None = None
        self._disconnect = DisconnectWatch()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and self.send_buffer_bytes > 0:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.send_buffer_bytes)
        super().connection_made(transport)
        self.flow = _LazyFlow(transport)
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_deadline()
        self._disarm_body_deadline()
        super().connection_lost(exc)
        self._disconnect.fire()

    # ---- the head deadline -------------------------------------------------------------
    def _arm_head_deadline(self) -> None:
        self._disarm_head_deadline()
        if self.header_timeout > 0:
            loop = asyncio.get_running_loop()
            self._head_timer = loop.call_later(self.header_timeout, self._head_too_slow)

    def _disarm_head_deadline(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            self._refuse(408, f"request head not complete after {self.header_timeout:g} s")

    # ---- the body deadline -------------------------------------------------------------
    def _disarm_body_deadline(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_too_slow(self) -> None:
        self._body_timer = None
        transport = self.transport
        if not self._in_body or transport.is_closing() or transport.get_protocol() is not self:
            return
        detail = f"request body not complete after {self.body_timeout:g} s"
        cycle = self.cycle
        if cycle is not None and not cycle.response_started:
            # The app (if it reads the body) gets http.disconnect now, and its answer,
            # if any, is dropped: the 408 below is the answer.
            cycle.disconnected = True
            cycle.message_event.set()
            self._refuse(408, detail, "body_timeout")
            return
        log.warning("http %s closed: %s", _peer(transport), detail)
        transport.close()

    # ---- parser callbacks (httptools) --------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()  # uvicorn makes the request's scope here
        self.scope[DISCONNECT] = self._disconnect  # type: ignore[literal-required]
        if not self._in_head:  # the next request on a kept-alive connection
            self._in_head = True
            self._head_bytes = self._header_count = 0
            # Its deadline is armed by data_received, and only if this chunk does not hold
            # the whole head (the common case): no timer made and cancelled per request.

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.max_headers:
            self._refusal = (431, f"more than {self.max_headers} header fields")
            # Stops the parser; uvicorn answers through send_400_response below.
            raise ValueError(self._refusal[1])
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if len(self.pipeline) >= self.max_pipelined:
            # Stops the parser; send_400_response below ends the connection in order.
            self._refusal = (0, f"more than {self.max_pipelined} pipelined requests")
            raise ValueError(self._refusal[1])
        self._in_head = False
        self._disarm_head_deadline()
        # Until on_message_complete; its deadline is armed by data_received, and only if
        # this chunk does not hold the whole body (the common case, e.g. every GET).
        self._in_body = True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_body = False
        self._disarm_body_deadline()
        super().on_message_complete()

    def data_received(self, data: bytes) -> None:
        if self._discarding:  # refused: input is read and dropped until the close
            return
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_timer is None and not self.transport.is_closing():
            # A kept-alive connection's next head began in this chunk and is not complete:
            # its deadline runs from now, the arrival of its first byte.
            self._arm_head_deadline()
        elif self._in_body and self._body_timer is None and self.body_timeout > 0:
            transport = self.transport
            if not transport.is_closing() and transport.get_protocol() is self:
                loop = asyncio.get_running_loop()
                self._body_timer = loop.call_later(self.body_timeout, self._body_too_slow)
        # Checked after parsing: a chunk that completes the head (and carries a body) is
        # not counted against the head bound.
        if self._in_head and self._head_bytes > self.max_header_bytes and self._refusal is None:
            self._refuse(431, f"request head larger than {self.max_header_bytes} bytes")

    def send_400_response(self, msg: str) -> None:
        if self._refusal is not None and self._refusal[0] == 0:  # the pipeline is full
            detail = self._refusal[1]
            log.warning("http %s: %s; closing after their answers", _peer(self.transport), detail)
            self._discarding = True
            self._in_head = False
            self._disarm_head_deadline()
            self.pipeline[0][0].keep_alive = False  # the newest queued request
            return
        if self._refusal is not None:
            status, detail = self._refusal
            self._write_error(status, detail)
            return
        super().send_400_response(msg)

    def _refuse(self, status: int, detail: str, kind: str = "") -> None:
        self._refusal = (status, detail)
        log.warning("http %s refused %d: %s", _peer(self.transport), status, detail)
        self._write_error(status, detail, kind)

    def _write_error(self, status: int, detail: str, kind: str = "") -> None:
        kind = kind or ("head_timeout" if status == 408 else "head_too_large")
        data = _error_bytes(status, kind, detail)
        transport = self.transport
        if transport.is_closing():
            return
        transport.write(data)
        # Lingering close (as nginx's lingering_close): closing at once with unread input
        # makes the kernel send RST (RFC 9293 §3.6), which can destroy the answer before the
        # client reads it. Half-close, discard what still arrives, close after LINGER s.
        self._discarding = True
        if transport.can_write_eof():
            transport.write_eof()
        asyncio.get_running_loop().call_later(LINGER, transport.close)


class BoundedWebSocket(_WriteDeadline, DirectFrames, WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol with the frozen-reader deadline (after the upgrade the
    connection belongs to this protocol, so the HTTP one's timer no longer sees it) and the
    fan-out's direct frame writes (``transports/wsframes.py``).

    Frames the application never sees are bounded here: RFC 6455 pings (uvicorn answers each
    with a pong) share the application's meter (``client_frame_rate`` / ``client_frame_burst``,
    a bucket made at the first ping), beyond which the connection is closed 4429
    ``rate_limited``; a message may come in at most :attr:`max_fragments` frames, else 1009
    ``too_large`` — empty continuation frames add nothing to the message's size, so
    ``ws_max_size`` never stopped them, and uvicorn kept a list entry per frame (3 million
    in 8 s: +27 MB, never given back).
    """

    frame_rate: float = 20.0
    frame_burst: int = 40
    max_fragments = 128
    _ping_bucket: TokenBucket | None = None
    _ping_flood = False

    def _fail(self, code: int, reason: str) -> None:
        if self.close_sent or self.conn.state is not State.OPEN:
            return
        log.warning("ws %s closed %d %s", _peer(self.transport), code, reason)
        self.conn.fail(code, reason)
        self.handle_parser_exception()  # tells the app, writes the close frame, closes

    def handle_cont(self, event: Any) -> None:
        if len(self.frames) >= self.max_fragments:
            self._fail(1009, f"message in more than {self.max_fragments} frames")
        elif not self.close_sent:
            super().handle_cont(event)

    def handle_ping(self) -> None:
        # websockets queued the pongs of every ping in this read already; they are written
        # (or, for a flood, dropped) once the read is handled, in data_received.
        bucket = self._ping_bucket
        if bucket is None:
            bucket = self._ping_bucket = TokenBucket(self.frame_rate, self.frame_burst)
        if not bucket.take():
            self._ping_flood = True

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._ping_bucket is not None and not self.close_sent:
            pongs = self.conn.data_to_send()
            if self._ping_flood:
                self._fail(4429, "rate_limited")
            elif pongs:
                self.transport.write(b"".join(pongs))
        # uvicorn hands websockets the head it rebuilt; one websockets cannot parse (a line
        # over its 8192 bytes, which our 16 KiB head bound allows) makes it stop reading and
        # queue an EOF that uvicorn 0.54 never writes: the connection was held, unanswered
        # and uncounted, until the client left.
        exc = self.conn.handshake_exc
        if exc is not None and not self.handshake_initiated and not self.transport.is_closing():
            self.handshake_initiated = True
            cause = exc.__cause__ or exc
            too_large = isinstance(cause, SecurityError)  # a line too long, too many headers
            status, kind = (431, "head_too_large") if too_large else (400, "bad_param")
            detail = f"WebSocket handshake refused: {str(cause)[:100]}"
            log.warning("ws %s refused %d: %s", _peer(self.transport), status, detail)
            self.transport.write(_error_bytes(status, kind, detail))
            self.transport.close()

    def start_keepalive(self) -> None:
        # uvicorn 0.54 calls this once, right after it wrote the 101 response (``send`` on
        # ``websocket.accept``), and reads ``request`` and ``response`` (the handshake's
        # parsed request and its answer, websockets' objects) only before that. Kept, they
        # stay for the connection's whole life: ~20 GC-tracked objects (a list per header
        # name) per open WebSocket, walked by every collection. The ASGI scope keeps what
        # the app reads of the request. Checked by tests/test_ws_handshake_memory.py.
        super().start_keepalive()
        self.request = None  # type: ignore[assignment]
        self.response = None  # type: ignore[assignment]


def protocol_classes(cfg: ServerConfig) -> dict[str, Any]:
    """``uvicorn.Config`` keyword arguments with the classes bound to ``cfg``'s limits."""
    attrs = {"send_timeout": cfg.send_timeout}
    http = type(
        "BoundedHTTP",
        (BoundedHTTP,),
        {
            **attrs,
            "max_header_bytes": cfg.max_header_bytes,
            "max_headers": cfg.max_headers,
            "header_timeout": cfg.header_timeout,
            "body_timeout": cfg.body_timeout,
            "send_buffer_bytes": cfg.send_buffer_bytes,
        },
    )
    ws = type(
        "BoundedWebSocket",
        (BoundedWebSocket,),
        {**attrs, "frame_rate": cfg.client_frame_rate, "frame_burst": cfg.client_frame_burst},
    )
    return {"http": http, "ws": ws}
