"""``transport-lab chaos`` (fault scenarios, scoreboard), ``heartbeats`` (detection time vs
heartbeat interval) and ``storm`` (reconnect storms). Heavy imports happen inside the
commands, so ``transport-lab --help`` stays fast."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

# Wide enough for the scoreboard even when piped (rich assumes 80 columns then).
console = Console(width=None if Console().is_terminal else 150)


def chaos(
    transports: Annotated[str, typer.Option(help="Comma-separated transports.")] = (
        "ws,sse,poll,webrtc,mqtt"
    ),
    scenarios: Annotated[str, typer.Option(help="Comma-separated scenarios, or 'all'.")] = "all",
    rate: Annotated[float, typer.Option(help="Messages/s published during a run.")] = 20.0,
    heartbeat: Annotated[float, typer.Option(help="Client heartbeat interval, s.")] = 1.0,
    out: Annotated[
        str | None, typer.Option("--out", help="Write the scoreboard CSV to this file.")
    ] = None,
    output: Annotated[str | None, typer.Option("--output", hidden=True)] = None,
) -> None:
    """Run fault scenarios against a local lab server and print the scoreboard."""
    output = out or output  # --output: the option's earlier name, still accepted
    import asyncio

    from transports.chaos.chaos import SCENARIOS, run_scoreboard, scoreboard_table
    from transports.lab.cli import transport_names

    names = transport_names(transports)
    chosen = list(SCENARIOS) if scenarios == "all" else [s.strip() for s in scenarios.split(",")]
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown:
        raise typer.BadParameter(f"unknown scenario(s) {unknown}; choose from {list(SCENARIOS)}")
    rows = asyncio.run(
        run_scoreboard(names, chosen, rate=rate, heartbeat=heartbeat, console=console)
    )
    console.print(scoreboard_table(rows))
    if output:
        import pandas as pd

        pd.DataFrame([r.as_dict() for r in rows]).to_csv(output, index=False)
        console.print(f"wrote {output}")


def heartbeats(
    transports: Annotated[str, typer.Option(help="Comma-separated transports.")] = (
        "ws,sse,poll,webrtc,mqtt"
    ),
    intervals: Annotated[str, typer.Option(help="Comma-separated heartbeat intervals, s.")] = (
        "0.5,1,2,5"
    ),
) -> None:
    """Blackhole detection time and idle bytes per hour vs heartbeat interval."""
    import asyncio

    from transports.chaos.heartbeat import sweep
    from transports.cli_errors import fail
    from transports.lab.cli import transport_names

    names = transport_names(transports)
    try:
        hs = [float(h) for h in intervals.split(",")]
    except ValueError:
        fail(f"--intervals must be numbers separated by commas, got {intervals!r}")
    if not hs or any(not 0 < h <= 60 for h in hs):
        fail("--intervals must each be within (0, 60] s")
    with console.status("heartbeat sweep"):
        beats = asyncio.run(sweep(names, hs))
    table = Table(title="Blackhole detection vs heartbeat interval (idle connection)")
    for col in ("transport", "interval s", "detected s", "bound s", "within", "idle KB/h", "by"):
        table.add_column(col, justify="left" if col in ("transport", "by") else "right")
    for b in beats:
        detected = "-" if b.detect_s is None else f"{b.detect_s:.2f}"
        ok = f"[{'green' if b.within else 'red'}]{'yes' if b.within else 'NO'}[/]"
        by = b.error or b.reason
        table.add_row(
            b.transport, f"{b.interval:g}", detected, f"{b.bound_s:g}", ok,
            f"{b.idle_bytes_per_hour / 1000:.1f}", by,
        )  # fmt: skip
    console.print(table)


def storm(
    policies: Annotated[str, typer.Option(help="Comma-separated policies, or 'all'.")] = (
        "exponential,full_jitter"
    ),
    clients: Annotated[int, typer.Option(min=1, max=5000, help="WebSocket clients.")] = 1000,
    processes: Annotated[int, typer.Option(min=1, max=16, help="Client processes.")] = 4,
    down: Annotated[float, typer.Option(help="Seconds the server stays unreachable.")] = 3.0,
) -> None:
    """Reconnect storm: clients lose the server at once; accepted connections per 100 ms."""
    import asyncio

    from transports.chaos.storm import storm_sweep
    from transports.policies import PRESETS

    chosen = list(PRESETS) if policies == "all" else [p.strip() for p in policies.split(",")]
    unknown = [p for p in chosen if p not in PRESETS]
    if unknown:
        raise typer.BadParameter(f"unknown policies {unknown}; choose from {list(PRESETS)}")
    with console.status(f"{clients} clients, {len(chosen)} storms"):
        storms = asyncio.run(storm_sweep(chosen, clients=clients, processes=processes, down=down))
    table = Table(title=f"Reconnect storm: {clients} clients, server away {down:g} s")
    for col in ("policy", "peak accepts/s", "all back after s", "returned", "error"):
        table.add_column(col, justify="left" if col in ("policy", "error") else "right")
    for s in storms:
        back = "-" if s.back_s is None else f"{s.back_s:.2f}"
        table.add_row(s.policy, f"{s.peak_per_s:.0f}", back, str(s.returned), s.error)
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command()(chaos)
    app.command()(heartbeats)
    app.command()(storm)
