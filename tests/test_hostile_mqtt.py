"""MQTT forgery against the managed Mosquitto: anonymous clients may read the feed topics but
not write them, and the project's MQTT follower survives a bad payload without looping."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from tests.conftest import UNIT, require_executable
from tests.helpers import collect
from transports.clients import subscriber
from transports.config import ServerConfig
from transports.live import LiveServer
from transports.mqtt.client import MQTTSubscriber
from transports.mqtt.pahoutil import new_client, stop_loop

MakeServer = Callable[..., LiveServer]
PREFIX = "transport-lab"
NOT_AUTHORIZED = 0x87  # MQTT 5 §3.4.2.1 PUBACK reason code
FULL_FLOOD = __import__("os").environ.get("TRANSPORT_LAB_HOSTILE", "") == "full"


class Paho:
    """A plain paho client (anonymous unless given credentials), driven from a thread."""

    def __init__(self, port: int, credentials: tuple[str, str] | None = None) -> None:
        self.client = new_client(
            f"hostile-{time.monotonic_ns()}", mqtt5=True, clean=True, reconnect=False
        )
        self.acks: dict[int, int] = {}
        self.received: list[tuple[str, bytes]] = []
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p=None: self.connected.set()
        self.client.on_subscribe = lambda c, u, mid, codes, p=None: self.subscribed.set()
        self.client.on_publish = self._on_publish
        self.client.on_message = lambda c, u, m: self.received.append((m.topic, bytes(m.payload)))
        if credentials is not None:
            self.client.username_pw_set(*credentials)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.connected.wait(10 * UNIT)

    def _on_publish(self, c: Any, u: Any, mid: int, rc: Any, props: Any = None) -> None:
        self.acks[mid] = int(rc.value)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> int:
        """Publish at QoS 1; the PUBACK's reason code."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        deadline = time.monotonic() + 10 * UNIT
        while info.mid not in self.acks and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.acks[info.mid]

    def close(self) -> None:
        self.client.disconnect()
        stop_loop(self.client)


def broker_port(server: LiveServer) -> int:
    return int(server.ctx.transports["mqtt"].broker.port)


def forged(seq: int) -> bytes:
    return json.dumps(
        {"seq": seq, "topic": "ticker", "sent_at": time.time(), "data": "forged"}
    ).encode()


async def test_anonymous_publishes_to_feed_topics_are_refused(make_server: MakeServer) -> None:
    require_executable("mosquitto")
    server = make_server(("mqtt",), config=ServerConfig(broker="mosquitto"))
    server.publish({"i": 0})
    follower = asyncio.ensure_future(
        collect(await subscriber("mqtt", server.url), 6, timeout=30 * UNIT)
    )
    watcher = await asyncio.to_thread(Paho, broker_port(server))  # anonymous subscribe is fine
    watcher.client.subscribe(f"{PREFIX}/#", qos=1)
    assert await asyncio.to_thread(watcher.subscribed.wait, 10 * UNIT)
    attacker = await asyncio.to_thread(Paho, broker_port(server))
    await asyncio.sleep(0.5)  # the follower is subscribed
    for topic, payload, retain in [
        (f"{PREFIX}/ticker", forged(2), False),  # the next seq: would displace the real one
        (f"{PREFIX}/ticker", forged(1_000_000), False),  # would make it drop everything after
        (f"{PREFIX}/ticker", b"not json", False),
        (f"{PREFIX}/_meta", b'{"type":"hello","epoch":"forged","last_seq":0}', True),
    ]:
        assert await asyncio.to_thread(attacker.publish, topic, payload, retain) == NOT_AUTHORIZED
    for i in range(1, 6):
        server.publish({"i": i})
    got = await follower
    await asyncio.to_thread(attacker.close)
    assert got.seqs == [1, 2, 3, 4, 5, 6]
    assert got.stats.gaps == 0
    assert got.stats.duplicates == 0
    assert got.stats.epoch_changes == 0
    payloads = [p for _, p in watcher.received]
    await asyncio.to_thread(watcher.close)
    assert b"forged" not in b"".join(payloads)
    assert any(b'"seq":6' in p for p in payloads)  # the anonymous reader got the real feed


async def test_follower_skips_a_bad_payload_without_reconnecting(make_server: MakeServer) -> None:
    """Even from a client allowed to write (here: the bridge's own credentials), a payload
    that is not a frame is skipped once; it used to reconnect the follower forever."""
    require_executable("mosquitto")
    server = make_server(("mqtt",), config=ServerConfig(broker="mosquitto"))
    broker = server.ctx.transports["mqtt"].broker
    server.publish({"i": 0})
    sub = await subscriber("mqtt", server.url)
    assert isinstance(sub, MQTTSubscriber)
    follower = asyncio.ensure_future(collect(sub, 3, timeout=30 * UNIT))
    await asyncio.sleep(0.5)
    writer = await asyncio.to_thread(Paho, broker.port, broker.credentials)
    for payload in (b"not json", b"[1, 2]", b'{"seq": "x"}'):
        assert await asyncio.to_thread(writer.publish, f"{PREFIX}/ticker", payload) == 0
    await asyncio.to_thread(writer.close)
    server.publish({"i": 1})
    server.publish({"i": 2})
    got = await follower
    assert got.seqs == [1, 2, 3]
    assert sub.counters["bad_payloads"] == 3
    assert sub.counters["connects"] == 1
