# ruff: noqa: E501 — the cells are notebook code, kept as a learner will read them
"""Generate notebook 04-scale (``python notebooks/make_scale.py``).

Same habit as ``make_notebooks.py``: the source stays reviewable as plain Python. Execute with
``jupyter execute --inplace notebooks/04-scale.ipynb`` (runs the whole fan-out suite, about
15 minutes on 2 cores), with FANOUT_RESULTS=DIR to plot a run made by
``transport-lab bench --suite fanout --out DIR``, or with TRANSPORT_LAB_QUICK=1 (CI).
"""

from __future__ import annotations

from pathlib import Path

from nbformat.v4 import new_code_cell, new_markdown_cell
from nbwrite import write

HERE = Path(__file__).parent

SETUP = """\
import json
import os
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from rich.console import Console
from transports.lab import results
QUICK = os.environ.get("TRANSPORT_LAB_QUICK") == "1"
SOURCE = os.environ.get("FANOUT_RESULTS")
env = results.environment()
print(json.dumps({k: env[k] for k in ("python", "cpu_model", "cpu_count", "kernel", "git_sha")}, indent=1))
print("quick mode" if QUICK else "full mode", "| results from", SOURCE or "a run in this notebook")"""

RUN = """\
if SOURCE:
    out = Path(SOURCE)
else:
    from transports.lab.fanout.suite import DEFAULT_SEARCH, run_suite
    out = Path("fanout-results")
    if QUICK:  # a smoke run: three servers, 20 clients, two search steps
        run_suite(Console(width=160), out, [20], 10.0, ["lab-ws", "starlette-ws", "websockets"], 1.0, 1, 20, [200.0, 400.0])
    else:
        targets = ["lab-ws", "lab-sse", "lab-poll", "lab-poll-linger", "starlette-ws", "starlette-sse", "starlette-poll", "websockets", "socketio"]
        run_suite(Console(width=160), out, [100, 1000, 2000], 10.0, targets, 10.0, 2, 1000, DEFAULT_SEARCH)
rows = results.load(out / "fanout.csv")
meta = rows.attrs.get("meta", {})
search = pd.read_csv(out / "fanout_search.csv") if (out / "fanout_search.csv").exists() else pd.DataFrame()
print("run at", meta.get("environment", {}).get("git_sha"), "| load average at the end:", meta.get("loadavg_end"))"""


def cells() -> list[object]:
    return [
        new_markdown_cell("""# 04 — Fan-out at scale, beside the peers

How much does one server process pay to deliver a message to every subscriber, and how does
that compare with what the same libraries cost without Transport Lab around them? This
notebook plots `transport-lab bench --suite fanout`:

| server | what it is |
|---|---|
| Transport Lab `/ws`, `/sse`, `/poll` | the server as `serve` runs it |
| Transport Lab `/poll`, 0.25 s linger | the same with `--poll-linger 0.25`: a woken poll answers a quarter second later with what came meanwhile |
| raw Starlette WebSocket broadcast | a set of sockets and a loop awaiting `send_text`, same uvicorn stack |
| raw sse-starlette broadcast | a bounded queue per client drained by `EventSourceResponse` |
| raw Starlette long-poll broadcast | recent messages' text in a deque, held requests on one shared `asyncio.Event`, same uvicorn stack |
| raw `websockets` broadcast | the `websockets` server and its `broadcast()` |
| python-socketio | `AsyncServer.emit`, websocket transport only, on uvicorn |

**Method.**
- *Same feed*: every server runs in its own process with the same open-loop ticker
  (`transports.lab.fanout.serverside`): message *i* is due at *t0 + i/rate*, carries that
  intended send time, and ~256-byte messages of Transport Lab's wire shape.
- *Open loop*: latency is receive time minus the **intended** send time, so a stalled server
  shows up as latency, not as a lower rate (coordinated omission).
- *Same generator*: clients are sharded over processes (`loadgen`), each a lean reader of the
  protocol (WebSocket frames, Engine.IO, SSE over chunked HTTP, long polls). Each shard measures
  its own event-loop lag and CPU; a run where the generator was busy above 90 % of its core, or
  woke more than 20 ms late at p99, is flagged **invalid**.
- *Pinning*: on two or more CPUs the server runs on CPU 0 and the generator on CPU 1.
- *Server CPU per delivery*: CPU time of the server process (`/proc/PID/task/*/schedstat`) over
  the window ÷ messages delivered to all clients.
- *Memory per connection*: (RSS with N clients − RSS before) ÷ N, at 10 msg/s.
- *GC*: every collection in the server is timed with `gc.callbacks`; the longest pause is
  reported.
- *Max-rate search* (1000 clients): the rate is raised step by step until p99 ≥ 50 ms, fewer
  than 97 % of the offered deliveries arrive, a seq is lost, or the generator is the bottleneck.

On a shared 2-core machine absolute figures move with whatever else runs; the **ratios within
one run** are the comparison. The load average is recorded with every row."""),
        new_code_cell(SETUP),
        new_code_cell(RUN),
        new_markdown_cell("## 1. The table"),
        new_code_cell("""\
cols = ["server", "clients", "cpu_us_per_delivery", "p50_ms", "p99_ms", "rss_per_conn_kb", "connect_s", "gc_max_ms", "lost", "dup", "gen_busy", "valid", "loadavg_1m"]
rows[[c for c in cols if c in rows.columns]]"""),
        new_code_cell("""\
ratios = pd.read_csv(out / "fanout_ratios.csv") if (out / "fanout_ratios.csv").exists() else pd.DataFrame()
ratios.round(2)"""),
        new_markdown_cell("## 2. CPU per delivery, tail latency and memory per connection"),
        new_code_cell("""\
# Transport Lab's own endpoints in their transport's colour; the peers in greys, each with its
# own line style and marker, so no baseline can be mistaken for a transport.
from transports.lab import plots
from transports.palette import SERIES, color, conditions
STYLE = {
    "lab-ws": dict(color=color("ws"), linestyle="-", marker="o"),
    "lab-sse": dict(color=color("sse"), linestyle="-", marker="o"),
    "lab-poll": dict(color=color("poll"), linestyle="-", marker="o"),
    "lab-poll-linger": dict(color=color("poll"), linestyle="--", marker="o", markerfacecolor="white"),
    "starlette-ws": dict(color=SERIES[0], linestyle="--", marker="s"),
    "starlette-sse": dict(color=SERIES[1], linestyle="-.", marker="^"),
    "websockets": dict(color=SERIES[2], linestyle=":", marker="D"),
    "socketio": dict(color=SERIES[1], linestyle=(0, (6, 2, 1, 2, 1, 2)), marker="v"),
    "starlette-poll": dict(color=SERIES[0], linestyle=(0, (1, 1)), marker="P"),
}
ok = rows[rows["valid"]]
fig, axes = plt.subplots(1, 3, figsize=(15, 4.8), layout="constrained")
for target, g in ok.groupby("target", sort=False):
    g = g.sort_values("clients")
    label = g["server"].iloc[0]
    for ax, col in zip(axes, ["cpu_us_per_delivery", "p99_ms", "rss_per_conn_kb"]):
        ax.plot(g["clients"], g[col], label=label, lw=2, ms=5, **STYLE.get(target, dict(color=SERIES[2])))
ticks = sorted(ok["clients"].unique())
for ax, ylabel in zip(axes, ["server CPU µs per delivery", "p99 latency (ms, open loop)", "RSS per connection (KB)"]):
    plots.plain_log_axis(ax, "x", ticks)
    ax.set_xlabel("clients")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both")
plots.ms_axis(axes[1], "y", "p99 latency (ms, open loop)")
handles, labels = axes[0].get_legend_handles_labels()
fig.legend(handles, labels, loc="outside lower center", ncol=4, fontsize=9)
CONDITIONS = conditions(rate=f"{meta.get('rate', rows['rate'].iloc[0]):g} msg/s per client", clients="/".join(str(c) for c in ticks), payload="~256 B", pinning="server CPU 0, generator CPU 1")
plots.subtitle(fig, "Fan-out: server CPU per delivery, tail latency and memory per connection (valid runs)", CONDITIONS)"""),
        new_markdown_cell("## 3. Max-rate search at 1000 clients"),
        new_code_cell("""\
if not search.empty:
    fig, ax = plt.subplots(figsize=(9, 4.8), layout="constrained")
    for target, g in search.groupby("target", sort=False):
        ax.plot(g["offered_per_s"], g["p99_ms"], label=g["server"].iloc[0], lw=2, ms=5, **STYLE.get(target, dict(color=SERIES[2])))
    ax.axhline(50, color=SERIES[2], linestyle=":", lw=1, label="p99 bound 50 ms")
    ax.set_xlabel("offered deliveries per second")
    plots.ms_axis(ax, "y", "p99 (ms)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    plots.subtitle(fig, "Max-rate search: p99 as the offered rate rises", conditions(clients=1000, payload="~256 B", pinning="server CPU 0, generator CPU 1"))
    print(search.groupby("server").apply(lambda g: g.loc[g["passed"], "offered_per_s"].max(), include_groups=False).rename("max passing deliveries/s"))"""),
        new_markdown_cell("""## 4. Garbage-collection pauses and the goals

Before the hot-path work, Transport Lab's tail at 1000 clients was made of gen-2 collections
of 100–200 ms (history objects plus per-connection objects, walked on every full collection).
The server now calls `gc.freeze()` after start-up (`ServerConfig.gc_freeze`, on in `serve`),
so the objects that exist then are never walked again, and the WebSocket fan-out no longer
allocates a task wake-up, a timeout object and a lock acquisition per message."""),
        new_code_cell("""\
gc_cols = ["server", "clients", "gc_collections", "gc_gen2", "gc_max_ms", "gc_over_20ms", "tick_lag_max_ms"]
rows[[c for c in gc_cols if c in rows.columns]]"""),
        new_code_cell("""\
pd.DataFrame(meta.get("goals", []))"""),
    ]


def main() -> None:
    write("04-scale", cells())


if __name__ == "__main__":
    main()
