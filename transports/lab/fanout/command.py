"""Parse ``bench --suite fanout`` options into a suite run (kept out of the CLI module)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from transports.lab.fanout.runner import MAX_CLIENTS, TARGETS
from transports.lab.fanout.suite import DEFAULT_SEARCH, run_suite


def run(
    console: Console,
    suite: str,
    out: Path,
    quick: bool,
    clients: str,
    rate: float,
    duration: float,
    targets: str,
    search_clients: int,
) -> None:
    if suite != "fanout":
        raise typer.BadParameter(f"unknown suite {suite!r}; choose from: fanout")
    sizes = [int(c) for c in clients.split(",") if c.strip()]
    names = list(TARGETS) if targets == "all" else [t.strip() for t in targets.split(",")]
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        raise typer.BadParameter(f"unknown target(s) {unknown}; choose from {', '.join(TARGETS)}")
    if not sizes or max(sizes) > MAX_CLIENTS or min(sizes) < 1 or not 0 < rate <= 1000:
        raise typer.BadParameter(f"clients within 1..{MAX_CLIENTS}, rate within (0, 1000]")
    search: list[float] = list(DEFAULT_SEARCH)
    shards = 2
    if quick:
        # CI smoke: every target, tiny sizes, two search steps; figures are not the point.
        sizes, duration, shards, search_clients = [20], 1.0, 1, 20
        search = [200.0, 400.0]
    run_suite(console, out, sizes, rate, names, duration, shards, search_clients or None, search)
