"""Baseline: python-socketio (websocket transport only) as an ASGI app on uvicorn.

``AsyncServer.emit`` to everyone encodes the Socket.IO packet once and sends it to each
Engine.IO session; clients speak Engine.IO v4 over a plain WebSocket
(``/socket.io/?EIO=4&transport=websocket``).
"""

from __future__ import annotations

from typing import Any

import socketio

from transports.config import ServerConfig
from transports.lab.fanout.serverside import ServerSide
from transports.lab.fanout.uvicorn_run import run_uvicorn
from transports.live import uvicorn_config


async def serve(host: str, port: int, side: ServerSide) -> None:
    sio = socketio.AsyncServer(async_mode="asgi", transports=["websocket"])
    app = socketio.ASGIApp(sio)

    async def sink(obj: dict[str, Any], text: str) -> None:
        await sio.emit("tick", obj)

    await run_uvicorn(uvicorn_config(app, host, port, ServerConfig()), side, sink)
