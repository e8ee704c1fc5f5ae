"""Request bodies that never end, and WebSocket handshakes the server cannot parse, over raw
sockets. Each connection is answered and closed within its deadline, with no traceback, while
a healthy SSE follower keeps its feed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import pytest

from tests.conftest import UNIT
from tests.helpers import collect
from transports.clients import subscriber
from transports.config import ServerConfig
from transports.live import LiveServer

MakeServer = Callable[..., LiveServer]
HOLDERS = 30  # connections per shape


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage()[:200] for r in caplog.records if r.exc_info or r.exc_text]


async def until_closed(reader: asyncio.StreamReader, timeout: float) -> tuple[bytes, bool]:
    """What the server sends, and whether it closed within ``timeout``."""
    out = b""
    with contextlib.suppress(TimeoutError, ConnectionError):
        async with asyncio.timeout(timeout):
            while chunk := await reader.read(65536):
                out += chunk
            return out, True
    return out, reader.at_eof()


async def test_a_body_that_never_ends_is_cut_at_the_deadline(
    make_server: MakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    # Anonymous endpoints that read a body (tickets, channel publish) used to wait forever
    # for a Content-Length never sent; a body still trickling in after any answer (here
    # /api/info) cancelled uvicorn's keep-alive timer each time, so it was never closed.
    deadline = 1.0
    server = make_server(("sse",), config=ServerConfig(body_timeout=deadline))
    healthy = asyncio.ensure_future(collect(await subscriber("sse", server.url), 2, timeout=60))
    head = "{} {} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    shapes = {
        "tickets": head.format("POST", "/api/tickets") + "Content-Length: 1000\r\n\r\n{",
        "channel": head.format("POST", "/api/channels/chat:x/messages")
        + "Content-Length: 1000\r\n\r\n{",
        # Chunks keep coming (one byte each), the last chunk never does.
        "chunked": head.format("POST", "/api/tickets") + "Transfer-Encoding: chunked\r\n\r\n",
        "after the answer": head.format("GET", "/api/info") + "Content-Length: 100000000\r\n\r\n",
    }
    conns = []
    for name, raw in shapes.items():
        for _ in range(HOLDERS):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(raw.encode())
            conns.append((name, reader, writer))
    started = time.monotonic()

    async def trickle(
        name: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        piece = b"1\r\n \r\n" if name == "chunked" else b" "
        with contextlib.suppress(ConnectionError):
            while not reader.at_eof():
                await asyncio.sleep(0.3)
                writer.write(piece)
                await writer.drain()

    tricklers = [asyncio.ensure_future(trickle(n, r, w)) for n, r, w in conns]
    results = await asyncio.gather(*(until_closed(r, (deadline + 8) * UNIT) for _, r, _ in conns))
    took = time.monotonic() - started
    for task in tricklers:
        task.cancel()
    for _, _, writer in conns:
        writer.close()
    for (name, _, _), (reply, closed) in zip(conns, results, strict=True):
        assert closed, (name, reply[:80])
        if name == "after the answer":
            assert reply.startswith(b"HTTP/1.1 200 "), reply[:80]
        else:
            assert reply.startswith(b"HTTP/1.1 408 "), (name, reply[:80])
            assert b'"body_timeout"' in reply
    assert took < deadline + 8 * UNIT
    assert not tracebacks(caplog)
    # A body sent in pieces but within the deadline is still read.
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        (
            head.format("POST", "/api/tickets") + "Content-Length: 2\r\nConnection: close\r\n\r\n{"
        ).encode()
    )
    await asyncio.sleep(deadline / 2)
    writer.write(b"}")
    reply, _ = await until_closed(reader, 10 * UNIT)
    writer.close()
    assert reply.startswith(b"HTTP/1.1 401 "), reply[:80]  # anonymous: no ticket, but read
    server.publish("a")
    server.publish("b")
    assert (await healthy).seqs == [1, 2]


UPGRADE = (
    "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: {version}\r\n{extra}\r\n"
)


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        # Under our 16 KiB head bound but over websockets' 8192-byte line: held, unanswered.
        (UPGRADE.format(path="/ws", version=13, extra="X-Long: " + "x" * 9000 + "\r\n"), 431),
        (UPGRADE.format(path="/ws?x=" + "a" * 9000, version=13, extra=""), 431),
        # Other heads websockets cannot parse: held the same way.
        (UPGRADE.format(path="/ws", version=13, extra="Transfer-Encoding: chunked\r\n"), 400),
        (UPGRADE.format(path="/ws", version=13, extra="").replace("GET", "POST", 1), 400),
        # Refused by websockets (400): answered, but with a traceback per attempt.
        (UPGRADE.format(path="/ws", version=8, extra=""), 400),
    ],
    ids=["long-header", "long-path", "chunked", "post", "bad-version"],
)
async def test_unusable_websocket_handshakes_are_answered_and_closed(
    make_server: MakeServer, caplog: pytest.LogCaptureFixture, raw: str, status: int
) -> None:
    caplog.set_level(logging.INFO)
    server = make_server(("ws", "sse"))
    healthy = asyncio.ensure_future(collect(await subscriber("sse", server.url), 2, timeout=60))
    conns = []
    for _ in range(HOLDERS):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(raw.encode())
        conns.append((reader, writer))
    results = await asyncio.gather(*(until_closed(r, 5 * UNIT) for r, _ in conns))
    for _, writer in conns:
        writer.close()
    for reply, closed in results:
        assert closed, reply[:80]
        assert reply.startswith(b"HTTP/1.1 %d " % status), reply[:80]
    assert not tracebacks(caplog)
    server.publish("a")
    server.publish("b")
    assert (await healthy).seqs == [1, 2]
