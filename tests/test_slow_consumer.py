"""A reader that stops reading is cut at its queue bound; a fast reader on the same server is
not disturbed (asserted on counts, not timings)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.helpers import collect
from transports.clients import subscriber
from transports.config import ServerConfig
from transports.live import LiveServer

MakeServer = Callable[..., LiveServer]
TOTAL, BATCH, SIZE = 6000, 20, 2048  # ~12 MB: more than loopback socket buffers can hold


async def flood(server: LiveServer) -> None:
    """Publish in small batches with pauses, so a reader that keeps up always can."""

    def batch(start: int) -> None:
        for i in range(start, start + BATCH):
            server.ctx.feed.publish({"i": i, "pad": "x" * SIZE})

    for start in range(0, TOTAL, BATCH):
        await asyncio.to_thread(server.call, batch, start)
        await asyncio.sleep(0.005)


@contextlib.asynccontextmanager
async def stalled_reader(transport: str, server: LiveServer):  # type: ignore[no-untyped-def]
    if transport == "ws":
        # max_queue=1: the client library stops reading the socket once one frame waits.
        async with connect(server.ws_url + "/ws?after=0", max_queue=1) as ws:
            yield
            _ = ws
    else:
        async with (
            httpx.AsyncClient(timeout=30) as http,
            http.stream("GET", server.url + "/sse?after=0") as response,
        ):
            assert response.status_code == 200
            yield  # headers read, body never read: TCP backpressure builds up


@pytest.mark.parametrize("transport", ["ws", "sse"])
async def test_slow_consumer_is_cut_fast_consumer_unaffected(
    transport: str, make_server: MakeServer
) -> None:
    server = make_server(transports=(transport,), config=ServerConfig(queue_size=1000))
    fast = await subscriber(transport, server.url)
    async with stalled_reader(transport, server):
        reader = asyncio.ensure_future(collect(fast, TOTAL, timeout=90))
        await asyncio.sleep(0.3)
        await flood(server)
        got = await reader
        assert server.ctx.feed.stats.slow_consumer_disconnects >= 1, "the stalled reader was cut"
        stats = server.ctx.stats[transport]
        # The server may still be blocked writing to the stalled socket: bounded wait.
        for _ in range(300):
            if stats.closed.get("slow_consumer"):
                break
            await asyncio.sleep(0.05)
        assert stats.closed.get("slow_consumer") == 1, stats.closed
    assert got.seqs == list(range(1, TOTAL + 1)), "the fast reader got everything, in order"
    assert got.stats.disconnects == {}, "and was never disconnected"
