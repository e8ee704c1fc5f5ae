"""Client publishing on all five transports, against a real server (and broker).

- the 25-pair matrix: a message published over each transport reaches the channel's
  subscriber on each transport exactly once, with the seq its ack carried;
- idempotency: the same client message id published again after a forced reconnect is
  stored once, and both attempts get the same ack; also when the first ack was lost.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import connect

from tests.helpers import ChannelsCollected, collect_channels
from tests.test_channels import TRANSPORTS, by_header, channel_config, options
from transports.clients import subscriber
from transports.live import LiveServer

MakeServer = Callable[..., LiveServer]
ROOM = "chat:room"


async def publisher_for(name: str, server: LiveServer, user: str = "alice") -> Any:
    sub: Any = await subscriber(name, server.url, headers={"X-User": user})
    return sub.publisher(user, f"{user}-pw") if name == "mqtt" else sub.publisher()


async def publish_matrix(receive_on: LiveServer, publish_on: LiveServer) -> None:
    """One publish over each transport to ``publish_on``; a subscriber on each transport of
    ``receive_on`` gets all five, each once, with the seq of its ack (25 pairs)."""
    followers = []
    for name in TRANSPORTS:
        sub = await subscriber(name, receive_on.url, **options(name))
        started = asyncio.Event()

        def five(got: ChannelsCollected) -> bool:
            return len(got.messages) >= len(TRANSPORTS)

        task = asyncio.ensure_future(collect_channels(sub, [ROOM], five, started=started))
        await asyncio.wait_for(started.wait(), 15)
        followers.append((name, task))
    acks = {}
    for name in TRANSPORTS:
        pub = await publisher_for(name, publish_on)
        try:
            acks[name] = await pub.publish(ROOM, {"via": name})
        finally:
            await pub.close()
    assert sorted(a["seq"] for a in acks.values()) == [1, 2, 3, 4, 5]
    assert len({a["epoch"] for a in acks.values()}) == 1
    for receiver, task in followers:
        got = await task
        seen = {m.data["via"]: m.seq for m in got.messages}
        assert seen == {sender: ack["seq"] for sender, ack in acks.items()}, receiver
        assert got.seqs[ROOM] == [1, 2, 3, 4, 5], f"{receiver}: each message once"


async def test_publish_matrix_25_pairs(make_server: MakeServer) -> None:
    server = make_server(transports=tuple(TRANSPORTS), config=channel_config(), auth=by_header)
    await publish_matrix(server, server)


async def test_idempotent_publish_across_a_forced_reconnect(make_server: MakeServer) -> None:
    server = make_server(transports=tuple(TRANSPORTS), config=channel_config(), auth=by_header)
    for name in TRANSPORTS:
        channel = f"chat:idem-{name}"
        pub = await publisher_for(name, server)
        try:
            first = await pub.publish(channel, {"n": 1}, id="msg-1")
            await pub.drop()  # the connection goes away: the next publish reconnects
            again = await pub.publish(channel, {"n": 1}, id="msg-1")
            other = await pub.publish(channel, {"n": 2}, id="msg-2")
        finally:
            await pub.close()
        assert again == first, name
        assert (first["seq"], other["seq"]) == (1, 2), name
        stored = server.call(lambda c=channel: server.ctx.hub.channel(c).feed.last_seq)
        assert stored == 2, f"{name}: msg-1 stored once"
        if hasattr(pub, "connects"):
            assert pub.connects == 2, name


async def test_lost_ack_then_retry_gets_the_first_ack(make_server: MakeServer) -> None:
    server = make_server(transports=("ws",), config=channel_config(), auth=by_header)
    frame = {"type": "publish", "channel": "chat:x", "data": {"a": 1}, "id": "lost"}
    url = f"{server.ws_url}/ws?channel="
    async with connect(url, additional_headers={"X-User": "alice"}) as ws:
        await ws.send(json.dumps(frame))  # ...and the connection drops before the ack is read
    for _ in range(50):
        if server.call(lambda: server.ctx.hub.channel("chat:x").feed.last_seq) == 1:
            break
        await asyncio.sleep(0.02)
    pub = await publisher_for("ws", server)
    try:
        ack = await pub.publish("chat:x", {"a": 1}, id="lost")
    finally:
        await pub.close()
    assert (ack["seq"], ack["id"]) == (1, "lost")
    assert server.call(lambda: server.ctx.hub.channel("chat:x").feed.last_seq) == 1
