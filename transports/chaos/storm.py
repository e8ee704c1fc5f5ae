"""Reconnect storms: many WebSocket clients lose the server at once; how do they come back?

One storm, for one reconnect policy (:mod:`transports.policies`):

1. the WebSocket server in a child process (:class:`ServerProcess`); its app is wrapped so
   every WebSocket handshake it accepts is logged with its ``time.monotonic()`` (one clock
   for every process on Linux, ``CLOCK_MONOTONIC``);
2. ``clients`` WebSocket subscribers in ``processes`` worker processes (spawned, so no
   thread of ours is forked), each running ``follow()`` with the policy's backoff; the
   workers open their connections spread over ``ramp`` seconds and report when all are up;
3. the server is killed (SIGKILL: every connection closes in the same instant, as in a
   crash) and stays down for ``down`` seconds: attempts in that time are refused and count
   as failures, so each schedule advances; then it starts again on the same port;
4. the accept log after the restart gives accepted connections per 100 ms bucket, the peak
   bucket, and the time until every client is back (from the stop).

Everything is bounded: ``timeout`` per storm, then the workers are told to stop, joined,
and terminated by PID if they did not exit; the server process is killed by PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from transports.config import ServerConfig
from transports.netutil import free_port, wait_for_port
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


class ServerProcess:
    """The server in a child process (``_serve``), killed with SIGKILL and started again.

    A separate process, so the server's accept timestamps are taken by a loop that does
    nothing else; SIGKILL, so the kernel closes every connection in the same instant, as
    when a server crashes (a graceful stop would close them one by one and spread the storm
    by itself). The child prints one ``time.monotonic()`` per accepted WebSocket handshake;
    a reader thread appends them to ``log``.
    """

    def __init__(self, port: int, log: list[float]) -> None:
        self.port, self.log = port, log
        self.proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    async def start(self) -> None:
        code = f"from transports.chaos.storm import _serve; _serve({self.port})"
        proc = subprocess.Popen(  # noqa: ASYNC220 - returns at once; exit polled below
            [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, bufsize=1
        )
        self.proc = proc
        self._reader = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._reader.start()
        await wait_for_port("127.0.0.1", self.port, 30.0, alive=lambda: proc.poll() is None)

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with contextlib.suppress(ValueError):
                self.log.append(float(line))

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # by PID
            self.proc.wait(10)
        if self._reader is not None:
            self._reader.join(5)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = self._reader = None


def _serve(port: int) -> None:
    """Child process entry: the WebSocket server, printing each accepted handshake's time."""
    from transports.live import Server, uvicorn_config

    class Printing(list[float]):
        def append(self, t: float) -> None:
            print(f"{t:.6f}", flush=True)

    # Every storm client connects from 127.0.0.1: no per-IP bound on the measured storm.
    cfg = ServerConfig(ws_ping_interval=None, ws_ping_timeout=None, max_connections_per_ip=100_000)
    app = CountingApp(create_app(transports=("ws",), config=cfg), Printing())
    Server(uvicorn_config(app, "127.0.0.1", port, cfg, backlog=4096)).run()


async def run_storm(
    policy: str,
    *,
    clients: int = 1000,
    processes: int = 4,
    down: float = 1.0,
    ramp: float = 2.0,
    timeout: float = 40.0,
) -> Storm:
    """One storm for ``policy``; bounded by about ``ramp + timeout + 60`` s."""
    storm = Storm(policy, clients, processes, down)
    log: list[float] = []
    server = ServerProcess(free_port(), log)
    await server.start()
    ctx = mp.get_context("spawn")
    ready, stop = ctx.Queue(), ctx.Event()
    share = [clients // processes + (i < clients % processes) for i in range(processes)]
    url = f"ws://127.0.0.1:{server.port}/ws"
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
        t_stop = time.monotonic()
        await asyncio.to_thread(server.kill)  # every connection gone at once
        mark = len(log)
        await asyncio.sleep(max(0.0, t_stop + down - time.monotonic()))
        await server.start()
        for _ in range(int(timeout / 0.05)):  # bounded poll of the reader thread's log
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
        await asyncio.to_thread(server.kill)
    return storm


async def storm_sweep(policies: list[str], **kwargs: Any) -> list[Storm]:
    return [await run_storm(p, **kwargs) for p in policies]
