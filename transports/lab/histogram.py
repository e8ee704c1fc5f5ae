"""Latency histograms: HdrHistogram per client, encoded to text, merged across processes.

The ``hdrhistogram`` package does the bucketing (3 significant digits over 1 µs .. 1 h), so
percentiles are exact to 0.1 % without keeping every sample; its compressed base64 encoding
is how a client process hands its histogram to the parent, which adds them up.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # one hour: a stalled run still fits
SIGNIFICANT_DIGITS = 3
PERCENTILES = (50.0, 90.0, 99.0, 99.9)


def new() -> HdrHistogram:
    """An empty histogram of latencies in microseconds."""
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def record_seconds(hist: HdrHistogram, seconds: float) -> None:
    """Record one latency given in seconds; negatives (clock noise) count as the lowest bucket."""
    hist.record_value(min(HIGHEST_US, max(LOWEST_US, round(seconds * 1e6))))


def encode(hist: HdrHistogram) -> str:
    return bytes(hist.encode()).decode("ascii")


def decode(text: str) -> HdrHistogram:
    return HdrHistogram.decode(text.encode("ascii"))


def merge(encoded: Iterable[str]) -> HdrHistogram:
    """Add encoded histograms (from any number of processes) into one."""
    total = new()
    for text in encoded:
        total.add(decode(text))
    return total


def summary(hist: HdrHistogram) -> dict[str, Any]:
    """p50/p90/p99/p99.9/max in milliseconds plus the sample count."""
    count = hist.get_total_count()
    out: dict[str, Any] = {"count": count}
    for p in PERCENTILES:
        key = f"p{p:g}".replace(".", "_")
        out[f"{key}_ms"] = hist.get_value_at_percentile(p) / 1000 if count else float("nan")
    out["max_ms"] = hist.get_max_value() / 1000 if count else float("nan")
    out["mean_ms"] = hist.get_mean_value() / 1000 if count else float("nan")
    return out


def cdf_points(hist: HdrHistogram, ticks_per_half: int = 5) -> list[tuple[float, float]]:
    """(percentile, latency ms) pairs on HdrHistogram's log-percentile scale, for plots."""
    if hist.get_total_count() == 0:
        return []
    return [
        (item.percentile_level_iterated_to, item.value_iterated_to / 1000)
        for item in hist.get_percentile_iterator(ticks_per_half)
    ]
