"""Baseline: a raw sse-starlette broadcast on the same uvicorn stack.

One bounded ``asyncio.Queue`` per client, filled by the broadcast and drained by the
client's event generator — the pattern sse-starlette's own examples use. A full queue
drops that client (as Transport Lab's slow-consumer rule does), so memory stays bounded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from transports.config import ServerConfig
from transports.lab.fanout.serverside import ServerSide
from transports.lab.fanout.uvicorn_run import run_uvicorn
from transports.live import uvicorn_config

QUEUE = 1024


async def serve(host: str, port: int, side: ServerSide) -> None:
    queues: set[asyncio.Queue[tuple[int, str]]] = set()

    async def endpoint(request: Request) -> Response:
        queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue(QUEUE)
        queues.add(queue)

        async def events() -> AsyncIterator[ServerSentEvent]:
            try:
                while True:
                    seq, text = await queue.get()
                    yield ServerSentEvent(data=text, id=str(seq), sep="\n")
            finally:
                queues.discard(queue)

        return EventSourceResponse(events(), sep="\n", ping=15)

    async def sink(obj: dict[str, Any], text: str) -> None:
        for queue in list(queues):
            try:
                queue.put_nowait((obj["seq"], text))
            except asyncio.QueueFull:
                queues.discard(queue)

    app = Starlette(routes=[Route("/sse", endpoint)])
    await run_uvicorn(uvicorn_config(app, host, port, ServerConfig()), side, sink)
