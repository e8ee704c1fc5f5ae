"""The demo publisher: a ticker-like feed at a steady rate and payload size.

Open loop: message ``i`` is due at ``t0 + i / rate`` on the monotonic clock, whatever
happened to message ``i - 1``; if the loop falls behind it publishes the backlog at once
rather than stretching the schedule, so a stalled server shows up as latency instead of
silently lowering the rate (coordinated omission). Each message carries its intended send
time in ``data["due"]`` (Unix seconds) for the lab to measure against.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transports.feed import Feed

# How the ticker starts its task: the server passes ``ServerContext.spawn`` (so shutdown
# cancels it); anything else with the shape of ``asyncio.create_task(coro, name=)`` works.
Spawn = Callable[[Coroutine[Any, Any, None], str], "asyncio.Task[Any]"]

SYMBOLS = ("ACME", "GLOBEX", "INITECH", "UMBRELLA", "HOOLI")
MAX_RATE = 10_000.0
MAX_PAYLOAD = 1024 * 1024


def ticker_data(i: int, price: float, payload_bytes: int, due: float) -> dict[str, Any]:
    data: dict[str, Any] = {
        "symbol": SYMBOLS[i % len(SYMBOLS)],
        "price": round(price, 2),
        "due": due,
    }
    # Pad so the encoded message is about `payload_bytes` of data; JSON-ish, compressible.
    base = 60
    if payload_bytes > base:
        data["pad"] = "x" * (payload_bytes - base)
    return data


class Ticker:
    """Publishes to a feed at ``rate`` messages/s; reconfigurable while running."""

    def __init__(self, feed: Feed, rate: float = 0.0, payload_bytes: int = 64) -> None:
        self.feed = feed
        self.rate = 0.0
        self.payload_bytes = 64
        self.lag = 0.0  # how far behind schedule the last publish ran (s)
        self.configure(rate, payload_bytes)
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    def configure(self, rate: float | None = None, payload_bytes: int | None = None) -> None:
        if rate is not None:
            if not 0 <= float(rate) <= MAX_RATE:
                raise ValueError(f"rate must be within [0, {MAX_RATE}]")
            self.rate = float(rate)
        if payload_bytes is not None:
            if not 0 <= int(payload_bytes) <= MAX_PAYLOAD:
                raise ValueError(f"payload_bytes must be within [0, {MAX_PAYLOAD}]")
            self.payload_bytes = int(payload_bytes)
        if hasattr(self, "_changed"):
            self._changed.set()

    def settings(self) -> dict[str, float]:
        return {"rate": self.rate, "payload_bytes": self.payload_bytes, "lag": self.lag}

    def start(self, spawn: Spawn) -> None:
        self._task = spawn(self._run(), "ticker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        price = 100.0
        while True:
            if self.rate <= 0:
                self._changed.clear()
                await self._changed.wait()
                continue
            self._changed.clear()
            rate, t0, i = self.rate, time.monotonic(), 0
            wall0 = time.time() - t0
            while rate == self.rate and not self._changed.is_set():
                due = t0 + i / rate
                delay = due - time.monotonic()
                if delay > 0:
                    try:
                        async with asyncio.timeout(delay):
                            await self._changed.wait()
                        break  # reconfigured: restart the schedule
                    except TimeoutError:
                        pass
                self.lag = max(0.0, time.monotonic() - due)
                price = max(1.0, price + random.gauss(0, 0.2))
                self.feed.publish(ticker_data(i, price, self.payload_bytes, wall0 + due))
                i += 1
