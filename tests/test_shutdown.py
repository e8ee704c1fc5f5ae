"""A stopping server ends every stream with a documented reason and leaves nothing behind:
no task, no server thread, no WebRTC peer, no broker process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable

import pytest

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


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("name", ["ws", "sse", "poll", "webrtc", "mqtt"])
async def test_stop_ends_streams_and_leaves_nothing(name: str, make_server: MakeServer) -> None:
    server = make_server(transports=(name,))
    server.publish({"x": 1})
    seen: list[Event] = []
    watcher = asyncio.ensure_future(watch(name, server.url, seen))
    for _ in range(300):  # until the client is connected and has the message
        if len(seen) >= 2:
            break
        await asyncio.sleep(0.02)
    ctx = server.ctx
    transport = ctx.transports[name]
    broker = getattr(transport, "broker", None)
    broker_pid = getattr(broker, "pid", None)
    await asyncio.to_thread(server.stop)
    await asyncio.wait_for(watcher, 15)
    last = seen[-1]
    assert isinstance(last, Disconnected)
    assert last.retryable
    if name != "mqtt":  # MQTT clients see their broker go, not the feed server
        assert last.reason == "shutting_down", seen[-3:]
    assert ctx.stats[name].active == 0
    assert ctx._tasks == set()
    assert not [t for t in threading.enumerate() if t.name.startswith("live-server")]
    assert not getattr(transport, "peers", None), "no WebRTC peer left open"
    if name == "mqtt" and getattr(broker, "kind", "") == "mosquitto":
        assert broker_pid is not None
    if broker_pid is not None:
        assert not alive(broker_pid), "the managed broker process was stopped"
