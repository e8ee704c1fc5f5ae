"""Raw-socket clients for hostile tests: what well-behaved client libraries refuse to send
(invalid UTF-8 text frames, half-sent bodies, endless headers) or refuse to do (stop
reading)."""

from __future__ import annotations

import asyncio
import base64
import os
import struct


def ws_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A client frame (masked, RFC 6455 §5.3) with any payload, valid or not."""
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


def read_ws_frame(data: bytes) -> tuple[int, bytes, bytes] | None:
    """Parse one unmasked server frame: ``(opcode, payload, rest)``, None if incomplete."""
    if len(data) < 2:
        return None
    opcode, n = data[0] & 0x0F, data[1] & 0x7F
    offset = 2
    if n == 126:
        if len(data) < 4:
            return None
        n, offset = struct.unpack("!H", data[2:4])[0], 4
    elif n == 127:
        if len(data) < 10:
            return None
        n, offset = struct.unpack("!Q", data[2:10])[0], 10
    if len(data) < offset + n:
        return None
    return opcode, data[offset : offset + n], data[offset + n :]


async def ws_handshake(
    port: int, path: str = "/ws", host: str = "127.0.0.1"
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(host, port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


async def ws_close_code(reader: asyncio.StreamReader, timeout: float = 5.0) -> int | None:
    """Read frames until the close frame; its status code (1005 if it has none), or None if
    the TCP stream ended without one (an abort)."""
    buffer = b""
    async with asyncio.timeout(timeout):
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                return None
            buffer += chunk
            while (parsed := read_ws_frame(buffer)) is not None:
                opcode, payload, buffer = parsed
                if opcode == 8:
                    return int(struct.unpack("!H", payload[:2])[0]) if payload else 1005
