# ruff: noqa: E501 — the cells are notebook code, kept as a learner will read them
"""Generate notebook 04-scale (``python notebooks/make_scale.py``).

Same habit as ``make_notebooks.py``: the source stays reviewable as plain Python. Execute with
``jupyter execute --inplace notebooks/04-scale.ipynb`` (runs the whole fan-out suite, about
15 minutes on 2 cores), with FANOUT_RESULTS=DIR to plot a run made by
``transport-lab bench --suite fanout --out DIR``, or with TRANSPORT_LAB_QUICK=1 (CI).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

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
        targets = ["lab-ws", "lab-sse", "lab-poll", "starlette-ws", "starlette-sse", "websockets", "socketio"]
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
| raw Starlette WebSocket broadcast | a set of sockets and a loop awaiting `send_text`, same uvicorn stack |
| raw sse-starlette broadcast | a bounded queue per client drained by `EventSourceResponse` |
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
ok = rows[rows["valid"]]
fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
ok.pivot(index="server", columns="clients", values="cpu_us_per_delivery").plot.barh(ax=axes[0])
axes[0].set_xlabel("server CPU µs per delivery")
for server, g in ok.groupby("server"):
    axes[1].plot(g["clients"], g["p99_ms"], marker="o", label=server)
axes[1].set_xscale("log")
axes[1].set_yscale("log")
axes[1].set_xlabel("clients")
axes[1].set_ylabel("p99 latency (ms, open loop)")
axes[1].legend(fontsize=7)
ok.groupby("server")["rss_per_conn_kb"].median().sort_values().plot.barh(ax=axes[2])
axes[2].set_xlabel("RSS per connection (KB)")
for ax in (axes[0], axes[2]):
    ax.set_ylabel("")
fig.tight_layout()"""),
        new_markdown_cell("## 3. Max-rate search at 1000 clients"),
        new_code_cell("""\
if not search.empty:
    fig, ax = plt.subplots(figsize=(8, 4))
    for server, g in search.groupby("server"):
        ax.plot(g["offered_per_s"], g["p99_ms"], marker="o", label=server)
    ax.axhline(50, color="grey", linestyle=":", label="p99 bound 50 ms")
    ax.set_xlabel("offered deliveries per second")
    ax.set_ylabel("p99 (ms)")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    fig.tight_layout()
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
    nb = new_notebook(cells=cells())
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, HERE / "04-scale.ipynb")


if __name__ == "__main__":
    main()
