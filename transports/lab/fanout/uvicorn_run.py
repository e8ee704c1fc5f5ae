"""Run an ASGI baseline under uvicorn with the settings Transport Lab uses, until told to stop."""

from __future__ import annotations

import asyncio

import uvicorn

from transports.lab.fanout.serverside import ServerSide, Sink


async def run_uvicorn(config: uvicorn.Config, side: ServerSide, sink: Sink) -> None:
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    side.sink = sink
    await side.stopped.wait()
    server.should_exit = True
    await task
