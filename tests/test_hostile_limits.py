"""Connection floods and frame floods: refused with the documented errors while a legitimate
client (another source address, 127.0.0.2) keeps its feed with no gap and no duplicate."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Callable

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import UNIT
from transports.config import ServerConfig
from transports.limits import TokenBucket
from transports.live import LiveServer

MakeServer = Callable[..., LiveServer]
FULL = os.environ.get("TRANSPORT_LAB_HOSTILE", "") == "full"
FLOOD = 3000 if FULL else 300
FRAMES = 10_000 if FULL else 2000


async def drain(ws: ClientConnection, count: str = "") -> tuple[int, ConnectionClosed]:
    """Read until the connection closes; how many frames contained ``count``, and the close."""
    seen = 0
    async with asyncio.timeout(20 * UNIT):
        while True:
            try:
                frame = await ws.recv()
            except ConnectionClosed as exc:
                return seen, exc
            if count and count in str(frame):
                seen += 1


async def legit_seqs(ws: ClientConnection, n: int) -> list[int]:
    """The seqs of the next ``n`` messages on a raw WebSocket (after its hello)."""
    seqs: list[int] = []
    async with asyncio.timeout(30 * UNIT):
        while len(seqs) < n:
            frame = json.loads(await ws.recv())
            if "seq" in frame:
                seqs.append(frame["seq"])
    return seqs


async def test_connection_flood_from_one_ip_is_refused_503(make_server: MakeServer) -> None:
    per_ip = 50
    cfg = ServerConfig(max_connections_per_ip=per_ip)
    server = make_server(("ws", "sse"), config=cfg)
    legit = await connect(server.ws_url + "/ws?after=0", local_addr=("127.0.0.2", 0))
    assert '"hello"' in str(await legit.recv())
    statuses: dict[int, int] = {}
    held: list[httpx.Response] = []
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) as http:

        async def one() -> None:
            request = http.build_request("GET", "/sse?after=0")
            response = await http.send(request, stream=True)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code == 200:
                held.append(response)  # keep the stream open: the slot stays taken
            else:
                assert (await response.aread()).startswith(b'{"error":"too_many_connections"')
                await response.aclose()

        async with asyncio.timeout(60 * UNIT):
            await asyncio.gather(*(one() for _ in range(FLOOD)))
        assert statuses == {200: per_ip, 503: FLOOD - per_ip}
        # WebSocket from the same address: its own per-transport count, 4503 beyond it.
        extra = [await connect(server.ws_url + "/ws") for _ in range(per_ip)]
        async with connect(server.ws_url + "/ws") as refused:
            _, closed = await drain(refused)
        assert closed.rcvd is not None
        assert (closed.rcvd.code, closed.rcvd.reason) == (4503, "too_many_connections")
        for i in range(5):
            server.publish({"i": i})
        assert await legit_seqs(legit, 5) == [1, 2, 3, 4, 5]
        for response in held:
            await response.aclose()
        for ws in extra:
            await ws.close()
    await legit.close()
    # Slots are given back: the flooding address may connect again.
    await asyncio.sleep(0.2)
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=10) as http,
        http.stream("GET", "/sse?after=0") as again,
    ):
        assert again.status_code == 200
    assert server.ctx.stats["sse"].rejected == FLOOD - per_ip


async def test_global_connection_limit(make_server: MakeServer) -> None:
    server = make_server(("ws",), config=ServerConfig(max_connections=3))
    conns = [await connect(server.ws_url + "/ws") for _ in range(3)]
    async with connect(server.ws_url + "/ws", local_addr=("127.0.0.2", 0)) as fourth:
        _, closed = await drain(fourth)
    assert closed.rcvd is not None
    assert closed.rcvd.code == 4503
    for ws in conns:
        await ws.close()


async def test_frame_flood_is_closed_4429(make_server: MakeServer) -> None:
    cfg = ServerConfig(client_frame_rate=20, client_frame_burst=40)
    server = make_server(("ws",), config=cfg)
    legit = await connect(server.ws_url + "/ws?after=0")
    assert '"hello"' in str(await legit.recv())
    sent = 0
    async with connect(server.ws_url + "/ws") as flood:
        assert '"hello"' in str(await flood.recv())
        with contextlib.suppress(ConnectionClosed):
            for i in range(FRAMES):
                await flood.send(json.dumps({"type": "ping", "id": i}))
                sent += 1
        pongs, closed = await drain(flood, '"pong"')
    assert closed.rcvd is not None
    assert (closed.rcvd.code, closed.rcvd.reason) == (4429, "rate_limited")
    assert pongs <= 40 + 5  # the burst (+ what refilled meanwhile), then the close
    # A client pinging at a sane pace is answered every time.
    for i in range(5):
        await legit.send(json.dumps({"type": "ping", "id": i}))
        assert json.loads(await legit.recv()) == {"type": "pong", "id": i}
    server.publish("still here")
    assert await legit_seqs(legit, 1) == [1]
    await legit.close()


def test_token_bucket() -> None:
    bucket = TokenBucket(rate=10, burst=3)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    bucket.stamp -= 0.25  # 2.5 tokens refilled
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    assert all(TokenBucket(rate=0, burst=0).take() for _ in range(100))  # 0 = unlimited
