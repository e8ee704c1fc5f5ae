"""Bad input on the channel paths: documented errors, one log line, nothing stored, and a
healthy subscriber on the same server keeps being served throughout."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.helpers import ChannelsCollected, collect_channels, publish_on
from tests.test_channels import by_header, channel_config
from transports.clients import subscriber
from transports.live import LiveServer

MakeServer = Callable[..., LiveServer]
ALICE = {"X-User": "alice"}
DEEP = "[" * 100 + "]" * 100
LONG = "a" * 65
TOO_MANY = "&".join(f"channel=chat:c{i}" for i in range(17))

STREAM_CASES = [
    # (query, status, reason)
    ("channel=has%20space", 400, "bad_channel"),
    ("channel=chat:", 400, "bad_channel"),
    (f"channel=chat:{LONG}", 400, "bad_channel"),
    ("channel=chat:a/b", 400, "bad_channel"),
    ("channel=Upper:x", 400, "bad_channel"),
    ("channel=undeclared:x", 400, "bad_channel"),
    ("channel=chat:a&channel=chat:a", 400, "bad_channel"),
    (TOO_MANY, 400, "too_many_channels"),
    ("channel=chat:a&cursor=1,2", 400, "bad_cursor"),
    ("channel=chat:a&cursor=x.y", 400, "bad_cursor"),
    ("channel=chat:a&after=1", 400, "bad_param"),
    ("cursor=1", 400, "bad_param"),
]

PUBLISH_CASES: list[tuple[str, dict[str, str], bytes, int, str]] = [
    # (channel, headers, body, status, reason)
    ("chat:x", {}, b'{"data": 1}', 401, "unauthorized"),  # anonymous
    ("ro:x", ALICE, b'{"data": 1}', 403, "forbidden"),  # subscribe-only namespace
    ("undeclared:x", ALICE, b'{"data": 1}', 400, "bad_channel"),
    ("bad name", ALICE, b'{"data": 1}', 400, "bad_channel"),
    ("chat:x", ALICE, b'{"data": NaN}', 400, "bad_message"),
    ("chat:x", ALICE, b'{"data": Infinity}', 400, "bad_message"),
    ("chat:x", ALICE, b'{"data": -Infinity}', 400, "bad_message"),
    ("chat:x", ALICE, b'{"data": 1e999}', 400, "bad_message"),
    ("chat:x", ALICE, b'{"data": "\\ud800"}', 400, "bad_message"),
    ("chat:x", ALICE, b'{"data": {"\\udfff": 1}}', 400, "bad_message"),
    ("chat:x", ALICE, b'{"data": ' + DEEP.encode() + b"}", 400, "bad_message"),
    ("chat:x", ALICE, b"not json", 400, "bad_message"),
    ("chat:x", ALICE, b'{"dat": 1}', 400, "bad_message"),
    ("chat:x", ALICE, b'{"data": 1, "id": ""}', 400, "bad_message"),
    ("chat:x", ALICE, b'{"data": "' + b"x" * 20_000 + b'"}', 413, "too_large"),  # > 16 KiB
    ("chat:x", ALICE, b'{"data": "' + b"x" * 70_000 + b'"}', 413, "too_large"),  # > 64 KiB
]


@pytest.fixture
def busy(make_server: MakeServer) -> LiveServer:
    return make_server(
        transports=("ws", "sse", "poll", "mqtt"), config=channel_config(), auth=by_header
    )


async def healthy(server: LiveServer, n: int) -> asyncio.Task[ChannelsCollected]:
    """A subscriber of chat:ok, started; the test publishes ``n`` messages to it."""
    sub = await subscriber("ws", server.url)
    started = asyncio.Event()
    task = asyncio.ensure_future(
        collect_channels(sub, ["chat:ok"], lambda g: len(g.messages) >= n, started=started)
    )
    await asyncio.wait_for(started.wait(), 10)
    return task


def stored(server: LiveServer, channel: str) -> int:
    hub = server.ctx.hub
    return int(server.call(lambda: c.feed.last_seq if (c := hub.find(channel)) else 0))


async def test_http_stream_requests(busy: LiveServer) -> None:
    task = await healthy(busy, 2 * len(STREAM_CASES))
    async with httpx.AsyncClient(base_url=busy.url, timeout=5) as http:
        for query, status, reason in STREAM_CASES:
            for path in ("/sse", "/poll", "/mqtt/replay"):
                if path == "/mqtt/replay" and any(k in query for k in ("cursor", "after", "&")):
                    continue  # replay takes one channel and after/epoch
                response = await http.get(f"{path}?{query}")
                assert (response.status_code, response.json()["error"]) == (status, reason), (
                    path,
                    query,
                )
            publish_on(busy, "chat:ok", 2)
    got = await task
    assert got.seqs["chat:ok"] == list(range(1, 2 * len(STREAM_CASES) + 1))


async def test_websocket_stream_requests(busy: LiveServer) -> None:
    for query, status, reason in STREAM_CASES:
        async with connect(f"{busy.ws_url}/ws?{query}") as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4000 + status, reason)


async def test_http_publish_refusals_store_nothing(busy: LiveServer, caplog: Any) -> None:
    task = await healthy(busy, len(PUBLISH_CASES))
    async with httpx.AsyncClient(base_url=busy.url, timeout=5) as http:
        for channel, headers, body, status, reason in PUBLISH_CASES:
            response = await http.post(
                f"/api/channels/{channel}/messages",
                content=body,
                headers={"Content-Type": "application/json", **headers},
            )
            assert (response.status_code, response.json()["error"]) == (status, reason), body[:60]
            publish_on(busy, "chat:ok", 1)
        form = await http.post(
            "/api/channels/chat:x/messages",
            content=b"data=1",
            headers={**ALICE, "Content-Type": "application/x-www-form-urlencoded"},
        )
        assert form.status_code in (400, 415)
    assert stored(busy, "chat:x") == 0, "nothing refused was stored"
    got = await task
    assert got.seqs["chat:ok"] == list(range(1, len(PUBLISH_CASES) + 1))
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) >= len(PUBLISH_CASES)
    assert all(r.exc_info is None for r in refusals), "one line, no traceback"


async def drain(ws: Any) -> None:
    while True:
        await ws.recv()


async def test_websocket_publish_and_subscribe_refusals(busy: LiveServer) -> None:
    task = await healthy(busy, 3)
    url = f"{busy.ws_url}/ws?channel=chat:mine"
    async with connect(url, additional_headers=ALICE) as ws:
        assert json.loads(await ws.recv())["type"] == "hello"

        async def ask(frame: dict[str, Any]) -> dict[str, Any]:
            await ws.send(json.dumps(frame))
            return dict(json.loads(await ws.recv()))

        refused = await ask({"type": "publish", "channel": "ro:x", "data": 1, "id": "a"})
        assert (refused["type"], refused["reason"], refused["id"]) == ("error", "forbidden", "a")
        refused = await ask({"type": "publish", "channel": "chat:x", "data": "x" * 20_000})
        assert refused["reason"] == "too_large"
        refused = await ask({"type": "subscribe", "channel": "nope:x"})
        assert (refused["reason"], refused["channel"]) == ("bad_channel", "nope:x")
        for i in range(15):  # up to the limit of 16 per connection
            await ws.send(json.dumps({"type": "subscribe", "channel": f"chat:n{i}"}))
            assert json.loads(await ws.recv())["type"] == "hello"
        refused = await ask({"type": "subscribe", "channel": "chat:n99"})
        assert refused["reason"] == "too_many_channels"
        publish_on(busy, "chat:ok", 1)
        # Not strict JSON: the connection ends with the documented close.
        await ws.send('{"type":"publish","channel":"chat:x","data":NaN}')
        with pytest.raises(ConnectionClosed) as closed:
            await drain(ws)
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4400, "bad_message")
    async with connect(url, additional_headers=ALICE) as ws:
        await ws.recv()
        await ws.send('{"type":"publish","channel":"chat:x","data":"\\ud800"}')
        with pytest.raises(ConnectionClosed) as closed:
            await drain(ws)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.reason == "bad_message"
    publish_on(busy, "chat:ok", 2)
    assert stored(busy, "chat:x") == 0
    assert (await task).seqs["chat:ok"] == [1, 2, 3]


async def test_mqtt_inbound_refusals(busy: LiveServer) -> None:
    sub: Any = await subscriber("mqtt", busy.url)
    pub = sub.publisher("alice", "alice-pw")
    anonymous = sub.publisher()  # the broker's ACL: anonymous clients write nothing
    impostor = sub.publisher("bob", "alice-pw")
    try:
        with pytest.raises(Exception, match=r"not authori[sz]ed|refused"):
            await impostor.publish("chat:x", 1)
        with pytest.raises(Exception, match="forbidden"):
            await pub.publish("ro:x", 1)
        with pytest.raises(Exception, match="unauthorized"):
            await anonymous.publish("chat:x", 1)
        with pytest.raises(Exception, match="too_large"):
            await pub.publish("chat:x", "x" * 20_000)
        with pytest.raises(Exception, match="bad_message"):
            await pub.publish("chat:x", float("nan"))
        ack = await pub.publish("chat:y", {"fine": True})
    finally:
        await pub.close()
        await anonymous.close()
        await impostor.close()
    assert ack["seq"] == 1
    assert stored(busy, "chat:x") == 0


async def test_slow_multi_channel_reader_is_cut(make_server: MakeServer) -> None:
    """A multi-channel WebSocket client that stops reading ends with slow_consumer (4429)
    when one channel's queue overflows; another client of that channel keeps up."""
    server = make_server(transports=("ws",), config=channel_config(queue_size=200))
    fast = asyncio.ensure_future(
        collect_channels(
            await subscriber("ws", server.url),
            ["chat:flood"],
            lambda g: len(g.messages) >= 3000,
            timeout=90,
        )
    )
    async with connect(f"{server.ws_url}/ws?channel=chat:flood&channel=chat:b", max_queue=1) as ws:
        await ws.recv()  # subscribed; from here on the client reads nothing
        for start in range(0, 3000, 50):
            await asyncio.to_thread(publish_on, server, "chat:flood", 50, start)
            await asyncio.sleep(0.005)
        closed = server.ctx.stats["ws"].closed
        for _ in range(200):
            if closed.get("slow_consumer"):
                break
            await asyncio.sleep(0.05)
        assert closed.get("slow_consumer") == 1
    got = await fast
    assert got.seqs["chat:flood"] == list(range(1, 3001))
