"""A UDP relay for WebRTC with packet loss, latency/jitter and blackhole, and byte counters.

Written by hand for the same reason as :mod:`transports.netem.proxy` (no maintained Python
tool; ``tc netem`` unavailable). WebRTC media and data travel over UDP between ICE
candidates, so a TCP proxy in front of the signalling endpoint does not touch them. To put
the relay *in the path*, the server's SDP answer is rewritten before the client sees it:
every UDP candidate ``address port`` of the server (RFC 8839 §5.1 ``a=candidate``) is
replaced by a relay session's own address
(:func:`transports.netem.webrtc_relay.rewrite_candidates`). The client's ICE
agent then only has pairs towards the relay; the relay forwards from its own socket, so the
server learns the client as a peer-reflexive candidate at the relay (RFC 8445 §7.3.1.3) and
the pair the client nominates runs through the relay in both directions.

Faults apply per direction (``upstream`` client → server, ``downstream`` server → client).
Loss drops each datagram with the given probability; latency delays each datagram
independently, so jitter reorders datagrams exactly as a real network may (SCTP copes).
UDP has no reset: a "cut" of a WebRTC path is a blackhole long enough for ICE consent
freshness (RFC 7675: 30 s) or the application heartbeat to notice.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Address = tuple[str, int]


@dataclass(slots=True)
class UdpFaults:
    """Faults of one direction."""

    loss: float = 0.0  # probability 0..1 of dropping a datagram
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    blackhole: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.loss <= 1 or self.latency_ms < 0 or self.jitter_ms < 0:
            raise ValueError("need 0 <= loss <= 1, latency_ms >= 0, jitter_ms >= 0")

    def active(self) -> bool:
        return self.blackhole or self.loss > 0 or self.latency_ms > 0 or self.jitter_ms > 0


@dataclass(slots=True)
class UdpCount:
    packets: int = 0
    bytes: int = 0
    dropped: int = 0


@dataclass(slots=True)
class UdpCounters:
    upstream: UdpCount = field(default_factory=UdpCount)
    downstream: UdpCount = field(default_factory=UdpCount)

    def as_dict(self) -> dict[str, Any]:
        return {
            d: {"packets": c.packets, "bytes": c.bytes, "dropped": c.dropped}
            for d, c in (("upstream", self.upstream), ("downstream", self.downstream))
        }


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, Address], None]) -> None:
        self.on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.on_datagram(data, addr)


class Session:
    """One relayed path: the client talks to ``front``; ``back`` talks to the target."""

    def __init__(self, relay: UdpRelay, target: Address) -> None:
        self.relay = relay
        self.target = target
        self.client: Address | None = None
        self.front: asyncio.DatagramTransport | None = None
        self.back: asyncio.DatagramTransport | None = None

    @property
    def address(self) -> Address:
        assert self.front is not None
        host, port = self.front.get_extra_info("sockname")[:2]
        return (host, port)

    async def open(self, host: str) -> Session:
        loop = asyncio.get_running_loop()
        self.front, _ = await loop.create_datagram_endpoint(
            lambda: _Endpoint(self._from_client), local_addr=(host, 0)
        )
        self.back, _ = await loop.create_datagram_endpoint(
            lambda: _Endpoint(self._from_target), local_addr=(host, 0)
        )
        return self

    def close(self) -> None:
        for t in (self.front, self.back):
            if t is not None:
                t.close()

    def _from_client(self, data: bytes, addr: Address) -> None:
        self.client = addr  # the latest source: the client may switch ports (ICE restart)
        self.relay._forward("upstream", data, self.back, self.target)

    def _from_target(self, data: bytes, addr: Address) -> None:
        if addr == self.target and self.client is not None:
            self.relay._forward("downstream", data, self.front, self.client)


class UdpRelay:
    """Relay sessions sharing one set of faults and counters (``async with UdpRelay()``)."""

    def __init__(self, host: str = "127.0.0.1", rand: Callable[[], float] = random.random) -> None:
        self.host = host
        self.rand = rand
        self.faults = {"upstream": UdpFaults(), "downstream": UdpFaults()}
        self.counters = UdpCounters()
        self.sessions: list[Session] = []
        self._sink: asyncio.DatagramTransport | None = None

    async def __aenter__(self) -> UdpRelay:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    async def route(self, target: Address) -> Address:
        """Open a session towards ``target``; return the address clients should send to."""
        session = await Session(self, target).open(self.host)
        self.sessions.append(session)
        return session.address

    async def sink(self) -> Address:
        """An address that takes datagrams and answers none (one socket per relay)."""
        if self._sink is None:
            loop = asyncio.get_running_loop()
            self._sink, _ = await loop.create_datagram_endpoint(
                lambda: _Endpoint(lambda data, addr: None), local_addr=(self.host, 0)
            )
        host, port = self._sink.get_extra_info("sockname")[:2]
        return (host, port)

    def set(self, direction: str = "both", **faults: Any) -> None:
        """Replace the faults of ``direction`` (``upstream``/``downstream``/``both``)."""
        for d in ("upstream", "downstream") if direction == "both" else (direction,):
            if d not in self.faults:
                raise ValueError("direction must be 'upstream', 'downstream' or 'both'")
            self.faults[d] = UdpFaults(**faults)

    def clear(self) -> None:
        self.set("both")

    def describe(self) -> list[dict[str, Any]]:
        return [
            {
                "kind": "udp",
                "direction": d,
                "loss": f.loss,
                "latency_ms": f.latency_ms,
                "jitter_ms": f.jitter_ms,
                "blackhole": f.blackhole,
            }
            for d, f in self.faults.items()
            if f.active()
        ]

    def close(self) -> None:
        for s in self.sessions:
            s.close()
        self.sessions.clear()
        if self._sink is not None:
            self._sink.close()
            self._sink = None

    def _forward(
        self, direction: str, data: bytes, out: asyncio.DatagramTransport | None, to: Address
    ) -> None:
        count = getattr(self.counters, direction)
        count.packets += 1
        count.bytes += len(data)  # UDP payload bytes, as the sender handed them over
        f = self.faults[direction]
        if out is None or f.blackhole or (f.loss and self.rand() < f.loss):
            count.dropped += 1
            return
        jitter = (self.rand() * 2 - 1) * f.jitter_ms if f.jitter_ms else 0.0
        delay = max(0.0, f.latency_ms + jitter) / 1000
        if delay:
            asyncio.get_running_loop().call_later(delay, _send, out, data, to)
        else:
            _send(out, data, to)


def _send(out: asyncio.DatagramTransport, data: bytes, to: Address) -> None:
    if not out.is_closing():
        out.sendto(data, to)
