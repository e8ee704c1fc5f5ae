"""Every transport passes its connection request through the one auth hook, and reports a
refusal in its documented form (HTTP 401/403 + JSON, WebSocket close 4401/4403)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from transports.auth import ConnectionRequest, Principal
from transports.errors import TransportError
from transports.live import LiveServer

MakeServer = Callable[..., LiveServer]
ALL = ("ws", "sse", "poll", "webrtc", "mqtt")


class TokenAuth:
    """Bearer token in the Authorization header or ``?token=`` (browsers' WebSocket API
    cannot set headers). Remembers which transports asked."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    async def __call__(self, request: ConnectionRequest) -> Principal:
        self.seen.add(request.transport)
        header = request.headers.get("authorization", "")
        token = header.removeprefix("Bearer ") if header else request.query.get("token", "")
        if token == "blocked":
            raise TransportError("forbidden", "this token may not read the feed")
        if token != "s3cret":
            raise TransportError("unauthorized", "a bearer token is required")
        return Principal("alice", {"transport": request.transport})


@pytest.fixture
def guarded(make_server: MakeServer) -> tuple[LiveServer, TokenAuth]:
    auth = TokenAuth()
    return make_server(transports=ALL, auth=auth), auth


async def ws_close_code(url: str, **kwargs: object) -> tuple[int, str]:
    async with connect(url, **kwargs) as ws:  # type: ignore[arg-type]
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()  # refused: the close arrives instead of the hello
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def test_http_transports_refuse_then_admit(guarded: tuple[LiveServer, TokenAuth]) -> None:
    server, auth = guarded
    ok = {"Authorization": "Bearer s3cret"}
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        for token, status, reason in ((None, 401, "unauthorized"), ("blocked", 403, "forbidden")):
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            for method, path in (
                ("GET", "/sse"),
                ("GET", "/poll?timeout=0"),
                ("POST", "/webrtc/offer"),
            ):
                r = await http.request(method, path, headers=headers, content=b"{}")
                assert (r.status_code, r.json()["error"]) == (status, reason), (path, token)
        assert (await http.get("/poll?timeout=0", headers=ok)).status_code == 200
        async with http.stream("GET", "/sse", headers=ok) as r:
            assert r.status_code == 200
        # Past the hook, a broken offer is judged on its SDP.
        r = await http.post("/webrtc/offer", headers=ok, content=b"{}")
        assert (r.status_code, r.json()["error"]) == (400, "bad_sdp")
    assert auth.seen == {"sse", "poll", "webrtc"}


async def test_websocket_transports_refuse_then_admit(
    guarded: tuple[LiveServer, TokenAuth],
) -> None:
    server, auth = guarded
    assert await ws_close_code(server.ws_url + "/ws") == (4401, "unauthorized")
    assert await ws_close_code(server.ws_url + "/ws?token=blocked") == (4403, "forbidden")
    async with connect(server.ws_url + "/ws?token=s3cret") as ws:
        assert '"hello"' in str(await ws.recv())
    mqtt = {"subprotocols": ["mqtt"]}
    assert await ws_close_code(server.ws_url + "/mqtt", **mqtt) == (4401, "unauthorized")
    # Admitted: a text frame is then refused as bad MQTT, not as bad credentials.
    async with connect(server.ws_url + "/mqtt?token=s3cret", subprotocols=["mqtt"]) as ws:  # type: ignore[list-item]
        await ws.send("not mqtt")
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4400
    assert auth.seen == {"ws", "mqtt"}
    assert server.ctx.stats["ws"].rejected == 2
