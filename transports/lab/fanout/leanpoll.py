"""The load generator's long-poll subscriber: one keep-alive HTTP/1.1 connection per client.

Hand-written on ``asyncio.Protocol`` for the reason ``leanclients`` gives: at 1000 clients ×
10 msg/s the generator answers ~10,000 responses a second on one core, and a
``StreamReader`` (a task wake-up per ``readline``, one per header line) or httpx costs more
per poll than the server's own handler, so the generator, not the server, was measured.

Per response it does only what measuring needs:

- the head: status code (RFC 9112 §4) and ``Content-Length`` (§6.2; the server never uses
  chunked coding for a poll, whose body it builds whole — a chunked answer is refused);
- the body: each message's ``"seq":N`` and its ``"due":T`` (the intended send time the
  benchmark's ticker puts in ``data``) found with one regular expression, instead of
  decoding the whole batch into dicts. A JSON string cannot hold an unescaped ``"``, so
  ``"seq":`` only matches a key; ``"last_seq":`` does not match it (``_`` before ``seq``).
  The messages of a batch are in seq order, so the last match is the next ``after``.

The next request (pre-built bytes around the cursor) is written as soon as a response is
complete, as a browser's poll loop does.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import cast

OnSeq = Callable[[int, float], None]

_MESSAGE = re.compile(rb'"seq":(\d+),.*?"due":(-?[0-9.eE+-]+)', re.DOTALL)
_LAST_SEQ = re.compile(rb'"last_seq":(\d+)')


class PollReader(asyncio.Protocol):
    """``GET /poll?timeout=T&after=N`` in a loop; ``on_seq(seq, due)`` for each message."""

    def __init__(self, on_seq: OnSeq, host: str, port: int, timeout: float = 25) -> None:
        loop = asyncio.get_running_loop()
        self.on_seq = on_seq
        self.ready: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self.after: int | None = None
        self.responses = 0
        self._prefix = f"GET /poll?timeout={timeout:g}".encode()
        self._suffix = f" HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
        self._buf = bytearray()
        self._status = b""
        self._need = -1  # body bytes still expected; -1 while reading a head

    def request(self) -> bytes:
        if self.after is None:
            return self._prefix + self._suffix
        return b"%s&after=%d%s" % (self._prefix, self.after, self._suffix)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request())

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        while True:
            if self._need < 0:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(buf[:end]).lower()
                del buf[: end + 4]
                self._status = head[9:12]
                start = head.find(b"\r\ncontent-length:")
                if start < 0:
                    if self._status != b"204" and b"transfer-encoding" in head:
                        self.fail(ConnectionError("chunked poll response"))
                        return
                    self._need = 0
                else:
                    stop = head.find(b"\r\n", start + 17)
                    self._need = int(head[start + 17 : stop if stop > 0 else None])
            if len(buf) < self._need:
                return
            body = bytes(buf[: self._need])
            del buf[: self._need]
            self._need = -1
            if not self._response(body):
                return

    def _response(self, body: bytes) -> bool:
        status = self._status
        if status == b"200":
            on_seq = self.on_seq
            seq = None
            for match in _MESSAGE.finditer(body):
                seq = int(match[1])
                on_seq(seq, float(match[2]))
            if seq is not None:
                self.after = seq
            elif self.after is None and (last := _LAST_SEQ.search(body)) is not None:
                self.after = int(last[1])
        elif status != b"204":
            self.fail(ConnectionError(f"HTTP {status.decode(errors='replace')}"))
            return False
        self.responses += 1
        if not self.ready.done():
            self.ready.set_result(None)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(self.request())
        return True

    def fail(self, exc: Exception) -> None:
        if not self.ready.done():
            self.ready.set_exception(exc)
        self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(exc or ConnectionError("closed before the first response"))
        if not self.closed.done():
            self.closed.set_result(None)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def open_poller(on_seq: OnSeq, host: str, port: int) -> PollReader:
    """Connect one long-poll subscriber and wait for its first response."""
    loop = asyncio.get_running_loop()
    _, reader = await loop.create_connection(lambda: PollReader(on_seq, host, port), host, port)
    await reader.ready
    return reader
