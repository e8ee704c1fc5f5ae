"""Follow the scripted matches from a terminal; --tunnel S goes offline for S seconds once
and reports what was replayed or missed when it comes back.

    .venv/bin/python demos/scores/client.py http://127.0.0.1:8000 --transport poll --tunnel 3
"""

from __future__ import annotations

import argparse
import asyncio

from transports.demo.pyclient import DemoClient
from transports.message import Cursor


async def main(args: argparse.Namespace) -> None:
    base = args.url.split("/demos/")[0]
    channels: dict[str, Cursor | None] = {f"scores:{m}": None for m in args.match}
    async with DemoClient(base, args.transport, None) as c:
        async for m in c.messages(channels, count=args.count):
            channels[str(m.channel)] = Cursor(None, m.seq)
            print(f"{m.channel} #{m.seq} {m.data['minute']}' {m.data['score']} {m.data['text']}")
        if not args.tunnel:
            return
        before = {ch: cur.seq for ch, cur in channels.items() if cur}
        print(f"-- in the tunnel for {args.tunnel} s (cursors {before}) --")
        await asyncio.sleep(args.tunnel)
        # What the server published meanwhile: those seqs are the replay.
        last = {ch: (await c.get(f"/api/channels/{ch}"))["last_seq"] for ch in channels}
        replayed = 0
        async for m in c.messages(channels, count=args.count):
            replayed += m.seq <= last[str(m.channel)]
            print(f"{m.channel} #{m.seq} {m.data['text']}")
        missed = sum(g.first - g.after - 1 for g in c.gaps)
        print(f"back: {replayed} missed update(s) replayed, {missed} beyond history (gaps)")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("url")
    p.add_argument("--transport", default="ws", choices=["ws", "sse", "poll", "webrtc", "mqtt"])
    p.add_argument("--match", action="append", default=None)
    p.add_argument("--count", type=int, default=6, help="messages before (and after) the tunnel")
    p.add_argument("--tunnel", type=float, default=0.0)
    a = p.parse_args()
    a.match = a.match or ["match-1"]
    asyncio.run(main(a))
