"""What TLS costs on this machine: handshake bytes and time (full and resumed), bytes added
per message, and time to a first message per transport with and without TLS.

The handshake is driven through :class:`ssl.MemoryBIO` over a plain socket, by hand, because
that is the one way to count exactly the bytes TLS puts on the wire without a packet capture
(the ``ssl`` module's sockets hide them). The per-message overhead is measured the same way:
a write of N plaintext bytes and the length of the record that comes out. Everything else
uses the project's own clients against a live server.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import statistics
import time
from typing import Any

from transports.clients import subscriber
from transports.message import Message


def _pump(sock: socket.socket, outgoing: ssl.MemoryBIO) -> int:
    data = outgoing.read()
    if data:
        sock.sendall(data)
    return len(data)


def handshake(
    host: str, port: int, context: ssl.SSLContext, session: ssl.SSLSession | None = None
) -> tuple[dict[str, Any], ssl.SSLSession | None]:
    """One TLS handshake to ``host:port`` then one HTTP request (so that TLS 1.3 session
    tickets, sent after the handshake, arrive). Returns the figures and the session to resume."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    with socket.create_connection((host, port), timeout=10) as sock:
        obj = context.wrap_bio(incoming, outgoing, server_hostname=host, session=session)
        sent = received = 0
        started = time.perf_counter()
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                sent += _pump(sock, outgoing)
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed during the handshake") from None
                received += len(chunk)
                incoming.write(chunk)
        sent += _pump(sock, outgoing)  # the client's Finished
        seconds = time.perf_counter() - started
        obj.write(f"GET /api/info HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        _pump(sock, outgoing)
        # The server sends its session tickets right after the handshake, before any
        # answer: the first bytes of the answer mean the tickets are in. (Reading on to the
        # server's close would wait for our close_notify, which this client never sends.)
        answer = b""
        with contextlib.suppress(ssl.SSLError, OSError):
            while not answer and (chunk := sock.recv(65536)):
                incoming.write(chunk)
                with contextlib.suppress(ssl.SSLWantReadError):
                    answer += obj.read(65536)
        figures = {
            "handshake_ms": seconds * 1000,
            "client_bytes": sent,
            "server_bytes": received,
            "resumed": obj.session_reused,
            "version": obj.version(),
            "cipher": (obj.cipher() or ("?",))[0],
        }
        return figures, obj.session


def handshakes(host: str, port: int, context: ssl.SSLContext, repeat: int) -> list[dict[str, Any]]:
    """``repeat`` full handshakes, each followed by one that resumes its session."""
    rows = []
    for i in range(repeat):
        full, session = handshake(host, port, context)
        rows.append({"run": i, "kind": "full", **full})
        if session is not None:
            again, _ = handshake(host, port, context, session)
            rows.append(
                {"run": i, "kind": "resumed" if again["resumed"] else "full (no resume)", **again}
            )
    return rows


def record_overhead(
    context: ssl.SSLContext, host: str, port: int, sizes: list[int]
) -> list[dict[str, Any]]:
    """Bytes TLS adds to one application write of each size (one record up to 16 KiB)."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    rows = []
    with socket.create_connection((host, port), timeout=10) as sock:
        obj = context.wrap_bio(incoming, outgoing, server_hostname=host)
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                _pump(sock, outgoing)
                incoming.write(sock.recv(65536))
        outgoing.read()
        for size in sizes:
            obj.write(b"x" * size)
            wire = len(outgoing.read())
            rows.append({"payload_bytes": size, "wire_bytes": wire, "tls_bytes": wire - size})
    return rows


async def first_message_ms(name: str, base_url: str, repeat: int) -> list[float]:
    """Milliseconds from nothing to the first message (connect, TLS, upgrade or request, the
    replay of seq 1), ``repeat`` times with a fresh connection each."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        options: dict[str, Any] = {"timeout": 2.0} if name == "poll" else {}
        sub = await subscriber(name, base_url, **options)
        async with asyncio.timeout(30), contextlib.aclosing(sub.stream(0, None)) as frames:  # type: ignore[type-var]
            async for frame in frames:
                if isinstance(frame, Message):
                    break
        times.append((time.perf_counter() - started) * 1000)
    return times


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
