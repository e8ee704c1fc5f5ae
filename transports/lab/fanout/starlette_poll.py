"""Baseline: a raw Starlette long-poll broadcast on the same uvicorn stack.

What a small app would write: the recent messages' encoded text in a bounded deque, and
``GET /poll?after=N&timeout=T`` answering at once with what is newer than ``N``, or holding
the request on a shared ``asyncio.Event`` (replaced at every publish) until the next one or
the timeout. The answer has Transport Lab's shape (``{"last_seq", "messages": [...]}``), so
the same generator reads both; it is the floor a long poll on this stack costs per answer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from transports.config import ServerConfig
from transports.lab.fanout.serverside import ServerSide
from transports.lab.fanout.uvicorn_run import run_uvicorn
from transports.live import uvicorn_config

KEEP = 1024  # recent messages kept for clients that are behind
LIMIT = 500  # messages per answer


async def serve(host: str, port: int, side: ServerSide) -> None:
    recent: deque[tuple[int, str]] = deque(maxlen=KEEP)
    news = asyncio.Event()

    def answer(after: int) -> Response:
        texts = [text for seq, text in recent if seq > after][:LIMIT]
        last = recent[-1][0] if recent else 0
        body = f'{{"last_seq":{last},"messages":[{",".join(texts)}]}}'
        return Response(body, media_type="application/json")

    async def endpoint(request: Request) -> Response:
        last = recent[-1][0] if recent else 0
        after = int(request.query_params.get("after", last))
        timeout = min(60.0, float(request.query_params.get("timeout", 25)))
        if last <= after:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(news.wait(), timeout)
        return answer(after)

    async def sink(obj: dict[str, Any], text: str) -> None:
        nonlocal news
        recent.append((obj["seq"], text))
        news.set()
        news = asyncio.Event()

    app = Starlette(routes=[Route("/poll", endpoint)])
    await run_uvicorn(uvicorn_config(app, host, port, ServerConfig()), side, sink)
