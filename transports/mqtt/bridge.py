"""The feed → broker bridge: one paho client publishing every feed frame.

The bridge is one more feed subscriber. Each message is published to ``<prefix>/<topic>``
with the same JSON bytes ``/ws`` sends (``codec.encode``), QoS 0 or 1, optionally retained.
The retained ``<prefix>/_meta`` carries the hello (epoch, last seq) and is re-published on
every (re)connect to the broker, since a broker restarted without persistence forgets it.

Delivery to the broker, and why nothing is lost or reordered at QoS 1:

- paho keeps every QoS 1 publish until its PUBACK arrives and re-sends the unacknowledged
  ones, in order, right after reconnecting (MQTT 5 §4.4), before anything newer;
- the bridge itself keeps at most ``window`` publishes unacknowledged and publishes nothing
  while disconnected. paho would also queue beyond its in-flight limit, but it then sends a
  fresh publish ahead of older queued ones once a slot frees up — a reorder that a client
  deduplicating by seq would turn into loss. The window keeps the order;
- while the bridge waits, the feed subscription fills up; if the feed drops the bridge as a
  slow consumer, the bridge logs it, counts it and re-subscribes from the last seq it handed
  to paho — the history replays the rest. A gap in history (it rotated meanwhile) is logged
  and counted, and clients see it as a seq jump.

At QoS 0 a publish while disconnected is dropped (counted in ``dropped``): that is QoS 0.
paho runs its network loop in its own thread (``loop_start``); its callbacks only hand
events to the asyncio loop with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import paho.mqtt.client as mqtt

from transports import codec
from transports.feed import Feed
from transports.message import Control, Message
from transports.mqtt.broker import Broker, BrokerError
from transports.mqtt.pahoutil import feed_topic, meta_topic, new_client, stop_loop
from transports.stats import TransportStats

log = logging.getLogger("transports.mqtt.bridge")


class FeedBridge:
    def __init__(
        self,
        feed: Feed,
        broker: Broker,
        stats: TransportStats,
        *,
        prefix: str = "transport-lab",
        qos: int = 1,
        retain: bool = False,
        queue_size: int = 65536,
        window: int = 100,
        keepalive: int = 10,
    ) -> None:
        if qos not in (0, 1):
            raise ValueError("the bridge publishes at QoS 0 or 1")
        self.feed, self.broker, self.stats = feed, broker, stats
        self.prefix, self.qos, self.retain = prefix, qos, retain
        self.queue_size, self.window, self.keepalive = queue_size, window, keepalive
        self.client_id = f"transport-lab-bridge-{uuid.uuid4().hex[:12]}"
        self.counters = {
            "published": 0,
            "dropped": 0,
            "resubscribed": 0,
            "gaps": 0,
            "broker_connects": 0,
        }
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: mqtt.Client | None = None
        self._connected = asyncio.Event()
        self._room = asyncio.Event()  # set when a publish may go out (connected, window open)
        self._inflight = 0
        self._task: asyncio.Task[None] | None = None

    # ---- paho thread → asyncio ------------------------------------------------------------
    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any = None
    ) -> None:
        if not rc.is_failure:
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self._connected_now)

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any = None
    ) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._connected.clear)
        if rc.is_failure:
            log.warning("bridge lost the broker at %s: %s (paho reconnects)", self.broker.url, rc)

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, rc: Any, props: Any = None
    ) -> None:
        assert self._loop is not None
        if self.qos == 1:
            self._loop.call_soon_threadsafe(self._acked)

    def _acked(self) -> None:
        self._inflight -= 1
        self._room.set()

    def _connected_now(self) -> None:
        self.counters["broker_connects"] += 1
        self._connected.set()
        self._room.set()
        self.publish_meta()

    # ---- lifecycle -------------------------------------------------------------------------
    async def start(self, timeout: float = 10.0) -> None:
        self._loop = asyncio.get_running_loop()
        client = new_client(self.client_id, mqtt5=self.broker.mqtt5, clean=True, reconnect=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        if self.broker.credentials is not None:  # the only user allowed to write the feed
            client.username_pw_set(*self.broker.credentials)
        client.max_inflight_messages_set(self.window + 1)  # +1: the retained hello
        client.reconnect_delay_set(1, 4)
        client.connect_async(self.broker.host, self.broker.port, keepalive=self.keepalive)
        self._client = client
        client.loop_start()
        try:
            async with asyncio.timeout(timeout):
                await self._connected.wait()
        except TimeoutError:
            await self.stop()
            raise BrokerError(f"bridge could not connect to {self.broker.url}") from None
        self._task = asyncio.ensure_future(self._run())
        self._task.set_name("mqtt-bridge")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            stop_loop(client)  # joins paho's thread (woken by disconnect, returns quickly)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # ---- publishing -----------------------------------------------------------------------
    def publish_meta(self) -> None:
        if self._client is None:
            return
        # Encoded like every other frame, so it reads exactly like the hello /ws sends first.
        hello = Control("hello", {"epoch": self.feed.epoch, "last_seq": self.feed.last_seq})
        if self.qos == 1:
            self._inflight += 1  # its PUBACK comes through _on_publish like the others
        self._client.publish(meta_topic(self.prefix), codec.encode(hello), qos=1, retain=True)

    async def _publish(self, message: Message) -> None:
        assert self._client is not None
        text = codec.encode(message)
        topic = feed_topic(self.prefix, message.topic)
        if self.qos == 1:
            while self._inflight >= self.window or not self._connected.is_set():
                self._room.clear()
                await self._room.wait()
            self._inflight += 1
        info = self._client.publish(topic, text, qos=self.qos, retain=self.retain)
        if info.rc == mqtt.MQTT_ERR_NO_CONN and self.qos == 0:
            self.counters["dropped"] += 1
            return
        self.counters["published"] += 1
        self.stats.sent(len(text.encode()))

    async def _run(self) -> None:
        after = self.feed.last_seq
        while True:
            sub = self.feed.subscribe(after, self.feed.epoch, queue_size=self.queue_size)
            try:
                async for frame in sub:
                    if isinstance(frame, Message):
                        await self._publish(frame)
                        after = frame.seq
                    elif frame.type == "gap":
                        self.counters["gaps"] += 1
                        log.warning("bridge fell behind history: %s", frame.to_dict())
            finally:
                sub.close()
            if sub.closed_reason != "slow_consumer":
                return
            self.counters["resubscribed"] += 1
            log.warning("bridge dropped as slow consumer at seq %s; resuming from there", after)
