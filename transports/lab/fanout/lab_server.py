"""Transport Lab itself as ``serve`` runs it (``/ws``, ``/sse``, ``/poll``), for the suite."""

from __future__ import annotations

import asyncio
from typing import Any

from transports.config import SERVE_GC_YOUNG, ServerConfig
from transports.lab.fanout.runner import MAX_CLIENTS
from transports.lab.fanout.serverside import ServerSide
from transports.live import Server, uvicorn_config
from transports.server import create_app


def config(poll_linger: float = 0.0) -> ServerConfig:
    """As `serve` runs it: permessage-deflate off, GC frozen and tuned after start-up.

    Every generator client comes from 127.0.0.1: with the default per-IP limit (1000) the
    clients past it were accepted and closed 4503, so a 2000-client run measured 1000
    streams and 1000 refusals. The bench's own bound on clients is the limit here.
    """
    return ServerConfig(
        gc_freeze=True,
        gc_young=SERVE_GC_YOUNG,
        max_connections_per_ip=MAX_CLIENTS,
        poll_linger=poll_linger,
    )


async def serve(host: str, port: int, side: ServerSide, poll_linger: float = 0.0) -> None:
    cfg = config(poll_linger)
    app = create_app(transports=("ws", "sse", "poll"), config=cfg)
    server = Server(uvicorn_config(app, host, port, cfg))
    task = asyncio.ensure_future(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    feed = app.state.ctx.feed

    async def sink(obj: dict[str, Any], text: str) -> None:
        # The feed stamps seq and sent_at itself; it starts at 1 like the side's counter.
        feed.publish(obj["data"], obj["topic"])

    side.sink = sink
    await side.stopped.wait()
    server.should_exit = True
    await task
