"""Compression with a size threshold: below it a message goes out plain, above it compressed.

Checked on the wire, with raw sockets, not through a client library: for WebSocket the RSV1
bit of each frame (RFC 7692 §6: set on the first frame of a compressed message), for long
polling the ``Content-Encoding`` of each response, for SSE that every event of a gzip stream
can be decoded as soon as it is sent (the flush does not hold events back).
"""

from __future__ import annotations

import base64
import json
import os
import socket
import time
import zlib
from collections.abc import Callable

from transports.config import ServerConfig
from transports.live import LiveServer

MakeServer = Callable[..., LiveServer]
SMALL = {"n": 1}
BIG = {"text": "compressible " * 200}


def split_frame(buf: bytes) -> tuple[tuple[bool, bytes] | None, bytes]:
    """One server frame (RFC 6455 §5.2: unmasked) off ``buf``: ((rsv1, payload), rest)."""
    if len(buf) < 2:
        return None, buf
    length, start = buf[1] & 0x7F, 2
    if length == 126:
        length, start = int.from_bytes(buf[2:4], "big"), 4
    elif length == 127:
        length, start = int.from_bytes(buf[2:10], "big"), 10
    if len(buf) < start + length:
        return None, buf
    return (bool(buf[0] & 0x40), buf[start : start + length]), buf[start + length :]


def ws_frames(server: LiveServer, offer: str, count: int) -> tuple[bytes, list[tuple[bool, bytes]]]:
    """Open /ws offering ``offer`` as Sec-WebSocket-Extensions, publish a small and a big
    message after the hello; return the response head and ``count`` frames (rsv1, payload)."""
    sock = socket.create_connection((server.host, server.port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /ws HTTP/1.1\r\nHost: {server.host}:{server.port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Extensions: {offer}\r\n\r\n".encode()
    )
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += sock.recv(65536)
    head, buf = buf.split(b"\r\n\r\n", 1)
    frames: list[tuple[bool, bytes]] = []
    while len(frames) < count:
        frame, buf = split_frame(buf)
        if frame is None:
            buf += sock.recv(65536)
            continue
        frames.append(frame)
        if len(frames) == 1:
            server.publish(SMALL)
            server.publish(BIG)
    sock.close()
    return head, frames


def inflate(payloads: list[bytes], no_context_takeover: bool = False) -> list[str]:
    """RFC 7692 §7.2.2: append 0x00 0x00 0xff 0xff and inflate with a raw (-15) window."""
    out, decoder = [], zlib.decompressobj(-15)
    for payload in payloads:
        if no_context_takeover:
            decoder = zlib.decompressobj(-15)
        out.append(decoder.decompress(payload + b"\x00\x00\xff\xff").decode())
    return out


def test_ws_messages_below_the_threshold_go_out_uncompressed(make_server: MakeServer) -> None:
    cfg = ServerConfig(ws_compression=True, ws_compress_min_bytes=256)
    server = make_server(("ws",), config=cfg)
    head, frames = ws_frames(server, "permessage-deflate; client_max_window_bits", 3)
    assert b"permessage-deflate" in head.lower()
    (hello_rsv1, hello), (small_rsv1, small), (big_rsv1, big) = frames
    assert not hello_rsv1, "the hello control frame is short: plain"
    assert json.loads(hello)["type"] == "hello"
    assert not small_rsv1
    assert json.loads(small)["data"] == SMALL
    assert big_rsv1, "a message above the threshold is compressed"
    assert len(big) < len(json.dumps(BIG)) / 4
    assert json.loads(inflate([big])[0])["data"] == BIG


def test_ws_threshold_zero_compresses_every_message(make_server: MakeServer) -> None:
    cfg = ServerConfig(
        ws_compression=True, ws_compress_min_bytes=0, ws_deflate_server_no_context_takeover=True
    )
    server = make_server(("ws",), config=cfg)
    offer = "permessage-deflate; server_no_context_takeover; client_max_window_bits"
    head, frames = ws_frames(server, offer, 3)
    assert b"server_no_context_takeover" in head.lower()
    assert all(rsv1 for rsv1, _ in frames)
    texts = inflate([p for _, p in frames], no_context_takeover=True)
    assert [json.loads(t).get("data") for t in texts[1:]] == [SMALL, BIG]


def test_ws_without_the_offer_is_plain(make_server: MakeServer) -> None:
    server = make_server(("ws",), config=ServerConfig(ws_compression=True))
    head, frames = ws_frames(server, "x-unknown-extension", 3)
    assert b"permessage-deflate" not in head.lower()
    assert not any(rsv1 for rsv1, _ in frames)


def http_get(server: LiveServer, path: str, accept: str) -> tuple[bytes, bytes]:
    """One HTTP/1.1 GET with Content-Length; (head, body)."""
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {server.host}:{server.port}\r\n"
            f"Accept-Encoding: {accept}\r\nConnection: close\r\n\r\n".encode()
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    return head.lower(), body


def test_poll_responses_below_the_threshold_go_out_uncompressed(make_server: MakeServer) -> None:
    cfg = ServerConfig(http_compression=True, poll_compress_min_bytes=512)
    server = make_server(("poll",), config=cfg)
    small = server.publish(SMALL).seq
    server.publish(BIG)
    head, body = http_get(server, f"/poll?after={small - 1}&limit=1&timeout=0", "gzip")
    assert b"content-encoding" not in head
    assert b"vary: accept-encoding" in head
    assert json.loads(body)["messages"][0]["data"] == SMALL
    head, body = http_get(server, f"/poll?after={small}&timeout=0", "gzip, deflate")
    assert b"content-encoding: gzip" in head
    assert len(body) < len(json.dumps(BIG)) / 4
    assert json.loads(zlib.decompress(body, 16 + 15))["messages"][0]["data"] == BIG
    head, body = http_get(server, f"/poll?after={small}&timeout=0", "identity")
    assert b"content-encoding" not in head
    assert json.loads(body)["messages"][0]["data"] == BIG


def test_sse_gzip_stream_flushes_every_event(make_server: MakeServer) -> None:
    server = make_server(("sse",), config=ServerConfig(http_compression=True))
    sock = socket.create_connection((server.host, server.port), timeout=10)
    sock.sendall(
        f"GET /sse HTTP/1.1\r\nHost: {server.host}:{server.port}\r\n"
        "Accept-Encoding: gzip\r\n\r\n".encode()
    )
    raw = b""
    while b"\r\n\r\n" not in raw:
        raw += sock.recv(65536)
    head, raw = raw.split(b"\r\n\r\n", 1)
    assert b"content-encoding: gzip" in head.lower()
    decoder = zlib.decompressobj(16 + 15)
    text = ""

    def dechunk(data: bytes) -> tuple[bytes, bytes]:
        """Chunked transfer coding (RFC 9112 §7.1): (complete chunk bodies, rest)."""
        out = b""
        while b"\r\n" in data:
            size_line, rest = data.split(b"\r\n", 1)
            size = int(size_line, 16)
            if len(rest) < size + 2:
                break
            out, data = out + rest[:size], rest[size + 2 :]
        return out, data

    def read_until(needle: str) -> None:
        nonlocal raw, text
        deadline = time.monotonic() + 5
        while needle not in text:
            assert time.monotonic() < deadline, f"{needle!r} not decodable yet: {text[-200:]!r}"
            body, raw = dechunk(raw)
            text += decoder.decompress(body).decode()
            if needle not in text:
                raw += sock.recv(65536)

    read_until("event: hello")
    for i in range(3):
        # Each event must be decodable on its own, before any later event is published.
        seq = server.publish({"i": i}).seq
        read_until(f"id: {seq}\n")
    sock.close()
