"""Transport Lab with held polls lingering ``POLL_LINGER_S`` (``serve --poll-linger``), for
the suite's ``lab-poll-linger`` row: what batching buys a long poll in CPU, and costs it in
latency, beside the same server without it."""

from __future__ import annotations

from transports.lab.fanout import lab_server
from transports.lab.fanout.serverside import ServerSide

POLL_LINGER_S = 0.25


async def serve(host: str, port: int, side: ServerSide) -> None:
    await lab_server.serve(host, port, side, poll_linger=POLL_LINGER_S)
