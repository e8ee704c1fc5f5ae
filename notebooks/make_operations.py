# ruff: noqa: E501 — the cells are notebook code, kept as a learner will read them
"""Generate notebook 06-operations from the cells below (``python notebooks/make_operations.py``).

Same habit as ``make_notebooks.py``: the source stays reviewable as plain Python. Execute with
``jupyter execute --inplace notebooks/06-operations.ipynb`` (about a minute) or with
TRANSPORT_LAB_QUICK=1 (CI, about 20 s).
"""

from __future__ import annotations

from pathlib import Path

from nbformat.v4 import new_code_cell, new_markdown_cell
from nbwrite import write

HERE = Path(__file__).parent

SETUP = """\
import asyncio
import os
import shutil
import signal

import matplotlib.pyplot as plt
import pandas as pd

from transports.client import Delivered, follow
from transports.clients import subscriber
from transports.config import ServerConfig
from transports.backoff import Backoff
from transports.live import LiveServer
from transports.ops.scrape import Scraper

QUICK = os.environ.get("TRANSPORT_LAB_QUICK") == "1"
STEP = 2.0 if QUICK else 6.0  # seconds between chaos steps
NAMES = ["ws", "sse", "poll"] + (["mqtt"] if shutil.which("mosquitto") or os.path.exists("/usr/sbin/mosquitto") else [])
print("quick mode" if QUICK else "full mode", NAMES)"""

RUN = """\
import socket

server = LiveServer(tuple(NAMES), ServerConfig(rate=20, payload_bytes=64, queue_size=256)).start()
metrics_url = server.url + "/metrics"


def raw_reader(port):
    \"\"\"A WebSocket client that completes the handshake, then never reads: a slow consumer.\"\"\"
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(b"GET /ws HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n"
                 b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n")
    return sock


async def follower(name, counts):
    options = {"timeout": 2.0} if name == "poll" else {}
    events = follow(await subscriber(name, server.url, **options), None, backoff=Backoff(0.1, 1.0))
    async for event in events:
        if isinstance(event, Delivered):
            counts[name] = counts.get(name, 0) + 1


async def chaos():
    counts = {}
    async with Scraper(metrics_url, server.admin_headers, interval=0.25) as scraper:
        tasks = [asyncio.create_task(follower(n, counts), name=f"{n}-{i}") for n in NAMES for i in range(3)]
        await asyncio.sleep(STEP)
        scraper.mark("admin disconnects every stream")
        for conn in list(server.ctx.ops.connections.values()):
            if conn.sub is not None:
                server.call(server.ctx.ops.disconnect, conn.id)
        await asyncio.sleep(STEP)
        scraper.mark("slow consumers + a 3000-message burst")
        readers = [raw_reader(server.port) for _ in range(3)]
        await asyncio.sleep(0.3)
        for _ in range(60):  # 3000 messages in chunks of 50 (~1000/s): healthy clients keep up
            server.call(lambda: [server.ctx.feed.publish({"pad": "x" * 2000}) for _ in range(50)])
            await asyncio.sleep(0.05)
        await asyncio.sleep(STEP)
        for sock in readers:
            sock.close()
        broker = getattr(server.ctx.transports.get("mqtt"), "broker", None)
        if broker is not None:
            scraper.mark("MQTT broker killed")
            os.kill(broker.pid, signal.SIGKILL)
            await asyncio.sleep(STEP)
            scraper.mark("broker restarted")
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(broker.restart(), server._loop))
        await asyncio.sleep(STEP)
        for task in tasks:
            task.cancel()
        # Bounded: a client stuck in its own cleanup must not hold the notebook.
        _, stuck = await asyncio.wait(tasks, timeout=5)
        if stuck:
            print(f"{len(stuck)} clients did not stop within 5 s:", [t.get_name() for t in stuck])
        await asyncio.sleep(0.5)  # one more scrape after the clients left
    return scraper, counts


scraper, counts = await chaos()
server.stop()
df = pd.DataFrame(scraper.rows)
print(f"{df.t.nunique()} scrapes, {len(df)} samples; messages delivered per transport: {counts}")"""

TABLE = """\
def series(name, by="transport"):
    sub = df[df.name == name]
    return sub.pivot_table(index="t", columns=by, values="value", aggfunc="sum") if by else sub.set_index("t").value

final = df[df.t == df.t.max()]
closed = final[final.name == "transportlab_connections_closed_total"].pivot_table(
    index="transport", columns="reason", values="value", aggfunc="sum").fillna(0).astype(int)
closed"""

PLOT = """\
def lag_quantile(transport, q=0.99):
    \"\"\"Per scrape interval: the upper bound of the bucket holding the q-quantile of new observations.\"\"\"
    b = df[(df.name == "transportlab_delivery_lag_seconds_bucket") & (df.transport == transport)]
    wide = b.pivot_table(index="t", columns="le", values="value").sort_index()
    wide = wide[sorted(wide.columns, key=float)]
    delta = wide.diff().dropna()
    out = {}
    for t, row in delta.iterrows():
        total = row.iloc[-1]
        if total > 0:
            out[t] = float(next(le for le, v in row.items() if v >= q * total))
    return pd.Series(out, dtype=float)


from transports.lab import plots
from transports.palette import SERIES, TRANSPORTS as COLORS, conditions
fig, axes = plt.subplots(4, 1, figsize=(12, 11), sharex=True, constrained_layout=True)
opened = series("transportlab_connections_open").drop(columns=["mqtt"], errors="ignore")
if "transportlab_mqtt_broker_clients" in set(df.name):  # MQTT clients are the broker's: its $SYS count, minus the bridge
    opened["mqtt"] = (series("transportlab_mqtt_broker_clients", by=None) - 1).clip(lower=0).reindex(opened.index).ffill()
STYLES = {"ws": "-", "sse": "--", "poll": ":", "mqtt": "-."}
for name in opened.columns:
    axes[0].step(opened.index, opened[name], where="post", label=name, color=COLORS[name], linestyle=STYLES.get(name, "-"), linewidth=2)
axes[0].set_ylabel("connections open")
axes[0].legend(title="transport", loc="upper left", bbox_to_anchor=(1.01, 1))
axes[0].set_ylim(-0.2, None)
drops = df[(df.name == "transportlab_connections_closed_total") & df.reason.isin(["admin_disconnect", "slow_consumer"])]
# Reasons are not transports: greys and line styles, never a transport's colour.
REASON_STYLE = {"admin_disconnect": dict(color=SERIES[0], linestyle="-"), "slow_consumer": dict(color=SERIES[2], linestyle="--")}
for reason, g in drops.pivot_table(index="t", columns="reason", values="value", aggfunc="sum").items():
    axes[1].step(g.index, g.values, where="post", label=reason, linewidth=2, **REASON_STYLE.get(reason, dict(color=SERIES[1], linestyle=":")))
axes[1].legend(title="reason", loc="upper left", bbox_to_anchor=(1.01, 1))
axes[1].set_ylabel("disconnects (cumulative)")
for name in NAMES:
    lag = lag_quantile(name)
    if not lag.empty:
        axes[2].step(lag.index, lag.values, where="post", label=name, color=COLORS[name])
axes[2].set_yscale("log")
axes[2].set_ylabel("p99 lag, s (bucket bound)")
axes[2].legend(loc="upper left", bbox_to_anchor=(1.01, 1))
if "transportlab_mqtt_broker_up" in set(df.name):
    series("transportlab_mqtt_broker_up", by=None).plot(ax=axes[3], drawstyle="steps-post", label="broker up (0/1)", linewidth=2.5, color=SERIES[0])
    series("transportlab_mqtt_inflight_messages", by=None).div(100).plot(ax=axes[3], drawstyle="steps-post", label="QoS 1 in flight / window (100)", color=COLORS["mqtt"])
    axes[3].legend(loc="upper left", bbox_to_anchor=(1.01, 1))
axes[3].set_ylabel("MQTT bridge")
axes[3].set_ylim(-0.05, 1.15)
axes[3].set_xlabel("seconds since the first scrape")
# Events are numbered above the top panel and spelled out in the subtitle, so their labels
# never sit on the lines or on each other.
for ax in axes:
    for t, label in scraper.marks:
        ax.axvline(t, color=SERIES[2], linestyle=":", linewidth=1)
for i, (t, label) in enumerate(scraper.marks, 1):
    axes[0].annotate(str(i), (t, 1.0), xycoords=("data", "axes fraction"), xytext=(0, 3), textcoords="offset points",
                     ha="center", va="bottom", fontsize=9, fontweight="bold", color=SERIES[1])
events = "   ".join(f"{i} {label}" for i, (t, label) in enumerate(scraper.marks, 1))
plots.subtitle(fig, "What an operator watches during a chaos run (scraped from /metrics every 0.25 s)",
               conditions(clients=f"3 per transport ({', '.join(NAMES)})", rate="20 msg/s", payload="64 B", step=f"{STEP:g} s",
                          mode="quick" if QUICK else "full") + "\\nevents: " + events)
plt.show()"""


def cells() -> list[object]:
    return [
        new_markdown_cell("""# 06 — Operations: what the metrics show while things break

The server exposes its counters at `/metrics` in the Prometheus text format (admin token, or
`serve --metrics-port` on loopback; names in `docs/operations.md`). A Prometheus server would
scrape it every few seconds; here the notebook does the scraping itself, every 0.25 s, while it
breaks things on purpose:

1. **admin disconnect** of every stream (what `POST /api/admin/disconnect` does to one client);
2. **slow consumers**: three WebSocket clients that never read, then a burst of 3000 messages of
   2 kB — their bounded queues (256 here) overflow and the server drops them (`slow_consumer`),
   while the healthy clients see the burst as lag (a healthy client that falls more than 256
   messages behind — on a busy machine it can — is dropped too, and resumes from history);
3. **the MQTT broker is killed** and restarted (when Mosquitto is installed).

Three clients per transport follow the feed with `follow()` throughout; they reconnect and resume
on their own."""),
        new_code_cell(SETUP),
        new_code_cell(RUN),
        new_markdown_cell("""## Connections closed, by reason

From the last scrape: `transportlab_connections_closed_total{transport, reason}`. Long polling
opens a "connection" per request (`served`); streams end with `admin_disconnect`,
`slow_consumer`, `client_gone` (the clients leaving at the end)."""),
        new_code_cell(TABLE),
        new_markdown_cell("""## The operator's view

Top: `transportlab_connections_open` (a reconnect that takes less than one scrape interval leaves no dip: counters, not gauges, tell every event; for MQTT, whose clients connect to the broker, the broker's own `$SYS` client count in `transportlab_mqtt_broker_clients`, minus the bridge) — the dip and recovery after the admin disconnect, the three
slow consumers appearing and being dropped. Second: cumulative disconnects by reason. Third: the
99th percentile of the publish→write lag per scrape interval, from the histogram's bucket deltas
(so it is a bucket bound, as Prometheus' `histogram_quantile` would interpolate within); the burst
shows while each client works through 3000 messages, and MQTT's spike after the broker is back is
the bridge publishing what the feed got while the broker was down (lag = the outage). For long
polling the lag runs from publish to the write of a response, so it also holds the time the client
took to send its next request: a client that comes back late shows up here, not only a slow server. Bottom: `transportlab_mqtt_broker_up`
falls to 0 when the broker dies — the `/readyz` check turns 503 at the same moment — and the
bridge's in-flight window."""),
        new_code_cell(PLOT),
        new_markdown_cell("""## Reading it

- A disconnect storm is visible as the open-connections line dropping and coming back within the
  clients' backoff; `connections_accepted_total` counts the reconnects.
- Slow consumers are dropped, not waited for: the healthy clients' lag rises only for as long as
  the burst takes to write, and the server's queues stay bounded (`transportlab_queued_messages_max`
  never exceeds the per-subscriber bound).
- While the broker is down the bridge publishes nothing; when it is back, the bridge resumes from
  its last seq (QoS 1 window), so MQTT clients miss nothing that the feed's history still holds.

The same series drive the Grafana dashboard in `docs/grafana/transport-lab.json`."""),
    ]


def main() -> None:
    write("06-operations", cells())


if __name__ == "__main__":
    main()
