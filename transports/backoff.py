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

    def __post_init__(self) -> None:
        if self.initial < 0 or self.maximum < self.initial or self.factor < 1:
            raise ValueError("need 0 <= initial <= maximum and factor >= 1")
        if self.jitter not in ("full", "none", "equal"):
            raise ValueError("jitter must be 'full', 'none' or 'equal'")

    def ceiling(self, attempt: int) -> float:
        # Cap the exponent too: factor**attempt overflows a float long before we care.
        return min(self.maximum, self.initial * self.factor ** min(attempt, 64))

    def delay(self, attempt: int) -> float:
        top = self.ceiling(attempt)
        if self.jitter == "none":
            return top
        if self.jitter == "equal":
            return top / 2 + self.rand() * top / 2
        return self.rand() * top
