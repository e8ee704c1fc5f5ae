"""The Redis engine with real ``redis-server`` processes: two nodes share channels.

- a client on node A receives what is published on node B, on every transport (subscribers
  on all five transports on A, publishers on all five on B), each message once, same seq;
- seq uniqueness: two nodes publishing concurrently to one channel give one gap-free
  sequence, seen identically by subscribers on both nodes;
- client message ids are idempotent across nodes (a retry that lands on the other node);
- Redis failures as ``docs/scale.md`` documents them: restart without persistence -> a new
  epoch (``reset`` for resuming clients, never silent loss); with AOF -> no loss, same epoch;
  unreachable -> ``/readyz`` 503, publishes ``not_ready`` 503, open streams stay open and
  carry on when Redis is back.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import require_cluster_parts
from tests.helpers import ChannelsCollected, collect_channels
from tests.test_channels import TRANSPORTS, by_header, channel_config
from tests.test_channels_publish import publish_matrix
from transports.client import EpochChanged
from transports.clients import subscriber
from transports.lab.cluster import RedisServer
from transports.live import LiveServer


@pytest.fixture(autouse=True)
def _cluster_parts() -> None:
    require_cluster_parts()  # a skip on a laptop without them, a failure under CI=true


MakeServer = Callable[..., LiveServer]
ROOM = "chat:room"
# The size (10,000 per node) takes ~10 s here, so CI runs it in full too.
PER_NODE = int(os.environ.get("TRANSPORT_LAB_SEQ_PER_NODE", "10000"))


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


def nodes(make_server: MakeServer, url: str, transports: tuple[str, ...] = ("ws", "sse", "poll")):
    return [
        make_server(transports=transports, config=channel_config(engine_url=url), auth=by_header)
        for _ in range(2)
    ]


async def post(
    server: LiveServer, channel: str, data: object, msg_id: str | None = None
) -> httpx.Response:
    body: dict[str, object] = {"data": data}
    if msg_id is not None:
        body["id"] = msg_id
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.post(
            f"{server.url}/api/channels/{channel}/messages", json=body, headers={"X-User": "alice"}
        )


async def test_published_on_b_received_on_a_on_every_transport(
    redis_server: RedisServer, make_server: MakeServer
) -> None:
    a, b = nodes(make_server, redis_server.url, tuple(TRANSPORTS))
    await publish_matrix(receive_on=a, publish_on=b)


def publish_many(server: LiveServer, channel: str, n: int, tag: str, concurrency: int = 32):
    """``n`` publishes on the node's own loop, ``concurrency`` in flight at a time (no more
    than the engine's command pool, so a loaded machine measures seq uniqueness, not how
    long a burst queues for a pooled connection — that wait is bounded and answered
    ``not_ready`` by design)."""
    from transports.auth import Principal

    async def run() -> list[int]:
        hub, gate = server.ctx.hub, asyncio.Semaphore(concurrency)

        async def one(i: int) -> int:
            async with gate:
                ack = await hub.publish(Principal("alice"), channel, {"node": tag, "i": i})
                return int(ack["seq"])

        return list(await asyncio.gather(*(one(i) for i in range(n))))

    assert server._loop is not None
    return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(run(), server._loop))


async def test_two_nodes_publishing_concurrently_give_one_gap_free_sequence(
    redis_server: RedisServer, make_server: MakeServer
) -> None:
    a, b = nodes(make_server, redis_server.url, ("ws",))
    total = 2 * PER_NODE
    followers = []
    for node in (a, b):
        started = asyncio.Event()
        sub = await subscriber("ws", node.url)

        def everything(got: ChannelsCollected) -> bool:
            return len(got.messages) >= total

        task = collect_channels(sub, [ROOM], everything, started=started, timeout=240)
        followers.append(asyncio.ensure_future(task))
        await asyncio.wait_for(started.wait(), 15)
    seqs_a, seqs_b = await asyncio.gather(
        publish_many(a, ROOM, PER_NODE, "a"), publish_many(b, ROOM, PER_NODE, "b")
    )
    assert sorted(seqs_a + seqs_b) == list(range(1, total + 1)), "every seq given out once"
    got_a, got_b = await asyncio.gather(*followers)
    assert got_a.seqs[ROOM] == list(range(1, total + 1))
    assert [(m.seq, m.data) for m in got_a.messages] == [(m.seq, m.data) for m in got_b.messages]


async def test_a_retried_id_on_the_other_node_is_stored_once(
    redis_server: RedisServer, make_server: MakeServer
) -> None:
    a, b = nodes(make_server, redis_server.url)
    first = await post(a, ROOM, {"n": 1}, "same-id")
    again = await post(b, ROOM, {"n": 1}, "same-id")
    other = await post(b, ROOM, {"n": 2}, "other-id")
    assert first.status_code == again.status_code == other.status_code == 200
    assert again.json() == first.json()
    assert (first.json()["seq"], other.json()["seq"]) == (1, 2)


async def wait_until(check: Callable[[], object], timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def readyz(server: LiveServer) -> httpx.Response:
    async with httpx.AsyncClient(timeout=5) as http:
        return await http.get(server.url + "/readyz")


async def wait_ready(servers: list[LiveServer], status: int, timeout: float = 15.0) -> None:
    """Until every node's ``/readyz`` answers ``status``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while {(await readyz(s)).status_code for s in servers} != {status}:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"/readyz did not become {status}")
        await asyncio.sleep(0.1)


async def follow_room(
    server: LiveServer, n: int, **kwargs: object
) -> asyncio.Future[ChannelsCollected]:
    """A WebSocket follower of ROOM on ``server`` until it holds ``n`` messages."""
    sub = await subscriber("ws", server.url)
    started = asyncio.Event()
    task = asyncio.ensure_future(
        collect_channels(sub, [ROOM], lambda got: len(got.messages) >= n, started=started, **kwargs)
    )
    await asyncio.wait_for(started.wait(), 15)
    return task


async def publish_seq(server: LiveServer, start: int, n: int) -> list[dict[str, object]]:
    acks = []
    for i in range(start, start + n):
        response = await post(server, ROOM, {"i": i})
        assert response.status_code == 200, response.text
        acks.append(response.json())
    return acks


async def test_redis_restart_without_persistence_is_a_new_epoch(
    tmp_path: Path, make_server: MakeServer
) -> None:
    redis = RedisServer(tmp_path / "redis", aof=False).start()
    try:
        a, b = nodes(make_server, redis.url)
        follower = await follow_room(a, 8, timeout=60)
        before = await publish_seq(b, 0, 5)
        await wait_until(lambda: a.call(lambda: a.ctx.hub.channel(ROOM).feed.last_seq) == 5)
        redis.restart()  # SIGKILL, and no AOF/RDB: everything is gone
        # Both nodes notice on their fan-out reconnect: the channel is lost, a new epoch.
        await wait_ready([a, b], 200)
        await wait_until(
            lambda: b.call(lambda: b.ctx.hub.channel(ROOM).feed.epoch) != before[0]["epoch"]
        )
        after = await publish_seq(b, 5, 3)
        got = await follower
    finally:
        redis.stop()
    assert {ack["epoch"] for ack in after} != {before[0]["epoch"]}
    assert [ack["seq"] for ack in after] == [1, 2, 3], "seq restarts in the new epoch"
    resets = got.of(EpochChanged)
    assert len(resets) == 1, got.events
    assert resets[0].previous == before[0]["epoch"]
    assert [m.data["i"] for m in got.messages] == list(range(8)), "told, then nothing lost"


async def test_redis_restart_with_aof_loses_nothing(
    tmp_path: Path, make_server: MakeServer
) -> None:
    redis = RedisServer(tmp_path / "redis", aof=True).start()
    try:
        a, b = nodes(make_server, redis.url)
        follower = await follow_room(a, 10, timeout=60)
        before = await publish_seq(b, 0, 5)
        redis.restart()  # SIGKILL: only what AOF (appendfsync always) wrote survives
        await wait_ready([a, b], 200)
        after = await publish_seq(b, 5, 5)
        got = await follower
    finally:
        redis.stop()
    assert {ack["epoch"] for ack in before + after} == {before[0]["epoch"]}, "same epoch"
    assert [ack["seq"] for ack in before + after] == list(range(1, 11))
    assert got.seqs[ROOM] == list(range(1, 11))
    assert not got.of(EpochChanged)


async def test_redis_unreachable_readyz_fails_publish_refused_streams_resume(
    tmp_path: Path, make_server: MakeServer
) -> None:
    redis = RedisServer(tmp_path / "redis", aof=True).start()
    try:
        a, b = nodes(make_server, redis.url)
        follower = await follow_room(a, 6, timeout=60)
        await publish_seq(b, 0, 3)
        assert (await readyz(a)).status_code == 200
        redis.kill()
        await wait_ready([a, b], 503, timeout=10)
        body = (await readyz(a)).json()
        assert body["error"] == "not_ready"
        assert body["failed"] == ["engine"]
        refused = await post(b, ROOM, {"i": "lost"})
        assert refused.status_code == 503
        assert refused.json()["error"] == "not_ready"
        await asyncio.sleep(1.0)  # the stream stays open meanwhile
        assert not follower.done()
        redis.start()
        await wait_ready([a, b], 200)
        await publish_seq(b, 3, 3)
        got = await follower
    finally:
        redis.stop()
    assert got.seqs[ROOM] == [1, 2, 3, 4, 5, 6]
    assert [m.data["i"] for m in got.messages] == list(range(6))
    assert got.stats.connects == 1, "the stream stayed open through the outage"


async def test_presence_join_and_leave_cross_nodes(
    redis_server: RedisServer, make_server: MakeServer
) -> None:
    from websockets.asyncio.client import connect

    from transports.client import Presence

    a, b = nodes(make_server, redis_server.url, ("ws",))
    sub = await subscriber("ws", a.url)
    started = asyncio.Event()

    def seen_leave(got: ChannelsCollected) -> bool:
        return any(isinstance(e, Presence) and e.kind == "leave" for e in got.events)

    task = asyncio.ensure_future(
        collect_channels(sub, [ROOM], seen_leave, started=started, timeout=20)
    )
    await asyncio.wait_for(started.wait(), 15)
    url = f"{b.ws_url}/ws?channel={ROOM}"
    async with connect(url, additional_headers={"X-User": "bob"}) as ws:
        await ws.recv()  # hello: bob is subscribed on node B
        await asyncio.sleep(0.3)
    got = await task
    presence = [e for e in got.of(Presence) if isinstance(e, Presence)]
    assert [(p.kind, p.user) for p in presence] == [
        ("join", "bob"),
        ("leave", "bob"),
    ]
