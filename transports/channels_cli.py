"""``transport-lab publish <transport> URL --channel C 'JSON'``: publish from a terminal.

Prints the ack (``{"type":"ack","channel","epoch","seq","id"}``) or the documented error.
A publish needs a named principal unless the namespace allows anonymous publishing: pass the
server's admin token (``--token``, or ``TRANSPORT_LAB_TOKEN``; ``serve`` prints it), or for
MQTT a broker user and its password (``--user``/``--password``, one of
``ServerConfig.mqtt_users``), which the broker's ACL lets write its own inbound topic only.
Follow channels with ``transport-lab follow <transport> URL --channel a --channel b``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer
from rich.console import Console

from transports.errors import TransportError

console = Console()


def register(app: typer.Typer) -> None:
    app.command()(publish)


def publish(
    transport: Annotated[str, typer.Argument(help="ws | sse | poll | webrtc | mqtt")],
    url: Annotated[str, typer.Argument(help="Server base URL")],
    data: Annotated[str, typer.Argument(help="The message data, as JSON")],
    channel: Annotated[str, typer.Option(help="The channel, e.g. chat:lobby")],
    id: Annotated[str | None, typer.Option(help="Client message id (idempotent)")] = None,
    token: Annotated[
        str | None, typer.Option(envvar="TRANSPORT_LAB_TOKEN", help="Bearer token")
    ] = None,
    user: Annotated[str, typer.Option(help="MQTT: the broker user (inbound topic)")] = "anonymous",
    password: Annotated[
        str | None, typer.Option(envvar="TRANSPORT_LAB_MQTT_PASSWORD", help="MQTT: its password")
    ] = None,
) -> None:
    """Publish one message on a channel over one transport; print the ack."""
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise typer.BadParameter(f"DATA is not JSON: {exc}") from None
    try:
        ack = asyncio.run(_publish(transport, url, channel, value, id, token, user, password))
    except TransportError as error:
        console.print(f"[red]{error.reason}[/]: {error.detail}", highlight=False)
        raise typer.Exit(1) from None
    console.print(json.dumps(ack), highlight=False, soft_wrap=True)


async def _publish(
    transport: str,
    url: str,
    channel: str,
    data: Any,
    msg_id: str | None,
    token: str | None,
    user: str,
    password: str | None,
) -> dict[str, Any]:
    from transports.clients import subscriber

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    sub: Any = await subscriber(transport, url, headers=headers)
    pub = sub.publisher(user, password) if transport == "mqtt" else sub.publisher()
    try:
        return dict(await pub.publish(channel, data, id=msg_id))
    finally:
        await pub.close()
