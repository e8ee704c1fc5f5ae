"""``transport-lab load URL [URL...]``: the command (registered in ``transports/cli.py``)."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from rich.console import Console

# Wide enough for the table when piped (rich assumes 80 columns then).
console = Console(width=None if Console().is_terminal else 150)


def load(
    urls: Annotated[
        list[str],
        typer.Argument(help="Transport Lab base URL(s); clients and publishes go to them in turn."),
    ],
    clients: Annotated[int, typer.Option(help="Subscribers in total.", min=1, max=100_000)] = 100,
    transport: Annotated[
        str, typer.Option(help="Transport or weighted mix, e.g. ws or ws=3,sse=1,poll=1.")
    ] = "ws",
    channel: Annotated[
        str, typer.Option(help="Channel every client follows (serve --namespace load:publish).")
    ] = "load:main",
    connect_rate: Annotated[
        float, typer.Option(help="New clients per second (open loop).", min=0.1, max=100_000)
    ] = 200.0,
    publish_rate: Annotated[
        float, typer.Option(help="Publishes per second (open loop; 0 = none).", min=0, max=100_000)
    ] = 10.0,
    payload_bytes: Annotated[
        int, typer.Option(help="Padding per message.", min=0, max=65_536)
    ] = 64,
    duration: Annotated[
        float, typer.Option(help="Seconds from the first connect.", min=1, max=3600)
    ] = 10.0,
    processes: Annotated[int, typer.Option(help="Client processes (shards).", min=1, max=64)] = 2,
    token: Annotated[
        str | None,
        typer.Option(envvar="TRANSPORT_LAB_ADMIN_TOKEN", help="Bearer token for publishing."),
    ] = None,
    out: Annotated[
        str | None, typer.Option(help="Folder for load.csv, load-timeline.csv and sidecars.")
    ] = None,
    live: Annotated[bool, typer.Option(help="Live progress table (rich).")] = True,
) -> None:
    """Open-loop load: N clients of any transport mix against any Transport Lab URL(s)."""
    from rich.live import Live

    from transports.lab.load.plan import Plan, parse_mix
    from transports.lab.load.run import run

    try:
        plan = Plan(
            urls=list(urls),
            clients=clients,
            mix=parse_mix(transport),
            channel=channel,
            connect_rate=connect_rate,
            publish_rate=publish_rate,
            payload_bytes=payload_bytes,
            duration=duration,
            processes=processes,
            token=token,
        )
        plan.check()
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if live:
        with Live(console=console, refresh_per_second=2) as screen:
            summary = asyncio.run(run(plan, out, screen.update))
    else:
        summary = asyncio.run(run(plan, out, None))
    from rich.table import Table

    table = Table(title=f"load: {clients} clients ({transport}) on {', '.join(urls)}")
    columns = ["transport", "clients", "deliveries", "deliveries_per_s", "p50_ms", "p99_ms"]
    columns += ["max_ms", "duplicates", "gaps", "missing", "disconnects"]
    for col in columns:
        table.add_column(col, justify="right")
    for row in summary["rows"]:
        table.add_row(*(str(row.get(c, "")) for c in columns))
    console.print(table)
    console.print(
        f"peak connected {summary['peak_connected']}; publishes {json.dumps(summary['publish'])}",
        highlight=False,
    )
    console.print(
        f"load tool event-loop lag p99 {summary['tool_lag_p99_ms']:.1f} ms", highlight=False
    )
    if summary["tool_saturated"]:
        console.print(
            "[bold yellow]the load tool lagged (or skipped publishes): figures are a lower "
            "bound; add --processes or lower the rates[/]"
        )
    for error in summary["errors"]:
        console.print(f"[red]{error}[/]")
    for path in summary.get("files", []):
        console.print(f"wrote {path}")


def register(app: typer.Typer) -> None:
    app.command()(load)
