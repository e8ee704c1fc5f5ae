"""The parent of a load run: shards, the open-loop publisher, the live display, results.

Clients are dealt to ``processes`` shard processes (``spawn``; client ``k`` to shard
``k % processes``). The parent publishes ``publish_rate`` messages/s to the plan's channel
over HTTP (``POST /api/channels/{channel}/messages``, the URLs in turn), each publish a task
of its own at its scheduled time: at most ``MAX_IN_FLIGHT`` at once, and a publish due
while that many are still waiting is **skipped and counted** — the parent's own lag, like
the shards' event-loop lag, is reported so the tool never silently becomes the bottleneck.

Results (``transports.lab.results`` format): ``load.csv`` one row per transport and one for
all (clients, deliveries, deliveries/s, latency percentiles, errors, follow()'s duplicates,
gaps and missing), ``load-timeline.csv`` one row per second, and the JSON sidecars.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import queue as queue_mod
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from transports.lab import histogram, results
from transports.lab.load.plan import Plan
from transports.lab.load.shard import ShardSpec, main

MAX_IN_FLIGHT = 200
LAG_WARN_MS = 50.0
FOLLOW_KEYS = ("clients", "delivered", "duplicates", "gaps", "missing", "disconnects")
START_DELAY = 2.0  # seconds for the shard processes to start before client 0 connects


class Progress:
    """Per-second totals merged from every shard's report."""

    def __init__(self) -> None:
        self.seconds: dict[int, dict[str, Any]] = {}
        self.last: dict[int, dict[str, int]] = {}  # shard -> connected per transport
        self.publish = {"sent": 0, "acked": 0, "failed": 0, "skipped": 0}
        self.publish_hist = histogram.new()
        self.errors: list[str] = []

    def add(self, report: dict[str, Any], start: float) -> dict[str, Any]:
        second = int(report["t"] - start)
        row = self.seconds.setdefault(
            second,
            {"deliveries": 0, "errors": 0, "hist": histogram.new(), "lag": histogram.new()},
        )
        row["deliveries"] += sum(report["deliveries"].values())
        row["errors"] += sum(report["errors"].values())
        for text in report["hists"].values():
            row["hist"].add(histogram.decode(text))
        row["lag"].add(histogram.decode(report["lag"]))
        self.last[report["shard"]] = report["connected"]
        row["connected"] = self.connected
        return row

    @property
    def connected(self) -> int:
        return sum(sum(c.values()) for c in self.last.values())


def _table(progress: Progress, plan: Plan, elapsed: float) -> Any:
    from rich.table import Table

    table = Table(title=f"transport-lab load — {elapsed:5.1f} / {plan.duration:g} s")
    for col in ("s", "connected", "deliveries/s", "p50 ms", "p99 ms", "errors", "lag p99 ms"):
        table.add_column(col, justify="right")
    for second in sorted(progress.seconds)[-8:]:
        row = progress.seconds[second]
        hist, lag = row["hist"], row["lag"]
        count = hist.get_total_count()
        table.add_row(
            str(second),
            str(row.get("connected", 0)),
            str(row["deliveries"]),
            f"{hist.get_value_at_percentile(50) / 1000:.1f}" if count else "-",
            f"{hist.get_value_at_percentile(99) / 1000:.1f}" if count else "-",
            str(row["errors"]),
            f"{lag.get_value_at_percentile(99) / 1000:.1f}",
        )
    p = progress.publish
    table.caption = (
        f"publishes sent {p['sent']} acked {p['acked']} failed {p['failed']} "
        f"skipped {p['skipped']} (open loop, {plan.publish_rate:g}/s)"
    )
    return table


async def _publisher(plan: Plan, start: float, progress: Progress, end: float) -> None:
    if plan.publish_rate <= 0:
        return
    headers = {"Authorization": f"Bearer {plan.token}"} if plan.token else {}
    limits = httpx.Limits(max_connections=MAX_IN_FLIGHT)
    pad = "x" * plan.payload_bytes
    in_flight: set[asyncio.Task[None]] = set()
    async with httpx.AsyncClient(timeout=10, headers=headers, limits=limits) as http:

        async def one(j: int) -> None:
            url = plan.urls[j % len(plan.urls)].rstrip("/")
            t0 = time.monotonic()
            try:
                response = await http.post(
                    f"{url}/api/channels/{quote(plan.channel, safe=':')}/messages",
                    json={"data": {"load": j, "pad": pad}, "id": f"load-{start:.0f}-{j}"},
                )
                ok = response.status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok:
                progress.publish["acked"] += 1
                histogram.record_seconds(progress.publish_hist, time.monotonic() - t0)
            else:
                progress.publish["failed"] += 1

        j = 0
        while True:
            due = start + j / plan.publish_rate
            if due >= end:
                break
            await asyncio.sleep(max(0.0, due - time.time()))
            if len(in_flight) >= MAX_IN_FLIGHT:
                progress.publish["skipped"] += 1
            else:
                progress.publish["sent"] += 1
                task = asyncio.ensure_future(one(j))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            j += 1
        await asyncio.gather(*in_flight, return_exceptions=True)


async def run(
    plan: Plan, out: str | Path | None = None, show: Callable[[Any], None] | None = None
) -> dict[str, Any]:
    """Run the plan; returns the summary (and writes result files into ``out``)."""
    plan.check()
    clients = plan.assignments()
    start = time.time() + START_DELAY
    end = start + plan.duration
    ctx = multiprocessing.get_context("spawn")
    reports: Any = ctx.Queue()
    specs = [
        ShardSpec(
            i,
            [(k, t, u) for k, (t, u) in enumerate(clients) if k % plan.processes == i],
            plan.channel,
            plan.connect_rate,
            start,
            plan.duration,
            plan.options,
        )
        for i in range(plan.processes)
    ]
    procs = [ctx.Process(target=main, args=(s, reports), daemon=True) for s in specs if s.clients]
    for proc in procs:
        proc.start()
    progress = Progress()
    finals: list[dict[str, Any]] = []
    publisher = asyncio.ensure_future(_publisher(plan, start, progress, end))
    try:
        while len(finals) < len(procs):
            try:
                report = await asyncio.to_thread(reports.get, True, 0.5)
            except queue_mod.Empty:
                if time.time() > end + 30 or not any(p.is_alive() for p in procs):
                    break
                continue
            if report["kind"] == "second":
                progress.add(report, start)
                if show is not None:
                    show(_table(progress, plan, time.time() - start))
            elif report["kind"] == "final":
                finals.append(report)
            else:
                progress.errors.append(f"shard {report['shard']}: {report['error']}")
                finals.append({"hists": {}, "follow": {}})
        await publisher
    finally:
        publisher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await publisher
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
        reports.close()
    return _summarise(plan, progress, finals, out)


def _summarise(
    plan: Plan, progress: Progress, finals: list[dict[str, Any]], out: str | Path | None
) -> dict[str, Any]:
    per: dict[str, Any] = defaultdict(histogram.new)
    follow: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for final in finals:
        for name, text in final["hists"].items():
            per[name].add(histogram.decode(text))
        for name, counts in final["follow"].items():
            for key, value in counts.items():
                follow[name][key] += value
    lag = histogram.new()
    for row in progress.seconds.values():
        lag.add(row["lag"])
    lag_p99 = lag.get_value_at_percentile(99) / 1000 if lag.get_total_count() else 0.0
    rows = []
    everything = histogram.new()
    for name in sorted(per):
        everything.add(per[name])
    for name, hist in [*sorted(per.items()), ("all", everything)]:
        if name == "all":
            counts = {k: sum(f.get(k, 0) for f in follow.values()) for k in FOLLOW_KEYS}
        else:
            counts = follow[name]
        rows.append(
            {
                "transport": name,
                "clients": counts.get("clients", 0),
                "deliveries": hist.get_total_count(),
                "deliveries_per_s": round(hist.get_total_count() / plan.duration, 1),
                **{k: round(v, 2) for k, v in histogram.summary(hist).items() if k != "count"},
                "duplicates": counts.get("duplicates", 0),
                "gaps": counts.get("gaps", 0),
                "missing": counts.get("missing", 0),
                "disconnects": counts.get("disconnects", 0),
                "tool_lag_p99_ms": round(lag_p99, 2),
            }
        )
    publish = dict(progress.publish)
    if progress.publish_hist.get_total_count():
        publish |= {
            f"ack_{k}": round(v, 2)
            for k, v in histogram.summary(progress.publish_hist).items()
            if k in ("p50_ms", "p99_ms")
        }
    summary: dict[str, Any] = {
        "rows": rows,
        "publish": publish,
        "peak_connected": max(
            (r.get("connected", 0) for r in progress.seconds.values()), default=0
        ),
        "tool_lag_p99_ms": lag_p99,
        "tool_saturated": lag_p99 > LAG_WARN_MS or publish["skipped"] > 0,
        "errors": progress.errors,
    }
    if out is not None:
        meta: dict[str, Any] = {
            "plan": {k: getattr(plan, k) for k in plan.__slots__ if k != "token"}
        }
        meta |= {"publish": publish, "tool_lag_p99_ms": lag_p99, "errors": progress.errors}
        results.write(rows, out, meta, name="load")
        timeline = [
            {
                "second": s,
                "connected": r.get("connected", 0),
                "deliveries": r["deliveries"],
                "errors": r["errors"],
                **{
                    k: round(v, 2)
                    for k, v in histogram.summary(r["hist"]).items()
                    if k in ("p50_ms", "p99_ms")
                },
                "lag_p99_ms": round(r["lag"].get_value_at_percentile(99) / 1000, 2),
            }
            for s, r in sorted(progress.seconds.items())
        ]
        results.write(timeline, out, meta, name="load-timeline")
        summary["files"] = [str(Path(out) / "load.csv"), str(Path(out) / "load-timeline.csv")]
    return summary
