"""Reconnect delay schedules.

The default is exponential backoff with *full jitter* (AWS Architecture Blog, "Exponential
Backoff And Jitter", 2015): ``delay_n = uniform(0, min(cap, base * 2**n))``. Spreading
reconnects uniformly is what keeps a thousand clients that lost the same server from
arriving at it in the same millisecond. The random source is injectable so tests are exact.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    """``delay(attempt)`` for attempt 0, 1, 2, ...; ``jitter`` is "full", "none" or "equal"."""

    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0
    jitter: str = "full"
    rand: Callable[[], float] = field(default=random.random, repr=False)
    # jitter="proportional": uniform in ceiling × (1 ± randomization), capped at maximum
    # (Socket.IO's randomizationFactor).
    randomization: float = 0.5
    # Explicit delays per attempt instead of initial × factor**n; the last one repeats
    # (SignalR's retryDelays). See transports.policies for named presets.
    steps: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.initial < 0 or self.maximum < self.initial or self.factor < 1:
            raise ValueError("need 0 <= initial <= maximum and factor >= 1")
        if self.jitter not in ("full", "none", "equal", "proportional"):
            raise ValueError("jitter must be 'full', 'none', 'equal' or 'proportional'")
        if not 0 <= self.randomization <= 1 or any(s < 0 for s in self.steps):
            raise ValueError("need 0 <= randomization <= 1 and steps >= 0")

    def ceiling(self, attempt: int) -> float:
        if self.steps:
            return self.steps[min(attempt, len(self.steps) - 1)]
        # Cap the exponent too: factor**attempt overflows a float long before we care.
        return min(self.maximum, self.initial * self.factor ** min(attempt, 64))

    def delay(self, attempt: int) -> float:
        top = self.ceiling(attempt)
        if self.jitter == "none":
            return top
        if self.jitter == "equal":
            return top / 2 + self.rand() * top / 2
        if self.jitter == "proportional":
            spread = top * self.randomization * (2 * self.rand() - 1)
            return min(self.maximum, top + spread)
        return self.rand() * top
