"""``transport-lab watch`` and ``transport-lab logs summarize`` (registered by
``transports/cli.py``). Heavy imports happen inside the commands."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

console = Console(width=None if Console().is_terminal else 160)
logs_app = typer.Typer(no_args_is_help=True, help="Analyse server logs (--log-format json).")


def watch(
    url: Annotated[str, typer.Argument(help="Server base URL")] = "http://127.0.0.1:8000",
    transports: Annotated[
        str | None, typer.Option(help="Comma-separated transports (default: all served).")
    ] = None,
    silent_after: Annotated[float, typer.Option(help="Alert after N s without a message.")] = 10.0,
    max_latency: Annotated[
        float | None, typer.Option(help="Alert when a message is older than N s on arrival.")
    ] = None,
    exec_cmd: Annotated[
        str | None,
        typer.Option(
            "--exec", help="Shell command per event (JSON on stdin, $TRANSPORT_LAB_EVENT)."
        ),
    ] = None,
    webhook: Annotated[str | None, typer.Option(help="POST each event as JSON here.")] = None,
    duration: Annotated[float | None, typer.Option(help="Stop after N s.")] = None,
    max_alerts: Annotated[int | None, typer.Option(help="Stop after N alerts.")] = None,
) -> None:
    """Follow a server over its transports and alert on silence, refusals and latency.

    Exit code: 0 no alert, 1 alerts that all recovered, 2 an alert still active at exit."""
    from transports.ops.watch import Watch, WatchSettings

    if silent_after <= 0:
        raise typer.BadParameter("--silent-after must be > 0")
    names = [n.strip() for n in transports.split(",") if n.strip()] if transports else None
    settings = WatchSettings(
        url.rstrip("/"), names, silent_after, max_latency, exec_cmd, webhook, duration, max_alerts
    )
    try:
        code = asyncio.run(Watch(settings).run())
    except KeyboardInterrupt:
        code = 130
    raise typer.Exit(code)


@logs_app.command()
def summarize(
    file: Annotated[Path, typer.Argument(help="A log written with --log-format json.")],
) -> None:
    """Per-transport table: connections, durations, bytes, message sizes and rates, reasons."""
    from transports.ops.logsummary import summarize as run

    with file.open(encoding="utf-8", errors="replace") as lines:
        summary = run(lines)
    rows = summary.table()
    groups = {
        "Connections": (
            "connects",
            "disconnects",
            "rejects",
            "median_duration_s",
            "max_duration_s",
            "bytes",
        ),
        "Traffic (--traffic-log)": (
            "messages_out",
            "messages_in",
            "mean_size_b",
            "max_size_b",
            "rate_per_s",
        ),
    }
    for title, keys in groups.items():
        table = Table(title=f"{title}: {file.name}")
        table.add_column("transport")
        for key in keys:
            table.add_column(key.replace("_", " "), justify="right")
        for row in rows:
            table.add_row(row["transport"], *("" if row[k] is None else str(row[k]) for k in keys))
        console.print(table)
    reasons = Table(title="Disconnect and reject reasons")
    for col in ("transport", "reason", "count"):
        reasons.add_column(col)
    for name, reason, count in summary.reasons()[:20]:
        reasons.add_row(name, reason, str(count))
    console.print(reasons)
    if summary.skipped or summary.suppressed:
        console.print(
            f"{summary.skipped} non-JSON lines skipped; {summary.suppressed} suppressed rejects"
        )


def register(app: typer.Typer) -> None:
    app.command()(watch)
    app.add_typer(logs_app, name="logs")
