"""WebSocket frames the application never sees, over raw sockets: RFC 6455 ping floods and
messages in endless empty fragments. Each flooding connection is closed with its documented
code after a bounded amount of work, while a client behaving sanely is served and a follower
gets its feed."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable

from tests.conftest import UNIT
from tests.helpers import collect
from tests.rawsock import read_ws_frame, ws_frame, ws_handshake
from transports.clients import subscriber
from transports.config import ServerConfig
from transports.live import LiveServer

MakeServer = Callable[..., LiveServer]
PING, PONG, CLOSE, TEXT, CONT = 0x9, 0xA, 0x8, 0x1, 0x0


async def frames_until_close(
    reader: asyncio.StreamReader, timeout: float
) -> tuple[list[tuple[int, bytes]], int | None]:
    """Every frame the server sends, and the close code (None: no close frame)."""
    frames: list[tuple[int, bytes]] = []
    buffer = b""
    with contextlib.suppress(TimeoutError, ConnectionError):
        async with asyncio.timeout(timeout):
            while chunk := await reader.read(65536):
                buffer += chunk
                while (parsed := read_ws_frame(buffer)) is not None:
                    opcode, payload, buffer = parsed
                    frames.append((opcode, payload))
                    if opcode == CLOSE:
                        return frames, int.from_bytes(payload[:2], "big")
    return frames, None


async def test_rfc_ping_flood_is_closed_rate_limited(make_server: MakeServer) -> None:
    # Pings at the protocol level are answered by uvicorn itself: they bypassed the meter
    # the application's {"type":"ping"} frames go through (1,000,000 were all answered).
    server = make_server(("ws", "sse"), config=ServerConfig(client_frame_burst=40))
    healthy = asyncio.ensure_future(collect(await subscriber("sse", server.url), 3, timeout=60))
    reader, writer = await ws_handshake(server.port)
    writer.write(b"".join(ws_frame(PING, b"%d" % i) for i in range(2000)))
    frames, code = await frames_until_close(reader, 10 * UNIT)
    writer.close()
    assert code == 4429, frames[-3:]
    pongs = [f for f in frames if f[0] == PONG]
    assert len(pongs) <= 40 + 5
    # A client pinging at a sane pace is answered every time, and gets its feed.
    reader, writer = await ws_handshake(server.port)
    for i in range(10):
        writer.write(ws_frame(PING, b"sane%d" % i))
        await asyncio.sleep(0.1)
    server.publish("a")
    got: list[tuple[int, bytes]] = []
    buffer = b""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(10 * UNIT):
            while sum(1 for op, _ in got if op == PONG) < 10 or not any(
                b'"seq"' in p for op, p in got if op == TEXT
            ):
                buffer += await reader.read(65536)
                while (parsed := read_ws_frame(buffer)) is not None:
                    opcode, payload, buffer = parsed
                    got.append((opcode, payload))
    writer.close()
    assert [p for op, p in got if op == PONG] == [b"sane%d" % i for i in range(10)]
    assert CLOSE not in [op for op, _ in got]
    server.publish("b")
    server.publish("c")
    assert (await healthy).seqs == [1, 2, 3]


async def test_a_message_in_endless_empty_fragments_is_closed_too_large(
    make_server: MakeServer,
) -> None:
    # Empty continuation frames add nothing to the message's size, so ws_max_size never
    # fired, and uvicorn kept a list entry per frame: 3 million frames were +27 MB.
    server = make_server(("ws", "sse"))
    healthy = asyncio.ensure_future(collect(await subscriber("sse", server.url), 2, timeout=60))
    reader, writer = await ws_handshake(server.port)
    writer.write(ws_frame(TEXT, b"{", fin=False))
    # 2000 here (the old server took 3 million); more would make the close an RST.
    writer.write(b"".join(ws_frame(CONT, b"", fin=False) for _ in range(2000)))
    frames, code = await frames_until_close(reader, 10 * UNIT)
    writer.close()
    assert code == 1009, frames[-3:]
    # A message in a handful of fragments is still one message.
    reader, writer = await ws_handshake(server.port)
    text = json.dumps({"type": "ping", "id": "frag"}).encode()
    pieces = [text[i : i + 4] for i in range(0, len(text), 4)]
    writer.write(ws_frame(TEXT, pieces[0], fin=False))
    for i, piece in enumerate(pieces[1:], 2):
        writer.write(ws_frame(CONT, piece, fin=i == len(pieces)))
    pong = b""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(10 * UNIT):
            buffer = b""
            while b'"pong"' not in pong:
                buffer += await reader.read(65536)
                while (parsed := read_ws_frame(buffer)) is not None:
                    _, payload, buffer = parsed
                    if b'"pong"' in payload:
                        pong = payload
    writer.close()
    assert json.loads(pong) == {"type": "pong", "id": "frag"}
    server.publish("a")
    server.publish("b")
    assert (await healthy).seqs == [1, 2]
