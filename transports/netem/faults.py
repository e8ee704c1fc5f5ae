"""Fault descriptions for the TCP fault proxy, modelled on Toxiproxy's "toxics".

Each fault applies to one direction of a proxied connection, named as Toxiproxy names them:
``upstream`` is client → server, ``downstream`` is server → client; ``both`` installs it on
each. Faults are plain data; :mod:`transports.netem.proxy` applies them to the bytes.

Semantics worth knowing (they differ on purpose from a naive "drop" implementation):

- :class:`Blackhole` *holds* data by default: the proxy stops forwarding and, once its bounded
  buffers are full, stops reading, so the sender's TCP window closes exactly as it would
  behind a silent network partition. No FIN, no RST is sent. When the blackhole is removed
  the held bytes flow again, like TCP retransmission after a partition heals — which is what
  lets a blackhole *shorter* than the heartbeat timeout go unnoticed. ``drop=True`` discards
  instead (Toxiproxy's ``timeout`` toxic with ``timeout=0``); the stream is then corrupt.
- :class:`Reset` closes the connection with an RST (``SO_LINGER`` 0) after ``after_ms``
  (Toxiproxy's ``reset_peer``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

DIRECTIONS = ("upstream", "downstream")


@dataclass(slots=True)
class Fault:
    """Base class. ``name`` is unique per proxy (defaults to the kind)."""

    kind: ClassVar[str] = "fault"
    name: str = ""
    direction: str = "downstream"  # upstream | downstream | both

    def __post_init__(self) -> None:
        if not self.name:
            self.name = self.kind
        if self.direction not in (*DIRECTIONS, "both"):
            raise ValueError("direction must be 'upstream', 'downstream' or 'both'")

    def applies_to(self, direction: str) -> bool:
        return self.direction in (direction, "both")

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}


@dataclass(slots=True)
class Latency(Fault):
    """Delay every chunk by ``latency_ms`` ± uniform ``jitter_ms`` (order kept, as TCP does)."""

    kind: ClassVar[str] = "latency"
    latency_ms: float = 100.0
    jitter_ms: float = 0.0
    rand: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def __post_init__(self) -> None:
        Fault.__post_init__(self)
        if self.latency_ms < 0 or self.jitter_ms < 0:
            raise ValueError("latency_ms and jitter_ms must be >= 0")

    def delay(self) -> float:
        jitter = (self.rand() * 2 - 1) * self.jitter_ms
        return max(0.0, self.latency_ms + jitter) / 1000

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "direction": self.direction,
            "latency_ms": self.latency_ms,
            "jitter_ms": self.jitter_ms,
        }


@dataclass(slots=True)
class Bandwidth(Fault):
    """Cap throughput at ``rate_kbps`` kilobytes (1000 bytes) per second."""

    kind: ClassVar[str] = "bandwidth"
    rate_kbps: float = 100.0

    def __post_init__(self) -> None:
        Fault.__post_init__(self)
        if self.rate_kbps <= 0:
            raise ValueError("rate_kbps must be > 0")


@dataclass(slots=True)
class Blackhole(Fault):
    """Stop forwarding silently: no FIN, no RST. Held (default) or dropped (``drop=True``)."""

    kind: ClassVar[str] = "blackhole"
    drop: bool = False


@dataclass(slots=True)
class Reset(Fault):
    """Reset the connection (RST to both peers) ``after_ms`` after it opens or the fault
    is added."""

    kind: ClassVar[str] = "reset"
    after_ms: float = 0.0


@dataclass(slots=True)
class SlowClose(Fault):
    """Delay passing on a close (FIN) by ``delay_ms``."""

    kind: ClassVar[str] = "slow_close"
    delay_ms: float = 1000.0


@dataclass(slots=True)
class LimitData(Fault):
    """Close the connection once ``nbytes`` have been forwarded in this direction."""

    kind: ClassVar[str] = "limit_data"
    nbytes: int = 1024

    def __post_init__(self) -> None:
        Fault.__post_init__(self)
        if self.nbytes < 0:
            raise ValueError("nbytes must be >= 0")


@dataclass(slots=True)
class Slicer(Fault):
    """Split each chunk into writes of ``average_size`` ± ``size_variation`` bytes,
    ``delay_us`` apart (exercises the receiver's reassembly of partial frames)."""

    kind: ClassVar[str] = "slicer"
    average_size: int = 16
    size_variation: int = 0
    delay_us: int = 1000
    rand: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def __post_init__(self) -> None:
        Fault.__post_init__(self)
        if self.average_size < 1 or not 0 <= self.size_variation < self.average_size:
            raise ValueError("need average_size >= 1 and 0 <= size_variation < average_size")

    def slices(self, data: bytes) -> list[bytes]:
        out, i = [], 0
        while i < len(data):
            size = self.average_size + round((self.rand() * 2 - 1) * self.size_variation)
            out.append(data[i : i + size])
            i += size
        return out

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "direction": self.direction,
            "average_size": self.average_size,
            "size_variation": self.size_variation,
            "delay_us": self.delay_us,
        }


KINDS: dict[str, type[Fault]] = {
    cls.kind: cls for cls in (Latency, Bandwidth, Blackhole, Reset, SlowClose, LimitData, Slicer)
}


def from_dict(spec: dict[str, Any]) -> Fault:
    """Build a fault from ``{"kind": ..., **fields}`` (the HTTP and CLI form)."""
    spec = dict(spec)
    kind = spec.pop("kind", None)
    if kind not in KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; choose from {', '.join(KINDS)}")
    allowed = {f for f in KINDS[kind].__dataclass_fields__ if f != "rand"}
    unknown = set(spec) - allowed
    if unknown:
        raise ValueError(f"unknown field(s) for {kind}: {sorted(unknown)}")
    return KINDS[kind](**spec)
