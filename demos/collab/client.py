"""Edit the collaborative document from Python with pycrdt: load the server's snapshot,
follow the channel, optionally append text, and print the document as it converges.

    .venv/bin/python demos/collab/client.py 'http://127.0.0.1:8000/demos/collab/#token=...' \
        --doc notes --append " (from Python)" --seconds 3
"""

from __future__ import annotations

import argparse
import asyncio
import base64

import pycrdt

from transports.demo.pyclient import DemoClient
from transports.message import Cursor


async def main(args: argparse.Namespace) -> None:
    base = args.url.split("/demos/")[0]
    channel = f"doc:{args.doc}"
    doc: pycrdt.Doc[pycrdt.Text] = pycrdt.Doc()
    text = doc.get("text", type=pycrdt.Text)
    async with DemoClient(base, args.transport, args.url, args.user) as c:
        snap = await c.get(f"/demos/api/doc/{channel}")
        doc.apply_update(base64.b64decode(snap["update"]))
        print(f"snapshot at seq {snap['seq']}: {str(text)!r}")
        if args.append:
            before = doc.get_state()
            text += args.append  # a local edit: publish the update it made
            update = doc.get_update(before)
            ack = await c.publish(channel, {"update": base64.b64encode(update).decode()})
            print(f"appended: seq {ack['seq']}")
        cursor = {channel: Cursor(snap["epoch"], snap["seq"])}
        async for m in c.messages(cursor, seconds=args.seconds):
            doc.apply_update(base64.b64decode(m.data["update"]))
            print(f"#{m.seq} from {m.data['from']}: {str(text)!r}")
    print(f"document: {str(text)!r}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("url", help="the page URL the demo printed (with #token=...)")
    p.add_argument("--transport", default="ws", choices=["ws", "sse", "poll", "webrtc", "mqtt"])
    p.add_argument("--user", default="py")
    p.add_argument("--doc", default="notes")
    p.add_argument("--append", help="append this text to the document")
    p.add_argument("--seconds", type=float, default=3.0, help="follow for S seconds")
    asyncio.run(main(p.parse_args()))
