"""Malformed input on a real server never gets a 500, an abort or a traceback.

Fuzzed bodies for ``POST /api/publish`` and ``POST /webrtc/offer`` (seeded, bounded: 150 of
each by default, 2000 with ``TRANSPORT_LAB_HOSTILE=full``), a deeply nested WebSocket frame, an
invalid-UTF-8 text frame, aborted request bodies. Each gets its documented answer and at most
one log line, and a healthy follower gets every message that was accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from tests import fuzzgen
from tests.conftest import UNIT
from tests.helpers import FAST, collect, offer_sdp
from tests.rawsock import ws_close_code, ws_frame, ws_handshake
from transports.client import Delivered, Subscriber, follow
from transports.clients import subscriber
from transports.config import ServerConfig
from transports.live import LiveServer

MakeServer = Callable[..., LiveServer]
FULL = __import__("os").environ.get("TRANSPORT_LAB_HOSTILE", "") == "full"
FUZZ_BODIES = 2000 if FULL else 150


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage()[:200] for r in caplog.records if r.exc_info or r.exc_text]


async def test_fuzzed_bodies_never_get_a_500(
    make_server: MakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = ServerConfig(
        webrtc_max_peers=10_000, webrtc_open_timeout=1.0, webrtc_max_pending_per_ip=10_000
    )
    server = make_server(("sse", "webrtc"), config=cfg)
    rng = random.Random(10)
    sdp = await offer_sdp()
    follower = asyncio.ensure_future(follow_until_end(await subscriber("sse", server.url)))
    await asyncio.sleep(0.3)
    statuses: dict[str, Counter[int]] = {"/api/publish": Counter(), "/webrtc/offer": Counter()}
    headers = {**server.admin_headers, "content-type": "application/json"}
    async with httpx.AsyncClient(base_url=server.url, timeout=30, headers=headers) as http:
        for _ in range(FUZZ_BODIES):
            body = fuzzgen.publish_body(rng)
            r = await http.post("/api/publish", content=body)
            statuses["/api/publish"][r.status_code] += 1
            assert r.status_code < 500, (body[:200], r.text[:200])
            offer = fuzzgen.offer_body(rng, sdp)
            r = await http.post("/webrtc/offer", content=offer)
            statuses["/webrtc/offer"][r.status_code] += 1
            assert r.status_code < 500, (offer[:200], r.text[:200])
        stored = server.ctx.feed.last_seq
        assert stored == statuses["/api/publish"][200]
        assert (await http.post("/api/publish", json={"data": "end"})).status_code == 200
    print(statuses)  # shown with -s: how many of each status the fuzzing produced
    # Every accepted message reached the live follower, which decoded each one.
    assert await follower == list(range(1, stored + 2))
    assert statuses["/api/publish"][400] > 0
    assert statuses["/webrtc/offer"][400] > 0
    assert not tracebacks(caplog)


async def follow_until_end(sub: Subscriber) -> list[int]:
    seqs: list[int] = []
    events = follow(sub, 0, backoff=FAST)
    async with asyncio.timeout(600 * UNIT), contextlib.aclosing(events):
        async for event in events:
            if isinstance(event, Delivered):
                seqs.append(event.message.seq)
                if event.message.data == "end":
                    break
    return seqs


async def test_deeply_nested_ws_frame_is_closed_4400(
    make_server: MakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = make_server(("ws",))
    reader, writer = await ws_handshake(server.port)
    writer.write(ws_frame(1, b"[" * 60_000))  # under the 64 KiB frame limit
    code = await ws_close_code(reader, 10 * UNIT)
    writer.close()
    assert code == 4400  # bad_message, not an abort without a close frame
    assert not tracebacks(caplog)
    assert any("bad_message" in r.getMessage() for r in caplog.records)


async def test_invalid_utf8_frame_is_closed_1007_with_one_log_line(
    make_server: MakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = make_server(("ws",))
    healthy = asyncio.ensure_future(collect(await subscriber("ws", server.url), 2, timeout=20))
    caplog.set_level(logging.INFO)
    reader, writer = await ws_handshake(server.port)
    writer.write(ws_frame(1, b'{"type":"ping","id":"\xff\xfe"}'))
    assert await ws_close_code(reader, 10 * UNIT) == 1007  # RFC 6455 §8.1
    writer.close()
    await asyncio.sleep(0.2)
    lines = [r for r in caplog.records if "UTF-8" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].levelno == logging.WARNING
    assert not tracebacks(caplog)
    server.publish("a")
    server.publish("b")
    assert (await healthy).seqs == [1, 2]


@pytest.mark.parametrize("path", ["/api/publish", "/webrtc/offer"])
async def test_aborted_request_body_is_one_line(
    make_server: MakeServer, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    server = make_server(("ws", "webrtc"))
    for _ in range(3):
        _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {server.admin_token}\r\nContent-Length: 5000\r\n\r\n"
            '{"data": "only part of it'.encode()
        )
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.close()  # before the declared 5000 bytes
    await asyncio.sleep(0.5)
    assert not tracebacks(caplog)
    aborted = [r for r in caplog.records if "aborted" in r.getMessage()]
    assert len(aborted) == 3
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.get("/api/info")).status_code == 200
