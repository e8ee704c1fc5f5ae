"""Hostile clients with bad or wrong tokens, on all five transports, next to a legitimate one.

While a client with a valid token follows a private channel, others try: no token, an
expired token, a token for another channel, a forged signature, a publish without the right,
a cross-site ticket request, and (MQTT) reading the private channel or writing a channel topic
straight at the broker. Each is refused with its documented reason, and the legitimate
client's feed has every seq once, in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import UNIT, require_executable
from tests.helpers import collect_channels, publish_on
from tests.test_auth_jwt import KEY, bearer, jwt_config, refusal
from tests.test_hostile_mqtt import NOT_AUTHORIZED, PREFIX, Paho, broker_port
from transports.clients import subscriber
from transports.jwtauth import mint
from transports.live import LiveServer

MakeServer = Callable[..., LiveServer]
N = 30
ROOM = "private:room"


async def hostile_http(server: LiveServer, name: str) -> dict[str, str]:
    """Every refusal a token-less or wrong-token client gets; reason by attempt."""
    other = mint(KEY, "mallory", channels={"chat:*": ["subscribe"]})
    reader = mint(KEY, "mallory", channels={"private:*": ["subscribe"]})
    expired = mint(KEY, "mallory", ttl=-1, channels={"*": ["subscribe", "publish"]})
    forged = mint("a-different-secret-of-sufficient-length!", "mallory", roles=["admin"])
    got = {
        "no token": await refusal(name, server, {}, ROOM),
        "expired": await refusal(name, server, bearer(expired), ROOM),
        "other channel": await refusal(name, server, bearer(other), ROOM),
        "forged": await refusal(name, server, bearer(forged), ROOM),
    }
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        url = f"/api/channels/{ROOM}/messages"
        r = await http.post(url, json={"data": "x"}, headers=bearer(reader))
        got["publish without right"] = r.json()["error"]
        r = await http.post("/api/publish", json={"data": "x"}, headers=bearer(forged))
        got["forged admin"] = r.json()["error"]
        evil = {"Origin": "http://evil.example", **bearer(reader)}
        got["cross-site ticket"] = (await http.post("/api/tickets", headers=evil)).json()["error"]
    return got


EXPECTED = {
    "no token": "unauthorized",
    "expired": "token_expired",
    "other channel": "forbidden",
    "forged": "unauthorized",
    "publish without right": "forbidden",
    "forged admin": "unauthorized",
    "cross-site ticket": "bad_origin",
}


@pytest.mark.parametrize("name", ["ws", "sse", "poll", "webrtc"])
async def test_bad_tokens_are_refused_while_a_good_one_streams(
    name: str, make_server: MakeServer
) -> None:
    server = make_server(transports=(name,), config=jwt_config())
    good = mint(KEY, "alice", channels={"private:*": ["subscribe"]})
    sub = await subscriber(
        name, server.url, headers=bearer(good), **({"timeout": 1.0} if name == "poll" else {})
    )
    started = asyncio.Event()
    task = asyncio.ensure_future(
        collect_channels(
            sub,
            [ROOM],
            lambda got: len(got.seqs.get(ROOM, [])) >= N,
            started=started,
            timeout=60 * UNIT,
        )
    )
    await asyncio.wait_for(started.wait(), 20 * UNIT)
    publish_on(server, ROOM, N // 2)
    got_hostile = await hostile_http(server, name)
    publish_on(server, ROOM, N - N // 2, start=N // 2)
    got = await task
    assert got_hostile == EXPECTED
    assert got.seqs[ROOM] == list(range(1, N + 1))  # no gap, no duplicate
    assert got.stats.unexpected == 0


async def test_mqtt_broker_shows_a_private_channel_only_to_its_token(
    make_server: MakeServer,
) -> None:
    """Talking to the broker directly bypasses nothing: an anonymous broker client never sees
    a private channel's messages and its write to a channel topic is refused (0x87), while an
    MQTT follower of a public channel, and WS and MQTT followers of the private one with a
    token (checked by the broker, tests/test_mqtt_tokens.py), see every message."""
    require_executable("mosquitto")
    server = make_server(transports=("ws", "mqtt"), config=jwt_config(broker="mosquitto"))
    good = mint(KEY, "alice", channels={"private:*": ["subscribe"]})
    spy = await asyncio.to_thread(Paho, broker_port(server))
    spy.client.subscribe(f"{PREFIX}/#", qos=1)
    await asyncio.to_thread(spy.subscribed.wait, 10 * UNIT)
    ws = await subscriber("ws", server.url, headers=bearer(good))
    mq = await subscriber("mqtt", server.url)
    mq_token = await subscriber("mqtt", server.url, headers=bearer(good))
    ws_started, mq_started, tk_started = asyncio.Event(), asyncio.Event(), asyncio.Event()
    done = lambda channel: lambda got: len(got.seqs.get(channel, [])) >= N  # noqa: E731
    ws_task = asyncio.ensure_future(
        collect_channels(ws, [ROOM], done(ROOM), started=ws_started, timeout=60 * UNIT)
    )
    mq_task = asyncio.ensure_future(
        collect_channels(
            mq, ["chat:lobby"], done("chat:lobby"), started=mq_started, timeout=60 * UNIT
        )
    )
    tk_task = asyncio.ensure_future(
        collect_channels(mq_token, [ROOM], done(ROOM), started=tk_started, timeout=60 * UNIT)
    )
    await asyncio.wait_for(ws_started.wait(), 20 * UNIT)
    await asyncio.wait_for(mq_started.wait(), 20 * UNIT)
    await asyncio.wait_for(tk_started.wait(), 20 * UNIT)
    for i in range(N):
        publish_on(server, ROOM, 1, start=i)
        publish_on(server, "chat:lobby", 1, start=i)
    # An MQTT client without a token asking for the private channel is told, not left waiting.
    assert await refusal("mqtt", server, {}, ROOM) == "unauthorized"
    refused = await asyncio.to_thread(spy.publish, f"{PREFIX}/chat:lobby", b'{"seq":999}')
    ws_got, mq_got, tk_got = await ws_task, await mq_task, await tk_task
    await asyncio.sleep(0.5)
    spy.close()
    assert refused == NOT_AUTHORIZED
    assert ws_got.seqs[ROOM] == list(range(1, N + 1))
    assert mq_got.seqs["chat:lobby"] == list(range(1, N + 1))
    assert tk_got.seqs[ROOM] == list(range(1, N + 1))
    topics = {topic for topic, _ in spy.received}
    assert f"{PREFIX}/chat:lobby" in topics
    assert not [t for t in topics if "private" in t], topics
