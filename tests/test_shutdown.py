"""A stopping server ends every stream with a documented reason and leaves nothing behind."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable

from tests.helpers import FAST
from transports.client import Disconnected, Event, follow
from transports.clients import subscriber
from transports.live import LiveServer

MakeServer = Callable[..., LiveServer]


async def watch(name: str, url: str, seen: list[Event]) -> None:
    sub = await subscriber(name, url, **({"timeout": 20.0} if name == "poll" else {}))
    events = follow(sub, 0, backoff=FAST, idle_timeout=30)
    async with contextlib.aclosing(events):
        async for event in events:
            seen.append(event)
            if isinstance(event, Disconnected):
                return


async def test_stop_ends_streams_with_shutting_down(make_server: MakeServer) -> None:
    server = make_server(transports=("ws", "sse", "poll"))
    server.publish({"x": 1})
    seen: dict[str, list[Event]] = {n: [] for n in ("ws", "sse", "poll")}
    watchers = [asyncio.ensure_future(watch(n, server.url, seen[n])) for n in seen]
    for _ in range(200):  # until all three are connected and idle (the poll is held)
        if all(server.ctx.stats[n].active for n in seen) and all(seen.values()):
            break
        await asyncio.sleep(0.02)
    ctx = server.ctx
    await asyncio.to_thread(server.stop)
    await asyncio.wait_for(asyncio.gather(*watchers), 10)
    for name, events in seen.items():
        assert events[-1] == Disconnected("shutting_down", True), (name, events[-3:])
        assert ctx.stats[name].active == 0
    assert ctx._tasks == set()
    assert not [t for t in threading.enumerate() if t.name.startswith("live-server")]
