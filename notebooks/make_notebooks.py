# ruff: noqa: E501 — the cells are notebook code, kept as a learner will read them
"""Generate notebooks 00-02 from the cells below (``python notebooks/make_notebooks.py``).

Keeping the source here makes the notebooks reviewable as plain Python; execute them with
``jupyter execute --inplace`` (full parameters) or set TRANSPORT_LAB_QUICK=1.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).parent

SETUP = """\
import json
import os

import pandas as pd
import matplotlib.pyplot as plt
from transports.lab import histogram, report, results
from transports.lab.scenario import Scenario, run_cell
QUICK = os.environ.get("TRANSPORT_LAB_QUICK") == "1"
env = results.environment()
print(json.dumps({k: env[k] for k in ("python", "cpu_model", "cpu_count", "kernel", "git_sha")}, indent=1))
print("libraries:", {k: v for k, v in env["libraries"].items() if v})
print("quick mode" if QUICK else "full mode")"""

AVAILABLE = """\
from transports.lab.cli import available
ALL5 = available(["ws", "sse", "poll", "webrtc", "mqtt"])
def cell(transport, clients=4, rate=200.0, size=256, kind="json", compression=False):
    return {"transport": transport, "clients": clients, "rate": rate, "payload_bytes": size,
            "payload_kind": kind, "compression": compression}"""


def tour() -> list[object]:
    return [
        new_markdown_cell("""# 00 — A tour of Transport Lab

One live feed, five transports: **WebSocket**, **Server-Sent Events**, **HTTP long polling**,
**WebRTC data channels** and **MQTT**. This notebook starts a lab in-process, follows the same
feed over all five, and makes the first comparison table. Numbers are from *this* machine;
the environment is printed first because latency on loopback depends on it."""),
        new_code_cell(SETUP),
        new_markdown_cell("""## The data path

A publisher calls `feed.publish(data)`; the feed stamps a gap-free `seq` and `sent_at`, keeps it
in a history ring and offers it to every subscription without ever blocking (a subscriber whose
bounded queue overflows is disconnected and resumes from history). One pump per connection moves
frames to the transport, which frames them — a WebSocket text frame, an SSE event, a long-poll
batch, a data-channel message, an MQTT PUBLISH. On the client each transport un-frames the bytes
into the same `Message`, and `follow()` dedupes, detects gaps and epoch changes, reconnects with
backoff and resumes from its cursor. The lab measures each step from the outside: clients in
separate processes, bytes through a counting proxy, time against the *intended* send time."""),
        new_code_cell(
            AVAILABLE
            + """
from transports.live import LiveServer
from transports.clients import subscriber
from transports.client import follow, Delivered

async def first_message(server, name):
    sub = await subscriber(name, server.url)
    async for event in follow(sub, 0):
        if isinstance(event, Delivered):
            return event.message

with LiveServer(tuple(ALL5)) as server:
    server.publish({"hello": "transports"})
    for name in ALL5:
        m = await first_message(server, name)  # the notebook's own event loop
        print(f"{name:7s} seq={m.seq} data={m.data}")"""
        ),
        new_markdown_cell("""## The first comparison

Each transport gets a fresh server, 4 subscribers in separate processes, an open-loop publisher
at 200 messages/s with ~256-byte JSON messages; the first 0.5 s are warm-up. Latency is receive
time minus the time the message was *scheduled* to be sent. Two repeats show the spread."""),
        new_code_cell("""\
sc = Scenario(name="tour", transports=ALL5, clients=[4], rate=[200.0], payload_bytes=[256],
              warmup_s=0.5, duration_s=1.0 if QUICK else 3.0, repeats=1 if QUICK else 2)
rows = [run_cell(sc, c, rep) for c, rep in sc.runs()]
lat = pd.DataFrame(rows)
summary = report.summarize(lat)
summary[["transport", "repeats", "p50_ms", "p99_ms", "p99_min_ms", "p99_max_ms", "p99_9_ms",
         "max_ms", "lost", "valid", "cpu_ms_per_1000"]].round(2)"""),
        new_code_cell("""\
fig, ax = plt.subplots(figsize=(7, 4))
for _, r in lat.groupby("transport").head(1).iterrows():
    pts = histogram.cdf_points(histogram.decode(r["histogram"]))
    ax.plot([p[1] for p in pts], [p[0] for p in pts], label=r["transport"])
ax.set_xscale("log"); ax.set_xlabel("latency (ms, log)"); ax.set_ylabel("percentile")
ax.set_title("Latency distribution, first repeat"); ax.legend(); ax.grid(alpha=0.3)
plt.show()"""),
        new_markdown_cell("""Where each process ran (`server_cpu`, `client_cpus`) is part of every row —
on a 2-core machine it moves the tail more than the protocol does (see 01-latency)."""),
        new_code_cell(
            'lat[["transport", "repeat", "server_cpu", "client_cpus", "lag_p99_ms", "valid"]]'
        ),
    ]


def latency() -> list[object]:
    return [
        new_markdown_cell("""# 01 — Latency, measured so that stalls cannot hide

**Method.** Message *i* is due at `t0 + i/rate` on the monotonic clock and carries that instant.
The publisher never waits for the system under test: if it falls behind it publishes the backlog
at once. Latency = receive time − intended send time. Measuring from the *actual* send time
instead would silently drop the waiting time of every message that could not be sent during a
stall — *coordinated omission* (Gil Tene). Clients run in separate processes; each keeps an
HdrHistogram, and the parent merges them. Warm-up messages are not recorded. The publisher's own
lateness is recorded; a run whose lateness does not drain is flagged invalid."""),
        new_code_cell(SETUP),
        new_code_cell(
            AVAILABLE
            + """
DUR = 1.0 if QUICK else 3.0
def measure(cells, name, repeats=1, **kw):
    sc = Scenario(name=name, warmup_s=0.5, duration_s=DUR, repeats=repeats, **kw)
    return pd.DataFrame([run_cell(sc, c, r) for c in cells for r in range(repeats)])
def cdf(ax, df, label_cols):
    for _, r in df.iterrows():
        pts = histogram.cdf_points(histogram.decode(r["histogram"]))
        ax.plot([p[1] for p in pts], [p[0] for p in pts],
                label=" ".join(str(r[c]) for c in label_cols))
    ax.set_xscale("log"); ax.set_xlabel("latency (ms)"); ax.set_ylabel("percentile"); ax.grid(alpha=.3)"""
        ),
        new_markdown_cell("## Distributions per transport"),
        new_code_cell("""\
per = measure([cell(t) for t in ALL5], "per-transport")
fig, ax = plt.subplots(figsize=(7, 4)); cdf(ax, per, ["transport"]); ax.legend(); plt.show()
per[["transport", "p50_ms", "p90_ms", "p99_ms", "p99_9_ms", "max_ms", "count", "valid"]].round(2)"""),
        new_markdown_cell("## Rate, payload size and number of clients (WebSocket and SSE)"),
        new_code_cell("""\
rates = [100.0, 400.0] if QUICK else [100.0, 500.0, 1000.0]
sizes = [64, 4096] if QUICK else [64, 1024, 16384]
clients = [2, 8] if QUICK else [2, 8, 32]
by_rate = measure([cell(t, rate=r) for t in ("ws", "sse") for r in rates], "rate")
by_size = measure([cell(t, size=s) for t in ("ws", "sse") for s in sizes], "size")
by_clients = measure([cell(t, clients=c) for t in ("ws", "sse") for c in clients], "clients")
fig, axes = plt.subplots(1, 3, figsize=(14, 4), sharey=True)
for ax, df, col, title in ((axes[0], by_rate, "rate", "msg/s"), (axes[1], by_size, "payload_bytes", "bytes"),
                           (axes[2], by_clients, "clients", "clients")):
    for t, g in df.groupby("transport"):
        ax.plot(g[col], g["p99_ms"], "o-", label=f"{t} p99"); ax.plot(g[col], g["p50_ms"], "x--", label=f"{t} p50")
    ax.set_xscale("log"); ax.set_yscale("log"); ax.set_xlabel(title); ax.grid(alpha=.3)
axes[0].set_ylabel("latency (ms)"); axes[0].legend(fontsize=8); plt.show()
pd.concat([by_rate, by_size, by_clients])[["transport", "rate", "payload_bytes", "clients", "p50_ms", "p99_ms", "lag_p99_ms", "valid"]].round(2)"""),
        new_markdown_cell("""## Coordinated omission, shown

The server's event loop is blocked for 300 ms in the middle of the run (a test hook). Measured
from the intended send time the stall reaches p99; measured from when the message actually left
(`service_p99_ms`), most of it disappears — nothing was sent while the loop was blocked."""),
        new_code_cell("""\
calm = measure([cell("ws")], "calm")
stall = measure([cell("ws")], "stall", stall_ms=300)
co = pd.concat([calm, stall])[["scenario", "p50_ms", "p99_ms", "service_p99_ms", "max_ms", "lag_max_ms", "valid"]]
fig, ax = plt.subplots(figsize=(7, 4)); cdf(ax, pd.concat([calm, stall]), ["scenario"]); ax.legend(); plt.show()
co.round(2)"""),
        new_markdown_cell("""## What CPU placement does on this machine

Same WebSocket run, three placements: server and clients on the same CPU, on different CPUs,
and left to the scheduler. `os.sched_setaffinity` pins the client processes and the server's
loop thread."""),
        new_code_cell("""\
ncpu = os.cpu_count() or 1
placements = {"scheduler": {}}
if ncpu >= 2:
    placements["same cpu"] = {"pin": [0], "pin_server": 0}
    placements["split cpus"] = {"pin": [1], "pin_server": 0}
frames = []
for label, kw in placements.items():
    df = measure([cell("ws")], label, repeats=1 if QUICK else 3, **kw)
    df["placement"] = label
    frames.append(df)
place = pd.concat(frames)
print(place[["placement", "repeat", "p50_ms", "p99_ms", "server_cpu", "client_cpus"]].round(2).to_string())
results.spread(place, "p99_ms", ("placement",)).round(2)"""),
    ]


def overhead() -> list[object]:
    return [
        new_markdown_cell("""# 02 — Bytes on the wire

Every byte is counted by a proxy in the path (TCP payload: HTTP headers, WebSocket/SSE/MQTT
framing and our JSON, not IP/TCP headers; for WebRTC, plus the UDP payload through a relay:
DTLS records carrying SCTP chunks). The counts are checked against `tshark` captures in
`tests/test_wire_capture.py`. Three phases: connection **setup**, **steady state** per message
(payload vs framing), **idle** heartbeat cost per hour."""),
        new_code_cell(SETUP),
        new_code_cell(
            AVAILABLE
            + """
from transports.lab import wire
N = 60 if QUICK else 300
sizes = [64, 1024] if QUICK else [64, 256, 1024, 4096]
rows = [wire.measure(t, s, "json", messages=N, rate=200.0, idle_s=1.0 if QUICK else 4.0).row()
        for t in ALL5 for s in sizes]
w = pd.DataFrame(rows)
w[["transport", "payload_bytes", "setup_bytes", "per_msg_down", "per_msg_up", "payload_per_msg",
   "framing_per_msg", "idle_bytes_per_hour", "layer"]].round(1)"""
        ),
        new_code_cell("""\
fig, axes = plt.subplots(1, 3, figsize=(15, 4))
first = w.groupby("transport", sort=False).head(1)
axes[0].bar(first["transport"], first["setup_bytes"]); axes[0].set_title("Connection setup (bytes)")
for t, g in w.groupby("transport", sort=False):
    axes[1].plot(g["payload_per_msg"], g["per_msg_down"] + g["per_msg_up"] - g["payload_per_msg"], "o-", label=t)
axes[1].set_xscale("log"); axes[1].set_xlabel("JSON message bytes"); axes[1].set_ylabel("overhead bytes per message (both ways)")
axes[1].axhline(586 - 256, color="grey", ls=":", label="aquil.io 2017: ~586 B/update")
axes[1].legend(fontsize=8); axes[1].set_title("Framing + request overhead per message")
axes[2].bar(first["transport"], first["idle_bytes_per_hour"] / 1000); axes[2].set_title("Idle heartbeat cost (KB/hour)")
plt.tight_layout(); plt.show()"""),
        new_markdown_cell("""### Reading it against the specifications

- **WebSocket** (RFC 6455 §5.2): a server→client frame has a 2-byte header, 4 bytes for payloads
  of 126–65535 bytes; client frames add a 4-byte mask. Expect ~2–4 bytes of framing.
- **SSE** (WHATWG HTML §9.2): `id: N\\n`, `data: ...\\n`, a blank line — plus HTTP/1.1 chunked
  transfer framing (RFC 9112 §7.1) around each write: ~20–30 bytes.
- **Long polling**: a full HTTP request and response per batch. aquil.io (2017) measured ~586
  bytes per update on HTTP/1.1 with a small payload; the overhead here is of the same order and
  is paid in *both* directions.
- **MQTT 5** PUBLISH (§3.3): 2–5 bytes fixed header, 2 + topic bytes, 2-byte packet id at QoS 1,
  properties length; the PUBACK (4 bytes) goes back per message.
- **WebRTC**: DTLS record header (13 bytes) + AEAD tag/nonce, SCTP common header (12) and DATA
  chunk header (16, RFC 9260 §3.3.1), and SACKs flowing back; setup includes ICE, DTLS and SCTP."""),
        new_markdown_cell("""## Compression: bytes saved vs CPU spent

WebSocket permessage-deflate (RFC 7692) on JSON-ish quotes and on random base64. Bytes from the
proxy; server CPU per 1000 delivered messages from a latency run with the same settings."""),
        new_code_cell("""\
comp = []
for kind in ("json", "random"):
    for on in (False, True):
        b = wire.measure("ws", 1024, kind, on, messages=N, rate=200.0, idle_s=0).row()
        sc = Scenario(name="compression", warmup_s=0.5, duration_s=1.0 if QUICK else 3.0)
        r = run_cell(sc, cell("ws", size=1024, kind=kind, compression=on), 0)
        comp.append({"payload": kind, "deflate": on, "bytes_per_msg": b["per_msg_down"],
                     "payload_per_msg": b["payload_per_msg"], "cpu_ms_per_1000": r["server_cpu_s_per_1000"] * 1000,
                     "p99_ms": r["p99_ms"]})
comp = pd.DataFrame(comp)
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
labels = [f"{p}\\n{'deflate' if d else 'plain'}" for p, d in zip(comp["payload"], comp["deflate"], strict=True)]
axes[0].bar(labels, comp["bytes_per_msg"]); axes[0].set_title("bytes per message on the wire")
axes[1].bar(labels, comp["cpu_ms_per_1000"]); axes[1].set_title("server CPU ms per 1000 messages")
plt.tight_layout(); plt.show()
comp.round(2)"""),
    ]


def main() -> None:
    for name, cells in (
        ("00-tour", tour()),
        ("01-latency", latency()),
        ("02-overhead", overhead()),
    ):
        nb = new_notebook(cells=cells)
        nb.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3",
            "language": "python",
        }
        nbformat.write(nb, HERE / f"{name}.ipynb")


if __name__ == "__main__":
    main()
