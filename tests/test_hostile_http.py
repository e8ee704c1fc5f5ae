"""Hostile request heads over raw sockets: never-ending, huge and countless headers, and
slowloris (heads sent too slowly). Each is answered 431 / 408 and closed, in bounded time and
memory, while a healthy SSE follower keeps its feed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable

import pytest

from tests.conftest import UNIT
from tests.helpers import collect
from transports.clients import subscriber
from transports.config import ServerConfig
from transports.live import LiveServer

MakeServer = Callable[..., LiveServer]
FULL = os.environ.get("TRANSPORT_LAB_HOSTILE", "") == "full"
SLOWLORIS = 500 if FULL else 100


async def answer(reader: asyncio.StreamReader, timeout: float) -> bytes:
    """Everything the server sends until it closes (bounded by ``timeout``)."""
    out = b""
    with contextlib.suppress(TimeoutError, ConnectionError):
        async with asyncio.timeout(timeout):
            while chunk := await reader.read(65536):
                out += chunk
    return out


async def test_never_ending_header_is_cut_at_the_bound(make_server: MakeServer) -> None:
    server = make_server(("sse",))
    healthy = asyncio.ensure_future(collect(await subscriber("sse", server.url), 2, timeout=30))
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Endless: ")
    sent, started = 0, time.monotonic()
    with contextlib.suppress(ConnectionError):
        # Up to 64 MiB (what the old server buffered), 64 KiB at a time; it stops early.
        while sent < 64 * 1024 * 1024 and time.monotonic() - started < 20 * UNIT:
            writer.write(b"a" * 65536)
            await writer.drain()
            sent += 65536
            if reader.at_eof() or writer.is_closing():
                break
            await asyncio.sleep(0)  # let the reader see the answer
            if reader._buffer:  # type: ignore[attr-defined]
                break
    reply = await answer(reader, 5 * UNIT)
    writer.close()
    assert reply.startswith(b"HTTP/1.1 431 "), reply[:200]
    assert b'"head_too_large"' in reply
    assert sent < 8 * 1024 * 1024  # cut long before the old 64 MiB
    server.publish("a")
    server.publish("b")
    assert (await healthy).seqs == [1, 2]


async def test_a_kept_alive_connections_next_head_has_its_deadline(
    make_server: MakeServer,
) -> None:
    # The next request's deadline is armed only when its head does not arrive whole in one
    # chunk (protocols.py): a head that starts after a complete exchange and then trickles
    # is still answered 408 at the deadline, and a whole one is served well after it.
    deadline = 1.0
    server = make_server(("poll",), config=ServerConfig(header_timeout=deadline))
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    request = b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    for _ in range(2):  # the second whole head comes after the first one's deadline
        writer.write(request)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10 * UNIT)
        assert head.startswith(b"HTTP/1.1 200 ")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        await asyncio.sleep(deadline * 1.5)
    writer.write(b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\nX-a: ")
    started = time.monotonic()
    for _ in range(int(deadline * 10)):
        await asyncio.sleep(0.2)
        writer.write(b"a")
        if reader.at_eof():
            break
    reply = await answer(reader, (deadline + 10) * UNIT)
    took = time.monotonic() - started
    writer.close()
    assert reply.startswith(b"HTTP/1.1 408 "), reply[:60]
    assert deadline - 0.2 < took < deadline + 5 * UNIT


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        (b"X-Big: " + b"b" * (1024 * 1024) + b"\r\n", "1 MiB header"),
        (b"".join(b"X-%d: v\r\n" % i for i in range(10_000)), "10,000 headers"),
        (b"".join(b"a%d:b\r\n" % i for i in range(150)), "150 tiny headers (count bound)"),
    ],
    ids=["1MiB", "10000", "count"],
)
async def test_oversized_heads_are_431(make_server: MakeServer, headers: bytes, why: str) -> None:
    server = make_server(("poll",))
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    with contextlib.suppress(ConnectionError):
        writer.write(b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers + b"\r\n")
        await writer.drain()
    reply = await answer(reader, 10 * UNIT)
    writer.close()
    assert reply.startswith(b"HTTP/1.1 431 "), (why, reply[:200])
    # Normal heads are still served, with a realistic number of headers.
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 50) for i in range(40))
        + b"\r\n"
    )
    assert (await answer(reader, 10 * UNIT)).startswith(b"HTTP/1.1 200 ")
    writer.close()


async def test_slowloris_heads_are_dropped_at_the_deadline(make_server: MakeServer) -> None:
    deadline = 2.0
    server = make_server(("sse",), config=ServerConfig(header_timeout=deadline))
    healthy = asyncio.ensure_future(collect(await subscriber("sse", server.url), 2, timeout=60))
    conns = []
    for i in range(SLOWLORIS):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        # Half a head; half of them keep trickling a byte now and then, as slowloris does.
        writer.write(b"GET /sse HTTP/1.1\r\nHost: 127.0.0.1\r\nX-a: ")
        conns.append((reader, writer, i % 2 == 0))
    started = time.monotonic()

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while not reader.at_eof():
                writer.write(b"a")
                await writer.drain()
                await asyncio.sleep(0.5)

    tricklers = [asyncio.ensure_future(trickle(r, w)) for r, w, slow in conns if slow]
    replies = await asyncio.gather(*(answer(r, (deadline + 10) * UNIT) for r, _, _ in conns))
    took = time.monotonic() - started
    for task in tricklers:
        task.cancel()
    for _, writer, _ in conns:
        writer.close()
    assert all(r.startswith(b"HTTP/1.1 408 ") for r in replies), {r[:40] for r in replies}
    assert took < deadline + 5 * UNIT
    server.publish("a")
    server.publish("b")
    assert (await healthy).seqs == [1, 2]
