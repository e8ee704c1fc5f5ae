"""One load process: its share of the clients, each a real client under ``follow()``.

Clients are the library's own (:func:`transports.clients.subscriber`), so the load is what
real Transport Lab clients do — including resume, dedupe and gap detection — on any
transport. Each follows the plan's channel live (no replay) and records, per delivery, the
latency ``received_at - sent_at`` (``sent_at`` is stamped by the node that stored the
message, so with an engine it includes the hop through Redis to the node serving the
client).

Every second the shard puts a report on the parent's queue: connected clients, deliveries,
errors and an encoded latency histogram per transport for that second, and its own event
loop lag (how late a 5 ms sleep wakes up): when that grows, the load generator itself is
the bottleneck and the parent says so. At the end: totals, including ``follow()``'s
duplicates, gaps and missing seqs per transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from transports.lab import histogram

PROBE_S = 0.005


@dataclass(slots=True)
class ShardSpec:
    index: int
    clients: list[tuple[int, str, str]]  # (global index, transport, base url)
    channel: str
    connect_rate: float
    start_at: float  # wall clock (time.time()) of client 0's connect
    duration: float
    options: dict[str, Any] = field(default_factory=dict)


class _Window:
    """What happened in one second, per transport."""

    def __init__(self) -> None:
        self.hists: dict[str, Any] = defaultdict(histogram.new)
        self.deliveries: dict[str, int] = defaultdict(int)
        self.errors: dict[str, int] = defaultdict(int)
        self.lag = histogram.new()


def main(spec: ShardSpec, queue: Any) -> None:
    """Process entry point (``spawn``)."""
    try:
        asyncio.run(_run(spec, queue))
    except BaseException as exc:  # reported to the parent, which prints it
        queue.put({"shard": spec.index, "kind": "error", "error": f"{type(exc).__name__}: {exc}"})


async def _run(spec: ShardSpec, queue: Any) -> None:
    from transports.client import Connected, Delivered, Disconnected, FollowStats, follow
    from transports.clients import server_info, subscriber

    infos = {url: await server_info(url) for url in {u for _, _, u in spec.clients}}
    window = _Window()
    totals: dict[str, Any] = defaultdict(histogram.new)
    follow_stats: dict[str, list[FollowStats]] = defaultdict(list)
    connected: dict[str, int] = defaultdict(int)
    counts: dict[str, float] = {"late_connects": 0, "max_connect_late_ms": 0.0}
    end = spec.start_at + spec.duration

    async def client(transport: str, url: str) -> None:
        stats = FollowStats()
        follow_stats[transport].append(stats)
        opts = dict(spec.options.get(transport, {}))
        seen = False
        try:
            sub = await subscriber(transport, url, info=infos[url], **opts)
            events = follow(sub, None, channels={spec.channel: None}, stats=stats)
            async with contextlib.aclosing(events):
                async for event in events:
                    if isinstance(event, Delivered):
                        window.deliveries[transport] += 1
                        latency = event.received_at - event.message.sent_at
                        histogram.record_seconds(window.hists[transport], latency)
                        histogram.record_seconds(totals[transport], latency)
                    elif isinstance(event, Connected) and not seen:
                        seen = True
                        connected[transport] += 1
                    elif isinstance(event, Disconnected):
                        window.errors[transport] += 1
        except asyncio.CancelledError:
            raise
        except Exception:  # a fatal refusal or an error follow() gave up on
            window.errors[transport] += 1
        finally:
            if seen:
                connected[transport] -= 1

    async def probe() -> None:
        while True:
            t = time.monotonic()
            await asyncio.sleep(PROBE_S)
            histogram.record_seconds(window.lag, time.monotonic() - t - PROBE_S)

    async def report(kind: str) -> None:
        nonlocal window
        done, window = window, _Window()
        queue.put(
            {
                "shard": spec.index,
                "kind": kind,
                "t": time.time(),
                "connected": dict(connected),
                "deliveries": dict(done.deliveries),
                "errors": dict(done.errors),
                "hists": {n: histogram.encode(h) for n, h in done.hists.items()},
                "lag": histogram.encode(done.lag),
            }
        )

    tasks: list[asyncio.Task[None]] = [asyncio.ensure_future(probe())]
    try:
        next_report = time.time() + 1.0
        pending = list(spec.clients)
        while time.time() < end:
            now = time.time()
            while pending and spec.start_at + pending[0][0] / spec.connect_rate <= now:
                k, transport, url = pending.pop(0)
                late = now - (spec.start_at + k / spec.connect_rate)
                if late > 0.1:
                    counts["late_connects"] += 1
                counts["max_connect_late_ms"] = max(counts["max_connect_late_ms"], late * 1000)
                tasks.append(asyncio.ensure_future(client(transport, url)))
            if now >= next_report:
                await report("second")
                next_report += 1.0
            await asyncio.sleep(0.01)
        await report("second")
        # The totals first: closing thousands of connections takes a while and is not
        # part of the measurement.
        queue.put(_final(spec.index, counts, totals, follow_stats))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _final(
    index: int, counts: dict[str, float], totals: dict[str, Any], stats: dict[str, list[Any]]
) -> dict[str, Any]:
    final: dict[str, Any] = dict(counts)
    final.update(shard=index, kind="final")
    final["hists"] = {n: histogram.encode(h) for n, h in totals.items()}
    final["follow"] = {
        n: {
            "clients": len(s),
            "delivered": sum(x.delivered for x in s),
            "duplicates": sum(x.duplicates for x in s),
            "gaps": sum(x.gaps for x in s),
            "missing": sum(x.missing for x in s),
            "connects": sum(x.connects for x in s),
            "disconnects": sum(sum(x.disconnects.values()) for x in s),
        }
        for n, s in stats.items()
    }
    return final
