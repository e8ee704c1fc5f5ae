"""Follow ticker symbols from a terminal, on any transport; print quotes and bytes/message.

    .venv/bin/python demos/ticker/client.py http://127.0.0.1:8000 --transport sse \
        --symbol ACME --symbol GLOBX --count 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import zlib

from transports.demo.pyclient import DemoClient


async def main(args: argparse.Namespace) -> None:
    base = args.url.split("/demos/")[0]
    raw = packed = n = 0
    async with DemoClient(base, args.transport, None) as c:
        channels = [f"ticker:{s}" for s in args.symbol]
        async for m in c.messages(channels, count=args.count, seconds=args.seconds):
            text = json.dumps(m.to_dict(), separators=(",", ":")).encode()
            small = len(text) <= args.threshold
            # Raw DEFLATE (RFC 1951), the per-message compression of WebSocket/MQTT payloads.
            size = len(text) if small else len(zlib.compress(text, wbits=-15))
            raw, packed, n = raw + len(text), packed + size, n + 1
            book = "" if small else f"  (order book: {len(text)} B -> {size} B compressed)"
            print(f"#{m.seq} {m.data['symbol']:8} {m.data['price']:8.2f}{book}")
    if n:
        print(
            f"{n} messages: {raw / n:.0f} B/msg as sent, {packed / n:.0f} B/msg compressing "
            f"above {args.threshold} B ({100 - 100 * packed / raw:.0f} % saved)"
        )


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("url", help="the server (or page) URL")
    p.add_argument("--transport", default="ws", choices=["ws", "sse", "poll", "webrtc", "mqtt"])
    p.add_argument("--symbol", action="append", default=None)
    p.add_argument("--threshold", type=int, default=256, help="compress messages above N bytes")
    p.add_argument("--count", type=int)
    p.add_argument("--seconds", type=float)
    a = p.parse_args()
    a.symbol = a.symbol or ["ACME", "GLOBX"]
    asyncio.run(main(a))
