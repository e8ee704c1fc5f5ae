"""Watch the shared cursors from Python: updates per second and the longest pause between
two updates of the server's bot (30 Hz). Run it while the fault lab adds loss or latency.

    .venv/bin/python demos/cursors/client.py http://127.0.0.1:8000 --transport webrtc --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time

from transports.demo.pyclient import DemoClient


async def main(args: argparse.Namespace) -> None:
    base = args.url.split("/demos/")[0]
    arrivals: list[float] = []
    async with DemoClient(base, args.transport, args.url if "#token=" in args.url else None) as c:
        if c.token is None:
            raise SystemExit("the cursors channel needs a token: pass the page URL with #token=")
        async for m in c.messages(["cursors:arena"], seconds=args.seconds):
            if m.data.get("from") == "bot":
                arrivals.append(time.monotonic())
    pauses = [b - a for a, b in itertools.pairwise(arrivals)]
    rate = len(arrivals) / args.seconds
    print(
        f"{args.transport}: {len(arrivals)} bot updates in {args.seconds:g} s ({rate:.0f}/s), "
        f"longest pause {1000 * max(pauses, default=0):.0f} ms"
    )


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("url", help="the page URL the demo printed (with #token=...)")
    p.add_argument("--transport", default="ws", choices=["ws", "sse", "poll", "webrtc", "mqtt"])
    p.add_argument("--seconds", type=float, default=5.0)
    asyncio.run(main(p.parse_args()))
