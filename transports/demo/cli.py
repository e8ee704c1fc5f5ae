"""``transport-lab demo NAME``: run one of the demo servers (``docs/demos.md``).

Every demo runs on the same server (all five transports, the dashboard, the five demo
pages); NAME picks the page whose URL is printed. Like ``serve``, the URLs carry tokens in
the fragment (never sent in a request line): a writer invite, a read-only observer link, and
the dashboard's admin link. ``--faults`` puts the fault lab in front, as ``serve --faults``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Annotated

import typer
from rich.console import Console

from transports.config import ServerConfig
from transports.server import ALL

console = Console()


def register(app: typer.Typer) -> None:
    app.command()(demo)


def demo(
    name: Annotated[str, typer.Argument(help="ticker | chat | scores | collab | cursors")],
    host: Annotated[str, typer.Option(help="Address to bind (0.0.0.0: the class's LAN).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Port to bind.", min=1, max=65535)] = 8000,
    transports: Annotated[str, typer.Option(help="Comma-separated transports.")] = ",".join(ALL),
    faults: Annotated[bool, typer.Option(help="Fault lab in front (serve --faults).")] = False,
    ticker_rate: Annotated[
        float, typer.Option(help="Ticker messages/s (the page can raise it).", min=0, max=1000)
    ] = 4.0,
    match_tick: Annotated[
        float, typer.Option(help="Seconds per scripted match minute.", min=0.05, max=60)
    ] = 1.0,
    allow_host: Annotated[
        list[str] | None, typer.Option(help="Extra Host name served (repeatable).")
    ] = None,
    admin_token: Annotated[
        str | None, typer.Option(envvar="TRANSPORT_LAB_ADMIN_TOKEN", help="Admin token.")
    ] = None,
    log_level: Annotated[str, typer.Option(help="Python log level.")] = "INFO",
) -> None:
    """Run a demo server; print the page's URL with a writer invite and an observer link."""
    from transports.cli import _transports
    from transports.demo.app import NAMES, Demo
    from transports.demo.scripts import Settings
    from transports.live import Server, uvicorn_config

    if name not in NAMES:
        raise typer.BadParameter(f"unknown demo {name!r}; choose from {', '.join(NAMES)}")
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    names = _transports(transports)
    cfg = ServerConfig(
        rate=0.0,
        admin_token=admin_token or secrets.token_urlsafe(32),
        allowed_hosts=tuple(allow_host or ()),
        webrtc_loopback_only=host in ("127.0.0.1", "::1", "localhost"),
    )
    the_demo, cfg = Demo.configure(cfg, Settings(ticker_rate=ticker_rate, match_tick=match_tick))
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    page = f"http://{netloc}/demos/{name}/"
    writer = the_demo.signer.mint("guest", "writer")
    observer = the_demo.signer.mint("observer", "observer")
    console.print(f"[bold]Transport Lab demo[/] [cyan]{name}[/] ({', '.join(names)})")
    for label, url in (
        ("Page (writer invite)", f"{page}#token={writer}"),
        ("Page (read-only observer)", f"{page}#token={observer}"),
        ("Dashboard (admin)", f"http://{netloc}/#token={cfg.admin_token}"),
    ):
        console.print(f"{label}: {url}", highlight=False, soft_wrap=True)
    try:
        if faults:
            from transports.chaos.supervisor import Supervisor

            asyncio.run(Supervisor(host, port, names, cfg, build=the_demo.build).run())
        else:
            app = the_demo.build(names, cfg)
            Server(uvicorn_config(app, host, port, cfg)).run()
    except KeyboardInterrupt:
        pass
