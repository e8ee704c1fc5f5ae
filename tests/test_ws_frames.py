"""The fan-out's shared WebSocket frames (``transports/wsframes.py``).

The frame built once per message must be byte for byte what the ``websockets`` protocol
would have written, at every length encoding (RFC 6455 §5.2: 7-bit, 16-bit, 64-bit), and a
real client must receive every published message intact through it. The end-to-end test
also fails if uvicorn's protocol stops publishing itself in the scope or renames what
``DirectFrames.send_text_now`` reads: the message would then not be written this way.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest
from websockets.asyncio.client import connect
from websockets.frames import Frame, Opcode

from transports import wsframes
from transports.live import LiveServer

MakeServer = Callable[..., LiveServer]


@pytest.mark.parametrize("n", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_a_shared_frame_is_what_websockets_would_write(n: int) -> None:
    for text in ("x" * n, ("é" * n)[: max(n // 2, 0)]):
        expected = Frame(Opcode.TEXT, text.encode()).serialize(mask=False, extensions=[])
        assert wsframes.text_frame(text) == expected


def test_one_frame_per_message_object() -> None:
    a, b = "same text", "".join(["same ", "text"])
    assert a == b
    assert a is not b
    first = wsframes.shared_frame(a)
    assert wsframes.shared_frame(a) is first  # built once for a run of calls
    again = wsframes.shared_frame(b)
    assert again == first
    assert again is not first


async def test_published_messages_reach_every_client_intact_through_shared_frames(
    make_server: MakeServer,
) -> None:
    server = make_server(("ws",))
    sizes = [10, 126, 200, 66000]  # data lengths crossing the 16-bit and 64-bit encodings
    clients = [await connect(server.ws_url + "/ws?after=0") for _ in range(3)]
    try:
        for ws in clients:
            hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert hello["type"] == "hello"
        for i, n in enumerate(sizes):
            message = server.publish({"i": i, "pad": "p" * n})
            # Written by the publisher to caught-up clients as one frame built once.
            assert wsframes._last[0] is message._wire[0]  # type: ignore[index]
        for ws in clients:
            got = [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in sizes]
            assert [m["seq"] for m in got] == [1, 2, 3, 4]
            assert [len(m["data"]["pad"]) for m in got] == sizes
    finally:
        for ws in clients:
            await ws.close()


async def test_a_multi_channel_stream_writes_shared_frames_too(make_server: MakeServer) -> None:
    server = make_server(("ws",))
    clients = [await connect(server.ws_url + "/ws?channel=news") for _ in range(2)]
    try:
        for ws in clients:
            hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert hello["type"] == "hello"
        sent = []
        for i in range(3):
            message = server.call(lambda i=i: server.ctx.hub.channel("news").feed.publish({"i": i}))
            sent.append(message)
        for ws in clients:
            got = [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in sent]
            assert [(m["channel"], m["seq"], m["data"]) for m in got] == [
                ("news", 1, {"i": 0}),
                ("news", 2, {"i": 1}),
                ("news", 3, {"i": 2}),
            ]
        # The pump wrote the last one as the frame shared by the channel's subscribers.
        assert wsframes._last[0] is sent[-1]._wire[0]
    finally:
        for ws in clients:
            await ws.close()


async def test_an_idle_multi_channel_stream_is_written_by_the_publisher(
    make_server: MakeServer,
) -> None:
    """Caught up, nothing pending: publish writes the frame itself (nothing queued, the
    connection's reader not woken); the client still gets every message in order."""
    server = make_server(("ws",))
    clients = [await connect(server.ws_url + "/ws?channel=news&channel=sport") for _ in range(2)]
    feed = server.call(lambda: server.ctx.hub.channel("news").feed)

    def publish(i: int) -> tuple[list[bool], list[int]]:
        subs = list(feed._subs)
        feed.publish({"i": i})
        streams = [s.direct.__self__ for s in subs]  # type: ignore[union-attr]
        return [s._wakeup.is_set() for s in streams], [s.queued for s in subs]

    def idle() -> bool:
        return len(feed._subs) == 2 and not any(
            s.direct.__self__._wakeup.is_set()  # type: ignore[union-attr]
            for s in feed._subs
        )

    try:
        for ws in clients:
            for _ in range(2):  # a hello per channel
                assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "hello"
        for i in range(3):
            async with asyncio.timeout(10):
                while not server.call(idle):  # noqa: ASYNC110 - state owned by the server loop
                    await asyncio.sleep(0.01)
            assert server.call(lambda i=i: publish(i)) == ([False, False], [0, 0])
        for ws in clients:
            got = [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(3)]
            assert [(m["channel"], m["data"]) for m in got] == [
                ("news", {"i": i}) for i in range(3)
            ]
    finally:
        for ws in clients:
            await ws.close()
