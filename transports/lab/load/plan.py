"""What a load run does: :class:`Plan`, and how its clients are split into shards.

Open loop (the load does not slow down when the server does): client ``k`` connects at
``start + k / connect_rate`` and publish ``j`` is sent at ``start + j / publish_rate``,
whether or not earlier ones have finished — the way real users arrive. A closed loop (send
the next when the previous answered) hides a slow server behind a slower load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from transports.clients import CLIENTS

MAX_CLIENTS = 100_000
MAX_RATE = 100_000.0
MAX_DURATION = 3600.0


def parse_mix(text: str) -> dict[str, float]:
    """``"ws"`` or ``"ws=3,sse=1"`` → transport weights (``bad_param``-style ValueError)."""
    weights: dict[str, float] = {}
    for part in text.split(","):
        name, _, weight = part.strip().partition("=")
        if name not in CLIENTS:
            raise ValueError(f"unknown transport {name!r}; choose from {', '.join(CLIENTS)}")
        value = float(weight) if weight else 1.0
        if not 0 < value <= 1000:
            raise ValueError(f"weight of {name} must be in (0, 1000]")
        weights[name] = weights.get(name, 0.0) + value
    return weights


@dataclass(slots=True)
class Plan:
    urls: list[str]
    clients: int = 100
    mix: dict[str, float] = field(default_factory=lambda: {"ws": 1.0})
    channel: str = "load:main"  # serve --namespace load:publish (no presence: see docs)
    connect_rate: float = 200.0  # clients per second (all shards together)
    publish_rate: float = 10.0  # messages per second (0 = subscribe only)
    payload_bytes: int = 64
    duration: float = 10.0  # seconds from the first connect to the end
    processes: int = 2  # client shards, one process each
    token: str | None = None  # admin token (or any Bearer the server accepts) to publish
    options: dict[str, Any] = field(default_factory=dict)  # per-transport client options

    def check(self) -> None:
        if not self.urls:
            raise ValueError("at least one URL")
        if not 0 < self.clients <= MAX_CLIENTS:
            raise ValueError(f"clients must be 1..{MAX_CLIENTS}")
        for name, value in (
            ("connect_rate", self.connect_rate),
            ("publish_rate", self.publish_rate),
        ):
            if not 0 <= value <= MAX_RATE:
                raise ValueError(f"{name} must be 0..{MAX_RATE:g}")
        if self.connect_rate <= 0:
            raise ValueError("connect_rate must be > 0")
        if not 0 < self.duration <= MAX_DURATION:
            raise ValueError(f"duration must be in (0, {MAX_DURATION:g}] s")
        if not 1 <= self.processes <= 64:
            raise ValueError("processes must be 1..64")

    def assignments(self) -> list[tuple[str, str]]:
        """``(transport, url)`` of every client: the mix by largest remainder, URLs round robin."""
        total = sum(self.mix.values())
        shares = {n: self.clients * w / total for n, w in self.mix.items()}
        counts = {n: int(s) for n, s in shares.items()}
        left = self.clients - sum(counts.values())
        for name in sorted(shares, key=lambda n: shares[n] - counts[n], reverse=True)[:left]:
            counts[name] += 1
        # Interleave transports so each arrives spread over the connect phase.
        order: list[str] = []
        remaining = dict(counts)
        while len(order) < self.clients:
            for name in counts:
                if remaining[name] > 0:
                    order.append(name)
                    remaining[name] -= 1
        return [(name, self.urls[k % len(self.urls)]) for k, name in enumerate(order)]
