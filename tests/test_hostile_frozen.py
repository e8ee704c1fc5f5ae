"""Frozen readers — clients that connect and never read again — are dropped within
``send_timeout`` once their buffers are full, on WebSocket, SSE, a held long poll and the
``/mqtt`` bridge, while a healthy follower gets every message.

The frozen clients are raw sockets with a small receive buffer (their own kernel buffer is
the client's business: the server can only bound its own side) that never call recv().
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Callable

from tests.conftest import UNIT, require_executable
from tests.helpers import collect
from tests.rawsock import ws_frame
from transports.clients import subscriber
from transports.config import ServerConfig
from transports.live import LiveServer

MakeServer = Callable[..., LiveServer]
FULL = os.environ.get("TRANSPORT_LAB_HOSTILE", "") == "full"
FROZEN_SSE = 200 if FULL else 20
FROZEN_EACH = 20 if FULL else 4  # WebSocket, long poll, /mqtt
SEND_TIMEOUT = 2.0


def frozen_socket(port: int, request: bytes, then: bytes = b"") -> socket.socket:
    """Send ``request``; with ``then``, read the handshake answer first (RFC 6455 §4.1: a
    client waits for it before sending frames), send ``then``, and never read again."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: the window
    sock.connect(("127.0.0.1", port))
    sock.sendall(request)
    if then:
        sock.settimeout(10 * UNIT)
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101"), head
        sock.sendall(then)
    return sock


def ws_upgrade(path: str, protocol: str | None = None) -> bytes:
    extra = f"Sec-WebSocket-Protocol: {protocol}\r\n" if protocol else ""
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    ).encode()


def mqtt_connect_and_subscribe(client_id: bytes, topic: bytes) -> bytes:
    """MQTT 3.1.1 CONNECT (clean session, keepalive 60) and SUBSCRIBE QoS 0, each in a
    masked binary WebSocket frame — what a browser's MQTT client sends over /mqtt."""
    variable = b"\x00\x04MQTT\x04\x02\x00\x3c"
    payload = len(client_id).to_bytes(2, "big") + client_id
    connect = bytes([0x10, len(variable) + len(payload)]) + variable + payload
    body = b"\x00\x01" + len(topic).to_bytes(2, "big") + topic + b"\x00"
    subscribe = bytes([0x82, len(body)]) + body
    return ws_frame(2, connect) + ws_frame(2, subscribe)


def held_by_server(server: LiveServer, ports: set[int]) -> set[int]:
    """Which of these client ports the server still has a connection for."""
    assert server._server is not None
    held = set()
    for conn in list(server._server.server_state.connections):
        client = getattr(conn, "client", None)
        if client and client[1] in ports:
            held.add(client[1])
    return held


async def test_frozen_readers_are_dropped_within_send_timeout(make_server: MakeServer) -> None:
    require_executable("mosquitto")
    cfg = ServerConfig(send_timeout=SEND_TIMEOUT, broker="mosquitto", poll_max_timeout=60)
    server = make_server(("ws", "sse", "poll", "mqtt"), config=cfg)
    follower = asyncio.ensure_future(
        collect(await subscriber("ws", server.url), 600, timeout=120 * UNIT)
    )
    await asyncio.sleep(0.3)
    frozen: dict[str, list[socket.socket]] = {"sse": [], "ws": [], "poll": [], "mqtt": []}
    for _ in range(FROZEN_SSE):
        frozen["sse"].append(
            frozen_socket(server.port, b"GET /sse HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        )
    for i in range(FROZEN_EACH):
        frozen["ws"].append(frozen_socket(server.port, ws_upgrade("/ws")))
        frozen["poll"].append(
            frozen_socket(server.port, b"GET /poll?timeout=50 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        )
        mqtt = mqtt_connect_and_subscribe(b"frozen-%d" % i, b"transport-lab/#")
        frozen["mqtt"].append(frozen_socket(server.port, ws_upgrade("/mqtt", "mqtt"), mqtt))
    ports = {name: {s.getsockname()[1] for s in socks} for name, socks in frozen.items()}
    await asyncio.sleep(1.0)  # every frozen client connected, subscribed, polls held
    for name, p in ports.items():
        assert held_by_server(server, p) == p, name
    # 600 messages of 2 KB (1.2 MB per reader): far more than any reader's buffers hold.
    started = time.monotonic()
    for _ in range(30):
        for i in range(20):
            server.publish({"i": i, "pad": "x" * 2000})
        await asyncio.sleep(0.05)
    published = time.monotonic()
    got = await follower
    assert got.seqs == list(range(1, 601))
    assert got.stats.gaps == 0
    assert got.stats.duplicates == 0
    remaining = {name: held_by_server(server, p) for name, p in ports.items()}
    deadline = published + SEND_TIMEOUT + 8 * UNIT
    while any(remaining.values()) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        remaining = {name: held_by_server(server, p) for name, p in ports.items()}
    took = time.monotonic() - started
    for socks in frozen.values():
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.close()
    assert {name: len(r) for name, r in remaining.items()} == dict.fromkeys(frozen, 0), took
