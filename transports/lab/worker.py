"""Client processes: each runs a shard of subscribers and returns encoded histograms.

Clients live in separate processes (``spawn``, never ``fork``: the parent runs the server
in a thread) so the load generator's event loop is not the bottleneck and the server's GIL
is not shared with them. Each process reports which CPUs it actually ran on (sampled from
``/proc``) and can be pinned to one with ``os.sched_setaffinity`` — on a small machine the
placement changes loopback latency more than the protocol does.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psutil

from transports.lab import histogram


@dataclass(slots=True)
class WorkerSpec:
    index: int
    transport: str
    base_url: str
    clients: int
    warmup: int  # messages with data["i"] < warmup are not measured
    total: int  # the last message has data["i"] == total - 1
    cpu: int | None = None  # pin this process to one CPU
    options: dict[str, Any] = field(default_factory=dict)  # passed to the client class


def main(spec: WorkerSpec, ready: Any, results: Any, stop: Any) -> None:
    """Process entry point: pin, connect every client, report ready, measure, report."""
    if spec.cpu is not None:
        os.sched_setaffinity(0, {spec.cpu})
    try:
        result = asyncio.run(_run(spec, ready, stop))
    except BaseException as exc:
        ready.put((spec.index, f"error: {type(exc).__name__}: {exc}"))
        result = {"index": spec.index, "error": f"{type(exc).__name__}: {exc}"}
    results.put(result)


async def _run(spec: WorkerSpec, ready: Any, stop: Any) -> dict[str, Any]:
    from transports.client import Connected, Delivered, FollowStats, follow
    from transports.clients import server_info, subscriber

    info = await server_info(spec.base_url)
    connected = asyncio.Event()
    n_connected = 0
    hists = [histogram.new() for _ in range(spec.clients)]
    service = histogram.new()  # latency vs actual publish time, for comparison only
    warm = [0] * spec.clients
    stats = [FollowStats() for _ in range(spec.clients)]

    async def one(k: int) -> None:
        nonlocal n_connected
        sub = await subscriber(spec.transport, spec.base_url, info, **spec.options)
        seen = False
        # after=0: the runner published one priming message, so every transport (long polling
        # included, whose first held request would otherwise wait) connects at once.
        async for event in follow(sub, 0, stats=stats[k], idle_timeout=60.0):
            if isinstance(event, Connected) and not seen:
                seen = True
                n_connected += 1
                if n_connected == spec.clients:
                    connected.set()
            elif isinstance(event, Delivered):
                data = event.message.data
                if not isinstance(data, dict) or "i" not in data:
                    continue
                i, due = int(data["i"]), float(data["due"])
                if i < spec.warmup:
                    warm[k] += 1
                else:
                    histogram.record_seconds(hists[k], event.received_at - due)
                    histogram.record_seconds(service, event.received_at - event.message.sent_at)
                if i >= spec.total - 1:
                    return

    cpus: Counter[int] = Counter()
    proc = psutil.Process()
    tasks = [asyncio.create_task(one(k)) for k in range(spec.clients)]
    watcher = asyncio.create_task(_first(asyncio.gather(*tasks)))
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(30):
            await asyncio.wait(
                [asyncio.create_task(connected.wait()), watcher],
                return_when=asyncio.FIRST_COMPLETED,
            )
    if watcher.done() and watcher.exception() is not None:
        raise watcher.exception()  # type: ignore[misc]
    ready.put((spec.index, "ready" if connected.is_set() else "timeout"))
    cpu0 = proc.cpu_times()
    while not all(t.done() for t in tasks) and not stop.is_set():
        cpus[proc.cpu_num()] += 1
        await asyncio.sleep(0.05)
    cpu1 = proc.cpu_times()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "index": spec.index,
        "pid": os.getpid(),
        "histograms": [histogram.encode(h) for h in hists],
        "service": histogram.encode(service),
        "warmup_received": sum(warm),
        "connects": sum(s.connects for s in stats),
        "reconnects": sum(max(0, s.connects - 1) for s in stats),
        "duplicates": sum(s.duplicates for s in stats),
        "gaps": sum(s.gaps for s in stats),
        "disconnects": sum(sum(s.disconnects.values()) for s in stats),
        "cpus": dict(cpus),
        "affinity": sorted(os.sched_getaffinity(0)),
        "cpu_s": (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system),
    }


async def _first(gathered: asyncio.Future[Any]) -> None:
    await gathered


class Pool:
    """The client processes of one run: start, wait until connected, collect, stop."""

    def __init__(self, specs: list[WorkerSpec]) -> None:
        self.specs = specs
        self.ctx: Any = multiprocessing.get_context("spawn")
        self.procs: list[Any] = []
        self.ready = self.ctx.Queue()
        self.results = self.ctx.Queue()
        self.stop_event = self.ctx.Event()

    def start(self, timeout: float = 60.0) -> None:
        for spec in self.specs:
            proc = self.ctx.Process(
                target=main,
                args=(spec, self.ready, self.results, self.stop_event),
                name=f"lab-client-{spec.index}",
                daemon=True,
            )
            proc.start()
            self.procs.append(proc)
        deadline = time.monotonic() + timeout
        for _ in self.specs:
            index, status = self.ready.get(timeout=max(0.1, deadline - time.monotonic()))
            if status != "ready":
                self.close()
                raise RuntimeError(f"client process {index}: {status}")

    def pids(self) -> set[int]:
        return {p.pid for p in self.procs if p.pid is not None}

    def collect(self, timeout: float) -> list[dict[str, Any]]:
        """Wait for every process's result; after ``timeout`` tell stragglers to stop."""
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(out) < len(self.specs):
            left = deadline - time.monotonic()
            if left <= 0 and not self.stop_event.is_set():
                self.stop_event.set()
                deadline = time.monotonic() + 10
                continue
            try:
                out.append(self.results.get(timeout=max(0.1, min(left, 1.0))))
            except Exception:  # queue.Empty
                if left <= 0 and self.stop_event.is_set():
                    break
        return sorted(out, key=lambda r: int(r["index"]))

    def close(self) -> None:
        self.stop_event.set()
        for proc in self.procs:
            proc.join(5)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
        self.ready.close()
        self.results.close()
