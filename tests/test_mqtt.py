"""MQTT end to end: a real Mosquitto (and the amqtt fallback) on free loopback ports.

Resume is tested with the client's HTTP backfill switched off where the point is the
broker's own behaviour: a persistent session across a network cut (cut by a real TCP proxy)
and across a broker restart with persistence.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.conftest import UNIT, require_executable
from tests.helpers import Collected, collect
from transports.client import Connected, GapDetected
from transports.clients import subscriber
from transports.config import ServerConfig
from transports.live import LiveServer
from transports.mqtt.client import MQTTSubscriber
from transports.mqtt.mosquitto import MosquittoBroker
from transports.netem.proxy import FaultProxy

MakeServer = Callable[..., LiveServer]
PREFIX = "transport-lab"


@pytest.fixture
async def mosquitto() -> AsyncIterator[MosquittoBroker]:
    """A Mosquitto the test itself starts (persistence on), used as an external broker."""
    broker = MosquittoBroker(executable=require_executable("mosquitto"))
    await broker.start()
    yield broker
    await broker.close()


def broker_kind(kind: str) -> ServerConfig:
    if kind == "mosquitto":
        require_executable("mosquitto")
    return ServerConfig(broker=kind)


async def paced(server: LiveServer, n: int, interval: float = 0.005) -> None:
    """Publish ``n`` messages, one every ``interval`` seconds (a live feed, not a burst)."""
    for i in range(n):
        await asyncio.to_thread(server.publish, {"i": i})
        await asyncio.sleep(interval)


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout * UNIT):
        while not predicate():  # noqa: ASYNC110 - polls state owned by other threads
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("kind", ["mosquitto", "amqtt"])
async def test_delivers_in_order_through_managed_broker(kind: str, make_server: MakeServer) -> None:
    server = make_server(transports=("mqtt",), config=broker_kind(kind))
    info = server.ctx.transports["mqtt"].info(server.url)
    assert info["broker"]["kind"] == kind
    assert info["topic_filter"] == f"{PREFIX}/#"
    sub = await subscriber("mqtt", server.url)
    task = asyncio.ensure_future(collect(sub, 100))
    await until(lambda: sub.counters["connects"] == 1)  # type: ignore[attr-defined]
    await paced(server, 100, 0.001)
    got = await task
    assert got.seqs == list(range(1, 101))
    assert got.stats.duplicates == 0


async def test_live_follow_starts_after_the_hello_while_the_feed_publishes(
    make_server: MakeServer,
) -> None:
    """Live only: the first message is the hello's last_seq + 1 even when one is published
    between the server's /api/info answer and the broker's SUBACK (it is backfilled)."""
    require_executable("mosquitto")
    server = make_server(transports=("mqtt",), config=ServerConfig(broker="mosquitto"))
    feeding = asyncio.ensure_future(paced(server, 2000, 0.002))
    try:
        for _ in range(5):
            sub = await subscriber("mqtt", server.url)
            got = await collect(sub, 3, after=None)
            hello = next(e for e in got.events if isinstance(e, Connected))
            assert hello.last_seq is not None
            assert got.seqs == [hello.last_seq + 1, hello.last_seq + 2, hello.last_seq + 3]
            assert got.stats.gaps == 0
    finally:
        feeding.cancel()


async def test_mosquitto_sub_prints_what_ws_sends(make_server: MakeServer) -> None:
    sub_exe = require_executable("mosquitto_sub")
    server = make_server(transports=("ws", "mqtt"), config=broker_kind("mosquitto"))
    port = server.ctx.transports["mqtt"].broker.port
    n = 20
    proc = await asyncio.create_subprocess_exec(
        sub_exe, "-h", "127.0.0.1", "-p", str(port), "-t", f"{PREFIX}/#", "-q", "1",
        "-C", str(n + 1), stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        async with connect(server.ws_url + "/ws", compression=None) as ws:
            ws_hello = await ws.recv()
            mqtt_hello = (await asyncio.wait_for(proc.stdout.readline(), 10 * UNIT)).decode()
            assert mqtt_hello.rstrip("\n") == ws_hello, "retained _meta is the /ws hello"
            await paced(server, n, 0.001)
            ws_frames = [await ws.recv() for _ in range(n)]
        out, _ = await asyncio.wait_for(proc.communicate(), 10 * UNIT)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    lines = out.decode().splitlines()
    assert lines == ws_frames, "byte-identical JSON on both transports"
    assert [json.loads(line)["seq"] for line in lines] == list(range(1, n + 1))


async def test_session_resumes_after_network_cuts(make_server: MakeServer) -> None:
    """Backfill off: only the broker session carries the messages sent during each cut."""
    server = make_server(transports=("mqtt",), config=broker_kind("mosquitto"))
    broker = server.ctx.transports["mqtt"].broker
    async with FaultProxy("127.0.0.1", broker.port) as proxy:
        sub = MQTTSubscriber(f"mqtt://127.0.0.1:{proxy.port}", backfill=False)
        got, cuts = await cut_while_publishing(server, proxy, sub)
    assert cuts == 3
    assert got.seqs == list(range(1, 301)), "zero loss, in order"
    assert got.stats.duplicates == 0
    assert sub.counters["connects"] == 4
    assert sub.counters["sessions_resumed"] == 3, "every reconnect found its session"


async def test_amqtt_fallback_resumes_with_backfill(make_server: MakeServer) -> None:
    """amqtt's sessions lose messages around a cut (it keeps writing to the dead connection
    until it notices); the client's backfill from /mqtt/replay closes those holes."""
    server = make_server(transports=("mqtt",), config=broker_kind("amqtt"))
    broker = server.ctx.transports["mqtt"].broker
    info = server.ctx.transports["mqtt"].info(server.url)
    async with FaultProxy("127.0.0.1", broker.port) as proxy:
        sub = MQTTSubscriber(
            f"mqtt://127.0.0.1:{proxy.port}", mqtt5=False, replay_url=info["replay_url"]
        )
        got, cuts = await cut_while_publishing(server, proxy, sub)
    assert cuts == 3
    assert got.seqs == list(range(1, 301)), "zero loss, in order"
    assert got.stats.duplicates == 0
    assert got.of(GapDetected) == []


async def cut_while_publishing(
    server: LiveServer, proxy: FaultProxy, sub: MQTTSubscriber
) -> tuple[Collected, int]:
    """Publish 300 messages over ~2 s while cutting the client's TCP connection 3 times."""
    task = asyncio.ensure_future(collect(sub, 300, timeout=60 * UNIT, until_seq=300))
    await until(lambda: sub.counters["connects"] == 1)
    publisher = asyncio.ensure_future(paced(server, 300))
    cuts = 0
    for k in range(1, 4):
        await until(lambda: sub.counters["connects"] == k)  # noqa: B023
        await asyncio.sleep(0.25)
        cuts += proxy.cut()
    got = await task
    await publisher
    return got, cuts


@pytest.mark.parametrize(
    ("persistence", "backfill"), [(True, False), (False, True), (False, False)]
)
async def test_broker_restart(
    persistence: bool, backfill: bool, make_server: MakeServer, tmp_path: object
) -> None:
    """With persistence the session survives a restart; without it, the backfill fills the
    hole from history, and with neither the client reports the gap instead of hiding it."""
    broker = MosquittoBroker(executable=require_executable("mosquitto"), persistence=persistence)
    await broker.start()
    try:
        server = make_server(transports=("mqtt",), config=ServerConfig(mqtt_url=broker.bridge_url))
        sub = await subscriber("mqtt", server.url, backfill=backfill)
        task = asyncio.ensure_future(collect(sub, 400, timeout=60 * UNIT, until_seq=400))
        await until(lambda: sub.counters["connects"] == 1)  # type: ignore[attr-defined]
        publisher = asyncio.ensure_future(paced(server, 400))
        await asyncio.sleep(0.5)
        await broker.restart()
        got = await task
        await publisher
    finally:
        await broker.close()
    assert got.stats.duplicates == 0
    if persistence or backfill:
        assert got.seqs == list(range(1, 401)), "zero loss across the broker restart"
        assert sub.counters["sessions_resumed"] == (1 if persistence else 0)  # type: ignore[attr-defined]
    else:
        # Whatever the dead broker had acknowledged but not yet delivered is gone: it must be
        # reported (inferred from the seq jump), never skipped silently.
        assert got.seqs == sorted(set(got.seqs))
        reported = set(got.seqs)
        for gap in got.of(GapDetected):
            assert isinstance(gap, GapDetected)
            assert not gap.signalled
            reported |= set(range(gap.after + 1, gap.first))
        assert reported == set(range(1, 401))
        assert sub.counters["sessions_resumed"] == 0  # type: ignore[attr-defined]


async def test_external_broker_is_reported(
    mosquitto: MosquittoBroker, make_server: MakeServer
) -> None:
    server = make_server(transports=("mqtt",), config=ServerConfig(mqtt_url=mosquitto.bridge_url))
    async with httpx.AsyncClient() as http:
        info = (await http.get(server.url + "/api/info")).json()["transports"]["mqtt"]
        bad = await http.get(server.url + "/mqtt/replay", params={"after": "x"})
    assert info["broker"]["kind"] == "external"
    assert info["url"] == mosquitto.url
    assert info["qos"] == 1
    assert bad.status_code == 400
    assert bad.json()["error"] == "bad_cursor"
