"""The UDP relay on real loopback sockets, alone and in the path of a real WebRTC channel."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import UNIT
from transports.live import LiveServer
from transports.netem.udp_relay import UdpRelay
from transports.netem.webrtc_relay import blind_candidates, rewrite_candidates


class Collector(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.got: list[tuple[bytes, tuple[str, int]]] = []
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.got.append((data, addr))
        if data.startswith(b"echo"):
            assert self.transport is not None
            self.transport.sendto(b"re:" + data, addr)


async def endpoint() -> tuple[asyncio.DatagramTransport, Collector]:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(Collector, local_addr=("127.0.0.1", 0))
    return transport, proto


async def wait_for(check: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout * UNIT):
        while not check():  # noqa: ASYNC110 - polls counters the relay updates
            await asyncio.sleep(0.01)


async def test_relay_forwards_both_ways_and_counts() -> None:
    server_t, server = await endpoint()
    client_t, client = await endpoint()
    async with UdpRelay() as relay:
        front = await relay.route(server_t.get_extra_info("sockname"))
        for i in range(10):
            client_t.sendto(b"echo%d" % i, front)
        await wait_for(lambda: len(client.got) == 10)
        # The server saw the relay, not the client; the client heard back from the relay.
        assert all(addr != client_t.get_extra_info("sockname") for _, addr in server.got)
        assert {addr for _, addr in client.got} == {front}
        assert relay.counters.upstream.packets == 10
        assert relay.counters.upstream.bytes == sum(len(b"echo%d" % i) for i in range(10))
        assert relay.counters.downstream.packets == 10
    server_t.close()
    client_t.close()


async def test_loss_blackhole_and_latency() -> None:
    server_t, server = await endpoint()
    client_t, _ = await endpoint()
    draws = iter([0.1, 0.9] * 50)  # deterministic: every other datagram is below 0.5
    async with UdpRelay(rand=lambda: next(draws)) as relay:
        front = await relay.route(server_t.get_extra_info("sockname"))
        relay.set("upstream", loss=0.5)
        for i in range(20):
            client_t.sendto(b"x%d" % i, front)
        await wait_for(lambda: relay.counters.upstream.packets == 20)
        await asyncio.sleep(0.1)
        assert len(server.got) == 10
        assert relay.counters.upstream.dropped == 10
        relay.set("upstream", blackhole=True)
        client_t.sendto(b"gone", front)
        await asyncio.sleep(0.2)
        assert len(server.got) == 10
        relay.rand = lambda: 0.5  # jitter term 0
        relay.set("upstream", latency_ms=300)
        client_t.sendto(b"late", front)
        await asyncio.sleep(0.15)
        assert len(server.got) == 10  # still in flight
        await wait_for(lambda: len(server.got) == 11)
    server_t.close()
    client_t.close()


async def test_rewrite_candidates() -> None:
    sdp = (
        "v=0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\n"
        "a=candidate:2 1 tcp 1 127.0.0.1 9 typ host tcptype active\r\n"
    )
    async with UdpRelay() as relay:
        out = await rewrite_candidates(sdp, relay)
        assert relay.sessions[0].target == ("127.0.0.1", 40000)
        port = relay.sessions[0].address[1]
        assert f"127.0.0.1 {port} typ host" in out
        assert "127.0.0.1 9 typ host tcptype" in out  # TCP candidates untouched


async def test_blind_candidates_point_an_offer_at_a_sink_that_answers_nothing() -> None:
    sdp = (
        "v=0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\n"
        "a=candidate:2 1 udp 2130706431 abc.local 40001 typ host\r\n"
    )
    async with UdpRelay() as relay:
        out = await blind_candidates(sdp, relay)
        host, port = await relay.sink()
        assert out.count(f"{host} {port} typ host") == 2
        assert "40000" not in out
        assert "abc.local" not in out
        loop = asyncio.get_running_loop()
        probe = Collector()
        t, _ = await loop.create_datagram_endpoint(lambda: probe, local_addr=("127.0.0.1", 0))
        t.sendto(b"binding request", (host, port))
        await asyncio.sleep(0.2)
        assert probe.got == []  # no answer: a check to it never succeeds
        t.close()


async def test_webrtc_channel_runs_through_relay() -> None:
    pytest.importorskip("aiortc")
    from transports.client import Delivered, follow
    from transports.clients import server_info
    from transports.lab.relayed_webrtc import RelayedWebRTCSubscriber

    live = LiveServer(("webrtc",)).start()
    try:
        async with UdpRelay() as relay:
            info = await server_info(live.url)
            sub = RelayedWebRTCSubscriber.for_server(live.url, info, relay=relay)
            got = []
            async with asyncio.timeout(30 * UNIT):
                events = follow(sub, 0, idle_timeout=10)
                async for ev in events:
                    if isinstance(ev, Delivered):
                        got.append(ev.message.seq)
                        if len(got) == 5:
                            break
                    elif len(relay.sessions) and not got:
                        for i in range(5):
                            live.publish({"i": i})
                await events.aclose()
            assert got == [1, 2, 3, 4, 5]
            # Both directions carried ICE, DTLS and SCTP through the relay.
            assert relay.counters.upstream.packets > 3
            assert relay.counters.downstream.bytes > 500
    finally:
        live.stop()
