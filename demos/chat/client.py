"""Chat from a terminal, on any transport: print a room (history first), optionally say something.

    .venv/bin/python demos/chat/client.py 'http://127.0.0.1:8000/demos/chat/#token=...' \
        --transport mqtt --user term --say "hello from Python" --count 5
"""

from __future__ import annotations

import argparse
import asyncio

from transports.demo.pyclient import DemoClient
from transports.message import Cursor


async def main(args: argparse.Namespace) -> None:
    base = args.url.split("/demos/")[0]
    async with DemoClient(base, args.transport, args.url, args.user) as c:
        channel = f"chat:{args.room}"
        if args.say:
            ack = await c.publish(channel, {"text": args.say})
            print(f"sent: seq {ack['seq']} (epoch {ack['epoch']})")
        history = {channel: Cursor(None, 0)}  # from the start of the room's history
        async for m in c.messages(history, count=args.count, seconds=args.seconds):
            print(f"#{m.seq} {m.data['from']}: {m.data['text']}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("url", help="the page URL the demo printed (with #token=...)")
    p.add_argument("--transport", default="ws", choices=["ws", "sse", "poll", "webrtc", "mqtt"])
    p.add_argument("--user", default="py")
    p.add_argument("--room", default="lobby")
    p.add_argument("--say", help="publish this message first")
    p.add_argument("--count", type=int, help="stop after N messages")
    p.add_argument("--seconds", type=float, default=None, help="stop after S seconds")
    asyncio.run(main(p.parse_args()))
