"""What every server under test shares: the feed's shape and schedule, a GC watch, control.

The server process (``python -m transports.lab.fanout.serverside KIND PORT``) runs one server
kind (a module of this package with ``async def serve(host, port, side)``) and an open-loop
ticker that hands it every message. Message ``i`` is due at ``t0 + i / rate``; its intended
send time is carried in ``data["due"]``, so the generator measures latency from when the
message *should* have gone out — a stalled server shows up as latency, not as a lower rate
(coordinated omission). Messages have Transport Lab's wire shape
(``{"seq","topic","sent_at","data"}``); the baselines encode them once per message with the
same compact JSON.

The parent drives the process over stdin with one command per line and reads one JSON
object per line on stdout: ``rate R``, ``mark`` (start a measurement window: GC and publish
counters reset), ``report``, ``quit``. Garbage-collection pauses are timed with
``gc.callbacks`` (start/stop of every collection, per generation).
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import json
import os
import random
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from transports.publisher import ticker_data

KINDS: dict[str, str] = {
    "lab": "transports.lab.fanout.lab_server",
    "lab-linger": "transports.lab.fanout.lab_linger",
    "starlette-ws": "transports.lab.fanout.starlette_ws",
    "starlette-sse": "transports.lab.fanout.starlette_sse",
    "starlette-poll": "transports.lab.fanout.starlette_poll",
    "websockets": "transports.lab.fanout.raw_websockets",
    "socketio": "transports.lab.fanout.socketio_ws",
}
GC_SLOW_S = 0.020  # the bound: no pause above 20 ms

Sink = Callable[[dict[str, Any], str], Awaitable[None]]


class GcWatch:
    """Counts and times every garbage collection via ``gc.callbacks``."""

    def __init__(self) -> None:
        self._t0 = 0.0
        self.reset()
        gc.callbacks.append(self._callback)

    def reset(self) -> None:
        self.count = [0, 0, 0]
        self.total_s = [0.0, 0.0, 0.0]
        self.max_s = [0.0, 0.0, 0.0]
        self.slow = 0  # pauses above GC_SLOW_S

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
            return
        took, gen = time.perf_counter() - self._t0, int(info["generation"])
        self.count[gen] += 1
        self.total_s[gen] += took
        self.max_s[gen] = max(self.max_s[gen], took)
        self.slow += took > GC_SLOW_S

    def report(self) -> dict[str, Any]:
        return {
            "gc_count": self.count,
            "gc_total_ms": [round(t * 1000, 3) for t in self.total_s],
            "gc_max_ms": [round(t * 1000, 3) for t in self.max_s],
            "gc_slow": self.slow,
            "gc_frozen": gc.get_freeze_count(),
            "gc_threshold": list(gc.get_threshold()),
        }


class ServerSide:
    """The feed schedule and the control channel around one server under test."""

    def __init__(self, payload_bytes: int) -> None:
        self.payload_bytes = payload_bytes
        self.rate = 0.0
        self.seq = 0
        self.published = 0
        self.lag_max_s = 0.0
        self.sink: Sink | None = None  # set by the server module once it listens
        self.stopped = asyncio.Event()
        self._changed = asyncio.Event()
        self.gc = GcWatch()

    def message(self, i: int, due_wall: float) -> dict[str, Any]:
        self.seq += 1
        data = ticker_data(i, 100 + random.random(), self.payload_bytes, due_wall)
        return {"seq": self.seq, "topic": "ticker", "sent_at": time.time(), "data": data}

    async def tick(self) -> None:
        """Open loop: publish message i at t0 + i/rate; restart the schedule on a new rate."""
        loop = asyncio.get_running_loop()
        while not self.stopped.is_set():
            self._changed.clear()
            if self.rate <= 0 or self.sink is None:
                await self._changed.wait()
                continue
            rate, t0, i = self.rate, loop.time(), 0
            wall = time.time() - t0
            while not self._changed.is_set():
                due = t0 + i / rate
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                    continue
                self.lag_max_s = max(self.lag_max_s, -delay)
                obj = self.message(i, wall + due)
                await self.sink(obj, json.dumps(obj, separators=(",", ":")))
                self.published += 1
                i += 1

    def command(self, line: str) -> dict[str, Any]:
        word, _, arg = line.strip().partition(" ")
        if word == "rate":
            self.rate = float(arg)
            self._changed.set()
            return {"ok": "rate", "rate": self.rate}
        if word == "mark":
            self.gc.reset()
            self.published, self.lag_max_s = 0, 0.0
            return {"ok": "mark"}
        if word == "report":
            return {
                "published": self.published,
                "tick_lag_max_ms": round(self.lag_max_s * 1000, 3),
                **self.gc.report(),
            }
        if word == "quit":
            self.stopped.set()
            self._changed.set()
            return {"ok": "quit"}
        return {"error": f"unknown command {word!r}"}

    def listen_stdin(self, loop: asyncio.AbstractEventLoop) -> None:
        """Read commands in a thread (portable across event loops); answer on the loop."""

        def answer(line: str) -> None:
            print(json.dumps(self.command(line)), flush=True)

        def read() -> None:
            for line in sys.stdin:
                loop.call_soon_threadsafe(answer, line)
            loop.call_soon_threadsafe(answer, "quit")

        threading.Thread(target=read, name="control", daemon=True).start()


async def _main(kind: str, port: int, payload_bytes: int) -> None:
    side = ServerSide(payload_bytes)
    side.listen_stdin(asyncio.get_running_loop())
    module = importlib.import_module(KINDS[kind])
    server = asyncio.ensure_future(module.serve("127.0.0.1", port, side))
    while side.sink is None:
        if server.done():
            server.result()  # raises what went wrong
        await asyncio.sleep(0.01)
    print(json.dumps({"ready": kind, "pid": os.getpid(), "port": port}), flush=True)
    ticker = asyncio.ensure_future(side.tick())
    await server
    ticker.cancel()


def main(argv: list[str]) -> None:
    """``KIND PORT PAYLOAD_BYTES [CPU]``: pin first, so every thread inherits the CPU."""
    kind, port, payload = argv[0], int(argv[1]), int(argv[2])
    if len(argv) > 3 and argv[3] != "-":
        os.sched_setaffinity(0, {int(argv[3])})
    import uvloop  # uvicorn's "auto" loop; the raw websockets baseline gets the same one

    uvloop.run(_main(kind, port, payload))


if __name__ == "__main__":
    main(sys.argv[1:])
