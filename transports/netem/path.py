"""One client path's faults: the four actions a teacher uses, over every hop of the path.

A path is the TCP proxies a transport's traffic crosses (the server's port; for MQTT the
broker's port too, and the server's ``/mqtt`` bridge that browsers use) plus, for WebRTC,
the UDP relay that carries the data channel. The chaos rig and the live fault lab both act
through :class:`FaultPath`, so "cut" means the same thing in a scoreboard and on the page.
"""

from __future__ import annotations

from collections.abc import Sequence

from transports.netem.faults import Blackhole, Latency
from transports.netem.proxy import FaultProxy
from transports.netem.udp_relay import UdpRelay

ACTIONS = ("cut", "blackhole", "latency", "restore")


class FaultPath:
    def __init__(self, proxies: Sequence[FaultProxy], relay: UdpRelay | None = None) -> None:
        self.proxies = list(proxies)
        self.relay = relay

    def cut(self) -> None:
        """Reset every open TCP connection; drop the UDP sessions (UDP has no reset: the
        relayed path simply disappears and ICE on the old candidates fails)."""
        for p in self.proxies:
            p.cut()
        if self.relay is not None:
            self.relay.close()

    def blackhole(self) -> None:
        """Connections stay open, nothing passes in either direction."""
        for p in self.proxies:
            p.add(Blackhole(direction="both"))
        if self.relay is not None:
            self.relay.set("both", blackhole=True)

    def latency(
        self,
        latency_ms: float = 100.0,
        jitter_ms: float = 0.0,
        loss: float = 0.0,
        direction: str = "downstream",
    ) -> None:
        """Delay each chunk (TCP) or datagram (UDP); ``loss`` (0..1) applies to UDP only."""
        if loss and self.relay is None:
            raise ValueError("loss applies to the WebRTC (UDP) path only")
        if not 0 <= loss <= 1:
            raise ValueError("loss must be within [0, 1]")
        for p in self.proxies:
            p.add(Latency(latency_ms=latency_ms, jitter_ms=jitter_ms, direction=direction))
        if self.relay is not None:
            self.relay.set(direction, latency_ms=latency_ms, jitter_ms=jitter_ms, loss=loss)

    def restore(self) -> None:
        """Remove every fault; open connections carry on."""
        for p in self.proxies:
            p.clear()
        if self.relay is not None:
            self.relay.clear()
