"""A held long poll waits on one future: news, its timeout, or the client's disconnect.

The disconnect comes from the HTTP protocol (protocols.py: the connection's watch in each
request's scope, fired by ``connection_lost``), not from a task blocked in ``receive()``;
these check over real sockets that each of the three ends the wait, and that the held poll
really takes the task-free path (it would silently fall back to the two-task wait if
uvicorn stopped building the request's scope in ``on_message_begin``).
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable
from typing import Any

from tests.conftest import UNIT
from tests.helpers import publish_on
from transports.config import ServerConfig
from transports.live import LiveServer

MakeServer = Callable[..., LiveServer]


def _request(server: LiveServer, query: str) -> bytes:
    return f"GET /poll?{query} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode()


def _until(check: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def _held(server: LiveServer) -> int:
    """Polls waiting on the feed's own futures (the task-free path)."""
    return int(server.call(lambda: len(server.ctx.feed._waiters)))


def _tasks(server: LiveServer) -> list[str]:
    return list(server.call(lambda: [t.get_coro().__qualname__ for t in asyncio.all_tasks()]))


def test_a_client_that_goes_away_ends_its_held_poll_and_frees_its_slot(
    make_server: MakeServer,
) -> None:
    server = make_server(("poll",), config=ServerConfig(max_connections_per_ip=1))
    seq = server.publish({"n": 1}).seq
    stats = server.ctx.stats["poll"]
    with socket.create_connection(("127.0.0.1", server.port), timeout=10 * UNIT) as sock:
        sock.sendall(_request(server, f"timeout=30&after={seq}"))
        _until(lambda: _held(server) == 1, 5 * UNIT)
        assert not any("_disconnected" in name for name in _tasks(server))
    # Closed by the client: ended at once, not at its 30 s timeout; slot and future freed.
    _until(lambda: stats.closed.get("client_gone", 0) == 1, 5 * UNIT)
    assert stats.active == 0
    assert _held(server) == 0
    # The one slot this IP has is free again: the next poll is answered, not refused 503.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10 * UNIT) as sock:
        sock.sendall(_request(server, f"timeout=0&after={seq - 1}"))
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")


def test_a_held_poll_ends_with_news_or_at_its_timeout(make_server: MakeServer) -> None:
    server = make_server(("poll",))
    seq = server.publish({"n": 1}).seq
    with socket.create_connection(("127.0.0.1", server.port), timeout=10 * UNIT) as sock:
        sock.sendall(_request(server, f"timeout=30&after={seq}"))
        _until(lambda: _held(server) == 1, 5 * UNIT)
        later = server.publish({"n": 2}).seq
        answer = b""
        while b'"messages":[' not in answer or not answer.endswith(b"]}"):
            answer += sock.recv(65536)
        assert f'"seq":{later},'.encode() in answer
        assert _held(server) == 0
        # Same connection, nothing new: the empty batch comes at the timeout.
        started = time.monotonic()
        sock.sendall(_request(server, f"timeout=0.3&after={later}"))
        answer = b""
        while not answer.endswith(b'"messages":[]}'):
            answer += sock.recv(65536)
        assert time.monotonic() - started >= 0.25
    assert server.ctx.stats["poll"].closed == {"served": 2}
    assert _held(server) == 0


def test_a_batch_response_is_what_starlettes_response_makes() -> None:
    from starlette.responses import Response

    from transports.longpoll.server import _GZIPPED, _PLAIN, _VARY, _Batch

    body = b'{"epoch":"e","last_seq":1,"messages":[]}'
    for head, headers in (
        (_PLAIN, {"Cache-Control": "no-store"}),
        (_VARY, {"Cache-Control": "no-store", "Vary": "Accept-Encoding"}),
        (
            _GZIPPED,
            {"Cache-Control": "no-store", "Vary": "Accept-Encoding", "Content-Encoding": "gzip"},
        ),
    ):
        ours = _Batch(body, head)
        theirs = Response(body, media_type="application/json", headers=headers)
        assert vars(ours) == vars(theirs)
        assert ours.headers == theirs.headers


def test_the_host_check_answers_the_same_every_time(make_server: MakeServer) -> None:
    # HostCheck remembers its answer per (Host, local address): a refused name stays refused.
    server = make_server(("poll",))
    seq = server.publish({"n": 1}).seq
    for host in ("evil.example", f"127.0.0.1:{server.port}") * 3:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10 * UNIT) as sock:
            sock.sendall(
                f"GET /poll?timeout=0&after={seq - 1} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
            )
            status = sock.recv(65536)[:12]
        assert status == (b"HTTP/1.1 400" if host == "evil.example" else b"HTTP/1.1 200"), host


def test_a_multi_channel_poll_holds_one_future_on_every_channel(make_server: MakeServer) -> None:
    """News on either channel ends the hold; a client gone frees the future on both feeds."""
    server = make_server(("poll",))
    publish_on(server, "left", 1)
    publish_on(server, "right", 1)
    feeds = server.call(lambda: [server.ctx.hub.channel(n).feed for n in ("left", "right")])

    def held() -> list[int]:
        return list(server.call(lambda: [len(f._waiters) for f in feeds]))

    query = "channel=left&channel=right&timeout=30&cursor="
    with socket.create_connection(("127.0.0.1", server.port), timeout=10 * UNIT) as sock:
        sock.sendall(_request(server, query.replace("30", "0") + "0,0"))
        cursor = _body(sock)["cursor"]
        for channel in ("right", "left"):
            sock.sendall(_request(server, query + cursor))
            _until(lambda: held() == [1, 1], 5 * UNIT)
            assert not any("_disconnected" in name for name in _tasks(server))
            publish_on(server, channel, 1, 1)
            answer = _body(sock)
            assert [m["data"]["i"] for m in answer["messages"] if "data" in m] == [1]
            assert held() == [0, 0]
            cursor = answer["cursor"]
        sock.sendall(_request(server, query + cursor))
        _until(lambda: held() == [1, 1], 5 * UNIT)
    _until(lambda: held() == [0, 0], 5 * UNIT)
    assert server.ctx.stats["poll"].closed.get("client_gone") == 1


def _body(sock: socket.socket) -> dict[str, Any]:
    """One response's JSON body, read by its Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )  # fmt: skip
    while len(body) < length:
        body += sock.recv(65536)
    answer: dict[str, Any] = json.loads(body)
    return answer
