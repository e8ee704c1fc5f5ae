"""``transport-lab compare`` and ``transport-lab bench --scenario FILE.toml``.

Both run a :class:`~transports.lab.scenario.Scenario` (latency, resources) plus the wire-byte
measurement per transport, show a rich progress bar, print the summary table, and write
``latency.csv``/``wire.csv`` (+ JSON sidecars with the environment) and ``compare.png`` into
the output folder.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

if TYPE_CHECKING:  # the lab extra (hdrhistogram, pandas) is imported only when a run starts
    from transports.lab.scenario import Scenario

# Piped output (CI logs, the README) would otherwise be cut to 80 columns.
console = Console(width=None if sys.stdout.isatty() else 180)


def available(names: list[str]) -> list[str]:
    """The transports whose optional dependencies are installed here."""
    import importlib

    from transports.clients import CLIENTS

    out = []
    for name in names:
        try:
            importlib.import_module(CLIENTS[name].split(":")[0])
        except ImportError as exc:
            console.print(f"[yellow]skipping {name}: {exc}[/]")
            continue
        out.append(name)
    return out


def execute(
    scenario: Scenario,
    out: Path,
    wire_messages: int = 200,
    idle_s: float = 3.0,
    wire: bool = True,
) -> tuple[Any, Any]:
    """Run ``scenario`` and the wire measurement; write results and chart; return frames."""
    import pandas as pd

    from transports.lab import report, results
    from transports.lab import wire as wire_mod
    from transports.lab.scenario import run_cell

    runs = scenario.runs()
    wire_cells = list(dict.fromkeys(
        (c["transport"], c["payload_bytes"], c["payload_kind"], c["compression"])
        for c, _ in runs
    )) if wire else []  # fmt: skip
    rows: list[dict[str, Any]] = []
    wire_rows: list[dict[str, Any]] = []
    started = time.monotonic()
    columns = (
        TextColumn("[bold]{task.description}"), BarColumn(),
        TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
    )  # fmt: skip
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("starting", total=len(runs) + len(wire_cells))
        for cell, rep in runs:
            progress.update(task, description=f"latency {cell['transport']} #{rep + 1}")
            rows.append(run_cell(scenario, cell, rep))
            progress.advance(task)
        for t, size, kind, comp in wire_cells:
            progress.update(task, description=f"wire bytes {t}")
            w = wire_mod.measure(
                t, size, kind, comp, messages=wire_messages, rate=200.0, idle_s=idle_s
            )
            wire_rows.append(w.row())
            progress.advance(task)
    meta = {"scenario": scenario.as_dict(), "elapsed_s": time.monotonic() - started}
    results.write(rows, out, meta, "latency")
    if wire_rows:
        results.write(wire_rows, out, meta, "wire")
    latency = pd.DataFrame(rows)
    wire_df = pd.DataFrame(wire_rows) if wire_rows else None
    if wire_df is not None:
        wire_df = wire_df[~wire_df["compression"].astype(bool)]
    summary = report.summarize(latency, wire_df)
    summary.to_csv(out / "summary.csv", index=False)
    console.print(report.table(summary, f"Transport Lab — {scenario.name}"))
    png = report.chart(summary, out / "compare.png", f"Transport Lab — {scenario.name}")
    invalid = latency[~latency["valid"]]
    for _, row in invalid.iterrows():
        console.print(
            f"[red]invalid run[/] {row['transport']} #{row['repeat']}: lost={row['lost']} "
            f"lag_tail={row['lag_tail_ms']:.1f} ms {row['errors']}"
        )
    console.print(f"results: {out}/latency.csv, wire.csv, summary.csv; chart: {png}")
    console.print("CPU placement per run is in latency.csv (server_cpu, client_cpus).")
    return latency, wire_df


def compare(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("lab-results"),
    transports: Annotated[str, typer.Option(help="Comma-separated.")] = "ws,sse,poll,webrtc,mqtt",
    clients: Annotated[int, typer.Option(help="Subscribers per transport.")] = 4,
    rate: Annotated[float, typer.Option(help="Messages per second.")] = 200.0,
    payload_bytes: Annotated[int, typer.Option(help="Approximate message size.")] = 256,
    duration: Annotated[float, typer.Option(help="Measured seconds per run.")] = 3.0,
    warmup: Annotated[float, typer.Option(help="Warm-up seconds (not measured).")] = 0.5,
    repeats: Annotated[int, typer.Option(help="Repeats per transport (spread).")] = 2,
) -> None:
    """Quick side-by-side run of every transport: latency, bytes, CPU, memory."""
    from transports.lab.scenario import Scenario

    names = available([n.strip() for n in transports.split(",") if n.strip()])
    scenario = Scenario(
        name="compare", transports=names, clients=[clients], rate=[rate],
        payload_bytes=[payload_bytes], warmup_s=warmup, duration_s=duration, repeats=repeats,
    )  # fmt: skip
    scenario.validate()
    execute(scenario, out, wire_messages=100, idle_s=2.0)


def bench(
    scenario: Annotated[Path | None, typer.Option(help="Scenario TOML file.")] = None,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("lab-results"),
    wire: Annotated[bool, typer.Option(help="Also measure wire bytes.")] = True,
    suite: Annotated[
        str | None, typer.Option(help="A built-in suite instead of a scenario: fanout.")
    ] = None,
    quick: Annotated[bool, typer.Option(help="fanout: a short smoke run (CI).")] = False,
    clients: Annotated[str, typer.Option(help="fanout: client counts.")] = "100,1000,2000",
    rate: Annotated[float, typer.Option(help="fanout: messages/s.")] = 10.0,
    duration: Annotated[float, typer.Option(help="fanout: measured s per run.")] = 10.0,
    targets: Annotated[str, typer.Option(help="fanout: servers, comma-separated.")] = "all",
    search_clients: Annotated[
        int, typer.Option(help="fanout: clients for the max-rate search (0 = none).")
    ] = 1000,
) -> None:
    """Run a TOML scenario (see docs/lab.md), or ``--suite fanout`` (docs/fanout.md)."""
    if suite is not None:
        from transports.lab.fanout import command

        command.run(console, suite, out, quick, clients, rate, duration, targets, search_clients)
        return
    if scenario is None:
        raise typer.BadParameter("give --scenario FILE.toml or --suite fanout")
    from transports.lab.scenario import Scenario

    sc = Scenario.load(scenario)
    sc.transports = available(sc.transports)
    execute(sc, out, wire=wire)
