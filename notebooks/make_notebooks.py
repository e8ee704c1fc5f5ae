# ruff: noqa: E501 — the cells are notebook code, kept as a learner will read them
"""Generate notebooks 00-02 from the cells below (``python notebooks/make_notebooks.py``).

Keeping the source here makes the notebooks reviewable as plain Python; execute them with
``jupyter execute --inplace`` (full parameters) or set TRANSPORT_LAB_QUICK=1.
"""

from __future__ import annotations

from pathlib import Path

from nbformat.v4 import new_code_cell, new_markdown_cell
from nbwrite import write

HERE = Path(__file__).parent

SETUP = """\
import json
import os

import pandas as pd
import matplotlib.pyplot as plt
from transports.lab import histogram, plots, report, results
from transports.lab.scenario import Scenario, run_cell
from transports.palette import color, conditions
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
fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
for _, r in lat.groupby("transport", sort=False).head(1).iterrows():
    plots.distribution(ax, histogram.cdf_points(histogram.decode(r["histogram"])), r["transport"],
                       r["transport"], valid=bool(r["valid"]))
plots.percentile_axis(ax); plots.ms_axis(ax, "y"); ax.grid(alpha=0.3, which="both"); ax.legend(loc="lower right")
plots.subtitle(fig, "Latency distribution per transport (first repeat)",
               conditions(clients=4, rate="200 msg/s", payload="256 B", measured=f"{sc.duration_s:g} s"))
plt.show()"""),
        new_markdown_cell("""Read the plot from left to right: the median (50 %) is where most messages are, every
step to the right is one more "nine" — 90 %, 99 %, 99.9 % — drawn as wide as the first, so the
tail is as visible as the typical case. A flat line is a transport whose slow messages are not
much slower than its typical ones; a line that climbs at the right is one whose worst messages
wait (a poll round trip, a batch, a scheduler hiccup). A run marked *invalid* lost messages or
its publisher fell behind: its line is drawn thin and pale, and its numbers are not the
transport's."""),
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
def cdf(ax, df, label_cols, styles=None):
    \"\"\"Latency distributions on HdrHistogram's percentile axis, one colour per transport.\"\"\"
    for i, (_, r) in enumerate(df.iterrows()):
        plots.distribution(ax, histogram.cdf_points(histogram.decode(r["histogram"])),
                           " ".join(str(r[c]) for c in label_cols), r["transport"],
                           style=(styles or ["-"])[i % len(styles or ["-"])], valid=bool(r["valid"]))
    plots.percentile_axis(ax); plots.ms_axis(ax, "y"); ax.grid(alpha=.3, which="both")
def mark(df):
    \"\"\"The table with invalid runs flagged in a column of their own.\"\"\"
    out = df.copy()
    out.insert(0, "run", ["ok" if v else "INVALID" for v in out["valid"]])
    return out"""
        ),
        new_markdown_cell("## Distributions per transport"),
        new_code_cell("""\
per = measure([cell(t) for t in ALL5], "per-transport")
fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained"); cdf(ax, per, ["transport"]); ax.legend()
plots.subtitle(fig, "Latency distribution per transport",
               conditions(clients=4, rate="200 msg/s", payload="256 B", measured=f"{DUR:g} s"))
plt.show()
mark(per[["transport", "p50_ms", "p90_ms", "p99_ms", "p99_9_ms", "max_ms", "count", "valid"]].round(2))"""),
        new_markdown_cell("""On loopback the five medians are within a millisecond or two of each other: the
protocol's framing costs microseconds, and what separates the transports is how they wait.
Long polling pays a request round trip whenever a message arrives while no request is held;
MQTT adds a second hop (server → broker → client); WebRTC adds SCTP and DTLS in user space
(aiortc). The tails (99 %, 99.9 %) are where the machine shows: a garbage collection or a
scheduler decision on 2 cores costs more than any protocol difference."""),
        new_markdown_cell("## Rate, payload size and number of clients (WebSocket and SSE)"),
        new_code_cell("""\
rates = [100.0, 400.0] if QUICK else [100.0, 500.0, 1000.0]
sizes = [64, 4096] if QUICK else [64, 1024, 16384]
clients = [2, 8] if QUICK else [2, 8, 32]
by_rate = measure([cell(t, rate=r) for t in ("ws", "sse") for r in rates], "rate")
by_size = measure([cell(t, size=s) for t in ("ws", "sse") for s in sizes], "size")
by_clients = measure([cell(t, clients=c) for t in ("ws", "sse") for c in clients], "clients")
fig, axes = plt.subplots(1, 3, figsize=(15, 4.5), sharey=True, layout="constrained")
for ax, df, col, title, ticks in ((axes[0], by_rate, "rate", "messages / s", rates),
                                  (axes[1], by_size, "payload_bytes", "payload bytes", sizes),
                                  (axes[2], by_clients, "clients", "clients", clients)):
    for t, g in df.groupby("transport", sort=False):
        ax.plot(g[col], g["p99_ms"], "o-", color=color(t), label=f"{t} p99")
        ax.plot(g[col], g["p50_ms"], "x--", color=color(t), label=f"{t} p50")
        bad = g[~g["valid"]]
        ax.plot(bad[col], bad["p99_ms"], "o", ms=14, mfc="none", mec="black", label=None)
        for _, r in bad.iterrows():
            ax.annotate("invalid run", (r[col], r["p99_ms"]), textcoords="offset points", xytext=(6, 8), fontsize=8)
    plots.plain_log_axis(ax, "x", ticks); ax.set_xlabel(title); ax.grid(alpha=.3, which="both")
plots.ms_axis(axes[0], "y"); axes[0].legend(fontsize=8)
plots.subtitle(fig, "WebSocket and SSE latency vs rate, payload size and clients (one axis varied at a time)",
               conditions(defaults="4 clients · 200 msg/s · 256 B", measured=f"{DUR:g} s per point") + " · circled: invalid run")
plt.show()
mark(pd.concat([by_rate, by_size, by_clients])[["transport", "rate", "payload_bytes", "clients", "p50_ms", "p99_ms", "lag_p99_ms", "lost", "valid"]].round(2))"""),
        new_markdown_cell("""**Reading it.** Rate and the number of clients move the tail more than the median: at
1000 messages/s with a handful of clients, each message is a separate write on every connection,
and on 2 cores the server's event loop and the client processes compete for the same CPUs.
Payload size matters once a message no longer fits one TCP segment and the client has to parse
more JSON per message. A circled point is an **invalid run** — messages were lost or the
publisher could not keep its schedule (`lag_p99_ms` high at the end): what it measures is the
machine falling behind (the largest payloads, the most clients, or other work on a shared
2-core machine), not the transport; the tables say `INVALID` in the `run` column. Re-run a
notebook on a quiet machine before reading anything into those points."""),
        new_markdown_cell("""## Coordinated omission, shown

The server's event loop is blocked for 300 ms in the middle of the run (a test hook). Measured
from the intended send time the stall reaches p99; measured from when the message actually left
(`service_p99_ms`), most of it disappears — nothing was sent while the loop was blocked."""),
        new_code_cell("""\
calm = measure([cell("ws")], "calm")
stall = measure([cell("ws")], "stall", stall_ms=300)
co = pd.concat([calm, stall])[["scenario", "p50_ms", "p99_ms", "service_p99_ms", "max_ms", "lag_max_ms", "valid"]]
fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
cdf(ax, pd.concat([calm, stall]), ["transport", "scenario"], styles=["-", "--"]); ax.legend()
plots.subtitle(fig, "Coordinated omission: a 300 ms stall, measured from the intended send time",
               conditions(transport="WebSocket", clients=4, rate="200 msg/s", payload="256 B"))
plt.show()
co.round(2)"""),
        new_markdown_cell("""The dashed line (the stalled run) leaves the solid one once the share of messages due
during the stall is reached (300 ms of a 3 s run: about the slowest tenth) and climbs to about
the stall's length: every message that was *due* during the 300 ms waited,
and measuring from the intended send time keeps that waiting in the figures. `service_p99_ms`,
measured from when each message actually left, hides most of it — exactly the omission a
closed-loop benchmark makes."""),
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
fig, axes = plt.subplots(1, 3, figsize=(16, 4.8), layout="constrained")
first = w.groupby("transport", sort=False).head(1)
axes[0].bar(first["transport"], first["setup_bytes"], color=[color(t) for t in first["transport"]])
axes[0].set_title("Connection setup (bytes, both ways)")
for t, g in w.groupby("transport", sort=False):
    axes[1].plot(g["payload_bytes"], g["per_msg_down"] + g["per_msg_up"] - g["payload_per_msg"], "o-", color=color(t), label=t)
# aquil.io measured ~586 B per update including its payload; without the payload that is ~330 B.
axes[1].axhline(586 - 256, color="black", ls=":", label="aquil.io 2017 (HTTP/1.1 long poll):\\n~586 B per update incl. ~256 B payload\\n= ~330 B of overhead")
plots.plain_log_axis(axes[1], "x", sizes); plots.plain_log_axis(axes[1], "y")
axes[1].set_xlabel("message size (bytes, nominal)"); axes[1].set_ylabel("overhead bytes per message (both ways, log)")
axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0)); axes[1].set_title("Framing + request overhead per message")
axes[2].bar(first["transport"], first["idle_bytes_per_hour"] / 1000, color=[color(t) for t in first["transport"]])
plots.plain_log_axis(axes[2], "y"); axes[2].set_ylabel("KB per hour (log)")
for x, v in enumerate(first["idle_bytes_per_hour"] / 1000):
    axes[2].annotate(f"{v:,.1f}", (x, v), ha="center", va="bottom", fontsize=8)
axes[2].set_title("Idle heartbeat cost at the default intervals")
plots.subtitle(fig, "Bytes on the wire per connection: setup, per message, idle",
               conditions(rate="200 msg/s", messages=N, payload="JSON", layer="TCP payload (webrtc: + UDP)"))
plt.show()"""),
        new_markdown_cell("""The idle costs span three orders of magnitude, hence the log axis: an MQTT keep-alive
is a 2-byte PINGREQ and a 2-byte PINGRESP, a WebSocket ping/pong a few bytes more, while every
expired long-poll hold is a whole HTTP request and response, and WebRTC keeps ICE consent
checks (STUN, RFC 7675) and SCTP heartbeats running besides our channel ping.

**Why notebook 03 gives WebRTC a different idle figure.** Here every transport is measured at its
shipped defaults in one short window (heartbeats sped up 20×, except WebRTC, whose ICE and SCTP
timers we do not control: it gets an unscaled window of at least 6 s) and scaled to an hour. 03's
heartbeat table measures at each interval *h* over four intervals (≥ 12 s for WebRTC) and its last
table *extrapolates* the bytes per heartbeat to the default interval. For four transports the two
agree, because all their idle traffic is their heartbeat. For WebRTC a large part is not (consent
checks, SCTP), so an extrapolation from our ping's rate and a measurement in a few seconds
disagree: compare this figure with 03's measured row at h = 5 s (its default), not with the
extrapolation, and expect tens of percent between runs of a few seconds."""),
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
fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), layout="constrained")
labels = [f"{p}\\n{'deflate' if d else 'plain'}" for p, d in zip(comp["payload"], comp["deflate"], strict=True)]
hatch = ["//" if d else "" for d in comp["deflate"]]
for ax, col, title in ((axes[0], "bytes_per_msg", "bytes per message on the wire"),
                       (axes[1], "cpu_ms_per_1000", "server CPU ms per 1000 messages")):
    ax.bar(labels, comp[col], color=color("ws"), hatch=hatch, edgecolor="white"); ax.set_title(title)
plots.subtitle(fig, "WebSocket permessage-deflate: bytes saved vs CPU spent (hatched: deflate on)",
               conditions(payload="1024 B", rate="200 msg/s", clients=4))
plt.show()
comp.round(2)"""),
    ]


def main() -> None:
    for name, cells in (
        ("00-tour", tour()),
        ("01-latency", latency()),
        ("02-overhead", overhead()),
    ):
        write(name, cells)


if __name__ == "__main__":
    main()
