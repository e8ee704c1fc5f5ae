# ruff: noqa: E501 — the cells are notebook code, kept as a learner will read them
"""Generate notebook 08-security from the cells below (``python notebooks/make_security.py``).

Same habit as ``make_notebooks.py``: the source stays reviewable as plain Python. Execute with
``jupyter execute --inplace notebooks/08-security.ipynb`` (full parameters, about a minute) or
with TRANSPORT_LAB_QUICK=1 (CI).
"""

from __future__ import annotations

from pathlib import Path

from nbformat.v4 import new_code_cell, new_markdown_cell
from nbwrite import write

HERE = Path(__file__).parent

SETUP = """\
import asyncio
import json
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from transports.config import ServerConfig
from transports.lab import results, tlscost
from transports.lab.cli import available
from transports.live import LiveServer
from transports.tls import CAFILE_ENV, client_context, make_certs

QUICK = os.environ.get("TRANSPORT_LAB_QUICK") == "1"
REPEAT = 3 if QUICK else 20
env = results.environment()
print(json.dumps({k: env[k] for k in ("python", "cpu_model", "cpu_count", "kernel", "git_sha")}, indent=1))
print("quick mode" if QUICK else "full mode", "- repeats:", REPEAT)
NAMES = available(["ws", "sse", "poll", "webrtc", "mqtt"])

certs = Path(tempfile.mkdtemp(prefix="transport-lab-certs-"))
make_certs(certs, ["localhost", "127.0.0.1"])
os.environ[CAFILE_ENV] = str(certs / "ca.pem")  # the clients verify against this CA
context = client_context()
plain = LiveServer(NAMES, config=ServerConfig()).start()
tls = LiveServer(NAMES, config=ServerConfig(tls_certfile=str(certs / "cert.pem"), tls_keyfile=str(certs / "key.pem"))).start()
for server in (plain, tls):
    server.publish({"hello": "world"})  # seq 1, replayed to every new client
print("plain:", plain.url, " tls:", tls.url, " transports:", NAMES)"""


def cells() -> list[object]:
    return [
        new_markdown_cell("""# 08 — What TLS costs

`transport-lab serve --tls DIR` serves every HTTP transport (WebSocket, SSE, long polling, WebRTC
signalling, `/mqtt`) as https/wss on the same port, and the managed Mosquitto gets an mqtts
listener with the same certificate (WebRTC's data channel is DTLS whatever the signalling runs
over). This notebook measures, on this machine, what that costs:

1. **the handshake**: bytes each side sends and the time it takes, a full handshake versus one that
   resumes an earlier session (TLS 1.3 session tickets, RFC 8446 §2.2);
2. **per message**: the bytes one TLS record adds to a message of each size;
3. **per transport**: time from nothing to the first message (connect, TLS, upgrade or request,
   the replay of seq 1) with and without TLS.

Everything runs on 127.0.0.1, so network round trips are ~0 and what remains is CPU: on a real
network every handshake round trip costs an RTT on top (TLS 1.3: one for a full handshake, one
for a resumed one without 0-RTT)."""),
        new_code_cell(SETUP),
        new_markdown_cell("""## 1. Handshake: full versus resumed

A handshake is driven by hand through `ssl.MemoryBIO`, so every byte on the wire is counted.
After each full handshake the client resumes its session once."""),
        new_code_cell("""\
rows = tlscost.handshakes("127.0.0.1", tls.port, context, REPEAT)
hs = pd.DataFrame(rows)
summary = hs.groupby("kind").agg(
    runs=("run", "count"),
    handshake_ms_median=("handshake_ms", "median"),
    handshake_ms_p90=("handshake_ms", lambda s: s.quantile(0.9)),
    client_bytes=("client_bytes", "median"),
    server_bytes=("server_bytes", "median"),
)
print(hs[["version", "cipher"]].drop_duplicates().to_string(index=False))
summary.round(2)"""),
        new_code_cell("""\
from transports.lab import plots
from transports.palette import LABELS, SERIES, color, conditions
# Handshake kinds and directions are not transports: greys, the direction told apart by hatching.
CONDITIONS = conditions(repeats=REPEAT, tls=" ".join(hs[["version", "cipher"]].iloc[0]), certificate="ECDSA P-256", network="loopback")
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
x = range(len(summary))
for i, (col, shade, hatch) in enumerate([("client_bytes", SERIES[1], ""), ("server_bytes", SERIES[2], "//")]):
    left.bar([v + (i - 0.5) * 0.4 for v in x], summary[col], 0.4, label=col.replace("_", " "), color=shade, hatch=hatch, edgecolor="white")
left.set_xticks(list(x), summary.index); left.legend()
left.set_title("bytes on the wire per handshake"); left.set_ylabel("bytes")
right.bar(list(x), summary["handshake_ms_median"], 0.5, color=SERIES[1])
right.set_xticks(list(x), summary.index)
right.set_title("handshake time (median, loopback)"); right.set_ylabel("ms")
plots.subtitle(fig, "TLS handshake: full versus resumed", CONDITIONS)
plt.show()"""),
        new_markdown_cell("""Most of a full handshake's server bytes are the certificate and its signature (here one
ECDSA P-256 certificate signed by the local CA; a public CA's chain is usually longer). A resumed
handshake sends neither, so the server's bytes shrink to a fraction (the table). The client's
bytes do not: its ClientHello carries key shares either way, plus the ticket when resuming.
Whether resuming is also *faster* depends on what the signature costs: an ECDSA P-256 signature
takes well under a millisecond, so compare the two time bars on your machine before expecting a
win; with RSA keys, longer chains, a real RTT, or a reconnect storm of thousands of clients at
once, skipping the certificate is what saves the server's CPU."""),
        new_markdown_cell("""## 2. Bytes TLS adds per message

One application write becomes one TLS record (up to 16 KiB): a 5-byte header, the content
type and the AEAD tag."""),
        new_code_cell("""\
sizes = [16, 64, 256, 1024, 4096, 16384]
records = pd.DataFrame(tlscost.record_overhead(context, "127.0.0.1", tls.port, sizes))
records["overhead_%"] = 100 * records["tls_bytes"] / records["payload_bytes"]
records.round(2)"""),
        new_markdown_cell("""The added bytes are a constant per record, so they matter for small messages (a 64-byte
ticker update grows by a third) and vanish for large ones. Every transport here writes one
message per record, so its per-message overhead is this constant on top of its own framing
(notebook 02)."""),
        new_markdown_cell("""## 3. Time to the first message, per transport

Each run opens a fresh connection with the project's client and stops at the first message (seq 1,
replayed from history). With TLS the clients verify the certificate against the CA."""),
        new_code_cell("""\
async def measure():
    out = []
    for name in NAMES:
        for label, server in (("plain", plain), ("tls", tls)):
            for ms in await tlscost.first_message_ms(name, server.url, REPEAT):
                out.append({"transport": name, "mode": label, "ms": ms})
    return pd.DataFrame(out)

first = await measure()
table = first.pivot_table(index="transport", columns="mode", values="ms", aggfunc="median").reindex(NAMES)
table["tls_extra_ms"] = table["tls"] - table["plain"]
table.round(1)"""),
        new_code_cell("""\
fig, ax = plt.subplots(figsize=(9, 4), layout="constrained")
# Each transport in its own colour; hatched: over TLS.
for i, (mode, hatch) in enumerate([("plain", ""), ("tls", "//")]):
    ax.bar([v + (i - 0.5) * 0.4 for v in range(len(table))], table[mode], 0.4, color=[color(n) for n in table.index],
           hatch=hatch, edgecolor="white", label=mode)
ax.set_xticks(range(len(table)), [LABELS.get(n, n) for n in table.index])
ax.set_ylabel("ms to the first message (median)")
from matplotlib.patches import Patch
ax.legend(handles=[Patch(facecolor=SERIES[2], edgecolor="white", label="plain"), Patch(facecolor=SERIES[2], hatch="//", edgecolor="white", label="TLS")])
plots.subtitle(fig, "Connect to the first message, plain versus TLS (hatched)", conditions(runs=f"{REPEAT} per transport and mode", network="loopback", certificate="ECDSA P-256"))
plt.show()"""),
        new_markdown_cell("""Read the spread before the medians: on two shared cores one run's scheduling can move more
than TLS does. TLS adds one handshake to the HTTP transports' first connection; long polling
then reuses the connection for every poll, so its TLS cost is paid once, not per message. MQTT's
first message needs the server's `/api/info` and replay over https *and* a broker connection
over mqtts: two handshakes. WebRTC's signalling runs over https; its data channel is DTLS in
both columns, which is why its difference is small relative to its own setup time."""),
        new_code_cell("""\
plain.stop()
tls.stop()"""),
    ]


def main() -> None:
    write("08-security", cells())


if __name__ == "__main__":
    main()
