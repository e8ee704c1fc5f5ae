"""``transport-lab logs summarize FILE``: per-transport tables from a ``--log-format json`` log.

Reads the ``connect``/``disconnect``/``reject`` events and, when the traffic log was on, the
``traffic`` events (see ``docs/operations.md``); lines that are not JSON objects are counted
and skipped. The result is plain data (:func:`summarize`) so notebooks can use it too.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class TransportSummary:
    connects: int = 0
    disconnects: int = 0
    rejects: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    durations: list[float] = field(default_factory=list)
    conn_bytes: int = 0
    out_sizes: list[int] = field(default_factory=list)
    in_sizes: list[int] = field(default_factory=list)
    first_at: float | None = None
    last_at: float | None = None

    def seen(self, at: float | None) -> None:
        if at is None:
            return
        self.first_at = at if self.first_at is None else min(self.first_at, at)
        self.last_at = at if self.last_at is None else max(self.last_at, at)

    def row(self) -> dict[str, Any]:
        span = (self.last_at - self.first_at) if self.first_at and self.last_at else 0.0
        out = self.out_sizes
        return {
            "connects": self.connects,
            "disconnects": self.disconnects,
            "rejects": sum(self.rejects.values()),
            "median_duration_s": round(statistics.median(self.durations), 3)
            if self.durations
            else None,
            "max_duration_s": round(max(self.durations), 3) if self.durations else None,
            "bytes": self.conn_bytes,
            "messages_out": len(out),
            "messages_in": len(self.in_sizes),
            "mean_size_b": round(statistics.fmean(out), 1) if out else None,
            "max_size_b": max(out) if out else None,
            "rate_per_s": round(len(out) / span, 2) if out and span > 0 else None,
        }


@dataclass
class Summary:
    transports: dict[str, TransportSummary] = field(
        default_factory=lambda: defaultdict(TransportSummary)
    )
    lines: int = 0
    skipped: int = 0
    suppressed: int = 0

    def table(self) -> list[dict[str, Any]]:
        return [{"transport": n, **t.row()} for n, t in sorted(self.transports.items())]

    def reasons(self) -> list[tuple[str, str, int]]:
        rows = [(n, r, c) for n, t in self.transports.items() for r, c in t.reasons.items()]
        rows += [
            (n, f"rejected: {r}", c)
            for n, t in self.transports.items()
            for r, c in t.rejects.items()
        ]
        return sorted(rows, key=lambda x: -x[2])


def summarize(lines: Iterable[str]) -> Summary:
    out = Summary()
    for line in lines:
        if not line.strip():
            continue
        out.lines += 1
        try:
            rec = json.loads(line)
        except ValueError:
            out.skipped += 1
            continue
        if not isinstance(rec, dict) or "event" not in rec:
            continue
        event, name = rec.get("event"), str(rec.get("transport") or "?")
        if event == "suppressed":
            out.suppressed += int(rec.get("count") or 0)
            continue
        if event not in ("connect", "disconnect", "reject", "traffic"):
            continue
        t = out.transports[name]
        if event == "connect":
            t.connects += 1
        elif event == "disconnect":
            t.disconnects += 1
            t.reasons[str(rec.get("reason"))] += 1
            if isinstance(rec.get("duration_s"), int | float):
                t.durations.append(float(rec["duration_s"]))
            t.conn_bytes += int(rec.get("bytes") or 0)
        elif event == "reject":
            t.rejects[str(rec.get("reason"))] += 1
        else:
            size = int(rec.get("size") or 0)
            (t.out_sizes if rec.get("direction") == "out" else t.in_sizes).append(size)
            t.seen(rec.get("at"))
    return out
