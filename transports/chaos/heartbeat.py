"""Heartbeat sweep: blackhole detection time and idle bytes per hour vs heartbeat interval.

For each transport and heartbeat interval ``h`` one run on an idle feed (no publisher), all
paths through the rig's proxies (:mod:`transports.chaos.rig`):

1. connect with ``follow()`` and wait for the hello;
2. *idle*: count payload bytes both ways for ``window`` seconds (four intervals; WebRTC at
   least 12 s) and scale to one hour — what keeping one quiet connection alive costs;
3. *blackhole*: stop forwarding silently (no FIN, no RST) and time the client's first
   ``Disconnected``.

What detects the blackhole, per transport (``interval`` = :func:`~transports.chaos.rig.interval`):

- WebSocket: the client's RFC 6455 §5.5.2 ping every interval, pong timeout one interval;
- SSE: server comments every interval; the client's read watchdog (3 intervals);
- long polling: each held GET answers within the hold (one interval); watchdog 3 intervals;
- MQTT: paho's keepalive (PINGREQ after one quiet interval, disconnect when the PINGRESP
  misses another, MQTT 5 §3.1.2.10) — or the watchdog, whichever fires first;
- WebRTC: the server's app-level ping on the channel, watchdog 3 intervals. SCTP
  heartbeats (RFC 9260 §8.3, 30 s) and ICE consent freshness (RFC 7675, ~30 s) would notice
  too, but far later.

The bound :func:`bound` is the watchdog (interval + timeout of two intervals) plus
``MARGIN`` for scheduling on a busy machine; :func:`sweep` reports whether each run met it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import asdict, dataclass
from typing import Any

from transports.backoff import Backoff
from transports.chaos.rig import Rig, interval, server_config, watchdog
from transports.client import Connected, Disconnected, follow

MARGIN = 1.0  # s on top of the watchdog: event-loop and thread scheduling on 2 busy cores


def bound(name: str, heartbeat: float) -> float:
    """Latest acceptable detection time for a blackhole: watchdog + :data:`MARGIN`."""
    return watchdog(name, heartbeat) + MARGIN


@dataclass(slots=True)
class Beat:
    transport: str
    heartbeat: float  # requested
    interval: float  # what the transport ran (MQTT: whole seconds)
    detect_s: float | None = None
    bound_s: float = 0.0
    idle_bytes_per_hour: float = 0.0
    reason: str = ""  # what the client said when it gave up on the connection
    error: str = ""

    @property
    def within(self) -> bool:
        return self.detect_s is not None and 0 <= self.detect_s <= self.bound_s

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "within": self.within}


async def measure(name: str, heartbeat: float, *, window: float | None = None) -> Beat:
    """One transport at one interval; bounded by about ``window + bound + 15`` seconds."""
    beat = Beat(name, heartbeat, interval(name, heartbeat), bound_s=bound(name, heartbeat))
    if window is None:
        # WebRTC's idle traffic also runs on ICE-consent and SCTP timers of its own (a few
        # seconds apart, randomised): a short window would catch one or none of them.
        window = max(4 * beat.interval, 12.0 if name == "webrtc" else 0.0)
    rig = await Rig.open(name, server_config(heartbeat, 0.0, None), heartbeat)
    connected, lost = asyncio.Event(), asyncio.Event()
    found: dict[str, Any] = {}

    async def watch() -> None:
        sub = await rig.subscriber()
        wd = watchdog(name, heartbeat)
        async for ev in follow(sub, 0, idle_timeout=wd, backoff=Backoff(1.0, 1.0)):
            if isinstance(ev, Connected):
                connected.set()
            elif isinstance(ev, Disconnected) and connected.is_set() and not lost.is_set():
                found["t"], found["reason"] = time.monotonic(), ev.reason
                lost.set()

    task = asyncio.create_task(watch())
    try:
        async with asyncio.timeout(15.0):
            await connected.wait()
        await asyncio.sleep(beat.interval)  # setup traffic (ICE, SCTP, subscribe) settles
        b0, t0 = rig.bytes(), time.monotonic()
        await asyncio.sleep(window)
        beat.idle_bytes_per_hour = round((rig.bytes() - b0) * 3600 / (time.monotonic() - t0))
        t_fault = time.monotonic()
        rig.blackhole()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(beat.bound_s + 5.0):
                await lost.wait()
        if lost.is_set() and found["t"] < t_fault:
            # Heartbeats missed on a busy machine (or a server-side close) before any fault:
            # not a detection; the idle bytes include a reconnect, so they are dropped too.
            beat.error = f"dropped before the fault: {found['reason']}"[:120]
            beat.idle_bytes_per_hour = float("nan")
        elif lost.is_set():
            beat.detect_s = round(found["t"] - t_fault, 3)
            beat.reason = str(found["reason"])[:60]
    except Exception as exc:
        beat.error = f"{type(exc).__name__}: {exc}"[:120]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        rig.clear()
        await rig.close()
    return beat


async def sweep(
    transports: list[str], heartbeats: list[float], *, window: float | None = None
) -> list[Beat]:
    """Every transport × interval, one after the other (runs do not share CPU)."""
    return [await measure(t, h, window=window) for h in heartbeats for t in transports]
