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
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from transports.cli_errors import fail

if TYPE_CHECKING:  # the lab extra (hdrhistogram, pandas) is imported only when a run starts
    from transports.lab.scenario import Scenario

# Piped output (CI logs, the README) would otherwise be cut to 80 columns.
console = Console(width=None if sys.stdout.isatty() else 180)


# Seconds a run costs beyond its warm-up and measured window (server start, client
# processes spawned and connected, results merged), and a wire-byte cell beyond its messages
# and idle window: measured on a 2-core machine, for the estimate printed before a run.
RUN_OVERHEAD_S = 3.0
WIRE_OVERHEAD_S = 4.0


def estimate(scenario: Scenario, wire_cells: int, wire_messages: int, idle_s: float) -> float:
    """Roughly how long :func:`execute` will take, in seconds."""
    per_run = scenario.warmup_s + scenario.duration_s + RUN_OVERHEAD_S
    per_wire = wire_messages / 200.0 + max(idle_s, 6.0) + WIRE_OVERHEAD_S
    return len(scenario.runs()) * per_run + wire_cells * per_wire


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def transport_names(value: str) -> list[str]:
    """Parse ``--transports``; an unknown name is a usage error (one line, exit 2)."""
    from transports.clients import CLIENTS

    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in CLIENTS]
    if unknown or not names:
        fail(f"unknown transport(s) {', '.join(unknown) or '(none given)'}; "
             f"choose from {', '.join(CLIENTS)}")  # fmt: skip
    return names


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
    per_run = scenario.warmup_s + scenario.duration_s + RUN_OVERHEAD_S
    per_wire = wire_messages / 200.0 + max(idle_s, 6.0) + WIRE_OVERHEAD_S
    total = estimate(scenario, len(wire_cells), wire_messages, idle_s)
    console.print(
        f"{len(runs)} latency runs + {len(wire_cells)} wire-byte runs: about "
        f"{_minutes(total)} on a 2-core machine"
    )
    columns = (
        TextColumn("[bold]{task.description}"), BarColumn(),
        TextColumn("{task.fields[done]}/{task.fields[items]}"), TimeElapsedColumn(),
        TextColumn("ETA"), TimeRemainingColumn(),
    )  # fmt: skip
    with Progress(*columns, console=console) as progress:
        items = len(runs) + len(wire_cells)
        task = progress.add_task("starting", total=total, done=0, items=items)
        done = 0
        for cell, rep in runs:
            progress.update(task, description=f"latency {cell['transport']} #{rep + 1}")
            rows.append(run_cell(scenario, cell, rep))
            done += 1
            progress.update(task, advance=per_run, done=done)
        for t, size, kind, comp in wire_cells:
            progress.update(task, description=f"wire bytes {t}")
            w = wire_mod.measure(
                t, size, kind, comp, messages=wire_messages, rate=200.0, idle_s=idle_s
            )
            wire_rows.append(w.row())
            done += 1
            progress.update(task, advance=per_wire, done=done)
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
    from transports.palette import conditions

    cells = scenario.cells()
    axes = {k: sorted({c[k] for c in cells}) for k in ("clients", "rate", "payload_bytes")}
    cond = conditions(
        clients="/".join(map(str, axes["clients"])),
        rate="/".join(f"{r:g}" for r in axes["rate"]) + " msg/s",
        payload="/".join(map(str, axes["payload_bytes"])) + " B",
        measured=f"{scenario.duration_s:g} s × {scenario.repeats} repeats",
    )
    png = report.chart(summary, out / "compare.png", f"Transport Lab — {scenario.name}", cond)
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
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("lab-results"),
    transports: Annotated[str, typer.Option(help="Comma-separated.")] = "ws,sse,poll,webrtc,mqtt",
    clients: Annotated[int, typer.Option(min=1, max=2000, help="Subscribers per transport.")] = 4,
    rate: Annotated[float, typer.Option(min=0.1, max=10000, help="Messages per second.")] = 200.0,
    payload_bytes: Annotated[
        int, typer.Option(min=0, max=1024 * 1024, help="Approximate message size.")
    ] = 256,
    duration: Annotated[float, typer.Option(min=0.1, help="Measured seconds per run.")] = 3.0,
    warmup: Annotated[float, typer.Option(min=0, help="Warm-up seconds (not measured).")] = 0.5,
    repeats: Annotated[int, typer.Option(min=1, help="Repeats per transport (spread).")] = 2,
    explain: Annotated[
        bool, typer.Option("--explain", help="Explain the table's columns and exit.")
    ] = False,
) -> None:
    """Quick side-by-side run of every transport: latency, bytes, CPU, memory (docs/lab.md)."""
    from transports.lab import report

    if explain:
        console.print(report.explain())
        return
    from transports.lab.scenario import Scenario

    names = available(transport_names(transports))
    scenario = Scenario(
        name="compare", transports=names, clients=[clients], rate=[rate],
        payload_bytes=[payload_bytes], warmup_s=warmup, duration_s=duration, repeats=repeats,
    )  # fmt: skip
    try:
        scenario.validate()
    except ValueError as exc:
        fail(str(exc))
    execute(scenario, out, wire_messages=100, idle_s=2.0)


def bench(
    scenario_file: Annotated[
        Path | None, typer.Argument(metavar="[SCENARIO]", help="Scenario TOML file.")
    ] = None,
    scenario: Annotated[
        Path | None, typer.Option("--scenario", help="Scenario TOML file (same as SCENARIO).")
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("lab-results"),
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
    """Run a full experiment described in a TOML scenario file (see docs/lab.md), or the
    built-in ``--suite fanout`` (docs/fanout.md).

    The duration is estimated before it starts (scenarios/example.toml: about 25 minutes)."""
    import tomllib

    if suite is not None:
        from transports.lab.fanout import command

        command.run(console, suite, out, quick, clients, rate, duration, targets, search_clients)
        return
    from transports.lab.scenario import Scenario

    path = scenario_file or scenario
    if path is None:
        fail("give a scenario file: transport-lab bench scenarios/example.toml")
    if not path.is_file():
        fail(f"scenario file {str(path)!r} does not exist")
    try:
        sc = Scenario.load(path)
    except (ValueError, TypeError, tomllib.TOMLDecodeError) as exc:
        fail(f"{path}: {exc}")
    sc.transports = available(sc.transports)
    execute(sc, out, wire=wire)
