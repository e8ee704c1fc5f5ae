"""``poll_linger``: a held poll woken by a publish answers that long later, with what was
published meanwhile; a poll that starts waiting after the publish waits for the next one.

Over real sockets to a real server; the times are loose bounds around the linger (0.4 s),
never tight timings.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import UNIT
from tests.helpers import publish_on
from transports.config import ServerConfig
from transports.live import LiveServer

MakeServer = Callable[..., LiveServer]
LINGER = 0.4


def _request(server: LiveServer, query: str) -> bytes:
    return f"GET /poll?{query} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode()


def _answer(sock: socket.socket) -> dict[str, object]:
    """One poll response's JSON body (Content-Length framed)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length"))
                 .split(b":")[1])  # fmt: skip
    while len(body) < length:
        body += sock.recv(65536)
    answer: dict[str, object] = json.loads(body)
    return answer


def _seqs(answer: dict[str, object]) -> list[int]:
    messages = answer["messages"]
    assert isinstance(messages, list)
    return [m["seq"] for m in messages if "seq" in m]


def _waiting(server: LiveServer) -> tuple[int, int]:
    """(polls waiting for the next publish, polls woken and waiting for the flush)."""
    feed = server.ctx.feed
    return server.call(lambda: (len(feed._waiters), len(feed._due)))  # type: ignore[no-any-return]


def _until(check: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def test_a_woken_poll_waits_the_linger_and_carries_what_came_meanwhile(
    make_server: MakeServer,
) -> None:
    server = make_server(("poll",), config=ServerConfig(poll_linger=LINGER))
    first = server.publish({"n": 0}).seq
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=10 * UNIT) as held,
        socket.create_connection(("127.0.0.1", server.port), timeout=10 * UNIT) as late,
    ):
        held.sendall(_request(server, f"timeout=30&after={first}"))
        _until(lambda: _waiting(server) == (1, 0), 5 * UNIT)
        woke = time.monotonic()
        a = server.publish({"n": 1}).seq
        assert _waiting(server) == (0, 1)
        time.sleep(LINGER / 4)
        b = server.publish({"n": 2}).seq
        # Caught up with b, this poll started after the publish that woke the first: the
        # flush must not answer it (it would be an empty batch long before its timeout).
        late.sendall(_request(server, f"timeout=30&after={b}"))
        _until(lambda: _waiting(server) == (1, 1), 5 * UNIT)
        assert _seqs(_answer(held)) == [a, b]
        waited = time.monotonic() - woke
        assert LINGER * 0.9 <= waited < LINGER + 5 * UNIT
        time.sleep(LINGER / 2)
        assert _waiting(server) == (1, 0)  # still held, not answered empty
        c = server.publish({"n": 3}).seq
        assert _seqs(_answer(late)) == [c]


def test_a_poll_behind_the_feed_is_answered_at_once(make_server: MakeServer) -> None:
    """Linger batches held polls only: a client catching up is not slowed down."""
    server = make_server(("poll",), config=ServerConfig(poll_linger=2.0))
    seqs = [server.publish({"n": i}).seq for i in range(3)]
    with socket.create_connection(("127.0.0.1", server.port), timeout=10 * UNIT) as sock:
        started = time.monotonic()
        sock.sendall(_request(server, f"timeout=30&after={seqs[0]}"))
        assert _seqs(_answer(sock)) == seqs[1:]
        assert time.monotonic() - started < 1.0 * UNIT


def test_the_poll_timeout_cuts_a_linger_short(make_server: MakeServer) -> None:
    server = make_server(("poll",), config=ServerConfig(poll_linger=3.0))
    first = server.publish({"n": 0}).seq
    with socket.create_connection(("127.0.0.1", server.port), timeout=10 * UNIT) as sock:
        sock.sendall(_request(server, f"timeout=0.5&after={first}"))
        _until(lambda: _waiting(server) == (1, 0), 5 * UNIT)
        started = time.monotonic()
        later = server.publish({"n": 1}).seq
        assert _seqs(_answer(sock)) == [later]
        assert time.monotonic() - started < 2.0 * UNIT  # the poll's own 0.5 s, not the 3 s


async def test_a_channel_poll_lingers_too(make_server: MakeServer) -> None:
    server = make_server(("poll",), config=ServerConfig(poll_linger=LINGER))
    publish_on(server, "room", 1)
    async with httpx.AsyncClient(base_url=server.url, timeout=10 * UNIT) as http:
        first = await http.get("/poll", params={"channel": "room", "cursor": "0", "timeout": 0})
        cursor = first.json()["cursor"]
        held = asyncio.ensure_future(
            http.get("/poll", params={"channel": "room", "cursor": cursor, "timeout": 30})
        )
        await asyncio.sleep(0.2 * UNIT)
        assert not held.done()
        woke = time.monotonic()
        await asyncio.to_thread(publish_on, server, "room", 1, 1)
        await asyncio.sleep(LINGER / 4)
        await asyncio.to_thread(publish_on, server, "room", 1, 2)
        answer = (await held).json()
        assert [m["data"]["i"] for m in answer["messages"] if "data" in m] == [1, 2]
        assert time.monotonic() - woke >= LINGER * 0.9


@pytest.mark.parametrize("bad", [-0.1, 5.5])
def test_poll_linger_is_bounded(bad: float) -> None:
    with pytest.raises(ValueError, match="poll_linger"):
        ServerConfig(poll_linger=bad)
