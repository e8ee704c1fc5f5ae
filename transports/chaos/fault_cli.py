"""``transport-lab fault``: show or change the faults of a server run with ``serve --faults``,
over its HTTP fault API (``docs/faults.md``). Heavy imports happen inside the command, so
``transport-lab --help`` stays fast."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

console = Console()


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

    from transports.cli_errors import fail
    from transports.clients import CLIENTS

    base = url.rstrip("/") + "/api/faults"
    if transport is not None and transport not in (*CLIENTS, "server"):
        fail(f"unknown transport {transport!r}; choose from {', '.join(CLIENTS)} or server")
    actions = ("cut", "blackhole", "latency", "restore")
    if transport not in (None, "server") and action not in actions:
        fail("give an action: cut, blackhole, latency or restore")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(timeout=10, headers=headers) as http:
        if transport == "server":
            if action != "restart":
                raise typer.BadParameter("the server's only action is 'restart'")
            r = http.post(f"{base}/server/restart", json={})
            if r.status_code != 202:
                fail(f"POST {base}/server/restart answered {r.status_code}: {r.text[:200]}")
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
                fail(f"POST {base}/{transport} answered {r.status_code}: {r.text[:200]}")
        r = http.get(base)
        if r.status_code != 200:
            fail(f"GET {base} answered {r.status_code}: is the server run with `serve --faults`?")
        state = r.json()
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


def register(app: typer.Typer) -> None:
    app.command()(fault)
