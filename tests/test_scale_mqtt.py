"""MQTT in a cluster: exactly one bridge publishes each channel; failover when it dies.

Two ``serve`` processes on one Redis and one Mosquitto (``--mqtt-url``). The nodes elect one
MQTT bridge with a Redis lock and fencing token (``transports/engine/leader.py``). An MQTT
subscriber with no backfill (it sees only what the broker carries) follows a channel while
messages are published through the other node; the leader is SIGKILLed; the survivor takes
the lock within the documented bound (lock ttl + one renewal period = 4 s) and republishes
from shortly before the old leader's last position: the subscriber sees every seq, in
order, with no gap, and no duplicate before the failover (one bridge, not two).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import require_cluster_parts, require_executable
from tests.helpers import collect_channels
from tests.serve_process import Served, serve
from transports.client import GapDetected
from transports.clients import subscriber
from transports.engine.leader import TTL
from transports.lab.cluster import RedisServer
from transports.mqtt.mosquitto import MosquittoBroker


@pytest.fixture(autouse=True)
def _cluster_parts() -> None:
    require_cluster_parts()  # a skip on a laptop without them, a failure under CI=true


ROOM = "chat:mqtt-failover"
TOTAL = 150
KILL_AT = 50
BOUND = TTL + TTL / 3  # docs/scale.md: failover within lock ttl + one renewal period


@pytest.fixture
async def broker() -> AsyncIterator[MosquittoBroker]:
    broker = MosquittoBroker(executable=require_executable("mosquitto"))
    await broker.start()
    yield broker
    await broker.close()


async def info(node: Served) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=5) as http:
        return dict((await http.get(node.url + "/api/info")).json())


async def leader_of(nodes: list[Served], timeout: float = 10.0) -> tuple[Served, Served]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        leads = [(await info(n))["transports"]["mqtt"]["leader"]["leader"] for n in nodes]
        if leads.count(True) == 1:
            i = leads.index(True)
            return nodes[i], nodes[1 - i]
        await asyncio.sleep(0.2)
    raise AssertionError("no single MQTT bridge leader")


async def post(http: httpx.AsyncClient, node: Served, token: str, i: int) -> dict[str, Any]:
    response = await http.post(
        f"{node.url}/api/channels/{ROOM}/messages",
        json={"data": {"i": i}, "id": f"m{i}"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_mqtt_bridge_leader_failover(tmp_path: Path, broker: MosquittoBroker) -> None:
    redis = RedisServer(tmp_path / "redis").start()
    token = secrets.token_urlsafe(16)
    # The bridge user's URL: the broker lets only that user write the feed topics.
    args = ["--engine", redis.url, "--mqtt-url", broker.bridge_url, "--transports", "ws,mqtt"]
    args += ["--rate", "0", "--admin-token", token]
    http = httpx.AsyncClient(timeout=10)
    try:
        with contextlib.ExitStack() as stack:
            nodes = [stack.enter_context(serve(tmp_path, *args)) for _ in range(2)]
            leader, survivor = await leader_of(nodes)
            await post(http, survivor, token, 0)  # the channel exists; the leader carries it
            sub = await subscriber("mqtt", survivor.url, backfill=False)
            started = asyncio.Event()
            task = asyncio.ensure_future(
                collect_channels(
                    sub,
                    {ROOM: None},
                    lambda got: bool(got.seqs.get(ROOM)) and got.seqs[ROOM][-1] >= TOTAL,
                    started=started,
                    timeout=90,
                )
            )
            await asyncio.wait_for(started.wait(), 15)
            killed_at = 0.0
            for i in range(1, TOTAL):
                if i == KILL_AT:
                    await asyncio.sleep(0.5)  # let the leader flush its position
                    assert not task.done()
                    leader.process.send_signal(signal.SIGKILL)
                    leader.process.wait(10)
                    killed_at = time.time()
                await post(http, survivor, token, i)
                await asyncio.sleep(0.01)
            got = await task
            elected = (await info(survivor))["transports"]["mqtt"]["leader"]
    finally:
        await http.aclose()
        redis.stop()
    print(
        f"failover {elected['since'] - killed_at:.2f} s after SIGKILL; "
        f"{got.stats.duplicates} repeats dropped by seq"
    )
    assert elected["leader"] is True
    assert elected["since"] - killed_at <= BOUND + 1.0, "took over within the documented bound"
    seqs = got.seqs[ROOM]
    assert seqs == sorted(set(seqs)), "in order, each once"
    assert set(range(2, TOTAL + 1)) <= set(seqs), "no gap across the failover"
    assert not [g for g in got.of(GapDetected) if isinstance(g, GapDetected) and g.after >= 1]
