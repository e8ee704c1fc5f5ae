# ruff: noqa: E501 — the cells are notebook code, kept as a learner will read them
"""Generate notebook 07-scale-out from the cells below (``python notebooks/make_scale_out.py``).

Same habit as the other ``make_*.py``: the source stays reviewable as plain Python. Execute
with ``jupyter execute --inplace notebooks/07-scale-out.ipynb`` (full parameters, about 5
minutes on 2 cores) or with TRANSPORT_LAB_QUICK=1 (CI, about a minute). Needs
``redis-server`` and ``haproxy`` (``./dev`` installs both).
"""

from __future__ import annotations

from pathlib import Path

from nbformat.v4 import new_code_cell, new_markdown_cell
from nbwrite import write

HERE = Path(__file__).parent

SETUP = """\
import json
import logging
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from transports.channels import NamespaceOptions, default_namespaces
from transports.config import ServerConfig
from transports.lab import results
from transports.lab.cluster import HAProxy, RedisServer
from transports.lab.load.plan import Plan
from transports.lab.load.run import run
from transports.lab import plots
from transports.live import LiveServer
from transports.palette import LABELS, color, conditions

QUICK = os.environ.get("TRANSPORT_LAB_QUICK") == "1"
env = results.environment()
print(json.dumps({k: env[k] for k in ("python", "cpu_model", "cpu_count", "kernel", "git_sha")}, indent=1))
print("quick mode" if QUICK else "full mode")
logging.getLogger("asyncio").setLevel(logging.ERROR)
WORK = Path(tempfile.mkdtemp(prefix="scale-out-"))
redis = RedisServer(WORK / "redis").start()
TOKEN = "notebook-token"
NAMESPACES = {**default_namespaces(), "load": NamespaceOptions(publish=True)}


def node(engine=None, transports=("ws", "sse", "poll")):
    cfg = ServerConfig(engine_url=engine, namespaces=NAMESPACES, admin_token=TOKEN)
    return LiveServer(transports, config=cfg).start()


async def measure(urls, clients, transport="ws", rate=10.0, duration=None, **labels):
    plan = Plan(urls=list(urls), clients=clients, mix={transport: 1.0}, publish_rate=rate,
                connect_rate=max(50.0, clients / 2), duration=duration or (4.0 if QUICK else 10.0),
                processes=2, token=TOKEN, channel="load:main")
    summary = await run(plan)
    row = next(r for r in summary["rows"] if r["transport"] == transport)
    return {**labels, "transport": transport, "clients": clients, **{k: row[k] for k in (
        "deliveries_per_s", "p50_ms", "p99_ms", "duplicates", "gaps", "missing")},
        "tool_lag_p99_ms": round(summary["tool_lag_p99_ms"], 1), "saturated": summary["tool_saturated"]}


def conds(**extra):
    \"\"\"The subtitle every figure below carries: the load's rate, payload and duration.\"\"\"
    return conditions(**extra, rate="10 msg/s", payload=f"{Plan.__dataclass_fields__['payload_bytes'].default} B",
                      measured=f"{4.0 if QUICK else 10.0:g} s per run", mode="quick" if QUICK else "full")"""


def cells() -> list[object]:
    return [
        new_markdown_cell("""# 07 — Scale-out: more clients, more nodes, and what Redis costs

One `serve` process holds its channels in memory. With `--engine redis://…` several processes
share the channels through Redis (seq by a Lua script, history in a Stream, fan-out by pub/sub;
see `docs/scale.md`), and a load balancer spreads clients over them. This notebook measures, with
`transport-lab load` (open loop, clients in two processes, its own lag reported):

1. **deliveries/s and p99 against the number of clients**, per transport, on one node;
2. **one node against two** behind HAProxy (round robin, no sticky sessions);
3. **what Redis adds to latency**: the same load on one node, memory against Redis.

Latency is the client's receive time minus the `sent_at` stamped by the node that stored the
message. Everything runs on this machine's cores: the servers, Redis, HAProxy and the load
generator share them, so read the ratios, and check `tool_lag_p99_ms`: when the generator
itself lags (`saturated`), its latencies are an upper bound."""),
        new_code_cell(SETUP),
        new_markdown_cell("""## 1. Clients per transport on one node

One node (memory, the default), every client following one channel, 10 publishes/s. Deliveries
per second should grow with the clients (10 × clients) until something saturates; p99 shows when
the fan-out stops keeping up."""),
        new_code_cell("""\
SIZES = [20, 60] if QUICK else [50, 200, 500]
one = node()
rows = []
for transport in ["ws", "sse", "poll"]:
    for n in SIZES:
        rows.append(await measure([one.url], n, transport))
one.stop()
per_transport = pd.DataFrame(rows)
per_transport"""),
        new_code_cell("""\
fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), layout="constrained")
for transport, group in per_transport.groupby("transport"):
    for ax, col in zip(axes, ["deliveries_per_s", "p99_ms"]):
        ax.plot(group["clients"], group[col], marker="o", lw=2, label=LABELS[transport], color=color(transport))
axes[0].set_ylabel("deliveries / s"); axes[0].set_title("deliveries per second (one node)")
axes[1].set_title("p99 latency (one node)")
plots.ms_axis(axes[1], "y", "p99 latency (ms)")
for ax in axes:
    plots.plain_log_axis(ax, "x", SIZES); ax.set_xlabel("clients"); ax.grid(alpha=0.3, which="both")
axes[0].legend()
plots.subtitle(fig, "One node, each transport alone", conds(clients="/".join(map(str, SIZES))))
plt.show()"""),
        new_markdown_cell("""## 2. One node against two behind HAProxy

Both layouts use the Redis engine and HAProxy in front (round robin, health checks on `/readyz`),
so the only difference is the number of `serve` processes. On two cores shared with Redis,
HAProxy and the load generator, a second process gains less than on a machine with cores to
spare; what must hold in both is zero loss and zero duplicates."""),
        new_code_cell("""\
N = 100 if QUICK else 1000
layout_rows = []
for count in (1, 2):
    nodes = [node(redis.url, ("ws",)) for _ in range(count)]
    balancer = HAProxy(WORK, [n.port for n in nodes]).start()
    try:
        layout_rows.append(await measure([balancer.url], N, "ws", nodes=count))
    finally:
        balancer.stop()
        for n in nodes:
            n.stop()
layouts = pd.DataFrame(layout_rows)
layouts"""),
        new_code_cell("""\
fig, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
labels = [f"{n} node{'s' if n > 1 else ''}" for n in layouts["nodes"]]
# Both bars are WebSocket runs: the transport's colour, the node count told apart by hatching.
for ax, col, ylabel in zip(axes, ["deliveries_per_s", "p99_ms"], ["deliveries / s", "p99 latency (ms)"]):
    ax.bar(labels, layouts[col], color=color("ws"), hatch=["", "//"][: len(labels)], edgecolor="white")
    ax.set_ylabel(ylabel); ax.grid(alpha=0.3, axis="y")
axes[0].set_title("deliveries per second"); axes[1].set_title("p99 latency")
plots.subtitle(fig, f"{N} WebSocket clients behind HAProxy: one node vs two (Redis engine)", conds(clients=N))
plt.show()"""),
        new_markdown_cell("""## 3. What Redis adds

The same load on one node, first with the embedded memory engine, then with Redis: a publish
then goes node → Redis (one script: seq, stream, id, publish) → pub/sub → node → clients. The
difference in p50 is the cost of that hop on this machine; on loopback it is a few
milliseconds and drowns in run-to-run noise of the same size (runs on this 2-core machine
measured +2.5 ms p50 at 50 clients, -0.7 ms at 200, and +6.5 ms at 200 in the run committed
here, while other jobs loaded the machine): read the figure printed below for your run, not
these. The p99 difference mostly carries the scheduling noise of one more process on the cores."""),
        new_code_cell("""\
M = 50 if QUICK else 200
engine_rows = []
for engine in (None, redis.url):
    server = node(engine, ("ws",))
    try:
        engine_rows.append(await measure([server.url], M, "ws", engine="redis" if engine else "memory"))
    finally:
        server.stop()
engines = pd.DataFrame(engine_rows).set_index("engine")
print(engines[["deliveries_per_s", "p50_ms", "p99_ms", "duplicates", "gaps", "missing", "tool_lag_p99_ms"]])
added = engines.loc["redis", ["p50_ms", "p99_ms"]] - engines.loc["memory", ["p50_ms", "p99_ms"]]
print("\\nRedis adds (ms):", added.round(2).to_dict())
fig, ax = plt.subplots(figsize=(9, 4), layout="constrained")
# p50 solid, p99 hatched, both in WebSocket's colour; the engine is on the x axis.
for i, (col, hatch) in enumerate([("p50_ms", ""), ("p99_ms", "//")]):
    ax.bar([x + (i - 0.5) * 0.38 for x in range(len(engines))], engines[col], 0.38, label=col.replace("_ms", ""),
           color=color("ws"), hatch=hatch, edgecolor="white")
ax.set_xticks(range(len(engines)), engines.index)
ax.set_ylabel("ms"); ax.grid(alpha=0.3, axis="y"); ax.legend()
plots.subtitle(fig, f"{M} WebSocket clients, one node: memory engine vs Redis", conds(clients=M))
plt.show()"""),
        new_code_cell("""\
everything = pd.concat([per_transport, layouts, engines.reset_index()], ignore_index=True)
problems = everything[(everything["duplicates"] > 0) | (everything["gaps"] > 0) | (everything["missing"] > 0)]
print("runs with a duplicate, gap or missing seq:", len(problems))
redis.stop()"""),
        new_markdown_cell("""## Reading the results

- **Deliveries per second** grow with the clients while the node keeps up; p99 rises first.
  Long polling pays one request per batch, so at a steady 10 messages/s it costs more per
  delivery than the streaming transports.
- **Two nodes** spread the connections, but on a two-core machine they compete with each other
  and with the generator; on hosts of their own the second node adds its cores.
- **Redis** adds one network hop and a script per publish (sub-millisecond on loopback) plus one
  pub/sub delivery per node; the price of several nodes serving the same channels, with resume
  on any of them.
- Every run must show zero duplicates, gaps and missing seqs: the scale-out keeps the wire
  contract."""),
    ]


def main() -> None:
    write("07-scale-out", cells())


if __name__ == "__main__":
    main()
