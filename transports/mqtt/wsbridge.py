"""``/mqtt``: MQTT over WebSocket for browsers, bridged to the broker's TCP listener.

MQTT 5 §6 (and 3.1.1 §6) carry MQTT over WebSocket as *binary* frames with the subprotocol
``mqtt``; a frame may hold several or partial MQTT packets, so the bridge forwards bytes
both ways without parsing them — the broker does the MQTT. We run this bridge instead of
Mosquitto's own websockets listener because Mosquitto 2.0.11's ignores its bind address and
listens on every interface.

Bad input, and what the browser sees (RFC 6455 §7.4 close codes; 44xx per ``errors.py``):

- no ``mqtt`` subprotocol offered, a text frame, or a first frame that is not an MQTT
  CONNECT (packet type 1, MQTT 5 §3.1.1) → close ``4400 bad_param``, logged;
- no CONNECT within ``header_timeout`` (10 s) of the upgrade → close ``4408 head_timeout``,
  logged: a client that never speaks would otherwise hold a bridge slot and a broker
  connection for good (Mosquitto sets no deadline for the first packet);
- a frame larger than ``max_frame_bytes`` → ``1009`` (uvicorn enforces it as well);
- later garbage → the broker ends the connection (MQTT 5 brokers first send DISCONNECT
  with reason code 0x81 *Malformed Packet*, which we forward) → close ``1000``;
- broker unreachable → ``1011``; server shutting down → ``1001``.

Each connection has its own broker TCP connection, so none of this touches other clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from typing import cast

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from transports.errors import TransportError
from transports.mqtt.broker import Broker
from transports.server import ServerContext

log = logging.getLogger("transports.mqtt.wsbridge")

SUBPROTOCOL = "mqtt"
CONNECT = 0x10  # fixed header of CONNECT: packet type 1, flags 0 (MQTT 5 §3.1.1)
NORMAL, GOING_AWAY, TOO_BIG, INTERNAL = 1000, 1001, 1009, 1011
CHUNK = 64 * 1024
_BAD_PARAM = TransportError("bad_param").kind.ws_code
_HEAD_TIMEOUT = TransportError("head_timeout").kind.ws_code


class WebSocketBridge:
    """One instance per server; :meth:`endpoint` serves each browser connection."""

    def __init__(self, ctx: Callable[[], ServerContext], broker: Callable[[], Broker | None]):
        self._ctx, self._broker = ctx, broker
        self.closing = asyncio.Event()

    async def endpoint(self, ws: WebSocket) -> None:
        ctx = self._ctx()
        stats = ctx.stats["mqtt"]
        try:
            if SUBPROTOCOL not in ws.scope.get("subprotocols", []):
                raise TransportError("bad_param", "the WebSocket subprotocol 'mqtt' is required")
            await ctx.admit("mqtt", ws)
        except TransportError as error:
            ctx.reject("mqtt", ws, error)
            await ws.accept()
            await ws.close(error.kind.ws_code, error.reason)
            return
        broker = self._broker()
        await ws.accept(subprotocol=SUBPROTOCOL)
        try:
            if broker is None:
                raise OSError("no broker")
            reader, writer = await asyncio.open_connection(broker.host, broker.port)
        except OSError as exc:
            log.warning("/mqtt cannot reach the broker: %s", exc)
            await ws.close(INTERNAL, "broker unavailable")
            return
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        stats.opened()
        limit = ctx.config.max_frame_bytes
        tasks = {
            asyncio.ensure_future(self._up(ws, writer, limit, ctx.config.header_timeout)),
            asyncio.ensure_future(self._down(ws, reader)),
            asyncio.ensure_future(self.closing.wait()),
        }
        code, reason = NORMAL, "closed"
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finished = done.pop()
            if finished.exception() is not None:
                code, reason = NORMAL, "client_gone"
            elif finished.result() is True:  # the closing event
                code, reason = GOING_AWAY, "shutting_down"
            else:
                code, reason = cast(tuple[int, str], finished.result())
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            stats.ended(reason)
        if reason != "client_gone":
            if code in (_BAD_PARAM, _HEAD_TIMEOUT):
                log.warning("/mqtt %s closed: %s", ws.client, reason)
            await _close(ws, code, reason)

    async def _up(
        self, ws: WebSocket, writer: asyncio.StreamWriter, limit: int, connect_timeout: float
    ) -> tuple[int, str]:
        """Browser → broker. Validates only what the bridge itself must (framing, size, the
        CONNECT's deadline)."""
        first = True
        deadline = asyncio.get_running_loop().time() + connect_timeout
        while True:
            if first:
                try:
                    async with asyncio.timeout_at(deadline):
                        msg = await ws.receive()
                except TimeoutError:
                    return TransportError("head_timeout").kind.ws_code, "head_timeout"
            else:
                msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                return NORMAL, "client_gone"
            data = msg.get("bytes")
            if data is None:
                # MQTT §6: "If any other type of data is received the receiver MUST close
                # the Network Connection".
                return TransportError("bad_param").kind.ws_code, "bad_param"
            if len(data) > limit:
                return TOO_BIG, "too_large"
            if first and data and data[0] != CONNECT:
                return TransportError("bad_param").kind.ws_code, "bad_param"
            first = first and not data
            writer.write(data)
            await writer.drain()

    async def _down(self, ws: WebSocket, reader: asyncio.StreamReader) -> tuple[int, str]:
        """Broker → browser, one binary frame per read."""
        while True:
            try:
                data = await reader.read(CHUNK)
            except OSError:  # e.g. a reset: the broker dropped a malformed connection
                data = b""
            if not data:
                return NORMAL, "broker_closed"
            await ws.send_bytes(data)


async def _close(ws: WebSocket, code: int, reason: str) -> None:
    if ws.client_state != WebSocketState.CONNECTED:
        return
    with contextlib.suppress(Exception, WebSocketDisconnect):
        async with asyncio.timeout(1.0):
            await ws.close(code, reason)
