"""A scenario — transports × clients × rate × payload × compression, repeated — and its runner.

One *cell* is one transport with one setting of every axis; each repeat of a cell gets a
fresh server and fresh client processes and yields one tidy row. Compression is an axis of
the WebSocket transport only (RFC 7692 permessage-deflate); other transports run it off.
"""

from __future__ import annotations

import itertools
import math
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from transports.config import ServerConfig
from transports.lab import histogram, resources
from transports.lab.schedule import KINDS, PublishRun, start_publisher
from transports.lab.worker import Pool, WorkerSpec
from transports.live import LiveServer

COMPRESSIBLE = {"ws"}
RSS_MIN_CLIENTS = 20


@dataclass(slots=True)
class Scenario:
    """Every axis takes a list; a scalar in TOML means a one-element list."""

    name: str = "scenario"
    transports: list[str] = field(default_factory=lambda: ["ws", "sse", "poll"])
    clients: list[int] = field(default_factory=lambda: [4])
    rate: list[float] = field(default_factory=lambda: [200.0])
    payload_bytes: list[int] = field(default_factory=lambda: [256])
    payload_kind: list[str] = field(default_factory=lambda: ["json"])
    compression: list[bool] = field(default_factory=lambda: [False])
    warmup_s: float = 1.0
    duration_s: float = 5.0
    repeats: int = 1
    processes: int | None = None  # client processes per cell (default: min(clients, CPUs))
    pin: list[int] | None = None  # CPUs for client processes, round-robin
    pin_server: int | None = None  # CPU for the server's loop thread
    stall_ms: float = 0.0  # test hook: block the server loop this long mid-run
    client_options: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Scenario:
        known = {f.name: f for f in fields(cls)}
        unknown = set(raw) - set(known)
        if unknown:
            raise ValueError(f"unknown scenario keys: {sorted(unknown)}")
        values: dict[str, Any] = {}
        for key, value in raw.items():
            listy = str(known[key].type).startswith("list[") and key != "pin"
            values[key] = [value] if listy and not isinstance(value, list) else value
        scenario = cls(**values)
        scenario.validate()
        return scenario

    @classmethod
    def load(cls, path: str | Path) -> Scenario:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
        return cls.from_dict(raw.get("scenario", raw))

    def validate(self) -> None:
        from transports.server import ALL

        bad = [t for t in self.transports if t not in ALL]
        if bad:
            raise ValueError(f"unknown transports {bad}")
        if any(k not in KINDS for k in self.payload_kind):
            raise ValueError(f"payload_kind must be within {KINDS}")
        if any(r <= 0 for r in self.rate) or any(c < 1 for c in self.clients):
            raise ValueError("rate and clients must be positive")
        if self.duration_s <= 0 or self.warmup_s < 0 or self.repeats < 1:
            raise ValueError("duration_s > 0, warmup_s >= 0, repeats >= 1")

    def cells(self) -> Iterator[dict[str, Any]]:
        for t, c, r, size, kind, comp in itertools.product(
            self.transports,
            self.clients,
            self.rate,
            self.payload_bytes,
            self.payload_kind,
            self.compression,
        ):
            if comp and t not in COMPRESSIBLE:
                continue
            yield {
                "transport": t,
                "clients": c,
                "rate": r,
                "payload_bytes": size,
                "payload_kind": kind,
                "compression": comp,
            }

    def runs(self) -> list[tuple[dict[str, Any], int]]:
        return [(cell, rep) for cell in self.cells() for rep in range(self.repeats)]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_cell(
    scenario: Scenario, cell: dict[str, Any], repeat: int, server: LiveServer | None = None
) -> dict[str, Any]:
    """Run one repeat of one cell on a fresh server; return its tidy row."""
    import os

    transport, clients, rate = cell["transport"], cell["clients"], cell["rate"]
    cfg = ServerConfig(
        ws_compression=cell["compression"],
        queue_size=max(1024, int(rate * 5)),
        # Every measured client connects from 127.0.0.1: per-IP bounds would cap the cell.
        webrtc_max_pending_per_ip=max(10, clients),
        max_connections_per_ip=max(1000, clients),
    )
    own = server is None
    live = server or LiveServer((transport,), config=cfg).start()
    pool: Pool | None = None
    try:
        if scenario.pin_server is not None:
            resources.pin_server(live, scenario.pin_server)
        warmup = math.ceil(rate * scenario.warmup_s)
        total = warmup + math.ceil(rate * scenario.duration_s)
        nproc = scenario.processes or min(clients, os.cpu_count() or 1)
        nproc = max(1, min(nproc, clients))
        options = dict(scenario.client_options.get(transport, {}))
        if transport == "ws":
            options.setdefault("compression", cell["compression"])
        shards = [clients // nproc + (1 if k < clients % nproc else 0) for k in range(nproc)]
        pin = scenario.pin
        specs = [
            WorkerSpec(
                k,
                transport,
                live.url,
                n,
                warmup,
                total,
                pin[k % len(pin)] if pin else None,
                options,
            )
            for k, n in enumerate(shards)
        ]
        live.publish({"prime": True})  # lets clients connect at after=0 without waiting
        before_connect = resources.snapshot(live, set())
        pool = Pool(specs)
        pool.start()
        connected = resources.snapshot(live, pool.pids())
        run = PublishRun(rate, total)
        server_cpu = resources.thread_cpu_num(live)
        fut = live.call(start_publisher, live, run, cell["payload_bytes"], cell["payload_kind"])
        if scenario.stall_ms > 0:
            time.sleep(scenario.warmup_s + scenario.duration_s / 2)
            # Block the server's event loop: nothing is sent, nothing is published meanwhile.
            live.call(time.sleep, scenario.stall_ms / 1000)
        fut.result(total / rate + 60)
        results = pool.collect(timeout=10 + 5 * scenario.stall_ms / 1000)
        after = resources.snapshot(live, pool.pids())
    finally:
        if pool is not None:
            pool.close()
        if own:
            live.stop()
    errors = [r["error"] for r in results if "error" in r]
    merged = histogram.merge(h for r in results for h in r.get("histograms", []))
    service = histogram.merge(r["service"] for r in results if "service" in r)
    per_client = [
        histogram.decode(h).get_total_count() for r in results for h in r.get("histograms", [])
    ]
    summary = histogram.summary(merged)
    delivered = summary["count"] + sum(int(r.get("warmup_received", 0)) for r in results)
    expected = (total - warmup) * clients
    cpu_s = after.cpu_s - connected.cpu_s
    row: dict[str, Any] = {
        "scenario": scenario.name,
        **cell,
        "repeat": repeat,
        "warmup_s": scenario.warmup_s,
        "duration_s": scenario.duration_s,
        "stall_ms": scenario.stall_ms,
        **summary,
        "service_p99_ms": histogram.summary(service)["p99_ms"],
        "expected": expected,
        "lost": expected - summary["count"],
        "min_client_count": min(per_client, default=0),
        **run.lag_summary(),
        "server_cpu_s": cpu_s,
        "server_cpu_s_per_1000": cpu_s / delivered * 1000 if delivered else math.nan,
        # Below ~20 connections the allocator's noise is larger than what they cost.
        "rss_per_conn_kb": (connected.rss_bytes - before_connect.rss_bytes) / clients / 1024
        if clients >= RSS_MIN_CLIENTS
        else math.nan,
        "client_cpu_s": sum(float(r.get("cpu_s", 0)) for r in results),
        "reconnects": sum(int(r.get("reconnects", 0)) for r in results),
        "duplicates": sum(int(r.get("duplicates", 0)) for r in results),
        "gaps": sum(int(r.get("gaps", 0)) for r in results),
        "processes": len(specs),
        "server_cpu": server_cpu,
        "client_cpus": placement(results),
        "histogram": histogram.encode(merged),
        "errors": "; ".join(errors),
    }
    row["valid"] = bool(row["valid"]) and not errors and row["lost"] == 0
    return row


def placement(results: list[dict[str, Any]]) -> str:
    """'p0:cpu0=80%,cpu1=20% p1:...' — where each client process actually ran."""
    parts = []
    for r in results:
        cpus: dict[Any, int] = r.get("cpus", {})
        n = sum(cpus.values()) or 1
        share = ",".join(f"cpu{c}={v * 100 // n}%" for c, v in sorted(cpus.items()))
        parts.append(f"p{r['index']}:{share}")
    return " ".join(parts)


def run(
    scenario: Scenario,
    progress: Callable[[dict[str, Any], int, dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Run every cell × repeat; call ``progress(cell, repeat, row)`` after each."""
    rows = []
    for cell, rep in scenario.runs():
        row = run_cell(scenario, cell, rep)
        rows.append(row)
        if progress is not None:
            progress(cell, rep, row)
    return rows
