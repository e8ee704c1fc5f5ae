"""The lab's open-loop publisher: constant rate, intended send time in every message.

Message ``i`` is *due* at ``t0 + i / rate`` on the monotonic clock and carries that instant
(as Unix time) in ``data["due"]``. Latency is measured against ``due``, not against when the
message actually left, so a server stall delays everything scheduled during it and shows in
the tail: the schedule never waits for the system under test (Gil Tene's *coordinated
omission*; the demo :class:`~transports.publisher.Ticker` follows the same rule).

How late each publish ran ("generator lag") is recorded too. A stall makes lag spike and
recover; lag that is still high at the end means the publisher could not keep the rate, and
the run is flagged invalid rather than reported as a lower rate.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import json
import os
import random
import statistics
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from transports.feed import Feed

if TYPE_CHECKING:
    from transports.live import LiveServer

KINDS = ("json", "random")
# {"seq":N,"topic":"ticker","sent_at":1764252000.123456,"data":{"i":N,"due":1764252000.12}}
ENVELOPE = 90
SYMBOLS = ("ACME", "GLOBEX", "INITECH", "UMBRELLA", "HOOLI", "STARK", "WAYNE", "WONKA")


def payload(i: int, due: float, size: int, kind: str, rng: random.Random) -> dict[str, Any]:
    """Message data such that the whole encoded message is about ``size`` bytes.

    ``json``: a list of quote objects, compressible like real application JSON.
    ``random``: base64 of random bytes, the least compressible thing JSON can carry.
    """
    data: dict[str, Any] = {"i": i, "due": due}
    room = max(0, size - ENVELOPE)
    if kind == "random":
        room = max(0, room - 10)  # ,"blob":""
        data["blob"] = base64.b64encode(os.urandom(room * 3 // 4 + 3)).decode()[:room]
    elif kind == "json":
        quotes: list[dict[str, Any]] = []
        used = 12  # ,"quotes":[]
        while True:
            quote = {
                "s": rng.choice(SYMBOLS),
                "p": round(rng.uniform(10, 500), 2),
                "q": rng.randint(1, 9999),
            }
            cost = len(json.dumps(quote, separators=(",", ":"))) + 1
            if used + cost > room:
                break
            quotes.append(quote)
            used += cost
        data["quotes"] = quotes
    else:
        raise ValueError(f"payload kind must be one of {KINDS}, got {kind!r}")
    return data


@dataclass(slots=True)
class PublishRun:
    """What the publisher did: per-message lag (s) and whether it kept the schedule."""

    rate: float
    total: int
    lags: list[float] = field(default_factory=list)
    started_at: float = 0.0  # Unix time of message 0's due instant
    finished: bool = False

    def lag_summary(self, skip: int = 0) -> dict[str, Any]:
        lags = self.lags[skip:] or [0.0]
        tail = lags[-max(1, len(lags) // 10) :]
        ordered = sorted(lags)
        tail_mean = statistics.fmean(tail)
        # "Growing" lag: the last tenth of the run is still behind schedule by more than a few
        # message intervals (and 50 ms) — the backlog did not drain, the rate was not held.
        limit = max(0.05, 5.0 / self.rate)
        return {
            "lag_p50_ms": ordered[len(ordered) // 2] * 1000,
            "lag_p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
            "lag_max_ms": ordered[-1] * 1000,
            "lag_tail_ms": tail_mean * 1000,
            "valid": self.finished and tail_mean <= limit,
        }


async def publish_open_loop(
    feed: Feed,
    run: PublishRun,
    payload_bytes: int,
    kind: str,
    topic: str = "ticker",
    seed: int = 1,
) -> None:
    """Publish ``run.total`` messages at ``run.rate``; runs on the server's event loop."""
    rng = random.Random(seed)
    t0 = time.monotonic() + 0.01
    wall0 = time.time() - time.monotonic()
    run.started_at = wall0 + t0
    for i in range(run.total):
        due = t0 + i / run.rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            # Behind schedule: publish the backlog now, but let the transports send meanwhile.
            await asyncio.sleep(0)
        run.lags.append(max(0.0, time.monotonic() - due))
        feed.publish(payload(i, wall0 + due, payload_bytes, kind, rng), topic)
    run.finished = True


def start_publisher(
    live: LiveServer, run: PublishRun, size: int, kind: str
) -> concurrent.futures.Future[None]:
    """Start :func:`publish_open_loop` on ``live``'s loop; return a thread-safe future.

    Call it through ``live.call`` (it must run on the server's loop, where the feed lives).
    """
    task = live.ctx.spawn(publish_open_loop(live.ctx.feed, run, size, kind), "lab-publisher")
    fut: concurrent.futures.Future[None] = concurrent.futures.Future()

    def done(t: asyncio.Future[Any]) -> None:
        if t.cancelled():
            fut.cancel()
        elif (exc := t.exception()) is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(None)

    task.add_done_callback(done)
    return fut
