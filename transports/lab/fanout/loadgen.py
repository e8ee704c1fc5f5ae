"""One load-generator process: a shard of subscribers, measured (``python -m ...loadgen``).

Argument: a JSON object ``{"kind", "host", "port", "clients", "cpu"}``. Commands on stdin,
one JSON answer per line on stdout, like the server process: ``connect`` (open every client,
at most ``CONNECT_CONCURRENCY`` handshakes at once; answers how long it took), ``mark``
(start the measurement window), ``report``, ``quit``.

Latency is receive time minus the message's intended send time (``data["due"]``), so it
includes any delay of the server's own publisher. The generator watches itself: a probe
task measures how late its event loop wakes up (lag), and the process's CPU time over the
window gives its utilisation. Per client it checks seq continuity: ``lost`` counts seqs
skipped, ``dup`` seqs seen twice or out of order.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
from typing import Any

from transports.lab import histogram
from transports.lab.fanout import leanclients, leanpoll

CONNECT_CONCURRENCY = 100
PROBE_S = 0.005


class Shard:
    def __init__(self, kind: str, host: str, port: int, clients: int) -> None:
        self.kind, self.host, self.port, self.n = kind, host, port, clients
        self.readers: list[Any] = []
        self.last = [0] * clients
        self.measuring = False
        self.hist = histogram.new()
        self.lag = histogram.new()
        self._reset()

    def _reset(self) -> None:
        self.hist.reset()
        self.lag.reset()
        self.received = self.lost = self.dup = 0
        self.cpu0, self.wall0 = time.process_time(), time.monotonic()

    def _on_seq(self, i: int) -> leanpoll.OnSeq:
        last, hist, record = self.last, self.hist, histogram.record_seconds

        def on_seq(seq: int, due: float) -> None:
            now = time.time()
            prev, last[i] = last[i], max(last[i], seq)
            if not self.measuring:
                return
            self.received += 1
            if prev:
                if seq <= prev:
                    self.dup += 1
                elif seq > prev + 1:
                    self.lost += seq - prev - 1
            record(hist, now - due)

        return on_seq

    def _on_message(self, i: int) -> leanclients.OnMessage:
        on_seq = self._on_seq(i)

        def on_message(obj: dict[str, Any]) -> None:
            seq = obj.get("seq")
            if seq is not None:  # else a control frame (hello, ping)
                on_seq(seq, obj["data"]["due"])

        return on_message

    async def connect(self) -> dict[str, Any]:
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
        t0 = time.monotonic()
        failed: list[str] = []

        async def one(i: int) -> None:
            async with gate:
                try:
                    if self.kind == "poll":
                        self.readers.append(
                            await asyncio.wait_for(
                                leanpoll.open_poller(self._on_seq(i), self.host, self.port), 60
                            )
                        )
                    else:
                        self.readers.append(
                            await asyncio.wait_for(
                                leanclients.open_reader(
                                    self.kind, self._on_message(i), self.host, self.port
                                ),
                                60,
                            )
                        )
                except (OSError, TimeoutError) as exc:
                    failed.append(f"{type(exc).__name__}: {exc}")

        await asyncio.gather(*(one(i) for i in range(self.n)))
        return {
            "connected": self.n - len(failed),
            "failed": len(failed),
            "first_error": failed[0] if failed else None,
            "connect_s": time.monotonic() - t0,
        }

    def open_count(self) -> int:
        return sum(not r.closed.done() for r in self.readers)

    async def probe(self) -> None:
        # time.monotonic, not loop.time(): uvloop's clock has millisecond resolution.
        while True:
            t = time.monotonic()
            await asyncio.sleep(PROBE_S)
            if self.measuring:
                histogram.record_seconds(self.lag, time.monotonic() - t - PROBE_S)

    def report(self) -> dict[str, Any]:
        wall = time.monotonic() - self.wall0
        return {
            "received": self.received,
            "lost": self.lost,
            "dup": self.dup,
            "open": self.open_count(),
            "hist": histogram.encode(self.hist),
            "lag": histogram.encode(self.lag),
            "cpu_s": time.process_time() - self.cpu0,
            "wall_s": wall,
        }

    async def command(self, line: str) -> dict[str, Any]:
        word = line.strip()
        if word == "connect":
            return await self.connect()
        if word == "mark":
            self._reset()
            self.measuring = True
            return {"ok": "mark"}
        if word == "report":
            return self.report()
        if word == "quit":
            for r in self.readers:
                r.close()
            return {"ok": "quit"}
        return {"error": f"unknown command {word!r}"}


async def _main(spec: dict[str, Any]) -> None:
    shard = Shard(spec["kind"], spec["host"], int(spec["port"]), int(spec["clients"]))
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str] = asyncio.Queue()

    def read() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line)
        loop.call_soon_threadsafe(lines.put_nowait, "quit")

    threading.Thread(target=read, name="control", daemon=True).start()
    probe = asyncio.ensure_future(shard.probe())
    print(json.dumps({"ready": os.getpid()}), flush=True)
    while True:
        line = await lines.get()
        print(json.dumps(await shard.command(line)), flush=True)
        if line.strip() == "quit":
            break
    probe.cancel()
    await asyncio.sleep(0.05)  # let the closes go out


def main(argv: list[str]) -> None:
    spec = json.loads(argv[0])
    if spec.get("cpu") is not None:
        os.sched_setaffinity(0, {int(spec["cpu"])})
    import uvloop

    uvloop.run(_main(spec))


if __name__ == "__main__":
    main(sys.argv[1:])
