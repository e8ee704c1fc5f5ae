"""The compression trade-off, measured on the code paths the server runs.

For each message kind — small ticks (~120 B), 4 KB JSON, 64 KB documents — and each
compressing transport, :func:`measure` feeds a run of realistic messages (consecutive
messages share structure but not values) through:

- WebSocket: :class:`~transports.deflate.ThresholdDeflate`, the extension object a
  real handshake negotiates (built by the same factory from a client's offer), with and
  without server context takeover; wire bytes include the frame header (RFC 6455 §5.2);
- SSE: one gzip stream with a sync flush per event (:mod:`transports.httpgzip`);
- long polling: one gzip body per response of one message.

It reports bytes per message before and after, CPU µs per message (``time.process_time`` over
the run) and the memory a connection keeps for it (``tracemalloc``, which sees zlib's
allocations through CPython's raw allocator, measured over ``conns`` live compressors). In a
fan-out the CPU is paid once *per connection*: every permessage-deflate connection has its
own compressor, so the same message is compressed once per subscriber.
"""

from __future__ import annotations

import gc
import random
import time
import tracemalloc
import zlib
from collections.abc import Callable
from typing import Any

from transports import codec, httpgzip
from transports.deflate import DeflateSettings, ThresholdDeflateFactory
from transports.httpgzip import gzip_body
from transports.lab.schedule import payload
from transports.message import Message
from transports.publisher import ticker_data

KINDS = {"tick": 120, "json4k": 4096, "doc64k": 65536}


def messages(kind: str, n: int, seed: int = 1) -> list[bytes]:
    """``n`` encoded feed messages of ``kind`` (see ``KINDS``)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        t = 1.7e9 + i / 10
        if kind == "tick":
            data: Any = ticker_data(i, 100 + rng.random() * 10, 60, t)
        elif kind == "doc64k":
            # A document: prose-like text (words drawn from a small vocabulary) in JSON.
            words = ["feed", "seq", "epoch", "cursor", "resume", "gap", "history", "client"]
            text = " ".join(rng.choice(words) for _ in range(KINDS[kind] // 6))
            data = {"doc": text[: KINDS[kind] - 120], "rev": i}
        else:
            data = payload(i, t, KINDS[kind], "json", rng)
        out.append(codec.encode_bytes(Message(i + 1, "ticker", t, data)))
    return out


def ws_extension(settings: DeflateSettings) -> Any:
    """The server-side extension a browser's default offer negotiates with ``settings``."""
    offer = [("client_max_window_bits", None)]
    if settings.server_no_context_takeover:
        offer.append(("server_no_context_takeover", None))
    _, ext = ThresholdDeflateFactory(settings).process_request_params(offer, [])
    return ext


def _ws_encoder(settings: DeflateSettings) -> Callable[[bytes], int]:
    from websockets.frames import OP_TEXT, Frame

    ext = ws_extension(settings)

    def send(data: bytes) -> int:
        size = len(ext.encode(Frame(OP_TEXT, data)).data)
        return size + (2 if size < 126 else 4 if size < 65536 else 10)

    return send


def _sse_encoder(level: int) -> Callable[[bytes], int]:
    compressor = zlib.compressobj(
        level, zlib.DEFLATED, 16 + httpgzip.STREAM_WINDOW_BITS, httpgzip.STREAM_MEM_LEVEL
    )

    def send(data: bytes) -> int:
        event = b"id: 1\ndata: " + data + b"\n\n"
        return len(compressor.compress(event) + compressor.flush(zlib.Z_SYNC_FLUSH))

    return send


def _poll_encoder(level: int) -> Callable[[bytes], int]:
    def send(data: bytes) -> int:
        return len(
            gzip_body(b'{"epoch":"abcd1234","last_seq":1,"messages":[' + data + b"]}", level)
        )

    return send


def encoders(
    level: int = 6, window_bits: int = 12
) -> dict[str, Callable[[], Callable[[bytes], int]]]:
    """Name → factory of a per-connection encoder returning wire bytes per message."""
    on = DeflateSettings(window_bits=window_bits, level=level)
    off = DeflateSettings(window_bits=window_bits, level=level, server_no_context_takeover=True)
    return {
        "ws": lambda: _ws_encoder(DeflateSettings(min_bytes=1 << 30)),  # negotiated, never used
        "ws deflate": lambda: _ws_encoder(on),
        "ws deflate, no context takeover": lambda: _ws_encoder(off),
        "sse gzip": lambda: _sse_encoder(level),
        "poll gzip": lambda: _poll_encoder(level),
    }


def _memory_per_conn(
    factory: Callable[[], Callable[[bytes], int]], sample: bytes, conns: int
) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        live = []
        for _ in range(conns):
            send = factory()
            send(sample)  # the compressor's state is allocated on first use
            live.append(send)
        used = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    return used / conns


def measure(n: int = 200, conns: int = 50, level: int = 6) -> list[dict[str, Any]]:
    """One row per (encoder, message kind): bytes, CPU, memory per connection."""
    rows = []
    for kind in KINDS:
        batch = messages(kind, n)
        raw = sum(len(m) for m in batch) / n
        for name, factory in encoders(level).items():
            send = factory()
            t0 = time.process_time()
            wire = sum(send(m) for m in batch) / n
            cpu = (time.process_time() - t0) / n
            rows.append({
                "encoder": name, "kind": kind, "raw_bytes": round(raw, 1),
                "wire_bytes": round(wire, 1), "saved_pct": round(100 * (1 - wire / raw), 1),
                "cpu_us_per_msg": round(cpu * 1e6, 2),
                "mem_per_conn_kb": round(_memory_per_conn(factory, batch[0], conns) / 1024, 1),
            })  # fmt: skip
    return rows


def threshold_sweep(sizes: list[int], n: int = 200, level: int = 6) -> list[dict[str, Any]]:
    """WebSocket messages of about ``size`` bytes: bytes saved and CPU, with and without
    context takeover — where compression stops paying is where the threshold goes."""
    rows = []
    rng = random.Random(2)
    for size in sizes:
        batch = [
            codec.encode_bytes(
                Message(i + 1, "ticker", 1.7e9 + i, payload(i, 1.7e9, size, "json", rng))
            )
            for i in range(n)
        ]
        raw = sum(len(m) for m in batch) / n
        for name in ("ws deflate", "ws deflate, no context takeover"):
            send = encoders(level)[name]()
            t0 = time.process_time()
            wire = sum(send(m) for m in batch) / n
            cpu = (time.process_time() - t0) / n
            plain = raw + (2 if raw < 126 else 4)
            rows.append({"encoder": name, "size": size, "raw_bytes": round(raw, 1),
                         "wire_bytes": round(wire, 1), "plain_wire_bytes": round(plain, 1),
                         "saved_bytes": round(plain - wire, 1),
                         "cpu_us_per_msg": round(cpu * 1e6, 2)})  # fmt: skip
    return rows
