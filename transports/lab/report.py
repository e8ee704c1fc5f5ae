"""Summaries of results: a rich table for the terminal and PNG charts (matplotlib, Agg).

Latency figures are the median across repeats, with the spread (min–max across repeats)
next to them: one run on a 2-core machine is an anecdote, not a measurement.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

ORDER = ("ws", "sse", "poll", "webrtc", "mqtt")


def _order(names: Any) -> list[str]:
    names = list(dict.fromkeys(names))
    return sorted(names, key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER))


def summarize(latency: Any, wire: Any | None = None) -> Any:
    """One row per transport: latency medians and spreads across repeats, plus wire bytes."""
    import pandas as pd

    g = latency.groupby("transport")
    out = pd.DataFrame(
        {
            "repeats": g.size(),
            "p50_ms": g["p50_ms"].median(),
            "p99_ms": g["p99_ms"].median(),
            "p99_min_ms": g["p99_ms"].min(),
            "p99_max_ms": g["p99_ms"].max(),
            "p99_9_ms": g["p99_9_ms"].median(),
            "max_ms": g["max_ms"].max(),
            "count": g["count"].sum(),
            "lost": g["lost"].sum(),
            "valid": g["valid"].all(),
            "cpu_ms_per_1000": g["server_cpu_s_per_1000"].median() * 1000,
            "rss_kb_per_conn": g["rss_per_conn_kb"].median(),
        }
    )
    if wire is not None and len(wire):
        w = wire.set_index("transport")[
            ["setup_bytes", "per_msg_down", "per_msg_up", "framing_per_msg", "idle_bytes_per_hour"]
        ]
        out = out.join(w, how="left")
    return out.loc[_order(out.index)].reset_index()


def table(summary: Any, title: str = "Transport Lab — compare") -> Table:
    t = Table(title=title, title_style="bold")
    cols = [
        ("transport", "transport", "{}"),
        ("p50 ms", "p50_ms", "{:.2f}"),
        ("p99 ms (min–max)", None, ""),
        ("p99.9 ms", "p99_9_ms", "{:.2f}"),
        ("max ms", "max_ms", "{:.1f}"),
        ("msgs", "count", "{:,}"),
        ("lost", "lost", "{}"),
        ("valid", "valid", "{}"),
        ("srv CPU ms/1k", "cpu_ms_per_1000", "{:.0f}"),
        ("RSS KB/conn", "rss_kb_per_conn", "{:.0f}"),
        ("setup B", "setup_bytes", "{:.0f}"),
        ("B/msg ↓", "per_msg_down", "{:.0f}"),
        ("B/msg ↑", "per_msg_up", "{:.0f}"),
        ("framing B", "framing_per_msg", "{:.0f}"),
        ("idle B/h", "idle_bytes_per_hour", "{:,.0f}"),
    ]
    present = [c for c in cols if c[1] is None or c[1] in summary.columns]
    for header, _, _ in present:
        t.add_column(header, justify="left" if header == "transport" else "right")
    for _, row in summary.iterrows():
        cells = []
        for _, key, fmt in present:
            if key is None:
                cells.append(
                    f"{row['p99_ms']:.2f} ({row['p99_min_ms']:.2f}–{row['p99_max_ms']:.2f})"
                )
            else:
                value = row[key]
                cells.append("–" if _missing(value) else fmt.format(value))
        t.add_row(*cells)
    return t


def _missing(value: Any) -> bool:
    try:
        return bool(value != value)  # NaN
    except (TypeError, ValueError):
        return False


def chart(summary: Any, path: str | Path, title: str = "Transport Lab — compare") -> Path:
    """Latency percentiles (spread as error bars) and bytes per message (payload vs framing)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(summary["transport"])
    x = range(len(names))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    width = 0.27
    for k, (col, label) in enumerate((("p50_ms", "p50"), ("p99_ms", "p99"), ("p99_9_ms", "p99.9"))):
        xs = [i + (k - 1) * width for i in x]
        ax1.bar(xs, summary[col], width, label=label)
    err_lo = summary["p99_ms"] - summary["p99_min_ms"]
    err_hi = summary["p99_max_ms"] - summary["p99_ms"]
    ax1.errorbar(list(x), summary["p99_ms"], yerr=[err_lo, err_hi], fmt="none", ecolor="black",
                 capsize=4, label="p99 spread (repeats)")  # fmt: skip
    ax1.set_xticks(list(x), names)
    ax1.set_yscale("log")
    ax1.set_ylabel("latency vs intended send time (ms, log)")
    ax1.set_title("Latency")
    ax1.legend(fontsize=8)
    if "per_msg_down" in summary.columns:
        payload = summary["per_msg_down"] - summary["framing_per_msg"]
        ax2.bar(list(x), payload, label="payload (JSON message)", color="#4c72b0")
        ax2.bar(list(x), summary["framing_per_msg"], bottom=payload, label="framing ↓",
                color="#dd8452")  # fmt: skip
        ax2.bar(list(x), summary["per_msg_up"], bottom=summary["per_msg_down"],
                label="client → server", color="#999999")  # fmt: skip
        ax2.set_xticks(list(x), names)
        ax2.set_ylabel("payload bytes on the wire per message (TCP; UDP for webrtc)")
        ax2.set_title("Bytes on the wire per message")
        ax2.legend(fontsize=8)
    else:
        ax2.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
