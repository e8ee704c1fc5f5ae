"""Child processes of the suite (server, generator shards) and what /proc says about them.

Each child answers one JSON line per command; a reader thread per child turns its stdout
into a queue, so a command can wait with a timeout and a dead child is noticed instead of
hanging the run. Server CPU comes from ``/proc/PID/stat`` (utime + stime, proc(5)) and memory
from ``VmRSS`` in ``/proc/PID/status``.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
from typing import Any

from transports.netutil import free_port

__all__ = ["Child", "cpu_seconds", "free_port", "pinning", "rss_bytes"]

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU time of a process so far, in ns resolution where the kernel allows.

    The sum over its threads of ``/proc/PID/task/TID/schedstat`` (first field: ns on a CPU);
    ``utime + stime`` of ``/proc/PID/stat`` counts in 10 ms clock ticks, too coarse for short
    windows, and is the fallback.
    """
    try:
        total = 0
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        return total / 1e9
    except (OSError, ValueError, IndexError):
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def pinning() -> tuple[int | None, int | None]:
    """(server CPU, generator CPU): 0 and 1 when this process may use two CPUs, else none."""
    cpus = sorted(os.sched_getaffinity(0))
    return (cpus[0], cpus[1]) if len(cpus) >= 2 else (None, None)


class Child:
    """A ``python -m MODULE ARGS...`` child speaking JSON lines on stdin/stdout."""

    def __init__(self, module: str, *args: str, nice: int = 0) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            preexec_fn=(lambda: os.nice(nice)) if nice else None,
        )
        self.pid = self.proc.pid
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.stderr_tail: list[str] = []
        threading.Thread(target=self._pump_out, daemon=True).start()
        threading.Thread(target=self._pump_err, daemon=True).start()

    def _pump_out(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _pump_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr_tail = [*self.stderr_tail[-30:], line]

    def read(self, timeout: float) -> dict[str, Any]:
        while True:
            try:
                line = self._lines.get(timeout=timeout)
            except queue.Empty:
                raise TimeoutError(f"pid {self.pid}: no answer in {timeout:g} s") from None
            if line is None:
                raise RuntimeError(
                    f"pid {self.pid} exited ({self.proc.wait()}): {''.join(self.stderr_tail)}"
                )
            if line.startswith("{"):
                answer: dict[str, Any] = json.loads(line)
                return answer

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def ask(self, command: str, timeout: float = 30.0) -> dict[str, Any]:
        self.send(command)
        return self.read(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.send("quit")
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout)
