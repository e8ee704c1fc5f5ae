"""Thousands of requests pipelined behind a held long poll, over a raw socket: the server
queues at most ``max_pipelined`` of them, answers those in order and closes, while a follower
gets its feed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from tests.conftest import UNIT
from tests.helpers import collect
from transports.clients import subscriber
from transports.live import LiveServer

MakeServer = Callable[..., LiveServer]


async def responses(reader: asyncio.StreamReader, timeout: float) -> list[tuple[bytes, bytes]]:
    """(head, body) of each response until the server closes (or ``timeout``)."""
    out: list[tuple[bytes, bytes]] = []
    with contextlib.suppress(TimeoutError, asyncio.IncompleteReadError, ConnectionError):
        async with asyncio.timeout(timeout):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                out.append((head, await reader.readexactly(length)))
    return out


async def test_requests_pipelined_behind_a_held_poll_are_bounded(make_server: MakeServer) -> None:
    # Each queued request cost ~2 KB (its scope, cycle and event) for ~40 bytes sent: one
    # connection writing 6000 of them behind a held poll made the server +13 MB.
    server = make_server(("poll", "sse"))
    healthy = asyncio.ensure_future(collect(await subscriber("sse", server.url), 2, timeout=60))
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    poll = b"GET /poll?timeout=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    writer.write(poll + b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 2000)
    got = await responses(reader, 15 * UNIT)
    closed = reader.at_eof()
    writer.close()
    bound = 16  # BoundedHTTP.max_pipelined
    assert len(got) == 1 + bound, len(got)
    assert all(head.startswith(b"HTTP/1.1 200 ") for head, _ in got)
    assert b'"messages"' in got[0][1]  # the poll first, then the queued ones in order
    assert all(b'"ok"' in body for _, body in got[1:])
    assert b"connection: close" in got[-1][0].lower()
    assert closed
    # A few pipelined requests are all answered, on a connection that stays open.
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(poll + b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 5)
    got = await responses(reader, 3 * UNIT)
    assert len(got) == 6
    assert not reader.at_eof()
    writer.close()
    server.publish("a")
    server.publish("b")
    assert (await healthy).seqs == [1, 2]
