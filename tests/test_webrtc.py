"""WebRTC data-channel transport against a real server on 127.0.0.1 (aiortc on both ends)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
from collections.abc import Callable

import httpx
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from tests.conftest import UNIT
from tests.helpers import collect, publish
from transports.client import Connected, Disconnected
from transports.clients import subscriber
from transports.config import ServerConfig
from transports.errors import TransportError
from transports.live import LiveServer
from transports.webrtc import ice
from transports.webrtc.client import WebRTCSubscriber
from transports.webrtc.peer import parse_subscribe
from transports.webrtc.server import WebRTCTransport

MakeServer = Callable[..., LiveServer]


def webrtc(server: LiveServer) -> WebRTCTransport:
    transport = server.ctx.transports["webrtc"]
    assert isinstance(transport, WebRTCTransport)
    return transport


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll state owned by the server's thread (its loop's events cannot be awaited here)."""
    async with asyncio.timeout(timeout * UNIT):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def test_delivers_history_then_live_in_order(make_server: MakeServer) -> None:
    server = make_server(transports=("webrtc",))
    await publish(server, 50)
    sub = await subscriber("webrtc", server.url)
    task = asyncio.ensure_future(collect(sub, 100))
    await asyncio.sleep(0.5 * UNIT)
    await publish(server, 50)
    got = await task
    assert got.seqs == list(range(1, 101))
    assert got.stats.duplicates == 0
    assert got.stats.gaps == 0
    assert server.ctx.stats["webrtc"].frames_out >= 101  # hello + 100 messages


async def test_resume_after_server_closes_the_peer(make_server: MakeServer) -> None:
    server = make_server(transports=("webrtc",), config=ServerConfig(rate=200))
    transport = webrtc(server)
    sub = await subscriber("webrtc", server.url)
    task = asyncio.ensure_future(collect(sub, 600, timeout=60 * UNIT))
    for _ in range(3):
        # Wait for a live peer that has delivered something, then cut it from the server side.
        await wait_for(lambda: any(p.channel is not None for p in transport.peers))
        await asyncio.sleep(0.4 * UNIT)
        peers = list(transport.peers)
        assert len(peers) == 1
        cut = peers[0]
        server.call(cut.stop, "cut_by_test")
        await wait_for(lambda cut=cut: cut not in transport.peers)  # type: ignore[misc]
    got = await task
    assert got.seqs == list(range(1, 601)), "every seq exactly once, in order"
    assert got.stats.duplicates == 0
    assert got.stats.missing == 0
    assert got.stats.connects == 4
    assert sum(got.stats.disconnects.values()) == 3
    assert server.ctx.stats["webrtc"].closed.get("cut_by_test") == 3


async def test_bad_offers_get_documented_errors_while_a_client_keeps_receiving(
    make_server: MakeServer,
) -> None:
    server = make_server(transports=("webrtc",), config=ServerConfig(rate=100))
    healthy = asyncio.ensure_future(collect(await subscriber("webrtc", server.url), 150))
    url = server.url + "/webrtc/offer"
    bad: list[tuple[bytes, int, str]] = [
        (b"not json", 400, "bad_sdp"),
        (b"[]", 400, "bad_sdp"),
        (json.dumps({"type": "answer", "sdp": "v=0\r\n"}).encode(), 400, "bad_sdp"),
        (json.dumps({"type": "offer", "sdp": 42}).encode(), 400, "bad_sdp"),
        (json.dumps({"type": "offer", "sdp": "v=0\r\no=- 1 1 IN IP4 0\r\n"}).encode(), 400, ""),
        (json.dumps({"type": "offer", "sdp": "v=0\r\nm=application x\r\n"}).encode(), 400, ""),
        (b"{" + b" " * 70_000 + b"}", 413, "too_large"),
    ]
    async with httpx.AsyncClient() as http:
        for body, status, reason in bad:
            response = await http.post(url, content=body)
            assert response.status_code == status, body[:60]
            assert response.json()["error"] == (reason or "bad_sdp")
            assert response.json()["detail"]
    got = await healthy
    assert got.seqs == list(range(got.seqs[0], got.seqs[0] + 150))
    assert server.ctx.stats["webrtc"].rejected == len(bad)
    # Refused offers leave no peer behind (the healthy client's own peer closes as it leaves).
    await wait_for(lambda: not webrtc(server).peers)


async def test_bad_subscribe_messages_are_refused_on_the_channel(make_server: MakeServer) -> None:
    server = make_server(transports=("webrtc",))
    await publish(server, 3)
    sub = await subscriber("webrtc", server.url)
    # A cursor beyond the feed: a documented, fatal error raised by follow().
    with pytest.raises(TransportError) as info:
        await collect(sub, 1, after=99, epoch=server.ctx.feed.epoch)
    assert info.value.reason == "cursor_ahead"

    for first, reason in [
        ("garbage", "bad_message"),
        (json.dumps({"type": "subscribe", "after": -1}), "bad_cursor"),
        (json.dumps({"type": "subscribe", "after": True}), "bad_cursor"),
        (json.dumps({"type": "subscribe", "epoch": "x y"}), "bad_param"),
    ]:
        assert await raw_first_reply(server.url, first) == {"type": "close", "reason": reason}
    await wait_for(lambda: not webrtc(server).peers)
    assert server.ctx.stats["webrtc"].rejected == 5


async def raw_first_reply(base_url: str, first: str) -> dict[str, object]:
    """Open a channel with bare aiortc, send ``first``, return the server's first reply."""
    pc = RTCPeerConnection(ice.configuration())
    try:
        channel = pc.createDataChannel("feed")
        opened, reply = asyncio.Event(), asyncio.get_running_loop().create_future()
        channel.on("open", opened.set)

        @channel.on("message")
        def _message(message: str) -> None:
            if not reply.done():
                reply.set_result(message)

        with ice.loopback_only():
            await pc.setLocalDescription(await pc.createOffer())
        assert pc.localDescription is not None
        async with httpx.AsyncClient() as http:
            body = {"sdp": pc.localDescription.sdp, "type": "offer"}
            answer = (await http.post(base_url + "/webrtc/offer", json=body)).json()
        await pc.setRemoteDescription(RTCSessionDescription(**answer))
        async with asyncio.timeout(10 * UNIT):
            await opened.wait()
            channel.send(first)
            result: dict[str, object] = json.loads(await reply)
            return result
    finally:
        await pc.close()


async def test_channel_options_reach_the_server(make_server: MakeServer) -> None:
    server = make_server(transports=("webrtc",))
    await publish(server, 5)
    sub = await subscriber("webrtc", server.url, ordered=False, max_retransmits=0)
    got = await collect(sub, 5)
    assert sorted(got.seqs) == [1, 2, 3, 4, 5]  # no loss on loopback, even unreliable
    reliable = await subscriber("webrtc", server.url)
    # Wants more than will ever be published, so its peer stays open until cancelled below.
    task = asyncio.ensure_future(collect(reliable, 10**6))
    unreliable = WebRTCSubscriber(
        server.url + "/webrtc/offer", ordered=False, max_packet_life_time=50
    )
    stream = unreliable.stream(None, None)
    try:
        await anext(stream)  # hello: the channel is open and subscribed
        await wait_for(lambda: len([p for p in webrtc(server).peers if p.channel]) == 2)
        by_order = {p.channel.ordered: p.channel for p in webrtc(server).peers if p.channel}
        assert set(by_order) == {True, False}
        assert by_order[False].maxPacketLifeTime == 50
        assert by_order[False].maxRetransmits is None
        assert by_order[True].maxRetransmits is None
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
        task.cancel()
    with pytest.raises(ValueError, match="at most one"):
        WebRTCSubscriber("http://x", max_retransmits=1, max_packet_life_time=1)


async def test_peer_limit_is_503_too_many_connections(make_server: MakeServer) -> None:
    server = make_server(transports=("webrtc",), config=ServerConfig(webrtc_max_peers=1))
    first = WebRTCSubscriber(server.url + "/webrtc/offer").stream(0, None)
    try:
        assert (await anext(first)).type == "hello"  # type: ignore[union-attr]
        second = WebRTCSubscriber(server.url + "/webrtc/offer").stream(0, None)
        with pytest.raises(TransportError) as info:
            await anext(second)
        assert info.value.reason == "too_many_connections"
        assert info.value.retryable
    finally:
        await first.aclose()  # type: ignore[attr-defined]
    await wait_for(lambda: not webrtc(server).peers)  # client gone -> peer closed
    assert server.ctx.stats["webrtc"].closed == {"client_gone": 1}


async def test_shutdown_closes_every_peer_and_leaves_nothing_behind(
    make_server: MakeServer,
) -> None:
    threads_before = set(threading.enumerate())
    server = make_server(transports=("webrtc",))
    transport = webrtc(server)
    ctx = server.ctx
    subs = [WebRTCSubscriber(server.url + "/webrtc/offer") for _ in range(3)]
    streams = [s.stream(None, None) for s in subs]
    for stream in streams:
        assert (await anext(stream)).type == "hello"  # type: ignore[union-attr]
    assert len(transport.peers) == 3
    # A plain thread, not asyncio.to_thread: that would start this loop's executor thread.
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    await wait_for(lambda: not stopper.is_alive(), 20)
    assert transport.peers == set()
    assert not ctx._tasks, ctx._tasks
    assert ctx.stats["webrtc"].active == 0
    assert ctx.stats["webrtc"].closed == {"shutting_down": 3}
    for stream in streams:  # each client learns why, then its pc is closed
        with pytest.raises(TransportError) as info:
            await anext(stream)
        assert info.value.reason == "shutting_down"
    assert all(s.pc is not None and s.pc.connectionState == "closed" for s in subs)
    left = [t for t in set(threading.enumerate()) - threads_before if t.is_alive()]
    assert not left, left


async def test_follow_reports_connected_and_disconnected_events(make_server: MakeServer) -> None:
    server = make_server(transports=("webrtc",))
    await publish(server, 2)
    got = await collect(await subscriber("webrtc", server.url), 2)
    connected = [e for e in got.events if isinstance(e, Connected)]
    assert len(connected) == 1
    assert connected[0].epoch == server.ctx.feed.epoch
    assert not got.of(Disconnected)


def test_cli_follow_webrtc(make_server: MakeServer) -> None:
    server = make_server(transports=("webrtc",))
    for i in range(3):
        server.publish({"i": i})
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "transports",
            "follow",
            "webrtc",
            server.url,
            "--after=0",
            "--count=3",
        ],
        capture_output=True,
        text=True,
        timeout=60 * UNIT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert '"i": 2' in result.stdout or "'i': 2" in result.stdout, result.stdout


@pytest.mark.parametrize(
    ("queue_size", "send_timeout", "reason"),
    [(64, 30.0, "slow_consumer"), (10_000, 1.0, "send_timeout")],
)
async def test_frozen_client_is_closed_not_buffered_forever(
    make_server: MakeServer, queue_size: int, send_timeout: float, reason: str
) -> None:
    """A client process stopped with SIGSTOP stops acknowledging SCTP data, so the server's
    ``bufferedAmount`` rises: the pump stops pulling and the peer is closed at its bound."""
    config = ServerConfig(
        queue_size=queue_size, send_timeout=send_timeout, webrtc_high_water=16 * 1024
    )
    server = make_server(transports=("webrtc",), config=config)
    transport = webrtc(server)
    cmd = [sys.executable, "-m", "transports", "follow", "webrtc", server.url, "--quiet"]
    client = await asyncio.create_subprocess_exec(
        *cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        await wait_for(lambda: server.ctx.stats["webrtc"].active == 1, 30)
        client.send_signal(signal.SIGSTOP)
        await publish(server, 400, size=1000)
        await wait_for(lambda: server.ctx.stats["webrtc"].closed.get(reason) == 1, 30)
        await wait_for(lambda: not transport.peers)
        # The server kept only its bound: far less than the 400 kB published was handed over.
        assert server.ctx.stats["webrtc"].bytes_out < 200_000
    finally:
        client.send_signal(signal.SIGCONT)
        client.terminate()
        async with asyncio.timeout(10):
            await client.wait()


def test_mdns_candidates_are_dropped_from_offers() -> None:
    offer = (
        "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
        "a=candidate:1 1 udp 2113937151 0b6c7a7e-1f1e-4a4e-9b0e-3c1d.local 51234 typ host\r\n"
        "a=candidate:2 1 udp 2113937151 127.0.0.1 51235 typ host\r\n"
        "a=candidate:3 1 udp 1677729535 ABC.LOCAL 51236 typ srflx raddr 0.0.0.0 rport 0\r\n"
        "a=end-of-candidates\r\n"
    )
    kept = ice.drop_mdns_candidates(offer)
    assert ".local" not in kept.lower()
    assert "a=candidate:2 1 udp 2113937151 127.0.0.1 51235 typ host\r\n" in kept
    assert kept.endswith("a=end-of-candidates\r\n")


def test_subscribe_message_parsing() -> None:
    assert parse_subscribe('{"type":"subscribe","after":5,"epoch":"ab12"}') == (5, "ab12")
    assert parse_subscribe('{"type":"subscribe"}') == (None, None)
    for bad, reason in [
        ('{"type":"subscribe","after":"5"}', "bad_cursor"),
        ('{"type":"subscribe","after":1e3}', "bad_cursor"),
        ('{"type":"subscribe","cursor":1}', "bad_param"),
        ('{"type":"ping"}', "bad_param"),
        ("[1]", "bad_param"),
    ]:
        with pytest.raises(TransportError) as info:
            parse_subscribe(bad)
        assert info.value.reason == reason, bad
