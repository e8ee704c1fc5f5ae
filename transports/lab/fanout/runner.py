"""One measured run: a server process, generator shards, connect, measure, (search), stop.

Phases, in order, the feed publishing from the start (connections are opened while it
publishes, as goal 6 asks):

1. server RSS with no clients; 2. connect every client (timed: the wall time until the last
shard has all its clients); 3. after ``settle_s``, RSS again: (after − before) / clients is
the memory per connection (at 10 msg/s the queues are empty, so it is the idle cost);
4. ``warmup_s``; 5. a window of ``duration_s``: server CPU from /proc, latency histograms,
deliveries, seq continuity and the generator's own lag and CPU; GC pauses from the server.

A run is *invalid* when the generator may have been the bottleneck: its CPU use above
``GEN_BUSY_MAX`` of the cores it had, or its event loop waking ``GEN_LAG_MAX_MS`` late at p99;
and when fewer clients are open at the window's end than were asked for.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any

from transports.lab import histogram
from transports.lab.fanout.procs import Child, cpu_seconds, free_port, rss_bytes

MAX_CLIENTS = 5000  # a bound on what one command may open against this machine
GEN_BUSY_MAX = 0.9
GEN_LAG_MAX_MS = 20.0
P99_BOUND_MS = 50.0  # the max-rate search's latency bound


@dataclass(frozen=True, slots=True)
class Target:
    """A server under test: which server process and which client protocol it speaks."""

    name: str
    server: str
    client: str
    label: str


TARGETS = {
    t.name: t
    for t in (
        Target("lab-ws", "lab", "ws", "Transport Lab /ws"),
        Target("lab-sse", "lab", "sse", "Transport Lab /sse"),
        Target("lab-poll", "lab", "poll", "Transport Lab /poll"),
        Target("lab-poll-linger", "lab-linger", "poll", "Transport Lab /poll, 0.25 s linger"),
        Target("starlette-ws", "starlette-ws", "ws", "raw Starlette WebSocket broadcast"),
        Target("starlette-sse", "starlette-sse", "sse", "raw sse-starlette broadcast"),
        Target("starlette-poll", "starlette-poll", "poll", "raw Starlette long-poll broadcast"),
        Target("websockets", "websockets", "ws", "raw websockets broadcast"),
        Target("socketio", "socketio", "socketio", "python-socketio (websocket)"),
    )
}


@dataclass(slots=True)
class Plan:
    clients: int
    rate: float
    message_bytes: int = 256
    duration_s: float = 10.0
    warmup_s: float = 1.0
    settle_s: float = 1.0
    shards: int = 2
    server_cpu: int | None = None
    gen_cpu: int | None = None
    search: list[float] | None = None  # deliveries/s steps for the max-rate search
    search_step_s: float = 4.0


def _payload_bytes(message_bytes: int) -> int:
    # ticker_data pads to payload_bytes of data; the envelope (seq, topic, sent_at, due...)
    # adds about 90 bytes around it.
    return max(0, message_bytes - 90)


class Run:
    def __init__(self, target: Target, plan: Plan) -> None:
        self.target, self.plan = target, plan
        self.port = free_port()
        cpu = "-" if plan.server_cpu is None else str(plan.server_cpu)
        self.server = Child(
            "transports.lab.fanout.serverside",
            target.server, str(self.port), str(_payload_bytes(plan.message_bytes)), cpu,
        )  # fmt: skip
        self.shards: list[Child] = []

    def __enter__(self) -> Run:
        self.server.read(30)
        sizes = [
            self.plan.clients // self.plan.shards + (i < self.plan.clients % self.plan.shards)
            for i in range(self.plan.shards)
        ]
        for n in sizes:
            if n:
                spec = {"kind": self.target.client, "host": "127.0.0.1", "port": self.port,
                        "clients": n, "cpu": self.plan.gen_cpu}  # fmt: skip
                self.shards.append(Child("transports.lab.fanout.loadgen", json.dumps(spec)))
        for shard in self.shards:
            shard.read(30)
        return self

    def __exit__(self, *exc: object) -> None:
        for child in [*self.shards, self.server]:
            child.stop()

    def _all(self, command: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        for shard in self.shards:
            shard.send(command)
        return [shard.read(timeout) for shard in self.shards]

    def connect(self) -> dict[str, Any]:
        self.server.ask(f"rate {self.plan.rate}")
        rss0 = rss_bytes(self.server.pid)
        t0 = time.monotonic()
        answers = self._all("connect", timeout=180)
        connect_s = time.monotonic() - t0
        time.sleep(self.plan.settle_s)
        connected = sum(a["connected"] for a in answers)
        rss1 = rss_bytes(self.server.pid)
        errors = [a["first_error"] for a in answers if a.get("first_error")]
        return {
            "connected": connected,
            "connect_failed": sum(a["failed"] for a in answers),
            "connect_error": errors[0] if errors else None,
            "connect_s": round(connect_s, 3),
            "rss_base_mb": round(rss0 / 2**20, 2),
            "rss_per_conn_kb": round((rss1 - rss0) / max(1, connected) / 1024, 2),
        }

    def window(self, seconds: float) -> dict[str, Any]:
        """Measure for ``seconds`` at the current rate."""
        self.server.ask("mark")
        self._all("mark")
        cpu0, t0 = cpu_seconds(self.server.pid), time.monotonic()
        time.sleep(seconds)
        reports = self._all("report")
        cpu1, wall = cpu_seconds(self.server.pid), time.monotonic() - t0
        srv = self.server.ask("report")
        return summarise(reports, srv, cpu1 - cpu0, wall, self.plan)

    def measure(self) -> dict[str, Any]:
        row: dict[str, Any] = {"target": self.target.name, "server": self.target.label,
                               "clients": self.plan.clients, "rate": self.plan.rate}  # fmt: skip
        row.update(self.connect())
        time.sleep(self.plan.warmup_s)
        row.update(self.window(self.plan.duration_s))
        return row

    def search(self, on_step: Any = None) -> list[dict[str, Any]]:
        """Raise the rate step by step until p99 ≥ the bound or deliveries fall behind."""
        steps: list[dict[str, Any]] = []
        for target in self.plan.search or []:
            rate = target / self.plan.clients
            self.server.ask(f"rate {rate}")
            time.sleep(1.0)
            row: dict[str, Any] = {"target": self.target.name, "server": self.target.label,
                   "clients": self.plan.clients, "rate": rate, "offered_per_s": target}  # fmt: skip
            row.update(self.window(self.plan.search_step_s))
            # Kept up: no seq lost and ≥ 97 % of the offered deliveries arrived in the window
            # (a whole-window count; one message more or less at the window's edges is
            # 5 % at 5 msg/s, so the per-message ratio is too coarse at low rates).
            kept_up = row["deliveries_per_s"] >= 0.97 * target and row["lost"] == 0
            row["passed"] = bool(row["valid"] and row["p99_ms"] < P99_BOUND_MS and kept_up)
            steps.append(row)
            if on_step is not None:
                on_step(row)
            if not row["passed"]:
                break
        return steps


def summarise(
    reports: list[dict[str, Any]], srv: dict[str, Any], cpu_s: float, wall: float, plan: Plan
) -> dict[str, Any]:
    hist = histogram.merge(r["hist"] for r in reports)
    lag = histogram.merge(r["lag"] for r in reports)
    lat = histogram.summary(hist)
    lag_s = histogram.summary(lag)
    delivered = sum(r["received"] for r in reports)
    connected = sum(r["open"] for r in reports)
    expected = srv["published"] * connected
    gen_cores = 1 if plan.gen_cpu is not None else (os.cpu_count() or 1)
    gen_busy = sum(r["cpu_s"] for r in reports) / max(1e-9, wall * gen_cores)
    reasons: list[str] = []
    if gen_busy > GEN_BUSY_MAX:
        reasons.append(f"generator busy {gen_busy:.0%}")
    if lag_s["count"] and lag_s["p99_ms"] > GEN_LAG_MAX_MS:
        reasons.append(f"generator lag p99 {lag_s['p99_ms']:.0f} ms")
    if not delivered:
        reasons.append("nothing delivered")
    if connected < plan.clients:
        # Deliveries are counted against the clients still open: a server that closed some
        # (a connection limit, a slow-consumer drop) would otherwise look faster and lighter.
        reasons.append(f"{plan.clients - connected} of {plan.clients} clients closed")
    gc_max = float(max(srv["gc_max_ms"]))
    return {
        "published": srv["published"],
        "delivered": delivered,
        "deliveries_per_s": round(delivered / wall, 1),
        "delivery_ratio": round(delivered / expected, 4) if expected else 0.0,
        "lost": sum(r["lost"] for r in reports),
        "dup": sum(r["dup"] for r in reports),
        "open_at_end": connected,
        "cpu_us_per_delivery": round(cpu_s / delivered * 1e6, 2) if delivered else float("nan"),
        "server_cpu_busy": round(cpu_s / wall, 3),
        **{k: round(v, 3) for k, v in lat.items() if k.endswith("_ms")},
        "gc_gen2": srv["gc_count"][2],
        "gc_collections": sum(srv["gc_count"]),
        "gc_max_ms": gc_max,
        "gc_gen2_max_ms": srv["gc_max_ms"][2],
        "gc_over_20ms": srv["gc_slow"],
        "tick_lag_max_ms": srv["tick_lag_max_ms"],
        "gen_busy": round(gen_busy, 3),
        "gen_lag_p99_ms": round(lag_s["p99_ms"], 3) if lag_s["count"] else float("nan"),
        "gen_lag_max_ms": round(lag_s["max_ms"], 3) if lag_s["count"] else float("nan"),
        "valid": not reasons,
        "invalid_reason": "; ".join(reasons),
        "server_cpu": plan.server_cpu,
        "gen_cpu": plan.gen_cpu,
        "loadavg_1m": os.getloadavg()[0],
    }
