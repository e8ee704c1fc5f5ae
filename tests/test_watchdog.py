"""follow()'s heartbeat watchdog and error classification, against real sockets."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator

import pytest

from tests.helpers import FAST
from transports.client import ConnectionLost, Disconnected, Event, Reconnecting, follow
from transports.errors import TransportError
from transports.longpoll.client import LongPollSubscriber
from transports.sse.client import SSESubscriber
from transports.websocket.client import WebSocketSubscriber


async def run(events: AsyncGenerator[Event, None], seen: list[Event]) -> None:
    async with asyncio.timeout(20), contextlib.aclosing(events):
        async for event in events:
            seen.append(event)


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[str]:
    """A TCP server that accepts and then says nothing: a dead peer that never closes."""
    held: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("kind", ["sse", "poll"])
async def test_silent_http_peer_is_declared_dead_by_the_watchdog(kind: str) -> None:
    async with silent_server() as addr:
        sub = (
            SSESubscriber(f"http://{addr}/sse")
            if kind == "sse"
            else LongPollSubscriber(f"http://{addr}/poll", timeout=1)
        )
        events = follow(sub, 0, idle_timeout=0.3, backoff=FAST, max_attempts=2)
        seen: list[Event] = []
        with pytest.raises(TimeoutError):
            await run(events, seen)
    assert [e for e in seen if isinstance(e, Disconnected)] == [
        Disconnected("idle_timeout", True)
    ] * 3
    assert [e.attempt for e in seen if isinstance(e, Reconnecting)] == [1, 2]


async def test_ws_pong_timeout_ends_a_connection_to_a_peer_that_stopped_answering() -> None:
    # A peer that completes the handshake and then never answers pings (nor sends anything).
    async def handshake_then_silence(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        import base64
        import hashlib

        request = await reader.readuntil(b"\r\n\r\n")
        key = next(
            line.split(b":", 1)[1].strip()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key")
        )
        # RFC 6455 §4.2.2: accept = base64(SHA-1(key + GUID))
        accept = base64.b64encode(
            hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
        )
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        await writer.drain()
        await reader.read()  # swallow pings until the client gives up and closes
        writer.close()

    server = await asyncio.start_server(handshake_then_silence, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sub = WebSocketSubscriber(f"ws://127.0.0.1:{port}/ws", ping_interval=0.2, ping_timeout=0.3)
    try:
        events = follow(sub, 0, idle_timeout=None, backoff=FAST, max_attempts=0)
        with pytest.raises(ConnectionLost, match="pong timeout"):
            await run(events, [])
    finally:
        server.close()
        await server.wait_closed()


async def test_fatal_error_is_not_retried(make_server) -> None:  # type: ignore[no-untyped-def]
    server = make_server(transports=("sse",))
    sub = SSESubscriber(server.url + "/sse")
    events = follow(sub, 5, backoff=FAST)  # cursor beyond the last seq: a fatal 409
    seen: list[Event] = []
    with pytest.raises(TransportError, match="cursor_ahead"):
        await run(events, seen)
    assert seen == [Disconnected("cursor_ahead", False)]
