"""Lean subscribers for the load generator: WebSocket, Engine.IO and SSE readers.

Written by hand on ``asyncio.Protocol`` because the generator must cost far less per message
than the servers it measures: the ``websockets`` client and httpx wake a task and walk a
parser object per frame, which on one core caps the generator below the deliveries per
second a raw broadcast server reaches. These readers do only what measuring needs:

- WebSocket (RFC 6455): the opening handshake (§4.1), unmasked server frames with 7/16/64-bit
  lengths (§5.2), fragments (§5.4), pong for ping (§5.5.2, masked as every client frame
  must be, §5.3), and a close echo (§5.5.1). No extensions are offered, so none apply.
- Engine.IO v4 over that WebSocket (python-socketio): ``0`` open → send ``40`` (connect to
  the default namespace), ``2`` ping → ``3`` pong, ``42["tick",{...}]`` events.
- SSE over HTTP/1.1 with chunked transfer coding (RFC 9112 §7.1): ``data:`` lines of events.

Every reader hands each decoded frame (a JSON object) to ``on_message``. Long polling has
its own reader, ``leanpoll``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import Callable
from typing import Any, cast

OnMessage = Callable[[dict[str, Any]], None]


def _request(host: str, port: int, path: str, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}\r\n".encode()


class _Reader(asyncio.Protocol):
    """Common part: HTTP response head, then a body parser of the subclass."""

    def __init__(self, on_message: OnMessage) -> None:
        self.on_message = on_message
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._buf = bytearray()
        self._head_done = False
        self.expect_status = b"200"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request())

    def request(self) -> bytes:
        raise NotImplementedError

    def body(self, head: bytes) -> None:
        """The response head arrived (status checked); the body follows in ``_buf``."""

    def parse(self) -> None:
        raise NotImplementedError

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if not self._head_done:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self._buf[:end])
            del self._buf[: end + 4]
            status = head.split(b" ", 2)[1] if b" " in head else b""
            if status != self.expect_status:
                self.fail(ConnectionError(f"HTTP {status.decode(errors='replace')}"))
                return
            self._head_done = True
            self.body(head)
            if not self.ready.done():
                self.ready.set_result(None)
        self.parse()

    def fail(self, exc: Exception) -> None:
        if not self.ready.done():
            self.ready.set_exception(exc)
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(exc or ConnectionError("closed during handshake"))
        if not self.closed.done():
            self.closed.set_result(None)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def mask_frame(opcode: int, payload: bytes) -> bytes:
    """A client frame: FIN, opcode, masked payload (RFC 6455 §5.3), short payloads only."""
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return bytes((0x80 | opcode, 0x80 | len(payload))) + key + masked


class WebSocketReader(_Reader):
    def __init__(self, on_message: OnMessage, host: str, port: int, path: str) -> None:
        super().__init__(on_message)
        self.host, self.port, self.path = host, port, path
        self.expect_status = b"101"
        self._fragments = bytearray()

    def request(self) -> bytes:
        key = base64.b64encode(os.urandom(16)).decode()
        return _request(
            self.host, self.port, self.path,
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n",
        )  # fmt: skip

    def on_text(self, payload: bytes) -> None:
        self.on_message(json.loads(payload))

    def send_text(self, text: str) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(mask_frame(0x1, text.encode()))

    def parse(self) -> None:
        buf, pos, n = self._buf, 0, len(self._buf)
        while n - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            length, head = b1 & 0x7F, 2
            if length == 126:
                if n - pos < 4:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if n - pos < 10:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            if n - pos < head + length:
                break
            payload = bytes(buf[pos + head : pos + head + length])
            pos += head + length
            self._frame(b0 & 0x80, b0 & 0x0F, payload)
        del buf[:pos]

    def _frame(self, fin: int, opcode: int, payload: bytes) -> None:
        if opcode in (0x0, 0x1, 0x2):
            if not fin or self._fragments:
                self._fragments += payload
                if not fin:
                    return
                payload, self._fragments = bytes(self._fragments), bytearray()
            self.on_text(payload)
        elif opcode == 0x9 and self.transport is not None:  # ping -> pong, same payload
            self.transport.write(mask_frame(0xA, payload[:125]))
        elif opcode == 0x8 and self.transport is not None:  # close: echo, then hang up
            self.transport.write(mask_frame(0x8, payload[:2]))
            self.transport.close()


class EngineIOReader(WebSocketReader):
    """python-socketio over its websocket transport (Engine.IO v4, Socket.IO v5 packets)."""

    def on_text(self, payload: bytes) -> None:
        kind = payload[:1]
        if payload.startswith(b"42"):
            event = json.loads(payload[2:])
            if event[0] == "tick":
                self.on_message(event[1])
        elif kind == b"2":
            self.send_text("3")
        elif kind == b"0":
            self.send_text("40")


class SSEReader(_Reader):
    def __init__(self, on_message: OnMessage, host: str, port: int, path: str) -> None:
        super().__init__(on_message)
        self.host, self.port, self.path = host, port, path
        self._chunked = False
        self._events = bytearray()

    def request(self) -> bytes:
        return _request(self.host, self.port, self.path, "Accept: text/event-stream\r\n")

    def body(self, head: bytes) -> None:
        self._chunked = b"transfer-encoding: chunked" in head.lower()

    def parse(self) -> None:
        if not self._chunked:
            self._events += self._buf
            self._buf.clear()
        else:
            buf, pos = self._buf, 0
            while True:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    break
                size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
                if len(buf) < eol + 2 + size + 2:
                    break
                self._events += buf[eol + 2 : eol + 2 + size]
                pos = eol + 2 + size + 2
                if size == 0:
                    self.close()
                    break
            del buf[:pos]
        self._split()

    def _split(self) -> None:
        events, pos = self._events, 0
        while True:
            end = events.find(b"\n\n", pos)
            if end < 0:
                break
            data = [
                line[5:].lstrip(b" ")
                for line in bytes(events[pos:end]).split(b"\n")
                if line.startswith(b"data:")
            ]
            pos = end + 2
            if data:
                self.on_message(json.loads(b"\n".join(data)))
        del events[:pos]


async def open_reader(kind: str, on_message: OnMessage, host: str, port: int) -> _Reader:
    """Connect one subscriber of ``kind`` (``ws``, ``sse``, ``socketio``) and wait for its head."""
    loop = asyncio.get_running_loop()
    factories: dict[str, Callable[[], _Reader]] = {
        "ws": lambda: WebSocketReader(on_message, host, port, "/ws"),
        "sse": lambda: SSEReader(on_message, host, port, "/sse"),
        "socketio": lambda: EngineIOReader(
            on_message, host, port, "/socket.io/?EIO=4&transport=websocket"
        ),
    }
    _, reader = await loop.create_connection(factories[kind], host, port)
    await reader.ready
    return reader
