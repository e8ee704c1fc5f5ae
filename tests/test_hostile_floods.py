"""Floods on the paths ``test_hostile_limits.py`` does not cover: held long polls from one IP
(503 beyond the per-IP bound), a frame flood on a *multi-channel* WebSocket, whose publish
and subscribe frames count against the same per-connection bucket as pings (4429), and a
ping flood on a WebRTC data channel (``close`` frame ``rate_limited``) — while a legitimate
client keeps its feed with no gap and no duplicate."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import UNIT
from tests.test_auth_jwt import KEY, bearer, jwt_config
from tests.test_hostile_limits import FLOOD, FRAMES, drain, legit_seqs
from transports.config import ServerConfig
from transports.jwtauth import mint
from transports.live import LiveServer

MakeServer = Callable[..., LiveServer]


async def test_held_poll_flood_from_one_ip_is_refused_503(make_server: MakeServer) -> None:
    per_ip = 20
    server = make_server(("ws", "poll"), config=ServerConfig(max_connections_per_ip=per_ip))
    legit = await connect(server.ws_url + "/ws?after=0", local_addr=("127.0.0.2", 0))
    assert '"hello"' in str(await legit.recv())
    statuses: dict[int, int] = {}
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) as http:

        async def one() -> None:
            # after=0 on an empty feed: the poll is held for its timeout, keeping its slot.
            response = await http.get("/poll?after=0&timeout=3")
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code != 200:
                assert response.json()["error"] == "too_many_connections"

        flood = asyncio.gather(*(one() for _ in range(FLOOD // 3)))
        await asyncio.sleep(1.0)
        for i in range(5):
            server.publish({"i": i})
        assert await legit_seqs(legit, 5) == [1, 2, 3, 4, 5]
        async with asyncio.timeout(60 * UNIT):
            await flood
    assert statuses[503] >= FLOOD // 3 - per_ip
    assert statuses.get(200, 0) <= per_ip
    await legit.close()


async def test_frame_flood_on_a_channel_connection_is_closed_4429(
    make_server: MakeServer,
) -> None:
    server = make_server(("ws",), config=jwt_config(client_frame_rate=20, client_frame_burst=40))
    writer = mint(KEY, "flood", channels={"chat:*": ["subscribe", "publish"]})
    url = f"{server.ws_url}/ws?channel=chat:a"
    legit = await connect(url, additional_headers=bearer(writer), local_addr=("127.0.0.2", 0))
    assert '"hello"' in str(await legit.recv())
    acks = 0
    async with connect(url, additional_headers=bearer(writer)) as flood:
        assert '"hello"' in str(await flood.recv())
        with contextlib.suppress(ConnectionClosed):
            for i in range(FRAMES):
                frame = {"type": "publish", "channel": "chat:a", "data": i, "id": f"f{i}"}
                await flood.send(json.dumps(frame))
        acks, closed = await drain(flood, '"ack"')
    assert closed.rcvd is not None
    assert (closed.rcvd.code, closed.rcvd.reason) == (4429, "rate_limited")
    assert acks <= 40 + 5  # the burst (+ what refilled meanwhile), then the close
    # The legitimate subscriber saw exactly the accepted publishes, in order, then more.
    seqs = await legit_seqs(legit, acks)
    assert seqs == list(range(1, acks + 1))
    await legit.send('{"type":"publish","channel":"chat:a","data":"after","id":"ok"}')
    async with asyncio.timeout(10 * UNIT):
        while True:
            reply = json.loads(await legit.recv())
            if reply.get("type") == "ack":
                break
    assert reply["seq"] == acks + 1
    await legit.close()


async def test_frame_flood_on_a_data_channel_is_closed_rate_limited(
    make_server: MakeServer,
) -> None:
    """The same bucket on WebRTC: a client sending pings as fast as its data channel takes
    them gets at most the burst of pongs, then a ``close`` frame ``rate_limited``; a
    follower on another peer keeps its feed."""
    from aiortc import RTCPeerConnection, RTCSessionDescription

    from tests.helpers import collect
    from transports.clients import subscriber
    from transports.webrtc import ice

    cfg = ServerConfig(client_frame_rate=20, client_frame_burst=40)
    server = make_server(("webrtc",), config=cfg)
    follower = asyncio.ensure_future(
        collect(await subscriber("webrtc", server.url), 5, timeout=40 * UNIT)
    )
    pc = RTCPeerConnection(ice.configuration())
    frames: list[dict[str, object]] = []
    ended = asyncio.Event()
    try:
        channel = pc.createDataChannel("feed")
        opened = asyncio.Event()
        channel.on("open", opened.set)

        @channel.on("message")
        def _message(message: str) -> None:
            frames.append(json.loads(message))
            if frames[-1].get("type") == "close":
                ended.set()

        with ice.loopback_only():
            await pc.setLocalDescription(await pc.createOffer())
        assert pc.localDescription is not None
        async with httpx.AsyncClient() as http:
            body = {"sdp": pc.localDescription.sdp, "type": "offer"}
            answer = (await http.post(server.url + "/webrtc/offer", json=body)).json()
        await pc.setRemoteDescription(RTCSessionDescription(**answer))
        async with asyncio.timeout(20 * UNIT):
            await opened.wait()
            channel.send('{"type":"subscribe","after":null,"epoch":null}')
            for i in range(min(FRAMES, 2000)):
                if channel.readyState != "open" or ended.is_set():
                    break
                channel.send(json.dumps({"type": "ping", "id": i}))
                if i % 50 == 0:
                    await asyncio.sleep(0)  # let aiortc move the queue
            await ended.wait()
    finally:
        await pc.close()
    pongs = sum(1 for f in frames if f.get("type") == "pong")
    assert frames[-1].get("type") == "close"
    assert frames[-1].get("reason") == "rate_limited"
    assert pongs <= 40 + 5
    for i in range(5):
        server.publish({"i": i})
    got = await follower
    assert got.seqs == [1, 2, 3, 4, 5]
