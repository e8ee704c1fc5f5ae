"""Server-side resources: CPU seconds of the serving thread and the processes it starts, RSS.

The server under test runs in a thread of the lab's process (:class:`~transports.live.LiveServer`),
so its CPU is that thread's ``CLOCK_THREAD_CPUTIME_ID`` clock, read *on* the server loop.
Processes the server starts itself (e.g. a Mosquitto broker) are added, because for MQTT the
broker does the fan-out work; the lab's own client processes are excluded.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import psutil

from transports.live import LiveServer


@dataclass(frozen=True, slots=True)
class Snapshot:
    thread_cpu_s: float
    children_cpu_s: float
    rss_bytes: int

    @property
    def cpu_s(self) -> float:
        return self.thread_cpu_s + self.children_cpu_s


def children(exclude: set[int]) -> list[psutil.Process]:
    """Child processes of this process that are not lab clients (brokers, relays)."""
    return [p for p in psutil.Process().children(recursive=True) if p.pid not in exclude]


def snapshot(server: LiveServer, exclude: set[int]) -> Snapshot:
    thread_cpu = float(server.call(time.thread_time))
    child_cpu = 0.0
    for proc in children(exclude):
        try:
            times = proc.cpu_times()
            child_cpu += times.user + times.system
        except psutil.Error:
            continue
    return Snapshot(thread_cpu, child_cpu, psutil.Process().memory_info().rss)


def thread_cpu_num(server: LiveServer) -> int | None:
    """The CPU the server's loop thread last ran on (field 39 of /proc/self/task/TID/stat)."""
    tid = server.call(_native_id)
    try:
        with open(f"/proc/self/task/{tid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[36])


def pin_server(server: LiveServer, cpu: int) -> None:
    """Pin the server loop's thread to ``cpu`` (Linux lets sched_setaffinity target a thread)."""
    os.sched_setaffinity(int(server.call(_native_id)), {cpu})


def _native_id() -> int:
    import threading

    return threading.get_native_id()
