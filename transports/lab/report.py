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


# (header, summary column or None for the p99 spread, format). Short headers so the table
# fits a 120-column terminal; every figure is in summary.csv with its full name.
COLUMNS: tuple[tuple[str, str | None, str], ...] = (
    ("transport", "transport", "{}"),
    ("p50 ms", "p50_ms", "{:.2f}"),
    ("p99 ms (spread)", None, ""),
    ("max ms", "max_ms", "{:.0f}"),
    ("lost", "lost", "{}"),
    ("ok", "valid", "{}"),
    ("CPU ms /1k", "cpu_ms_per_1000", "{:.0f}"),
    ("RSS KB /conn", "rss_kb_per_conn", "{:.0f}"),
    ("setup B", "setup_bytes", "{:.0f}"),
    ("B/msg down", "per_msg_down", "{:.0f}"),
    ("framing B", "framing_per_msg", "{:.0f}"),
    ("idle kB/h", "idle_bytes_per_hour", "{:.1f}"),
)
LEGEND = (
    "p50/p99/max: ms from each message's intended send time to its receipt (open loop), median "
    "of repeats; spread = min–max p99 across repeats. lost: never received. ok: no run lost "
    "messages or fell behind its schedule. CPU: server CPU ms per 1000 deliveries. "
    "B/msg down: bytes server→client per message (TCP payload; webrtc: UDP), framing = the "
    "part that is not our JSON. setup: bytes to connect. idle kB/h: an idle connection at the "
    "default heartbeats. Details: --explain, docs/lab.md."
)
EXPLAIN = {
    "p50 ms, p99 ms, max ms": "latency from the message's intended send time (data.due, open "
    "loop: a stalled server shows up here instead of lowering the rate) to the client "
    "receiving it; median across repeats. The spread is the min–max p99 across repeats: one "
    "run on a small machine is an anecdote.",
    "lost": "messages published during the measured window that a client never received.",
    "ok": "False when a run lost messages, had client errors, or the publisher's lag had not "
    "drained by the end (the machine could not keep the rate): its figures are not the "
    "transport's. Invalid runs are listed below the table.",
    "CPU ms /1k": "CPU time of the server's event loop (and the Mosquitto broker for mqtt) per "
    "1000 delivered messages.",
    "RSS KB /conn": "server memory growth per connection; only measured with >= 20 clients "
    "(below that the allocator's noise is larger than a connection), '–' otherwise.",
    "setup B": "bytes both ways to open one connection and receive its first message.",
    "B/msg down": "bytes server→client per message: TCP payload (HTTP headers, WS/SSE/MQTT "
    "framing, our JSON; not IP/TCP headers); for webrtc the UDP payload (DTLS+SCTP).",
    "framing B": "B/msg down minus our encoded JSON message: what the protocol adds.",
    "idle kB/h": "bytes per hour on a connection that carries no messages, at the default "
    "heartbeats: ws server ping 20 s + client ping 10 s, sse comment 15 s, poll re-poll every "
    "25 s, webrtc channel ping 5 s (+ ICE consent), mqtt keep-alive 10 s.",
}


def table(summary: Any, title: str = "Transport Lab — compare") -> Table:
    t = Table(title=title, title_style="bold", caption=LEGEND, caption_justify="left")
    present = [c for c in COLUMNS if c[1] is None or c[1] in summary.columns]
    # A column with no figure in any row (e.g. RSS with few clients) is left out.
    present = [c for c in present if c[1] is None or not all(_missing(v) for v in summary[c[1]])]
    for header, key, _ in present:
        t.add_column(
            header,
            justify="left" if header == "transport" else "right",
            no_wrap=key in (None, "transport"),
        )
    for _, row in summary.iterrows():
        cells = []
        for _, key, fmt in present:
            if key is None:
                cells.append(
                    f"{_g(row['p99_ms'])} ({_g(row['p99_min_ms'])}–{_g(row['p99_max_ms'])})"
                )
            elif key == "valid":
                cells.append("yes" if row[key] else "[red]NO[/]")
            elif key == "idle_bytes_per_hour":
                cells.append("–" if _missing(row[key]) else fmt.format(row[key] / 1000))
            else:
                value = row[key]
                cells.append("–" if _missing(value) else fmt.format(value))
        t.add_row(*cells)
    return t


def explain() -> Table:
    """The long form of :data:`LEGEND`: one row per column."""
    t = Table("column", "what it is", title="compare/bench columns (docs/lab.md)", show_lines=True)
    for name, text in EXPLAIN.items():
        t.add_row(name, text)
    return t


def _g(ms: float) -> str:
    """Three significant figures, no exponent: 0.512, 4.31, 41.2, 412, 1234."""
    return f"{ms:.3g}" if ms < 1000 else f"{ms:.0f}"


def _missing(value: Any) -> bool:
    try:
        return bool(value != value)  # NaN
    except (TypeError, ValueError):
        return False


def chart(
    summary: Any,
    path: str | Path,
    title: str = "Transport Lab — compare",
    conditions: str = "",
) -> Path:
    """Latency (p50, p99 with its spread across repeats, p99.9) and bytes per message.

    Latency is drawn as points on a log axis with plain millisecond ticks, not as bars: a bar
    on a log axis starts at an arbitrary floor, so its length means nothing. Bytes are
    stacked bars, one colour per transport: solid = our JSON message, hatched = framing,
    light = client → server. An invalid run is drawn hollow and its label says so.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from transports.lab import plots
    from transports.palette import SERIES, color

    names = list(summary["transport"])
    valid = list(summary["valid"]) if "valid" in summary.columns else [True] * len(names)
    x = list(range(len(names)))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8), layout="constrained")
    markers = (("p50_ms", "o", "p50"), ("p99_ms", "s", "p99 (bar: min–max of repeats)"),
               ("p99_9_ms", "^", "p99.9"))  # fmt: skip
    for i, name in enumerate(names):
        row = summary.iloc[i]
        c = color(name)
        ax1.plot([i, i], [row["p50_ms"], row["p99_9_ms"]], color=c, lw=1, alpha=0.5)
        spread = [[row["p99_ms"] - row["p99_min_ms"]], [row["p99_max_ms"] - row["p99_ms"]]]
        ax1.errorbar([i], [row["p99_ms"]], yerr=spread, fmt="none", ecolor=c, capsize=5, lw=1.5)
        for col, marker, _ in markers:
            ax1.plot([i], [row[col]], marker, ms=8, color=c,
                     markerfacecolor=c if valid[i] else "white")  # fmt: skip
    plots.ms_axis(ax1, "y", "latency vs intended send time (ms, log)")
    lows = [v for v in summary["p50_ms"]] + [v for v in summary["p99_min_ms"]]
    highs = [v for v in summary["p99_9_ms"]] + [v for v in summary["p99_max_ms"]]
    ax1.set_ylim(plots.log_floor(lows), max(highs) * 2)
    labels = [n if ok else f"{n}\n(invalid)" for n, ok in zip(names, valid, strict=True)]
    ax1.set_xticks(x, labels)
    for tick, ok in zip(ax1.get_xticklabels(), valid, strict=True):
        tick.set_color("black" if ok else "#D55E00")
    ax1.set_xlim(-0.6, len(names) - 0.4)
    ax1.grid(axis="y", which="both", alpha=0.25)
    ax1.set_title("Latency per message")
    ax1.legend(
        [Line2D([], [], ls="none", marker=m, color=SERIES[0]) for _, m, _ in markers],
        [label for _, _, label in markers], fontsize=8, loc="upper left",
    )  # fmt: skip
    if "per_msg_down" in summary.columns:
        payload = summary["per_msg_down"] - summary["framing_per_msg"]
        colors = [color(n) for n in names]
        ax2.bar(x, payload, color=colors)
        ax2.bar(x, summary["framing_per_msg"], bottom=payload, color=colors, alpha=0.55,
                hatch="//", edgecolor="white")  # fmt: skip
        ax2.bar(x, summary["per_msg_up"], bottom=summary["per_msg_down"], color=colors,
                alpha=0.25)  # fmt: skip
        ax2.set_xticks(x, names)
        ax2.set_ylabel("bytes per message (TCP payload; webrtc: UDP)")
        ax2.set_title("Bytes on the wire per message")
        ax2.legend(
            [Patch(color=SERIES[1]), Patch(facecolor=SERIES[2], hatch="//", edgecolor="white"),
             Patch(color=SERIES[3])],
            ["our JSON message", "framing, server → client", "client → server"],
            fontsize=8, loc="upper left",
        )  # fmt: skip
        ax2.grid(axis="y", alpha=0.25)
    else:
        ax2.axis("off")
    plots.subtitle(fig, title, conditions or "conditions not recorded")
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
