"""HTTP/1.1 pipelining (RFC 9112 §9.3.2) and a held poll on the same keep-alive connection.

The HTTP protocol keeps its queue of pipelined requests in a small list of its own
(protocols.py) and the poll path is dispatched in front of the router (shortcuts.py); these
check over a real socket that requests written back to back are answered in order, that a
pipelined request waits for a held poll before it, and that other methods on /poll still
get the router's 405.
"""

from __future__ import annotations

import socket
import time

from tests.conftest import UNIT
from transports.live import LiveServer


def _responses(sock: socket.socket, count: int, deadline: float) -> list[tuple[int, bytes]]:
    """Read ``count`` responses (status, body), framed by Content-Length."""
    buf, out = b"", []
    while len(out) < count:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            head = buf[:end].decode("latin-1").lower()
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name == "content-length":
                    length = int(value)
            if len(buf) >= end + 4 + length:
                out.append((int(head[9:12]), buf[end + 4 : end + 4 + length]))
                buf = buf[end + 4 + length :]
                continue
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {len(out)} responses"
        buf += chunk
    return out


def test_pipelined_requests_are_answered_in_order(server: LiveServer) -> None:
    host = f"127.0.0.1:{server.port}"
    seq = server.publish({"n": 1}).seq
    requests = (
        f"GET /poll?timeout=0&after={seq - 1} HTTP/1.1\r\nHost: {host}\r\n\r\n"
        f"GET /api/info HTTP/1.1\r\nHost: {host}\r\n\r\n"
        # Held until the message published below, then the next request is answered.
        f"GET /poll?timeout=30&after={seq} HTTP/1.1\r\nHost: {host}\r\n\r\n"
        f"POST /poll HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=10 * UNIT) as sock:
        sock.sendall(requests.encode())
        deadline = time.monotonic() + 10 * UNIT
        first = _responses(sock, 2, deadline)
        later = server.publish({"n": 2}).seq
        rest = _responses(sock, 2, deadline)
    (s1, b1), (s2, b2), (s3, b3), (s4, _) = first + rest
    assert (s1, s2, s3, s4) == (200, 200, 200, 405)
    assert f'"seq":{seq},'.encode() in b1
    assert b'"transports"' in b2
    assert f'"seq":{later},'.encode() in b3
    assert f'"seq":{seq},'.encode() not in b3
