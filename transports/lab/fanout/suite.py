"""``transport-lab bench --suite fanout``: every target at every size, then the max-rate search.

Targets run one after another, each in a fresh server process, so no server inherits
another's heap or sockets. Results: ``fanout.csv`` (one row per target × size),
``fanout_search.csv`` (one row per search step), ``fanout_ratios.csv`` and JSON sidecars with
the environment, the plan and the goal checks.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from transports.lab import results
from transports.lab.fanout import goals
from transports.lab.fanout.procs import pinning
from transports.lab.fanout.runner import TARGETS, Plan, Run

DEFAULT_TARGETS = tuple(TARGETS)
SEARCH_TARGETS = ("lab-ws", "starlette-ws", "websockets")
DEFAULT_SEARCH: list[float] = [5_000, 10_000, 20_000, 30_000, 40_000, 50_000, 60_000, 70_000]


def run_suite(
    console: Console,
    out: Path,
    clients: list[int],
    rate: float,
    targets: list[str],
    duration_s: float,
    shards: int,
    search_clients: int | None,
    search: list[float],
    message_bytes: int = 256,
) -> dict[str, Any]:
    server_cpu, gen_cpu = pinning()
    base = Plan(clients=0, rate=rate, message_bytes=message_bytes, duration_s=duration_s,
                shards=shards, server_cpu=server_cpu, gen_cpu=gen_cpu)  # fmt: skip
    rows: list[dict[str, Any]] = []
    steps: list[dict[str, Any]] = []
    searched = [t for t in targets if t in SEARCH_TARGETS] if search_clients else []
    started = time.monotonic()
    columns = (
        TextColumn("[bold]{task.description}"), BarColumn(),
        TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
    )  # fmt: skip
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("starting", total=len(clients) * len(targets) + len(searched))
        for n in clients:
            for name in targets:
                progress.update(task, description=f"{name} × {n} clients")
                plan = Plan(**{**asdict(base), "clients": n})
                rows.append(_one(name, plan))
                progress.advance(task)
        for name in searched:
            assert search_clients is not None
            progress.update(task, description=f"max-rate {name} × {search_clients}")
            plan = Plan(**{**asdict(base), "clients": search_clients, "search": search,
                           "rate": search[0] / search_clients})  # fmt: skip

            def step(row: dict[str, Any], name: str = name) -> None:
                what = f"{row['offered_per_s']:,.0f}/s p99 {row['p99_ms']:.0f} ms"
                progress.update(task, description=f"max-rate {name}: {what}")

            with Run(TARGETS[name], plan) as run:
                run.connect()
                steps.extend(run.search(step))
            progress.advance(task)
    checks = goals.check(rows, steps)
    ratios = goals.ratio_rows(rows)
    meta = {"plan": asdict(base), "clients": clients, "targets": targets,
            "elapsed_s": time.monotonic() - started, "loadavg_end": os.getloadavg(),
            "goals": [{"goal": g, "met": m, "figure": f} for g, m, f in checks]}  # fmt: skip
    results.write(rows, out, meta, "fanout")
    if steps:
        results.write(steps, out, meta, "fanout_search")
    if ratios:
        results.write(ratios, out, meta, "fanout_ratios")
    print_report(console, rows, steps, ratios, checks)
    console.print(f"results: {out}/fanout.csv, fanout_search.csv, fanout_ratios.csv (+ .json)")
    return {"rows": rows, "search": steps, "ratios": ratios, "goals": checks}


def _one(name: str, plan: Plan) -> dict[str, Any]:
    try:
        with Run(TARGETS[name], plan) as run:
            return run.measure()
    except (RuntimeError, TimeoutError) as exc:
        return {"target": name, "server": TARGETS[name].label, "clients": plan.clients,
                "rate": plan.rate, "valid": False, "invalid_reason": str(exc)[:300]}  # fmt: skip


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.{digits}f}" if isinstance(value, float) else str(value)


def print_report(
    console: Console,
    rows: list[dict[str, Any]],
    steps: list[dict[str, Any]],
    ratios: list[dict[str, Any]],
    checks: list[tuple[str, bool | None, str]],
) -> None:
    table = Table(title="Fan-out: same feed, same generator, one server at a time")
    for col in ("server", "clients", "CPU µs/deliv", "p50 ms", "p99 ms", "max ms",
                "KB/conn", "connect s", "GC max ms", "lost/dup", "gen busy", "valid"):  # fmt: skip
        table.add_column(col, justify="left" if col == "server" else "right")
    for r in rows:
        table.add_row(
            r["server"], str(r["clients"]), _fmt(r.get("cpu_us_per_delivery")),
            _fmt(r.get("p50_ms")), _fmt(r.get("p99_ms")), _fmt(r.get("max_ms")),
            _fmt(r.get("rss_per_conn_kb")), _fmt(r.get("connect_s"), 2),
            _fmt(r.get("gc_max_ms")), f"{r.get('lost', '–')}/{r.get('dup', '–')}",
            _fmt(r.get("gen_busy"), 2),
            "yes" if r.get("valid") else f"[red]no: {r.get('invalid_reason', '')}[/]",
        )  # fmt: skip
    console.print(table)
    if ratios:
        rt = Table(title="Ratios (target ÷ baseline, same run)")
        for col in ("clients", "target", "baseline", "CPU", "p50", "p99", "KB/conn", "connect"):
            rt.add_column(col, justify="right")
        for r in ratios:
            keys = ("cpu_us_per_delivery", "p50_ms", "p99_ms", "rss_per_conn_kb", "connect_s")
            rt.add_row(
                str(r["clients"]), r["target"], r["baseline"],
                *(_fmt(r[f"{k}_ratio"], 2) for k in keys),
            )  # fmt: skip
        console.print(rt)
    if steps:
        st = Table(title="Max-rate search (p99 < 50 ms, ≥ 97 % of offered delivered, none lost)")
        for col in ("server", "offered/s", "delivered/s", "p99 ms", "CPU busy", "gen busy", "pass"):
            st.add_column(col, justify="right")
        for s in steps:
            st.add_row(s["server"], _fmt(s["offered_per_s"], 0), _fmt(s["deliveries_per_s"], 0),
                       _fmt(s["p99_ms"]), _fmt(s["server_cpu_busy"], 2), _fmt(s["gen_busy"], 2),
                       "yes" if s["passed"] else f"no {s['invalid_reason']}")  # fmt: skip
        console.print(st)
    gt = Table(title="Goals (issue 15)")
    for col in ("goal", "met", "figure"):
        gt.add_column(col)
    for goal, met, figure in checks:
        gt.add_row(goal, {True: "[green]met[/]", False: "[red]not met[/]", None: "–"}[met], figure)
    console.print(gt)
