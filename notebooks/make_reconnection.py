# ruff: noqa: E501 — the cells are notebook code, kept as a learner will read them
"""Generate notebook 03-reconnection from the cells below (``python notebooks/make_reconnection.py``).

Same habit as ``make_notebooks.py`` (00-02): the source stays reviewable as plain Python.
Execute with ``jupyter execute --inplace notebooks/03-reconnection.ipynb`` (full parameters,
about 20 minutes on 2 cores) or with TRANSPORT_LAB_QUICK=1 (CI).
"""

from __future__ import annotations

from pathlib import Path

from nbformat.v4 import new_code_cell, new_markdown_cell
from nbwrite import write

HERE = Path(__file__).parent

SETUP = """\
import json
import os

import matplotlib.pyplot as plt
import pandas as pd
from transports.lab import plots, results
from transports.lab.cli import available
from transports.palette import SERIES, color, conditions
QUICK = os.environ.get("TRANSPORT_LAB_QUICK") == "1"
env = results.environment()
print(json.dumps({k: env[k] for k in ("python", "cpu_model", "cpu_count", "kernel", "git_sha")}, indent=1))
print("quick mode" if QUICK else "full mode")
ALL5 = available(["ws", "sse", "poll", "webrtc", "mqtt"])"""


def cells() -> list[object]:
    return [
        new_markdown_cell("""# 03 — Faults and reconnection

Messages lost across reconnects are the most common complaint about every real-time system, and
reconnection is the property published comparisons measure least. This notebook breaks the
network between a client and the server on purpose — with a user-space fault proxy, since
`tc netem` is not available everywhere — and measures, per transport:

1. **the resume scoreboard**: time to detect a fault, time to recover after it clears, messages
   lost / duplicated at the application (after `follow()`), and the bytes spent reconnecting;
2. **heartbeats**: how fast a *blackhole* (the half-open connection: no FIN, no RST) is noticed
   for a given heartbeat interval, and what that interval costs in idle bytes per hour;
3. **reconnect storms**: a thousand clients lose the server at once — how hard do they hit it
   when it comes back, per reconnect policy?

Every run uses real sockets on 127.0.0.1: a live server, a `FaultProxy` in every TCP path (for
MQTT also in front of the broker), a `UdpRelay` for WebRTC."""),
        new_code_cell(SETUP),
        new_markdown_cell("""## 1. The resume scoreboard

Each cell of the table is a fresh server publishing 20 messages/s, one client following it through
the proxies with `follow()`, a fault after a warm-up, then the publisher stops and the client gets
a bounded time to catch up. Scenarios:

| scenario | what happens |
|---|---|
| `cut` | the proxy resets every connection (RST both ways) |
| `blackhole_long` | the proxy silently stops forwarding for 2 × the watchdog, then resumes |
| `blackhole_short` | the same for 0.5 × the watchdog: should go unnoticed and lose nothing |
| `latency_loss` | +200 ± 50 ms each way (TCP), + 5 % datagram loss (WebRTC) |
| `restart_memory` | the server restarts with in-memory history: a new *epoch* must be reported |
| `restart_sqlite` | the server restarts with durable (sqlite) history: a seamless resume |
| `broker_restart` | Mosquitto restarts (persistence on, QoS 1, persistent session) — MQTT only |

*detect* = fault → the client's first `Disconnected`; *recover* = fault cleared → first message
after it; *lost* = published seqs of the final epoch never delivered; *dup* = delivered twice to
the application; *raw dup* = repeats `follow()` dropped by seq; *bytes* = both directions through
the proxies from the fault until caught up; *extra* = bytes minus what the same messages cost per
message before the fault, i.e. what reconnecting and replaying added."""),
        new_code_cell("""\
import logging
from transports.chaos.chaos import run_one
# asyncio warns "socket.send() raised exception" for writes to connections the proxy has
# just reset: expected here, and not what this table is about.
logging.getLogger("asyncio").setLevel(logging.ERROR)
HEARTBEAT = 0.5 if QUICK else 1.0
SCENARIOS = (["cut", "blackhole_long", "restart_sqlite", "broker_restart"] if QUICK else
             ["cut", "blackhole_short", "blackhole_long", "latency_loss", "restart_memory", "restart_sqlite", "broker_restart"])
rows = []
for scenario in SCENARIOS:
    for t in ALL5:
        if scenario == "broker_restart" and t != "mqtt":
            continue
        r = await run_one(t, scenario, heartbeat=HEARTBEAT, warmup=0.5 if QUICK else 1.0, settle=1.0 if QUICK else 1.5)
        rows.append(r.as_dict())
board = pd.DataFrame(rows)
board[["transport", "scenario", "detect_s", "recover_s", "published", "lost", "dup", "raw_dup", "gaps",
       "epoch_changed", "reconnects", "bytes_fault", "bytes_extra", "error"]].round(2)"""),
        new_code_cell("""\
must = board[board["scenario"].isin(["cut", "blackhole_long", "restart_sqlite", "broker_restart"])]
bad = must[(must["lost"] > 0) | (must["dup"] > 0) | (must["error"] != "")]
print("cells that must lose nothing:", len(must), "- failing:", len(bad))
if len(bad):
    print(bad[["transport", "scenario", "lost", "dup", "error"]].to_string())
pivot = board.pivot(index="transport", columns="scenario", values="lost")
print("\\nlost at the application, transport × scenario:")
print(pivot.to_string())
fig, axes = plt.subplots(1, 2, figsize=(15, 4.8), layout="constrained")
for ax, col, ylabel, title in ((axes[0], "recover_s", "s", "time to recover after the fault clears"),
                               (axes[1], "bytes_extra", "bytes", "extra bytes spent reconnecting and replaying")):
    table = board.pivot(index="scenario", columns="transport", values=col)[[t for t in ALL5 if t in set(board["transport"])]]
    table.plot.bar(ax=ax, color=[color(t) for t in table.columns], rot=20)
    ax.set_ylabel(ylabel); ax.set_title(title); ax.grid(axis="y", alpha=.3)
plots.subtitle(fig, "The resume scoreboard", conditions(rate="20 msg/s", clients=1, heartbeat=f"{HEARTBEAT:g} s",
               paths="fault proxy per TCP path, UDP relay for WebRTC"))
plt.show()"""),
        new_markdown_cell("""Reading the byte columns: *extra* compares with what the same messages cost in the
steady state. Long polling comes out *negative* after a blackhole or under latency: in the steady
state at 20 messages/s nearly every message costs its own request/response pair, while the
catch-up after a fault carries dozens of messages per response — batching is long polling's one
economy. WebRTC pays the most per reconnect (new offer/answer over HTTP, ICE checks, DTLS and
SCTP handshakes); MQTT pays a CONNECT/SUBSCRIBE plus the `/api/info` read.
*recover* after a `cut` is measured from the cut itself, so it includes the detection time
where detection is slow (WebRTC: the relayed path just stops, as UDP has no reset)."""),
        new_markdown_cell("""### Why each transport behaves as it does

- **WebSocket** — nothing in RFC 6455 resumes a stream: a new connection is a new stream. Our
  client sends its cursor (`?after=SEQ&epoch=E`) on every reconnect and the server replays from
  history, so the resume is exact; the cost is one HTTP upgrade (~200-300 bytes) per reconnect.
- **SSE** — resume is built into the protocol: the browser's EventSource remembers the last `id:`
  and sends it as `Last-Event-ID` (WHATWG HTML §9.2); our server treats it as the cursor. The
  `retry:` field sets the (fixed) reconnect delay of browsers.
- **Long polling** — every request carries the cursor, so a cut only loses the request in flight;
  the next poll asks again from the same `after`. Detection is bounded by the hold time.
- **MQTT** — the broker, not our server, holds what a disconnected client missed: a persistent
  session (MQTT 5 `clean_start=False` + Session Expiry Interval, §3.1.2.4/§3.1.2.11.2) queues QoS 1
  messages, and unacknowledged ones are re-sent after a reconnect (§4.4) — `follow()` drops the
  repeats by seq (*raw dup*). Mosquitto's persistence file carries sessions across a **broker**
  restart. A client whose session is gone backfills from `/mqtt/replay` over HTTP.
- **WebRTC** — a data channel lives inside SCTP inside DTLS on an ICE path; none of it resumes. A
  broken path means a new offer/answer, ICE checks, a DTLS handshake and SCTP association — the
  largest reconnect cost here — and the cursor goes in the first channel message. Without an
  application ping, a dead path is only noticed by SCTP heartbeats (RFC 9260 §8.3, 30 s default)
  or ICE consent freshness (RFC 7675, ~30 s), hence our channel ping.
- **Server restart with in-memory history** starts a new epoch: every transport reports it
  (`EpochChanged`) instead of pretending the old seqs continue; with sqlite history the epoch
  survives and the resume is seamless."""),
        new_markdown_cell("""## 2. Heartbeats: detection time vs interval, and what it costs

On an idle feed, each transport keeps one connection alive with its heartbeat at interval *h*
(WS ping/pong, SSE comment, long-poll hold, MQTT keepalive — whole seconds, at least 1 —, WebRTC
channel ping). We count the idle bytes through the proxies for a few intervals, scale them to an
hour, then blackhole the path and time the client's first `Disconnected`. The client's watchdog is
3 × h (one interval for the next heartbeat to be due, a timeout of two more): the bound we test
is **watchdog + 1 s margin** (`transports.chaos.heartbeat.bound`)."""),
        new_code_cell("""\
from transports.chaos.heartbeat import sweep, MARGIN
INTERVALS = [0.5, 1.0] if QUICK else [0.5, 1.0, 2.0, 5.0]
beats = pd.DataFrame([b.as_dict() for b in await sweep(ALL5, INTERVALS, window=1.0 if QUICK else None)])
beats[["transport", "heartbeat", "interval", "detect_s", "bound_s", "within", "idle_bytes_per_hour", "reason", "error"]]"""),
        new_code_cell("""\
fig, axes = plt.subplots(1, 2, figsize=(14, 4.8), layout="constrained")
# sse, poll and webrtc are detected by the same 3 × h watchdog and coincide: each transport
# gets its own marker and a small sideways offset so all five stay visible.
MARKS = {"ws": "o", "sse": "s", "poll": "D", "webrtc": "^", "mqtt": "v"}
for k, (t, g) in enumerate(beats.groupby("transport", sort=False)):
    dodge = 1 + (k - 2) * 0.03
    axes[0].plot(g["interval"] * dodge, g["detect_s"], "-", marker=MARKS.get(t, "o"), color=color(t), label=t, ms=7)
    axes[1].plot(g["interval"] * dodge, g["idle_bytes_per_hour"] / 1000, "-", marker=MARKS.get(t, "o"), color=color(t), label=t, ms=7)
xs = sorted(set(beats["interval"]))
axes[0].plot(xs, [3 * x + MARGIN for x in xs], "k:", label="bound: 3 × interval + margin")
for factor, ls in ((1, (0, (1, 4))), (2, (0, (4, 4)))):
    axes[0].plot(xs, [factor * x for x in xs], color=SERIES[2], ls=ls, lw=1, label=f"{factor} × interval")
axes[0].set_ylabel("blackhole detected after (s)"); axes[0].set_title("detection time vs heartbeat interval")
axes[0].legend(fontsize=8, ncol=2)
axes[1].set_ylabel("KB per hour, idle connection (log)"); axes[1].set_title("idle cost of the heartbeat")
axes[1].legend(fontsize=8, ncol=2)
for ax in axes:
    plots.plain_log_axis(ax, "x", xs); ax.set_xlabel("heartbeat interval (s, log)"); ax.grid(alpha=.3, which="both")
for ax in axes:
    plots.plain_log_axis(ax, "y")
plots.subtitle(fig, "Heartbeats: how fast a blackhole is noticed, and what an idle connection costs",
               conditions(feed="idle", paths="fault proxy / UDP relay", idle_window="4 intervals (webrtc ≥ 12 s)"))
plt.show()
print("every run within its bound:", bool(beats["within"].all()))
# Bytes per heartbeat scale as 1/interval: extrapolate to the shipped defaults.
from transports.config import ServerConfig
cfg = ServerConfig()
defaults = {"ws": cfg.ws_ping_interval, "sse": cfg.sse_ping_interval, "poll": cfg.poll_default_timeout,
            "webrtc": cfg.webrtc_ping_interval, "mqtt": 10.0}
per_beat = (beats["idle_bytes_per_hour"] * beats["interval"] / 3600).groupby(beats["transport"]).median()
print(pd.DataFrame({"default interval s": defaults, "detect within s": {t: 3 * h for t, h in defaults.items()},
                    "bytes per heartbeat": per_beat.round(0),
                    "KB per hour": {t: round(per_beat.get(t, float("nan")) * 3600 / h / 1000, 1) for t, h in defaults.items()}}))"""),
        new_markdown_cell("""### Why WebSocket, SSE/poll/WebRTC and MQTT detect at different multiples of the interval

Detection is timed from the moment the path goes dark, but each detector counts from something
else:

- **SSE, long polling, WebRTC (≈ 2 × h).** The *server* sends the heartbeat (comment, expired
  hold, channel ping); the client can only wait for it. Its watchdog fires 3 × h after the last
  frame it *received* — and the sweep turns the blackhole on about one interval after a
  heartbeat arrived, so the watchdog fires 3h − h = 2h after the fault. The three share this
  detector, which is why their points coincide (offset sideways in the plot).
- **MQTT (≈ 1 × h).** The *client* asks: paho sends PINGREQ once a keep-alive passes without
  traffic and gives up when no PINGRESP came within a further keep-alive (MQTT 5 §3.1.2.10). The
  last PINGREQ went out right before the fault, so the missing answer is noticed one keep-alive
  later. (MQTT's interval is whole seconds: h = 0.5 runs as 1 s.)
- **WebSocket (between h and 3 × h).** Two detectors race: the client's own RFC 6455 ping every
  h with a pong timeout of h, and the 3 × h watchdog. Which fires first depends on where the
  fault lands in the ping cycle — the `reason` column says (`idle_timeout` = the watchdog, `pong
  timeout` = the ping).

On a quiet machine every run stays under the bound (dotted), which is what the defaults
promise. On a busy, shared machine — as for the run committed here — sub-second heartbeats
miss their own deadlines: a row whose `error` says `dropped before the fault` lost its
connection before any fault was applied (no detection time is recorded for it), and a
detection far below one interval means the connection was already failing when the blackhole
began. Re-run on a quiet machine before reading the 0.5 s and 1 s columns."""),
        new_markdown_cell("""Reading the plots: detection grows linearly with the interval and stays under the bound;
the idle cost falls as 1/interval, and its constant differs by orders of magnitude — an MQTT
PINGREQ/PINGRESP pair is 4 bytes, a WebSocket ping/pong ~12, an SSE comment ~20 with chunked
framing, while every long-poll hold that expires costs a whole HTTP request and response, and
WebRTC adds SCTP heartbeats and ICE consent checks (STUN, RFC 7675) on timers of their own —
its curve is the least regular. The last table extrapolates the bytes per heartbeat to the
shipped default intervals (for WebRTC this overstates: part of its idle traffic does not
scale with our ping). The defaults in
`docs/heartbeats.md` are chosen from this table: detection within about a minute or less at a
few KB per hour per connection, except long polling whose hold must stay below the idle timeouts of
proxies (often 30-60 s)."""),
        new_markdown_cell("""## 3. Reconnect storms

N WebSocket clients in several worker processes follow a WebSocket server running in its own
process. The server is killed (SIGKILL: every connection closes in the same instant, as in a
crash), stays down for a few seconds (attempts are refused, so every schedule advances), and
starts again on the same port. It logs the time of every WebSocket handshake it accepts; we count
them per 100 ms.

Policies (`transports.policies`): `immediate`; `fixed` 1 s; `exponential` 0.5 s doubling, no
jitter; `full_jitter` (ours: uniform in [0, 0.5 s × 2ⁿ]); and the published defaults of
Socket.IO (1→5 s, ±50 %), SignalR (0, 2, 10, 30 s), paho-mqtt (1→120 s doubling) and
EventSource (the server's fixed `retry:`, 1 s)."""),
        new_code_cell("""\
from transports.chaos.storm import storm_sweep, BUCKET
POLICIES = (["immediate", "exponential", "full_jitter", "socketio"] if QUICK else
            ["immediate", "fixed", "exponential", "full_jitter", "socketio", "signalr", "paho", "eventsource"])
N, PROCS, DOWN = (200, 2, 1.0) if QUICK else (1000, 4, 3.0)
storms = await storm_sweep(POLICIES, clients=N, processes=PROCS, down=DOWN, ramp=1.0 if QUICK else 3.0)
pd.DataFrame([s.as_dict() for s in storms])"""),
        new_code_cell("""\
fig, axes = plt.subplots(1, 3, figsize=(17, 5), gridspec_kw={"width_ratios": [2, 2, 1]}, layout="constrained")
by = {s.policy: s for s in storms}
# Policies are not transports: black and greys, told apart by line style (the WebSocket colour
# would suggest a transport comparison). One style per policy in both plots.
STYLES = {"immediate": (SERIES[2], "-", 1), "fixed": (SERIES[1], (0, (1, 1)), 1.5),
          "exponential": (SERIES[0], "-", 2.5), "full_jitter": (SERIES[0], (0, (5, 2)), 2.5),
          "socketio": (SERIES[1], (0, (3, 1, 1, 1)), 1.5), "signalr": (SERIES[1], "-", 1.5),
          "paho": (SERIES[2], (0, (5, 2)), 1.5), "eventsource": (SERIES[2], (0, (1, 1)), 1.5)}
for name in ("exponential", "full_jitter", "immediate"):
    if name in by:
        c, ls, lw = STYLES[name]
        b = by[name].buckets()
        axes[0].step(list(b), [v / BUCKET for v in b.values()], where="post", label=name, color=c, ls=ls, lw=lw)
for ax in axes[:2]:
    ax.axvspan(0, DOWN, color="grey", alpha=0.15, label="server unreachable")
    ax.set_xlabel("s after every client lost the server")
axes[0].set_ylabel("accepted connections / s (100 ms buckets)")
axes[0].set_title("accept rate, three policies"); axes[0].legend(fontsize=8)
for s in storms:
    c, ls, lw = STYLES.get(s.policy, (SERIES[1], "-", 1))
    ts = sorted(s.accepts)[: s.clients]
    axes[1].plot(ts, range(1, len(ts) + 1), label=s.policy, color=c, ls=ls, lw=lw)
axes[1].set_ylabel("clients back"); axes[1].set_title("clients back over time, every policy")
axes[1].legend(fontsize=8, ncol=2)
axes[2].barh([s.policy for s in storms], [s.peak_per_s for s in storms], color=SERIES[1])
axes[2].set_xlabel("peak accepted connections / s"); axes[2].invert_yaxis()
plots.subtitle(fig, f"Reconnect storm: {N} WebSocket clients lose the server at once",
               conditions(clients=N, processes=PROCS, server_down=f"{DOWN:g} s", transport="WebSocket"))
plt.show()
print(f"peak accept rate: exponential without jitter {by['exponential'].peak_per_s:.0f}/s, "
      f"full jitter {by['full_jitter'].peak_per_s:.0f}/s "
      f"({by['full_jitter'].peak_per_s / by['exponential'].peak_per_s:.0%} of it); "
      f"all back after {by['exponential'].back_s} s vs {by['full_jitter'].back_s} s")"""),
        new_markdown_cell("""### What the storm shows

Without jitter every client computes the same schedule from the same moment: they all retry at
the same instants, and the first attempt after the server is back arrives as one wave — the peak is
the server's accept capacity on this machine, and while the wave lasts the server is saturated (on
a real service: TLS handshakes, auth, replays, all at once). `immediate` is worse during the outage
itself: its clients hammer a refused port in a tight loop. Full jitter (AWS Architecture Blog,
"Exponential Backoff And Jitter", 2015) spreads the same clients over the whole backoff window, so
the peak is a fraction of the herd's — at the price of a longer tail until the last client is back
(the middle plot). Socket.IO's ±50 % randomization spreads less than full jitter; SignalR's and
paho's schedules have no randomization and behave like the herd — only later (SignalR's 10 s
step). On 2 shared cores the server and the client processes compete for CPU, so the herd's wave
is stretched over the time the server needs to accept it: its peak *is* the server's accept
capacity here — the server is saturated for as long as the wave lasts, which is exactly when a
herd hurts."""),
    ]


def main() -> None:
    write("03-reconnection", cells())


if __name__ == "__main__":
    main()
