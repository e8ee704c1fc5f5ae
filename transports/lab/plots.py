"""Plot helpers shared by ``compare.png`` and the notebooks, so every figure reads the same way.

- Transports are coloured from :mod:`transports.palette` (one colour per transport).
- Latency distributions go on HdrHistogram's percentile axis: x = 1 / (1 − p) on a log
  scale, labelled 50 %, 90 %, 99 %, 99.9 % … — each "nine" gets the same width, so the tail
  the text talks about is as visible as the median (a linear 0–100 % axis squeezes p99 and
  beyond into its last pixel).
- Millisecond axes are logarithmic with plain tick labels (0.5, 1, 2, 5, 10 … ms, never
  ``10^1``), and minor ticks labelled down to fractions of a millisecond.
- Every figure carries a subtitle with the conditions it was measured under
  (:func:`transports.palette.conditions`).
- A run marked invalid (it lost messages or its publisher fell behind) is drawn hollow and
  labelled "invalid" — its numbers are not the transport's.
"""

from __future__ import annotations

import math
from typing import Any

from transports.palette import SERIES, color

PERCENTILE_TICKS = (50.0, 90.0, 99.0, 99.9, 99.99, 99.999)


def _x(p: float) -> float:
    return 1.0 / (1.0 - min(p, 99.9999) / 100.0)


def _ms_label(v: float, _pos: object = None) -> str:
    if v <= 0:
        return ""
    if v >= 1000:
        return f"{v / 1000:g} s"
    return f"{v:g}"


def ms_axis(ax: Any, axis: str = "y", label: str | None = "latency (ms)") -> None:
    """A log millisecond axis with plain numbers at 1-2-5 steps."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    target = ax.yaxis if axis == "y" else ax.xaxis
    (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
    target.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    target.set_major_formatter(FuncFormatter(_ms_label))
    target.set_minor_formatter(NullFormatter())
    if label:
        (ax.set_ylabel if axis == "y" else ax.set_xlabel)(label)


def plain_log_axis(ax: Any, axis: str = "x", ticks: list[float] | None = None) -> None:
    """A log axis with plain numbers (``2, 8, 32`` or ``100, 1000``), only at ``ticks``."""
    from matplotlib.ticker import (
        FixedLocator,
        FuncFormatter,
        LogLocator,
        NullFormatter,
        NullLocator,
    )

    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    if ticks:
        target.set_major_locator(FixedLocator(ticks))
        target.set_minor_locator(NullLocator())
    else:  # 1-2-5 steps, so a range narrower than a decade still has labelled ticks
        target.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    target.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:,.0f}" if v >= 10 else f"{v:g}"))
    target.set_minor_formatter(NullFormatter())


def percentile_axis(ax: Any, max_percentile: float = 99.99) -> None:
    """HdrHistogram's "1/(1−p)" x axis, labelled in percent."""
    from matplotlib.ticker import FixedLocator, NullLocator

    ticks = [p for p in PERCENTILE_TICKS if p <= max_percentile]
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator([_x(p) for p in ticks]))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([f"{p:g} %" for p in ticks])
    ax.set_xlim(1, _x(max_percentile))
    ax.set_xlabel("percentile (log scale of 1 / (1 − p): each nine gets the same room)")


def distribution(
    ax: Any,
    points: list[tuple[float, float]],
    label: str,
    transport: str | None = None,
    style: str = "-",
    valid: bool = True,
    line_color: str | None = None,
) -> None:
    """One latency distribution from :func:`transports.lab.histogram.cdf_points`."""
    pts = [(p, ms) for p, ms in points if p < 100.0]
    if not pts:
        return
    c = line_color or (color(transport) if transport else SERIES[0])
    ax.plot(
        [_x(p) for p, _ in pts],
        [ms for _, ms in pts],
        style,
        color=c,
        lw=2 if valid else 1,
        alpha=1 if valid else 0.6,
        label=label if valid else f"{label} (invalid run)",
    )


def subtitle(fig: Any, title: str, conditions: str) -> None:
    """The figure's title, and under it the conditions it was measured under (use the
    figure with ``layout="constrained"`` so neither is clipped)."""
    fig.suptitle(f"{title}\n{conditions}", fontsize=11)


def log_floor(values: list[float]) -> float:
    """The decade below the smallest positive value (for a log axis that starts somewhere
    meaningful instead of at an arbitrary floor)."""
    positive = [v for v in values if v and v > 0 and not math.isnan(v)]
    if not positive:
        return 0.1
    return float(10 ** math.floor(math.log10(min(positive))))
