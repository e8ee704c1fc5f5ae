"""The channel contract on all five transports, against a real server on 127.0.0.1.

Three channels on one connection: each delivered 1..N in order; cuts mid-stream resume all
three with zero loss and zero duplicates delivered; a channel the client did not subscribe
to never reaches it; presence join/leave of another client is seen.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.helpers import ChannelCutter, ChannelsCollected, collect_channels, publish_on
from transports.auth import ConnectionRequest, Principal
from transports.channels import NamespaceOptions
from transports.client import Presence
from transports.clients import subscriber
from transports.config import ServerConfig
from transports.live import LiveServer

TRANSPORTS = ["ws", "sse", "poll", "webrtc", "mqtt"]
CHANNELS = ["chat:a", "chat:b", "scores:m1"]
N = 40

MakeServer = Callable[..., LiveServer]


async def by_header(request: ConnectionRequest) -> Principal:
    """The tests' auth hook: ``X-User: NAME`` names the principal (else anonymous)."""
    return Principal(request.headers.get("x-user", "anonymous"))


def channel_config(**kwargs: object) -> ServerConfig:
    namespaces = {
        "": NamespaceOptions(),
        "chat": NamespaceOptions(publish=True, presence=True),
        "scores": NamespaceOptions(publish=True, history=100),
        "ro": NamespaceOptions(),
    }
    users = (("alice", "alice-pw"), ("bob", "bob-pw"))  # the managed broker's MQTT users
    return ServerConfig(namespaces=namespaces, mqtt_users=users, **kwargs)  # type: ignore[arg-type]


def options(name: str) -> dict[str, object]:
    return {"timeout": 2.0} if name == "poll" else {}


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def complete(n: int) -> Callable[[ChannelsCollected], bool]:
    return lambda got: all(len(got.seqs.get(c, [])) >= n for c in CHANNELS)


async def test_three_channels_in_order_and_never_another(
    transport: str, make_server: MakeServer
) -> None:
    server = make_server(transports=(transport,), config=channel_config(), auth=by_header)
    for channel in CHANNELS:
        publish_on(server, channel, 10)
    sub = await subscriber(transport, server.url, **options(transport))
    started = asyncio.Event()
    task = asyncio.ensure_future(collect_channels(sub, CHANNELS, complete(N), started=started))
    await asyncio.wait_for(started.wait(), 15)
    for i in range(3):
        for channel in CHANNELS:
            publish_on(server, channel, 10, start=10 + 10 * i)
        publish_on(server, "chat:other", 10)  # never subscribed: must never arrive
        await asyncio.sleep(0.05)
    got = await task
    for channel in CHANNELS:
        assert got.seqs[channel] == list(range(1, N + 1)), channel
    assert got.stats.unexpected == 0
    assert {m.channel for m in got.messages} == set(CHANNELS)


async def test_cuts_resume_every_channel_without_loss_or_duplicate(
    transport: str, make_server: MakeServer
) -> None:
    server = make_server(transports=(transport,), config=channel_config(), auth=by_header)
    inner = await subscriber(transport, server.url, **options(transport))
    sub = ChannelCutter(inner, every=25, cuts=2)
    started = asyncio.Event()
    task = asyncio.ensure_future(collect_channels(sub, CHANNELS, complete(N), started=started))
    await asyncio.wait_for(started.wait(), 15)
    for i in range(N // 5):  # interleaved, so every cut falls mid-stream on all channels
        for channel in CHANNELS:
            publish_on(server, channel, 5, start=5 * i)
        await asyncio.sleep(0.02)
    got = await task
    for channel in CHANNELS:
        assert got.seqs[channel] == list(range(1, N + 1)), f"{channel}: each seq once, in order"
    assert got.stats.disconnects.get("ConnectionLost: cut by test") == 2
    assert got.stats.connects == 3
    assert got.stats.unexpected == 0


async def test_presence_join_and_leave(transport: str, make_server: MakeServer) -> None:
    server = make_server(transports=(transport, "ws"), config=channel_config(), auth=by_header)
    url = f"{server.ws_url}/ws?channel=chat:a"
    if transport == "poll":
        # Long polling holds no connection to be present with: it reads the member list.
        async with httpx.AsyncClient(base_url=server.url) as http:
            async with connect(url, additional_headers={"X-User": "bob"}) as ws:
                await ws.recv()  # hello: subscribed
                members = (await http.get("/api/channels/chat:a")).json()["members"]
                assert [m["user"] for m in members] == ["bob"]
            for _ in range(50):
                if not (await http.get("/api/channels/chat:a")).json()["members"]:
                    break
                await asyncio.sleep(0.05)
            assert (await http.get("/api/channels/chat:a")).json()["members"] == []
        return
    sub = await subscriber(transport, server.url)
    started = asyncio.Event()

    def seen_leave(got: ChannelsCollected) -> bool:
        return any(isinstance(e, Presence) and e.kind == "leave" for e in got.events)

    task = asyncio.ensure_future(
        collect_channels(sub, ["chat:a"], seen_leave, started=started, timeout=20)
    )
    await asyncio.wait_for(started.wait(), 15)
    await asyncio.sleep(0.2)  # MQTT: the bridge's presence publish needs the subscription
    async with connect(url, additional_headers={"X-User": "bob"}) as ws:
        await ws.recv()
        await asyncio.sleep(0.2)
    got = await task
    presence = [e for e in got.of(Presence) if isinstance(e, Presence) and e.user == "bob"]
    assert [p.kind for p in presence] == ["join", "leave"]
    assert {p.channel for p in presence} == {"chat:a"}


@pytest.mark.parametrize("name", ["ws", "sse", "poll", "webrtc"])
async def test_default_channel_next_to_named_ones(name: str, make_server: MakeServer) -> None:
    """The single feed is the channel ``default``; its frames carry no "channel" key."""
    server = make_server(transports=(name,), config=channel_config(), auth=by_header)
    await asyncio.to_thread(server.call, lambda: [server.ctx.feed.publish(i) for i in range(3)])
    publish_on(server, "chat:a", 2)
    sub = await subscriber(name, server.url, **options(name))

    def done(got: ChannelsCollected) -> bool:
        return len(got.messages) >= 5

    got = await collect_channels(sub, ["default", "chat:a"], done)
    assert got.seqs == {"default": [1, 2, 3], "chat:a": [1, 2]}
    assert {m.channel for m in got.messages} == {"", "chat:a"}
