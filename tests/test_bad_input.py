"""Every bad input gets its documented error, and a healthy client keeps being served."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.helpers import collect, publish
from transports.clients import subscriber
from transports.live import LiveServer

MakeServer = Callable[..., LiveServer]

HTTP_CASES = [
    # (path, headers, status, error reason)
    ("/sse?after=-1", {}, 400, "bad_cursor"),
    ("/sse?after=abc", {}, 400, "bad_cursor"),
    ("/sse?after=999999", {}, 409, "cursor_ahead"),
    ("/sse", {"Last-Event-ID": "seven"}, 400, "bad_cursor"),
    ("/sse?aftr=1", {}, 400, "bad_param"),
    ("/sse?after=1&epoch=../../x", {}, 400, "bad_param"),
    ("/sse?after=1", {"Origin": "http://evil.example"}, 403, "bad_origin"),
    ("/poll?after=-1", {}, 400, "bad_cursor"),
    ("/poll?after=1e3", {}, 400, "bad_cursor"),
    ("/poll?after=999999", {}, 409, "cursor_ahead"),
    ("/poll?after=1&timeout=1e9", {}, 400, "bad_param"),
    ("/poll?after=1&timeout=nan", {}, 400, "bad_param"),
    ("/poll?after=1&timeout=-2", {}, 400, "bad_param"),
    ("/poll?after=1&limit=0", {}, 400, "bad_param"),
    ("/poll?after=1&callback=x", {}, 400, "bad_param"),
]

WS_CASES = [
    ("/ws?after=-1", 4400, "bad_cursor"),
    ("/ws?after=x1", 4400, "bad_cursor"),
    ("/ws?after=999999", 4409, "cursor_ahead"),
    ("/ws?after=1&bogus=1", 4400, "bad_param"),
]


async def drain(ws: ClientConnection) -> None:
    while True:
        await ws.recv()


@pytest.fixture
def busy_server(make_server: MakeServer) -> LiveServer:
    return make_server(transports=("ws", "sse", "poll"))


async def test_http_bad_input_gets_documented_json_error(busy_server: LiveServer) -> None:
    await publish(busy_server, 3)
    healthy = asyncio.ensure_future(collect(await subscriber("sse", busy_server.url), 23))
    async with httpx.AsyncClient(base_url=busy_server.url, timeout=5) as http:
        for path, headers, status, reason in HTTP_CASES:
            response = await http.get(path, headers=headers)
            assert (response.status_code, response.json()["error"]) == (status, reason), path
            assert response.json()["detail"]
    await publish(busy_server, 20)
    assert (await healthy).seqs == list(range(1, 24))
    stats = busy_server.ctx.stats
    assert stats["sse"].rejected + stats["poll"].rejected == len(HTTP_CASES)


async def test_ws_bad_cursor_and_params_close_with_documented_code(busy_server: LiveServer) -> None:
    await publish(busy_server, 3)
    healthy = asyncio.ensure_future(collect(await subscriber("ws", busy_server.url), 13))
    for path, code, reason in WS_CASES:
        async with connect(busy_server.ws_url + path) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (code, reason), path
    await publish(busy_server, 10)
    assert (await healthy).seqs == list(range(1, 14))


@pytest.mark.parametrize(
    ("frame", "code", "reason"),
    [
        ("garbage", 4400, "bad_message"),
        ('{"type":"subscribe"}', 4400, "bad_param"),
        ("x" * 70_000, 1009, ""),
    ],
    ids=["not-json", "unknown-control", "oversized"],
)
async def test_ws_bad_client_frames(
    busy_server: LiveServer, frame: str, code: int, reason: str
) -> None:
    async with connect(busy_server.ws_url + "/ws?after=0", max_size=None) as ws:
        assert '"hello"' in str(await ws.recv())
        await ws.send(frame)
        with pytest.raises(ConnectionClosed) as closed:
            await drain(ws)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == code
    if reason:
        assert closed.value.rcvd.reason == reason


async def test_ws_application_ping_is_answered(busy_server: LiveServer) -> None:
    async with connect(busy_server.ws_url + "/ws") as ws:
        await ws.recv()  # hello
        await ws.send('{"type":"ping","id":7}')
        assert await ws.recv() == '{"type":"pong","id":7}'


async def test_ws_wrong_origin_is_refused_allowed_origin_accepted(make_server: MakeServer) -> None:
    from transports.config import ServerConfig

    server = make_server(
        transports=("ws",), config=ServerConfig(allowed_origins=["http://lab.test"])
    )
    async with connect(server.ws_url + "/ws", origin="http://evil.test") as ws:  # type: ignore[arg-type]
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4403
    async with connect(server.ws_url + "/ws", origin="http://lab.test") as ws:  # type: ignore[arg-type]
        assert '"hello"' in str(await ws.recv())


async def test_publish_api_validates_body(busy_server: LiveServer) -> None:
    headers = {**busy_server.admin_headers, "content-type": "application/json"}
    async with httpx.AsyncClient(base_url=busy_server.url, timeout=5, headers=headers) as http:
        ok = await http.post("/api/publish", json={"data": {"a": 1}, "topic": "news"})
        assert ok.status_code == 200
        assert ok.json()["seq"] == 1
        assert ok.json()["topic"] == "news"
        for body in (b"not json", b"[1]", b'{"topic":"x"}'):
            bad = await http.post("/api/publish", content=body)
            assert (bad.status_code, bad.json()["error"]) == (400, "bad_message"), body
        bad = await http.post("/api/publish", content=b'{"data":1,"topic":""}')
        assert (bad.status_code, bad.json()["error"]) == (400, "bad_param")
        big = await http.post("/api/publish", content=b"x" * 70_000)
        assert (big.status_code, big.json()["error"]) == (413, "too_large")
        info = (await http.get("/api/info")).json()
        assert info["last_seq"] == 1
        assert set(info["transports"]) == {"ws", "sse", "poll"}
        assert info["errors"]["slow_consumer"] == {
            "status": 429,
            "ws_code": 4429,
            "retryable": True,
        }
