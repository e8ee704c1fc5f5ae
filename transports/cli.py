"""The ``transport-lab`` command line (typer + rich).

``serve`` runs the demo server (all five transports and the dashboard by default);
``follow`` watches the feed from a terminal over any transport, printing messages and the
reconnect/gap/epoch events that ``follow()`` reports — a teaching tool.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from transports import auth_cli, channels_cli, tls_cli
from transports.channels import NamespaceOptions
from transports.chaos import experiments_cli, fault_cli
from transports.cli_errors import fail, run
from transports.config import DEFAULTS, SERVE_GC_YOUNG, ServerConfig
from transports.demo import cli as demo_cli
from transports.jwtauth import JWTSettings, read_key
from transports.lab import cli as lab_cli
from transports.lab.load import cli as load_cli
from transports.ops import cli as ops_cli
from transports.server import ALL

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="One live feed over WebSocket, SSE, long polling, WebRTC and MQTT.",
)
console = Console()


def _transports(value: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in ALL]
    if unknown:
        raise typer.BadParameter(f"unknown transport(s) {unknown}; choose from {', '.join(ALL)}")
    return names


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.", min=1, max=65535)] = 8000,
    rate: Annotated[
        float, typer.Option(help="Demo publisher messages/s (0 = off).", min=0, max=10_000)
    ] = 5.0,
    payload_bytes: Annotated[
        int, typer.Option(help="Demo message data size.", min=0, max=1024 * 1024)
    ] = DEFAULTS.payload_bytes,
    transports: Annotated[str, typer.Option(help="Comma-separated transports.")] = ",".join(ALL),
    history: Annotated[
        str | None,
        typer.Option(help="memory://?capacity=N (default) or sqlite:///file.db?capacity=N"),
    ] = None,
    queue_size: Annotated[
        int, typer.Option(help="Per-subscriber queue bound.", min=1, max=1_000_000)
    ] = DEFAULTS.queue_size,
    ws_compression: Annotated[bool, typer.Option(help="Offer permessage-deflate.")] = (
        DEFAULTS.ws_compression
    ),
    mqtt_url: Annotated[
        str | None,
        typer.Option(
            help="External broker mqtt://host:port; default: a managed Mosquitto, else amqtt."
        ),
    ] = None,
    broker: Annotated[str, typer.Option(help="auto | mosquitto | amqtt")] = DEFAULTS.broker,
    allow_origin: Annotated[
        list[str] | None, typer.Option(help="Extra allowed Origin (repeatable).")
    ] = None,
    allow_host: Annotated[
        list[str] | None,
        typer.Option(
            help="Extra Host name served (repeatable; '*' = any). Default: loopback names "
            "and the address a client connected to (DNS-rebinding defence)."
        ),
    ] = None,
    admin_token: Annotated[
        str | None,
        typer.Option(
            envvar="TRANSPORT_LAB_ADMIN_TOKEN",
            help="Bearer token for writes and admin actions (default: a new random one, "
            "printed in the dashboard URL).",
        ),
    ] = None,
    auth: Annotated[
        str, typer.Option(help="none (admin token; anonymous subscribe) | jwt (signed tokens).")
    ] = "none",
    jwt_key: Annotated[
        str | None,
        typer.Option(
            envvar="TRANSPORT_LAB_JWT_KEY",
            help="--auth jwt: HS256 secret, or @FILE with a PEM public key (RS256/ES256).",
        ),
    ] = None,
    jwt_algorithm: Annotated[str, typer.Option(help="HS256 | RS256 | ES256")] = "HS256",
    jwt_audience: Annotated[str | None, typer.Option(help="Required aud claim.")] = None,
    mqtt_user: Annotated[
        list[str] | None,
        typer.Option(
            help="USER:PASSWORD the managed Mosquitto accepts (repeatable): reads public "
            "channels, writes its own inbound topic <prefix>/_in/USER/<channel> only."
        ),
    ] = None,
    mqtt_max_connections: Annotated[
        int,
        typer.Option(
            help="Connections each managed-Mosquitto listener admits (no per-IP bound there).",
            min=2,
            max=10**6,
        ),
    ] = DEFAULTS.mqtt_max_connections,
    mqtt_max_token_clients: Annotated[
        int,
        typer.Option(
            help="Tokens registered as broker clients at once (POST /api/mqtt/credentials).",
            min=0,
            max=10**6,
        ),
    ] = DEFAULTS.mqtt_max_token_clients,
    max_connections: Annotated[
        int, typer.Option(help="Open connections per transport.", min=1, max=10**7)
    ] = DEFAULTS.max_connections,
    max_connections_per_ip: Annotated[
        int, typer.Option(help="Open connections per transport from one IP.", min=1, max=10**7)
    ] = DEFAULTS.max_connections_per_ip,
    client_frame_rate: Annotated[
        float,
        typer.Option(help="Frames/s a client may send (burst: 2 s worth).", min=0, max=10**6),
    ] = DEFAULTS.client_frame_rate,
    send_timeout: Annotated[
        float, typer.Option(help="s a frozen reader may block writes.", min=0.1, max=3600)
    ] = DEFAULTS.send_timeout,
    poll_linger: Annotated[
        float,
        typer.Option(
            help="s a woken long poll waits for more messages before it answers "
            "(batching: less CPU per delivery, that much more latency).",
            min=0,
            max=5,
        ),
    ] = DEFAULTS.poll_linger,
    header_timeout: Annotated[
        float, typer.Option(help="s to send a request head (slowloris).", min=0.1, max=3600)
    ] = DEFAULTS.header_timeout,
    body_timeout: Annotated[
        float, typer.Option(help="s to send a request body after its head.", min=0.1, max=3600)
    ] = DEFAULTS.body_timeout,
    max_header_bytes: Annotated[
        int, typer.Option(help="Largest request head.", min=1024, max=1024 * 1024)
    ] = DEFAULTS.max_header_bytes,
    tls: Annotated[
        Path | None,
        typer.Option(
            help="Serve https/wss with DIR/cert.pem and DIR/key.pem (transport-lab certs); "
            "with --faults the proxies relay TLS untouched."
        ),
    ] = None,
    faults: Annotated[
        bool, typer.Option(help="Fault proxy per transport, controlled at /api/faults.")
    ] = False,
    namespace: Annotated[
        list[str] | None,
        typer.Option(
            help="Declare a channel namespace NAME[:publish,presence,history=N,...] "
            "(repeatable; docs/scale.md)."
        ),
    ] = None,
    engine: Annotated[
        str | None,
        typer.Option(
            help="redis://HOST:PORT/DB: named channels in Redis, shared by every node "
            "(docs/scale.md). Default: this process only."
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="Python log level.")] = "INFO",
    log_format: Annotated[str, typer.Option(help="text | json (one object per line).")] = "text",
    traffic_log: Annotated[
        bool, typer.Option(help="Log every message in and out (size, seq, channel, lag).")
    ] = False,
    traffic_payload: Annotated[
        bool, typer.Option(help="Include payloads in the traffic log.")
    ] = False,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve /metrics on this loopback port, without auth.")
    ] = None,
) -> None:
    """Run the demo server: the feed over every transport, the dashboard at /."""

    import secrets

    from transports.app import build_app
    from transports.live import Server, uvicorn_config
    from transports.ops import logformat

    if log_format not in ("text", "json"):
        raise typer.BadParameter("--log-format must be text or json")
    logformat.setup(log_format, log_level)
    try:
        cfg = ServerConfig(
            history_url=history,
            queue_size=queue_size,
            rate=rate,
            payload_bytes=payload_bytes,
            ws_compression=ws_compression,
            mqtt_url=mqtt_url,
            broker=broker,
            allowed_origins=tuple(allow_origin or ()),
            allowed_hosts=tuple(allow_host or ()),
            max_connections=max_connections,
            max_connections_per_ip=max_connections_per_ip,
            client_frame_rate=client_frame_rate,
            client_frame_burst=max(1, round(client_frame_rate * 2)),
            send_timeout=send_timeout,
            poll_linger=poll_linger,
            header_timeout=header_timeout,
            body_timeout=body_timeout,
            max_header_bytes=max_header_bytes,
            # Fixed here, so it stays valid across `--faults` server restarts.
            admin_token=admin_token or secrets.token_urlsafe(32),
            # ICE host candidates on loopback only (the local-lab default) cannot reach a browser
            # on another address; bound elsewhere, offer that interface's candidates too.
            webrtc_loopback_only=host in ("127.0.0.1", "::1", "localhost"),
            gc_freeze=True,
            gc_young=SERVE_GC_YOUNG,
            mqtt_users=tuple(_user_password(u) for u in mqtt_user or ()),
            mqtt_max_connections=mqtt_max_connections,
            mqtt_max_token_clients=mqtt_max_token_clients,
            jwt=_jwt_settings(auth, jwt_key, jwt_algorithm, jwt_audience),
            engine_url=engine,
            namespaces=_namespaces(namespace),
            traffic_log=traffic_log or traffic_payload,
            traffic_payload=traffic_payload,
            metrics_port=metrics_port,
            tls_certfile=str(tls / "cert.pem") if tls else None,
            tls_keyfile=str(tls / "key.pem") if tls else None,
        )
    except ValueError as exc:
        fail(str(exc))
    if tls is not None and not (tls / "cert.pem").exists():
        fail(f"no {tls}/cert.pem: make it with `transport-lab certs {tls}`")
    names = _transports(transports)
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    scheme = "https" if tls else "http"
    console.print(
        f"[bold]Transport Lab[/] on [cyan]{scheme}://{netloc}/[/] "
        f"({', '.join(names)}; {rate:g} msg/s)"
    )
    # Like Jupyter: the dashboard takes the admin token from the URL fragment (never sent to
    # the server in a request line or logged), keeps it for the tab and drops it from the bar.
    console.print(
        f"Dashboard (admin): {scheme}://{netloc}/#token={cfg.admin_token}",
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f"Admin view: {scheme}://{netloc}/admin#token={cfg.admin_token}",
        highlight=False,
        soft_wrap=True,
    )
    try:
        if faults:
            # The fault proxies outlive the server, which can be restarted from the page.
            from transports.chaos.supervisor import Supervisor

            asyncio.run(Supervisor(host, port, names, cfg).run())
        else:
            Server(uvicorn_config(build_app(names, cfg), host, port, cfg)).run()
    except KeyboardInterrupt:
        pass  # uvicorn re-raises the signal after a graceful shutdown


def _jwt_settings(
    auth: str, key: str | None, algorithm: str, audience: str | None
) -> JWTSettings | None:
    """``--auth jwt`` settings (ValueError for a bad combination, shown as a usage error)."""
    if auth not in ("none", "jwt"):
        raise ValueError("--auth must be none or jwt")
    if auth == "none":
        return None
    if not key:
        raise ValueError("--auth jwt needs --jwt-key (or TRANSPORT_LAB_JWT_KEY)")
    try:
        text = read_key(key)
    except OSError as exc:
        raise ValueError(f"--jwt-key: {exc}") from None
    return JWTSettings(text, algorithm, audience)


def _namespaces(specs: list[str] | None) -> dict[str, NamespaceOptions]:
    """The default namespaces plus those declared with ``--namespace`` (ValueError if bad)."""
    from transports.namespace_option import parse_namespace

    out = dict(DEFAULTS.namespaces)
    out.update(parse_namespace(spec) for spec in specs or ())
    return out


def _user_password(value: str) -> tuple[str, str]:
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise ValueError(f"--mqtt-user takes USER:PASSWORD, got {value[:40]!r}")
    return user, password


@app.command()
def follow(
    transport: Annotated[str, typer.Argument(help="ws | sse | poll | webrtc | mqtt")],
    url: Annotated[str, typer.Argument(help="Server base URL")] = "http://127.0.0.1:8000",
    after: Annotated[
        int | None, typer.Option(min=0, help="Resume after this seq (default: live).")
    ] = None,
    count: Annotated[int | None, typer.Option(min=1, help="Stop after N messages.")] = None,
    idle_timeout: Annotated[
        float, typer.Option(min=0.1, help="Watchdog: dead after N s silent.")
    ] = 30.0,
    quiet: Annotated[bool, typer.Option(help="Print events only, not each message.")] = False,
    json_lines: Annotated[
        bool, typer.Option("--json", help="One JSON object per line (for scripts).")
    ] = False,
    channel: Annotated[
        list[str] | None,
        typer.Option(help="Follow this channel (repeat for several; default: the feed)."),
    ] = None,
    cafile: Annotated[
        Path | None,
        typer.Option(help="Trust this CA (e.g. certs/ca.pem) for https/wss; default: system CAs."),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="TRANSPORT_LAB_TOKEN",
            help="Signed token (--auth jwt servers): sent as Authorization: Bearer; over mqtt "
            "registered as broker credentials and sent as CONNECT username/password.",
        ),
    ] = None,
) -> None:
    """Follow the feed over one transport; print messages and connection events.

    A message the server already had when this client connected (seq <= the Connected
    event's last_seq, e.g. with --after) is replayed history: its age is shown, not a
    latency, and it is left out of the latency summary.
    """
    from transports.clients import CLIENTS
    from transports.follow_view import FollowView

    if transport not in CLIENTS:
        fail(f"unknown transport {transport!r}; choose from {', '.join(CLIENTS)}")
    if not url.startswith(("http://", "https://")):
        fail(f"URL must start with http:// or https://, got {url!r}")
    if cafile is not None:
        import os

        from transports.tls import CAFILE_ENV

        if not cafile.exists():
            fail(f"no CA file {cafile}")
        os.environ[CAFILE_ENV] = str(cafile)  # every client's verifying context (tls.py)
    view = FollowView(json_lines=json_lines, quiet=quiet)
    # Ctrl-C ends the run; the summary is what the user wants to see then.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            _follow(transport, url, after, count, idle_timeout, view, channel or None, token)
        )
    view.summary()


async def _follow(
    transport: str,
    url: str,
    after: int | None,
    count: int | None,
    idle_timeout: float,
    view: Any,
    channels: list[str] | None = None,
    token: str | None = None,
) -> None:
    from transports.client import Delivered
    from transports.client import follow as follow_feed
    from transports.clients import subscriber

    try:
        headers = {"Authorization": f"Bearer {token}"} if token else None
        sub = await subscriber(transport, url, headers=headers)
    except ValueError as exc:  # the server does not serve that transport
        fail(str(exc))
    events = follow_feed(sub, after, channels=channels, idle_timeout=idle_timeout, stats=view.stats)
    async with contextlib.aclosing(events):
        async for event in events:
            view.show(event)
            if isinstance(event, Delivered) and count is not None and view.stats.delivered >= count:
                break


fault_cli.register(app)
ops_cli.register(app)
experiments_cli.register(app)
channels_cli.register(app)
auth_cli.register(app)
load_cli.register(app)
demo_cli.register(app)
tls_cli.register(app)
app.command()(lab_cli.compare)
app.command()(lab_cli.bench)


def main() -> None:
    run(app)


if __name__ == "__main__":
    main()
