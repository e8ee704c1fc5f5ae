"""Reconnect storms: many WebSocket clients lose the server at once; how do they come back?

One storm, for one reconnect policy (:mod:`transports.policies`):

1. a :class:`~transports.live.LiveServer` serving WebSocket behind a
   :class:`~transports.lab.proxy.FaultProxy`; the server's app is wrapped so every WebSocket
   handshake it accepts is logged with its ``time.monotonic()``;
2. ``clients`` WebSocket subscribers in ``processes`` worker processes (spawned, so no
   thread of ours is forked), each running ``follow()`` with the policy's backoff; the
   workers open their connections spread over ``ramp`` seconds and report when all are up;
3. the proxy stops — every connection closes in the same instant, as when a server or
   its load balancer dies (a graceful server stop would close them one by one and spread
   the storm by itself) — and stays down for ``down`` seconds: attempts in that time are
   refused and count as failures, so each schedule advances; then it listens again on
   the same port;
4. the accept log after the restart gives accepted connections per 100 ms bucket, the peak
   bucket, and the time until every client is back (from the stop).

Everything is bounded: ``timeout`` per storm, then the workers are told to stop, joined,
and terminated by PID if they did not exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from transports.config import ServerConfig
from transports.lab.proxy import FaultProxy
from transports.live import LiveServer
from transports.server import create_app

BUCKET = 0.1  # s


def quick() -> bool:
    """``TRANSPORT_LAB_QUICK=1``: small parameters for CI."""
    return os.environ.get("TRANSPORT_LAB_QUICK", "") not in ("", "0")


class CountingApp:
    """The server's ASGI app, logging the arrival time of every WebSocket handshake."""

    def __init__(self, app: Any, log: list[float]) -> None:
        self.app, self.log = app, log

    @property
    def state(self) -> Any:  # LiveServer and the graceful stop read app.state.ctx
        return self.app.state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            self.log.append(time.monotonic())
        await self.app(scope, receive, send)


@dataclass(slots=True)
class Storm:
    policy: str
    clients: int
    processes: int
    down_s: float
    accepts: list[float] = field(default_factory=list)  # s after the stop, after restart
    back_s: float | None = None  # stop → the last client's accepted reconnect
    returned: int = 0
    error: str = ""

    def buckets(self) -> dict[float, int]:
        """Accepted connections per ``BUCKET`` (key: bucket start, s after the stop)."""
        counts = Counter(int(t / BUCKET) for t in self.accepts)
        return {round(k * BUCKET, 3): counts[k] for k in sorted(counts)}

    @property
    def peak_per_s(self) -> float:
        """The busiest bucket, as connections per second."""
        return max(self.buckets().values(), default=0) / BUCKET

    def as_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "clients": self.clients,
            "processes": self.processes,
            "down_s": self.down_s,
            "peak_per_s": self.peak_per_s,
            "back_s": self.back_s,
            "returned": self.returned,
            "error": self.error,
        }


def _worker(url: str, policy: str, n: int, ramp: float, ready: Any, stop: Any) -> None:
    asyncio.run(_clients(url, policy, n, ramp, ready, stop))


async def _clients(url: str, policy: str, n: int, ramp: float, ready: Any, stop: Any) -> None:
    from transports.client import Connected, follow
    from transports.policies import preset
    from transports.websocket.client import WebSocketSubscriber

    up, all_up = 0, asyncio.Event()

    async def client(i: int) -> None:
        nonlocal up
        await asyncio.sleep(ramp * i / n)
        sub = WebSocketSubscriber(url, ping_interval=None, open_timeout=30)
        with contextlib.suppress(Exception):
            async for ev in follow(sub, None, idle_timeout=None, backoff=preset(policy)):
                if isinstance(ev, Connected):
                    up += 1
                    if up >= n:
                        all_up.set()

    tasks = [asyncio.create_task(client(i)) for i in range(n)]
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(ramp + 30):
            await all_up.wait()
    ready.put(up)
    await asyncio.to_thread(stop.wait)  # the parent always sets it (or terminates us)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def run_storm(
    policy: str,
    *,
    clients: int = 1000,
    processes: int = 4,
    down: float = 1.0,
    ramp: float = 2.0,
    timeout: float = 40.0,
) -> Storm:
    """One storm for ``policy``; bounded by about ``ramp + timeout + 40`` s."""
    storm = Storm(policy, clients, processes, down)
    log: list[float] = []
    cfg = ServerConfig(ws_ping_interval=None, ws_ping_timeout=None)

    def app_factory(**kw: Any) -> CountingApp:
        return CountingApp(create_app(**kw), log)

    live = await asyncio.to_thread(LiveServer(("ws",), config=cfg, app_factory=app_factory).start)
    proxy = await FaultProxy(live.host, live.port).start()
    ctx = mp.get_context("spawn")
    ready, stop = ctx.Queue(), ctx.Event()
    share = [clients // processes + (i < clients % processes) for i in range(processes)]
    url = f"ws://{live.host}:{proxy.port}/ws"
    workers = [ctx.Process(target=_worker, args=(url, policy, k, ramp, ready, stop)) for k in share]
    try:
        for w in workers:
            w.start()
        up = 0
        for _ in workers:
            up += await asyncio.to_thread(ready.get, True, ramp + 60)
        if up < clients:
            storm.error = f"only {up}/{clients} connected before the storm"
            return storm
        mark = len(log)
        t_stop = time.monotonic()
        await proxy.stop()  # every connection closed at once, new ones refused
        await asyncio.sleep(down)
        proxy = await FaultProxy(live.host, live.port, listen_port=proxy.port).start()
        for _ in range(int(timeout / 0.05)):  # bounded poll of the server thread's log
            if len(log) - mark >= clients:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # stragglers past the count (a client may connect twice)
        storm.accepts = [t - t_stop for t in log[mark:]]
        storm.returned = min(clients, len(storm.accepts))
        if len(storm.accepts) >= clients:
            storm.back_s = round(sorted(storm.accepts)[clients - 1], 3)
        else:
            storm.error = f"{storm.returned}/{clients} back within {timeout:.0f} s"
    finally:
        stop.set()
        for w in workers:
            await asyncio.to_thread(w.join, 10)
            if w.is_alive():
                w.terminate()  # by PID
                await asyncio.to_thread(w.join, 5)
        ready.close()
        await proxy.stop()
        await asyncio.to_thread(live.stop)
    return storm


async def storm_sweep(policies: list[str], **kwargs: Any) -> list[Storm]:
    return [await run_storm(p, **kwargs) for p in policies]
