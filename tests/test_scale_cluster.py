"""Several ``serve`` processes behind a real HAProxy (round robin, no stickiness) on Redis.

The layout of ``docs/scale.md``: one ``redis-server``, two ``transport-lab serve --engine
redis://…`` processes, HAProxy in front health-checking ``/readyz``. Clients connect only to
HAProxy's address. While messages are being published through the balancer, the node that
holds WebSocket and SSE clients is SIGKILLed; every client (WebSocket, SSE, long polling)
reconnects through the balancer, lands on the other node and resumes from its cursor:
zero loss, zero duplicates. Publishers retry with the same message id, so a publish whose
ack died with the node is stored once.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import require_cluster_parts
from tests.helpers import ChannelsCollected, collect_channels
from tests.serve_process import Served, serve
from transports.clients import server_info, subscriber
from transports.lab.cluster import HAProxy, RedisServer
from transports.publishing import HTTPPublisher


@pytest.fixture(autouse=True)
def _cluster_parts() -> None:
    require_cluster_parts()  # a skip on a laptop without them, a failure under CI=true


ROOM = "chat:failover"
TOTAL = 300
KILL_AT = 100


@dataclass
class Cluster:
    redis: RedisServer
    nodes: list[Served]
    balancer: HAProxy


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    redis = RedisServer(tmp_path / "redis").start()
    token = secrets.token_urlsafe(16)  # one admin token for the whole cluster
    try:
        with contextlib.ExitStack() as stack:
            nodes = [
                stack.enter_context(
                    serve(
                        tmp_path,
                        "--engine",
                        redis.url,
                        "--transports",
                        "ws,sse,poll",
                        "--rate",
                        "0",
                        "--admin-token",
                        token,
                    )
                )
                for _ in range(2)
            ]
            balancer = HAProxy(tmp_path, [int(n.url.rsplit(":", 1)[1]) for n in nodes]).start()
            stack.callback(balancer.stop)
            yield Cluster(redis, nodes, balancer)
    finally:
        redis.stop()


def token_of(cluster: Cluster) -> str:
    args = cluster.nodes[0].process.args
    assert isinstance(args, list)
    return str(args[args.index("--admin-token") + 1])


async def active(node: Served, transport: str) -> int:
    async with httpx.AsyncClient(timeout=5) as http:
        stats = (await http.get(node.url + "/api/stats")).json()
    return int(stats["transports"].get(transport, {}).get("active", 0))


async def test_sigkill_a_node_clients_resume_on_the_other_through_the_balancer(
    cluster: Cluster,
) -> None:
    victim = cluster.nodes[0]
    url = cluster.balancer.url
    followers: list[tuple[str, asyncio.Future[ChannelsCollected]]] = []
    info = await server_info(url)  # once: each client then makes one request (round robin)

    async def add(name: str) -> None:
        options = {"timeout": 2.0} if name == "poll" else {}
        sub = await subscriber(name, url, info=info, **options)
        started = asyncio.Event()
        task = collect_channels(
            sub, [ROOM], lambda got: len(got.messages) >= TOTAL, started=started, timeout=90
        )
        followers.append((name, asyncio.ensure_future(task)))
        await asyncio.wait_for(started.wait(), 15)

    # Round robin spreads connections: open clients until the victim holds one of each.
    for name in ("ws", "sse"):
        for _ in range(4):
            await add(name)
            if await active(victim, name) > 0:
                break
        counts = [await active(n, name) for n in cluster.nodes]
        assert counts[0] > 0, f"no {name} client landed on the victim: {counts}"
    await add("poll")  # every poll is a new request: it meets the dead node too

    headers = {"Authorization": f"Bearer {token_of(cluster)}"}
    publisher = HTTPPublisher("http", url, headers=headers)
    acks = []
    try:
        for i in range(TOTAL):
            if i == KILL_AT:
                victim.process.send_signal(signal.SIGKILL)
                victim.process.wait(10)
            acks.append(await publisher.publish(ROOM, {"i": i}, id=f"m{i}"))
            await asyncio.sleep(0.005)
    finally:
        await publisher.close()
    assert [a["seq"] for a in acks] == list(range(1, TOTAL + 1)), "each publish stored once"
    for name, task in followers:
        got = await task
        assert got.seqs[ROOM] == list(range(1, TOTAL + 1)), f"{name}: zero loss, in order"
        assert [m.data["i"] for m in got.messages] == list(range(TOTAL)), name
        assert got.stats.duplicates == 0, name
        assert got.stats.gaps == 0, name
    reconnected = {name for name, task in followers if task.result().stats.connects >= 2}
    # Long polls need not reconnect: HAProxy re-dispatches a request the dead node refused.
    assert reconnected >= {"ws", "sse"}, "the victim's streaming clients met the kill"
