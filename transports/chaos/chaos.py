"""Fault scenarios and the resume scoreboard: transport × fault → detect, recover, lost, dup.

One run: a :class:`~transports.live.LiveServer` serving one transport with its own ticker
publishing at ``rate``; a client following it through a fault proxy (and, for WebRTC, the
UDP relay) with :func:`~transports.client.follow`; a fault injected after a warm-up and
cleared later; then the publisher stops and the client gets a bounded time to catch up.

- *detect*: fault start → the client's first ``Disconnected`` (``None``: never noticed);
- *recover*: fault cleared → first message delivered after it;
- *lost*: published seqs of the final epoch never delivered; *dup*/*reordered*: at the
  application (after ``follow()``); *raw_dup*: duplicates ``follow()`` dropped; *gaps*:
  messages the transport reported or follow() inferred as missing.

The heartbeat interval ``heartbeat`` (s) sets every transport's keepalive (WS ping, SSE
comment, long-poll hold, WebRTC channel ping, MQTT keepalive rounded up to whole seconds)
and the watchdog (three intervals), so a blackhole should be detected within the watchdog.
The client paths and faults are in :mod:`transports.chaos.rig`; MQTT goes through a proxy in
front of the broker too, and ``broker_restart`` restarts Mosquitto (persistence on).

*bytes_fault* counts payload bytes both ways through the proxies/relay from the fault until
the client caught up; *bytes_extra* subtracts what the same messages cost per message in
the steady state before the fault: what reconnecting (handshakes, hello, resubscribing) and
replaying (re-sent or re-framed messages) added.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from transports.backoff import Backoff
from transports.chaos.rig import Rig, server_config, watchdog
from transports.client import Connected, Delivered, Disconnected, EpochChanged, FollowStats, follow
from transports.live import LiveServer

SCENARIOS = {
    "cut": "RST both ways",
    "blackhole_short": "silent for 0.5 × watchdog",
    "blackhole_long": "silent for 2 × watchdog",
    "latency_loss": "+200 ± 50 ms (TCP), + 5 % loss on UDP",
    "restart_memory": "server restart, in-memory history",
    "restart_sqlite": "server restart, sqlite history",
    "broker_restart": "Mosquitto restart with persistence (MQTT only)",
}


@dataclass(slots=True)
class Row:
    transport: str
    scenario: str
    detect_s: float | None = None
    recover_s: float | None = None
    published: int = 0
    delivered: int = 0
    lost: int = 0
    dup: int = 0
    reordered: int = 0
    raw_dup: int = 0
    gaps: int = 0
    epoch_changed: bool = False
    reconnects: int = 0
    connections: int = 0  # TCP connections opened through the proxies after the fault
    bytes_fault: int = 0  # bytes both ways, fault start → caught up
    bytes_extra: int = 0  # bytes_fault minus what the same messages cost before the fault
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class Trace:
    seqs: list[tuple[str | None, int, float]] = field(default_factory=list)
    disconnects: list[float] = field(default_factory=list)
    connects: list[float] = field(default_factory=list)
    epoch_changes: int = 0


async def run_one(
    name: str,
    scenario: str,
    *,
    rate: float = 20.0,
    heartbeat: float = 1.0,
    warmup: float = 1.0,
    settle: float = 1.5,
) -> Row:
    """Run one transport × scenario and score it (bounded: about 10 × heartbeat + 10 s)."""
    row = Row(name, scenario)
    if scenario == "broker_restart" and name != "mqtt":
        row.error = "n/a: only MQTT has a broker"
        return row
    wd = watchdog(name, heartbeat)
    with tempfile.TemporaryDirectory(prefix="transport-lab-chaos-") as tmp:
        history = f"sqlite:///{Path(tmp) / 'feed.db'}" if scenario == "restart_sqlite" else None
        rig = await Rig.open(name, server_config(heartbeat, rate, history), heartbeat)
        trace, stats = Trace(), FollowStats()
        try:
            sub = await rig.subscriber()
            quick = Backoff(initial=0.1, maximum=1.0)
            events = follow(sub, 0, idle_timeout=wd, stats=stats, backoff=quick)
            task = asyncio.create_task(_collect(events, trace))
            await asyncio.sleep(warmup / 2)
            b0, n0 = rig.bytes(), len(trace.seqs)
            await asyncio.sleep(warmup / 2)
            b1, n1, c1 = rig.bytes(), len(trace.seqs), rig.connections()
            t_fault = time.monotonic()
            t_clear = await _inject(scenario, rig, wd)
            await asyncio.sleep(settle + (wd if scenario == "cut" else 0))
            last = await asyncio.to_thread(rig.live.call, _stop_ticker, rig.live)
            await _catch_up(trace, last, timeout=max(5.0, 2 * wd))
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            _score(row, trace, stats, t_fault, t_clear, last)
            # Bytes from the fault until caught up, and what the same messages cost in the
            # steady state before it: the difference went on reconnecting and replaying.
            row.bytes_fault = rig.bytes() - b1
            per_message = (b1 - b0) / max(1, n1 - n0)
            row.bytes_extra = round(row.bytes_fault - per_message * (len(trace.seqs) - n1))
            row.connections = rig.connections() - c1
        except Exception as exc:  # one broken cell must not sink the scoreboard
            row.error = f"{type(exc).__name__}: {exc}"[:120]
        finally:
            await rig.close()
    return row


async def _inject(scenario: str, rig: Rig, wd: float) -> float:
    """Apply the fault; return when it was cleared (monotonic)."""
    if scenario == "cut":
        rig.cut()
    elif scenario.startswith("blackhole"):
        rig.blackhole()
        await asyncio.sleep(wd * (0.5 if scenario == "blackhole_short" else 2))
        rig.clear()
    elif scenario == "latency_loss":
        rig.latency_loss()
        await asyncio.sleep(2 * wd)
        rig.clear()
    elif scenario.startswith("restart"):
        await rig.restart_server()
    elif scenario == "broker_restart":
        await rig.restart_broker()
    else:
        raise ValueError(f"unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}")
    return time.monotonic()


def _stop_ticker(live: LiveServer) -> tuple[str, int]:
    ctx = live.ctx
    ctx.ticker.configure(rate=0)
    return (ctx.feed.epoch, ctx.feed.last_seq)


async def _collect(events: Any, trace: Trace) -> None:
    epoch: str | None = None
    async for ev in events:
        now = time.monotonic()
        if isinstance(ev, Delivered):
            trace.seqs.append((epoch, ev.message.seq, now))
        elif isinstance(ev, Connected):
            epoch = epoch or ev.epoch
            trace.connects.append(now)
        elif isinstance(ev, EpochChanged):
            epoch = ev.epoch
            trace.epoch_changes += 1
        elif isinstance(ev, Disconnected):
            trace.disconnects.append(now)


async def _catch_up(trace: Trace, last: tuple[str, int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(s == last[1] for _, s, _ in trace.seqs[-5:]):
            return
        await asyncio.sleep(0.05)


def _score(
    row: Row,
    trace: Trace,
    stats: FollowStats,
    t_fault: float,
    t_clear: float,
    last: tuple[str, int],
) -> None:
    row.detect_s = next((t - t_fault for t in trace.disconnects if t >= t_fault), None)
    row.recover_s = next((t - t_clear for _, _, t in trace.seqs if t >= t_clear), None)
    row.epoch_changed = trace.epoch_changes > 0
    final = [s for e, s, _ in trace.seqs if e == trace.seqs[-1][0]] if trace.seqs else []
    row.published = last[1]
    row.delivered = len(trace.seqs)
    row.dup = len(final) - len(set(final))
    row.reordered = sum(1 for a, b in itertools.pairwise(final) if b < a)
    # A new epoch starts at 1: what the old epoch published after the client's last is
    # reported by the epoch change, not counted here.
    row.lost = len(set(range(1, last[1] + 1)) - set(final))
    row.raw_dup = stats.duplicates
    row.gaps = stats.missing
    row.reconnects = max(0, stats.connects - 1)


async def run_scoreboard(
    transports: list[str],
    scenarios: list[str],
    *,
    rate: float = 20.0,
    heartbeat: float = 1.0,
    console: Console | None = None,
) -> list[Row]:
    from rich.progress import Progress

    rows = []
    with Progress(console=console, transient=True) as progress:
        cells = [
            (s, n)
            for s in scenarios
            for n in transports
            if s != "broker_restart" or n == "mqtt"  # only MQTT has a broker
        ]
        job = progress.add_task("chaos", total=len(cells))
        for scenario, name in cells:
            progress.update(job, description=f"{name} × {scenario}")
            rows.append(await run_one(name, scenario, rate=rate, heartbeat=heartbeat))
            progress.advance(job)
    return rows


def scoreboard_table(rows: list[Row]) -> Table:
    table = Table(title="Resume scoreboard (application level, after follow())")
    for col in (
        "transport",
        "scenario",
        "detect s",
        "recover s",
        "published",
        "lost",
        "dup",
        "reordered",
        "raw dup",
        "gaps",
        "epoch Δ",
        "reconnects",
        "bytes",
        "extra bytes",
        "error",
    ):
        table.add_column(col, justify="left" if col in ("transport", "scenario") else "right")
    for r in rows:
        ok = r.lost == 0 and r.dup == 0 and not r.error
        table.add_row(
            r.transport,
            r.scenario,
            _s(r.detect_s),
            _s(r.recover_s),
            str(r.published),
            f"[{'green' if ok else 'red'}]{r.lost}[/]",
            str(r.dup),
            str(r.reordered),
            str(r.raw_dup),
            str(r.gaps),
            "yes" if r.epoch_changed else "",
            str(r.reconnects),
            str(r.bytes_fault),
            str(r.bytes_extra),
            r.error,
        )
    return table


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
