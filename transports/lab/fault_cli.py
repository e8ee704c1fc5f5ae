"""``transport-lab fault`` (control a running server's faults over HTTP),
``transport-lab chaos`` (run fault scenarios, show a scoreboard), ``heartbeats`` (detection
vs interval) and ``storm`` (reconnect storms); also the hooks ``serve
--faults`` uses. Heavy imports happen inside the commands, so ``transport-lab --help`` stays
fast."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from transports.config import ServerConfig
    from transports.lab.fault_api import FaultLab

# Wide enough for the scoreboard even when piped (rich assumes 80 columns then).
console = Console(width=None if Console().is_terminal else 150)


def lab_for(host: str, port: int, names: list[str], cfg: ServerConfig) -> FaultLab:
    """A fault lab for ``serve``; the page's and proxies' origins become allowed origins
    (through a proxy the browser's Origin differs from the Host the server sees)."""
    from transports.lab.fault_api import FaultLab

    lab = FaultLab(host, port, names)
    for origin in [f"http://{host}:{port}", *lab.origins()]:
        if origin not in cfg.allowed_origins:
            cfg.allowed_origins.append(origin)
    return lab


def install(app: Starlette, lab: FaultLab) -> None:
    from transports.lab.fault_api import install as mount

    mount(app, lab)


def fault(
    transport: Annotated[
        str | None, typer.Argument(help="ws | sse | poll | webrtc | mqtt, or server")
    ] = None,
    action: Annotated[
        str | None, typer.Argument(help="cut | blackhole | latency | restore; server: restart")
    ] = None,
    latency_ms: Annotated[float, typer.Option(help="For 'latency'.")] = 100.0,
    jitter_ms: Annotated[float, typer.Option(help="For 'latency'.")] = 0.0,
    loss_pct: Annotated[float, typer.Option(help="For 'latency' on webrtc (UDP).")] = 0.0,
    url: Annotated[str, typer.Option(help="Server started with --faults.")] = (
        "http://127.0.0.1:8000"
    ),
    token: Annotated[
        str | None,
        typer.Option(
            envvar="TRANSPORT_LAB_ADMIN_TOKEN",
            help="The server's admin token (printed by `serve` in the dashboard URL).",
        ),
    ] = None,
) -> None:
    """Show or change the faults of a server run with `serve --faults`."""
    import contextlib
    import time

    import httpx

    base = url.rstrip("/") + "/api/faults"
    if transport is not None and action is None:
        raise typer.BadParameter("give an action: cut, blackhole, latency or restore")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(timeout=10, headers=headers) as http:
        if transport == "server":
            if action != "restart":
                raise typer.BadParameter("the server's only action is 'restart'")
            r = http.post(f"{base}/server/restart", json={})
            if r.status_code != 202:
                console.print(f"[red]{r.status_code}[/] {r.json()}")
                raise typer.Exit(1)
            asked = r.json()
            console.print(f"restarting the server (epoch {asked['epoch']})")
            for _ in range(60):  # bounded: 30 s; the port refuses while the server restarts
                time.sleep(0.5)
                with contextlib.suppress(httpx.HTTPError):
                    now = http.get(base).json().get("server", {})
                    if now.get("restarts", 0) > asked["restarts"]:
                        break
        elif transport is not None:
            body: dict[str, Any] = {"action": action}
            if action == "latency":
                body |= {"latency_ms": latency_ms, "jitter_ms": jitter_ms}
                if loss_pct:
                    body["loss_pct"] = loss_pct
            r = http.post(f"{base}/{transport}", json=body)
            if r.status_code != 200:
                console.print(f"[red]{r.status_code}[/] {r.json()}")
                raise typer.Exit(1)
        state = http.get(base).json()
    table = Table("transport", "url through the proxy", "active faults", "bytes up/down")
    for name, entry in state["transports"].items():
        active = ", ".join(_short(f) for f in entry["active"]) or "-"
        b = entry["bytes"]
        table.add_row(
            name,
            entry.get("broker_url", entry["url"]),
            active,
            f"{b['upstream']['read']}/{b['downstream']['read']}",
        )
    console.print(table)
    if "server" in state:
        console.print(f"server: {state['server']}", highlight=False)


def _short(f: dict[str, Any]) -> str:
    skip = {"kind", "name", "direction"}
    args = " ".join(f"{k}={v}" for k, v in f.items() if k not in skip and v not in (0, 0.0, False))
    return f"{f['kind']}({f['direction']}{' ' + args if args else ''})"


def chaos(
    transports: Annotated[str, typer.Option(help="Comma-separated transports.")] = (
        "ws,sse,poll,webrtc,mqtt"
    ),
    scenarios: Annotated[str, typer.Option(help="Comma-separated scenarios, or 'all'.")] = "all",
    rate: Annotated[float, typer.Option(help="Messages/s published during a run.")] = 20.0,
    heartbeat: Annotated[float, typer.Option(help="Client heartbeat interval, s.")] = 1.0,
    output: Annotated[str | None, typer.Option(help="Write the scoreboard CSV here.")] = None,
) -> None:
    """Run fault scenarios against a local lab server and print the scoreboard."""
    import asyncio

    from transports.lab.chaos import SCENARIOS, run_scoreboard, scoreboard_table

    names = [t.strip() for t in transports.split(",") if t.strip()]
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

    from transports.lab.heartbeat import sweep

    names = [t.strip() for t in transports.split(",") if t.strip()]
    hs = [float(h) for h in intervals.split(",")]
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

    from transports.lab.storm import storm_sweep
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
    app.command()(fault)
    app.command()(chaos)
    app.command()(heartbeats)
    app.command()(storm)
