"""Baseline: a raw Starlette WebSocket broadcast on the same uvicorn stack.

What a small app would write: a set of accepted sockets and a loop that awaits
``send_text`` on each. The handler reads, because Starlette reports a disconnect only
through ``receive()``.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from transports.config import ServerConfig
from transports.lab.fanout.serverside import ServerSide
from transports.lab.fanout.uvicorn_run import run_uvicorn
from transports.live import uvicorn_config


async def serve(host: str, port: int, side: ServerSide) -> None:
    clients: set[WebSocket] = set()

    async def endpoint(ws: WebSocket) -> None:
        await ws.accept()
        clients.add(ws)
        try:
            while (await ws.receive())["type"] != "websocket.disconnect":
                pass
        finally:
            clients.discard(ws)

    async def sink(obj: dict[str, Any], text: str) -> None:
        for ws in list(clients):
            try:
                await ws.send_text(text)
            except Exception:  # a socket that went away: forget it, keep broadcasting
                clients.discard(ws)

    app = Starlette(routes=[WebSocketRoute("/ws", endpoint)])
    await run_uvicorn(uvicorn_config(app, host, port, ServerConfig()), side, sink)
