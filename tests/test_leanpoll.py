"""The load generator's long-poll reader against a live server and a byte-by-byte server.

The reader pulls each message's seq and due out of the batch without decoding it, so these
check that it still sees exactly the messages the server sent, in order, with their due
times, and that responses split at any byte still frame correctly.
"""

from __future__ import annotations

import asyncio

from tests.conftest import UNIT
from transports.lab.fanout.leanpoll import PollReader, open_poller
from transports.live import LiveServer


async def test_reads_every_message_of_a_live_server(server: LiveServer) -> None:
    seen: list[tuple[int, float]] = []
    all_in = asyncio.Event()
    reader = await asyncio.wait_for(_first(server, seen, all_in), 10 * UNIT)
    try:
        # A string that holds "seq": (escaped in JSON) must not count as a message.
        for i in range(2, 40):
            await asyncio.to_thread(server.publish, {"due": i + 0.5, "note": 'a "seq":7 b'})
            if i % 9 == 0:
                await asyncio.sleep(0.05)  # some polls return one message, some a batch
        await asyncio.wait_for(all_in.wait(), 10 * UNIT)
    finally:
        reader.close()
    assert seen == [(1, 1.25)] + [(i, i + 0.5) for i in range(2, 40)]
    assert reader.after == 39
    assert 2 <= reader.responses <= 40


async def _first(
    server: LiveServer, seen: list[tuple[int, float]], all_in: asyncio.Event
) -> PollReader:
    def on_seq(seq: int, due: float) -> None:
        seen.append((seq, due))
        if seq == 39:
            all_in.set()

    task = asyncio.ensure_future(open_poller(on_seq, server.host, server.port))
    await asyncio.sleep(0.2)  # the first poll (no after) is held until something is published
    await asyncio.to_thread(server.publish, {"due": 1.25})
    return await task


async def test_frames_responses_split_at_every_byte() -> None:
    first = b'{"epoch":"e","last_seq":4,"messages":[]}'
    second = (
        b'{"epoch":"e","last_seq":6,"messages":[{"seq":5,"topic":"t","sent_at":1.0,'
        b'"data":{"due":2.5}},{"type":"close","reason":"x"},{"seq":6,"topic":"t",'
        b'"sent_at":1.0,"data":{"pad":"x","due":-1e-3}}]}'
    )
    responses = [
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(first), first),
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nCONTENT-LENGTH: %d\r\n\r\n%s"
        % (len(second), second),
        b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n",
    ]
    requests: list[bytes] = []

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        for response in responses:
            head = await r.readuntil(b"\r\n\r\n")
            requests.append(head.split(b" ")[1])
            for i in range(len(response)):
                w.write(response[i : i + 1])
                await w.drain()
        await r.read()  # until the reader hangs up
        w.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    seen: list[tuple[int, float]] = []
    try:
        reader = await open_poller(lambda s, d: seen.append((s, d)), "127.0.0.1", port)
        await asyncio.wait_for(reader.closed, 10 * UNIT)  # the 503 makes it hang up
    finally:
        srv.close()
        await srv.wait_closed()
    assert requests == [
        b"/poll?timeout=25",
        b"/poll?timeout=25&after=4",
        b"/poll?timeout=25&after=4",
        b"/poll?timeout=25&after=6",
    ]
    assert seen == [(5, 2.5), (6, -1e-3)]
    assert reader.responses == 3
