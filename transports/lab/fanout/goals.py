"""The issue's goals, checked against one suite run: ratios of figures measured together.

Each check returns ``(goal, met, figure)``; ``met`` is ``None`` when the run lacks a figure
the goal needs (a target or a size that was not run, or an invalid run).
"""

from __future__ import annotations

import math
from typing import Any

Row = dict[str, Any]


def _pick(rows: list[Row], target: str, clients: int) -> Row | None:
    for row in rows:
        if row["target"] == target and row["clients"] == clients and row.get("valid"):
            return row
    return None


def _ratio(a: Row | None, b: Row | None, key: str) -> float | None:
    if a is None or b is None:
        return None
    x, y = float(a[key]), float(b[key])
    if math.isnan(x) or math.isnan(y) or y <= 0:
        return None
    return x / y


def _check(goal: str, ratio: float | None, bound: float, what: str) -> tuple[str, bool | None, str]:
    if ratio is None:
        return goal, None, f"{what}: not measured"
    return goal, ratio <= bound, f"{what} = {ratio:.2f}× (bound {bound:g}×)"


def ratio_rows(rows: list[Row]) -> list[Row]:
    """Transport Lab's figures over each baseline's, per size (for the table and the CSV)."""
    pairs = [
        ("lab-ws", "starlette-ws"),
        ("lab-ws", "websockets"),
        ("lab-ws", "socketio"),
        ("lab-sse", "starlette-sse"),
        ("lab-sse", "lab-ws"),
        ("lab-poll", "lab-ws"),
        ("lab-poll", "starlette-poll"),
        ("lab-poll-linger", "lab-ws"),
    ]
    out = []
    for clients in sorted({r["clients"] for r in rows}):
        for a, b in pairs:
            ra, rb = _pick(rows, a, clients), _pick(rows, b, clients)
            if ra is None or rb is None:
                continue
            out.append(
                {
                    "clients": clients,
                    "target": a,
                    "baseline": b,
                    **{
                        f"{k}_ratio": _ratio(ra, rb, k)
                        for k in (
                            "cpu_us_per_delivery",
                            "p50_ms",
                            "p99_ms",
                            "rss_per_conn_kb",
                            "connect_s",
                        )
                    },
                }
            )
    return out


def check(
    rows: list[Row], search: list[Row], big: int = 1000
) -> list[tuple[str, bool | None, str]]:
    sizes = sorted({r["clients"] for r in rows})
    n = big if big in sizes else (sizes[-1] if sizes else big)
    lab, star = _pick(rows, "lab-ws", n), _pick(rows, "starlette-ws", n)
    out = [
        _check(
            "1 WS CPU/delivery ≤ 1.2× raw Starlette",
            _ratio(lab, star, "cpu_us_per_delivery"),
            1.2,
            f"{n} clients",
        )
    ]
    out.append(
        _check("2a p99 ≤ 1.5× raw Starlette", _ratio(lab, star, "p99_ms"), 1.5, f"{n} clients")
    )
    if lab is None:
        out.append(("2b no GC pause > 20 ms", None, "not measured"))
    else:
        out.append(
            (
                "2b no GC pause > 20 ms",
                lab["gc_max_ms"] <= 20,
                f"longest {lab['gc_max_ms']:.1f} ms, {lab['gc_over_20ms']} over 20 ms",
            )
        )
    steps = [s for s in search if s["target"] == "lab-ws"]
    if not steps:
        out.append(("3 WS ≥ 40,000 deliveries/s with p99 < 50 ms", None, "no search run"))
    else:
        best = max((s["offered_per_s"] for s in steps if s["passed"]), default=0.0)
        out.append(
            (
                "3 WS ≥ 40,000 deliveries/s with p99 < 50 ms",
                best >= 40_000,
                f"{best:,.0f}/s at {steps[0]['clients']} clients",
            )
        )
    ws = lab
    out.append(
        _check(
            "4a SSE CPU ≤ 1.5× Lab WS",
            _ratio(_pick(rows, "lab-sse", n), ws, "cpu_us_per_delivery"),
            1.5,
            f"{n} clients",
        )
    )
    out.append(
        _check(
            "4b poll CPU ≤ 3× Lab WS",
            _ratio(_pick(rows, "lab-poll", n), ws, "cpu_us_per_delivery"),
            3.0,
            f"{n} clients",
        )
    )
    out.append(
        _check(
            "4b' poll with 0.25 s linger CPU ≤ 3× Lab WS",
            _ratio(_pick(rows, "lab-poll-linger", n), ws, "cpu_us_per_delivery"),
            3.0,
            f"{n} clients",
        )
    )
    out.append(
        _check(
            "5a WS memory/conn ≤ 1.1× raw Starlette",
            _ratio(lab, star, "rss_per_conn_kb"),
            1.1,
            f"{n} clients",
        )
    )
    out.append(
        _check(
            "5b SSE memory/conn ≤ raw sse-starlette",
            _ratio(_pick(rows, "lab-sse", n), _pick(rows, "starlette-sse", n), "rss_per_conn_kb"),
            1.0,
            f"{n} clients",
        )
    )
    poll = _pick(rows, "lab-poll", n)
    out.append(
        (
            "5c poll memory/conn ≤ 16 KB",
            None if poll is None else poll["rss_per_conn_kb"] <= 16,
            "not measured" if poll is None else f"{poll['rss_per_conn_kb']:.1f} KB",
        )
    )
    m = sizes[-1] if sizes else 2000
    out.append(
        _check(
            "6 WS connect ≤ 2× raw websockets",
            _ratio(_pick(rows, "lab-ws", m), _pick(rows, "websockets", m), "connect_s"),
            2.0,
            f"{m} clients",
        )
    )
    worse = []
    for size in sizes:
        a, b = _pick(rows, "lab-ws", size), _pick(rows, "socketio", size)
        if a is not None and b is not None and a["p99_ms"] >= b["p99_ms"]:
            worse.append(size)
    cpu = _ratio(_pick(rows, "socketio", n), lab, "cpu_us_per_delivery")
    out.append(
        (
            "7 vs python-socketio: ≥ 3× less CPU, lower p99 at every size",
            None if cpu is None else (cpu >= 3 and not worse),
            "not measured"
            if cpu is None
            else f"socketio/lab CPU = {cpu:.2f}×; "
            + (f"p99 not lower at {worse}" if worse else "Lab p99 lower at every size"),
        )
    )
    return out
