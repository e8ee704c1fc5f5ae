"""Baseline: the ``websockets`` library's own server and ``broadcast()``.

``websockets.broadcast`` writes one already-encoded frame to every open connection in a
single synchronous loop, skipping connections whose write buffer is above the high-water
mark — no task per client, no await per send. Same ping interval and no compression, as in
the other servers.
"""

from __future__ import annotations

from typing import Any

from websockets.asyncio.server import ServerConnection, broadcast
from websockets.asyncio.server import serve as ws_serve

from transports.config import ServerConfig
from transports.lab.fanout.serverside import ServerSide


async def serve(host: str, port: int, side: ServerSide) -> None:
    cfg = ServerConfig()
    clients: set[ServerConnection] = set()

    async def handler(ws: ServerConnection) -> None:
        clients.add(ws)
        try:
            await ws.wait_closed()
        finally:
            clients.discard(ws)

    async def sink(obj: dict[str, Any], text: str) -> None:
        broadcast(clients, text)

    async with ws_serve(
        handler,
        host,
        port,
        compression=None,
        max_size=cfg.max_frame_bytes,
        ping_interval=cfg.ws_ping_interval,
        ping_timeout=cfg.ws_ping_timeout,
        # uvicorn's listen backlog (its --backlog default), not asyncio's 100: with the
        # generator's 200 handshakes in flight a backlog of 100 overflows, and every dropped
        # SYN is retried by the client's kernel after 1 s (RFC 6298 §2.1), which was most of
        # this server's connect time.
        backlog=2048,
    ):
        side.sink = sink
        await side.stopped.wait()
