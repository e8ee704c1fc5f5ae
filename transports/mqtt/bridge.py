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
import contextlib
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from transports import codec
from transports.auth import ANONYMOUS, Principal
from transports.channels import DEFAULT
from transports.engine.leader import LeaderGate
from transports.errors import TransportError
from transports.feed import Feed
from transports.hub import Channel, Hub
from transports.message import Control, Message
from transports.mqtt.broker import Broker, BrokerError
from transports.mqtt.dynsec import presence_topic, private_meta_topic, private_topic
from transports.mqtt.pahoutil import (
    feed_topic,
    inbound_filter,
    meta_topic,
    new_client,
    parse_inbound,
    stop_loop,
)
from transports.stats import TransportStats
from transports.strictjson import loads as strict_loads

log = logging.getLogger("transports.mqtt.bridge")

SYS_TOPICS = (
    "$SYS/broker/clients/connected",
    "$SYS/broker/publish/messages/sent",
    "$SYS/broker/messages/sent",
)


def private(channel: Channel) -> bool:
    """A channel of a namespace anonymous clients may not read: carried under
    ``<prefix>/_private/<ns>/`` where only clients whose token grants it may read it (the
    broker's ACLs, ``dynsec.py``). On a broker without those ACLs (amqtt, an external one)
    such a channel is not carried at all (:meth:`FeedBridge.carries`)."""
    return not channel.options.anonymous_subscribe


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
        hub: Hub | None = None,
        max_frame_bytes: int = 64 * 1024,
    ) -> None:
        if qos not in (0, 1):
            raise ValueError("the bridge publishes at QoS 0 or 1")
        self.feed, self.broker, self.stats = feed, broker, stats
        self.prefix, self.qos, self.retain = prefix, qos, retain
        self.queue_size, self.window, self.keepalive = queue_size, window, keepalive
        self.hub, self.max_frame_bytes = hub, max_frame_bytes
        # username -> Principal of a token client (credentials.py): inbound publishes are
        # checked against the token's grants, not just the broker's topic ACL.
        self.principal_of: Callable[[str], Principal | None] = lambda user: None
        self._channel_tasks: set[asyncio.Task[None]] = set()
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
        # Several nodes on one engine and one broker: only the elected node publishes
        # (transports/engine/leader.py); None = a single node, always publishing.
        self.gate: LeaderGate | None = None
        # The broker's own figures ($SYS tree, Mosquitto), reported by /metrics: MQTT
        # clients connect to the broker, not to us.
        self.broker_sys: dict[str, float] = {}

    # ---- paho thread → asyncio ------------------------------------------------------------
    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any = None
    ) -> None:
        if not rc.is_failure:
            assert self._loop is not None
            client.subscribe([(topic, 0) for topic in SYS_TOPICS])
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
        if self.hub is not None and self._client is not None:
            # A clean session: the inbound subscription is renewed on every connect. In a
            # cluster it is shared (MQTT 5 §4.8.2): the broker gives each publish to one node.
            inbound = inbound_filter(self.prefix)
            if self.gate is not None:
                inbound = f"$share/{self.prefix}-bridges/{inbound}"
            self._client.subscribe(inbound, qos=1)
            self.publish_channel_meta()

    def publish_channel_meta(self) -> None:
        if self.hub is not None:
            for channel in self.hub.all():
                if channel.name != DEFAULT and self.carries(channel):
                    self.publish_meta(channel.feed, channel.name)

    def carries(self, channel: Channel) -> bool:
        return not private(channel) or self.broker.dynsec

    def topics(self, name: str) -> tuple[str, str]:
        """(message topic, retained hello topic) of a named channel (one the hub no longer
        holds counts as private: never leak it onto a public topic)."""
        channel = self.hub.find(name) if self.hub is not None else None
        if channel is None or private(channel):
            return private_topic(self.prefix, name), private_meta_topic(self.prefix, name)
        return f"{self.prefix}/{name}", meta_topic(self.prefix, name)

    # ---- lifecycle -------------------------------------------------------------------------
    async def start(self, timeout: float = 10.0) -> None:
        self._loop = asyncio.get_running_loop()
        client = new_client(self.client_id, mqtt5=self.broker.mqtt5, clean=True, reconnect=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
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
        self._task = asyncio.ensure_future(self._run(self.feed))
        self._task.set_name("mqtt-bridge")
        if self.hub is not None:
            self.hub.on_created.append(self._follow_channel)
            self.hub.on_presence.append(self._presence)
            for channel in self.hub.all():
                if channel.name != DEFAULT:
                    self._follow_channel(channel)

    async def stop(self) -> None:
        if self.hub is not None:
            with contextlib.suppress(ValueError):
                self.hub.on_created.remove(self._follow_channel)
                self.hub.on_presence.remove(self._presence)
        tasks = [*self._channel_tasks, *([self._task] if self._task else [])]
        self._task = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            stop_loop(client)  # joins paho's thread (woken by disconnect, returns quickly)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def inflight(self) -> int:
        """QoS 1 publishes sent and not yet acknowledged."""
        return self._inflight

    # ---- publishing -----------------------------------------------------------------------
    def publish_meta(self, feed: Feed | None = None, channel: str = DEFAULT) -> None:
        if self._client is None or (self.gate is not None and not self.gate.leader):
            return
        feed = feed or self.feed
        # Encoded like every other frame, so it reads exactly like the hello /ws sends first.
        fields: dict[str, Any] = {"epoch": feed.epoch, "last_seq": feed.last_seq}
        if channel != DEFAULT:
            fields["channel"] = channel
        if self.qos == 1:
            self._inflight += 1  # its PUBACK comes through _on_publish like the others
        if channel == DEFAULT or self.hub is None:
            topic = meta_topic(self.prefix)
        else:
            topic = self.topics(channel)[1]
        self._client.publish(topic, codec.encode(Control("hello", fields)), qos=1, retain=True)

    async def _publish(self, message: Message) -> None:
        assert self._client is not None
        text, _ = codec.wire(message)
        if message.channel and self.hub is not None:  # a named channel: one topic each
            topic = self.topics(message.channel)[0]
        else:
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
        self.stats.sent(len(text.encode()), frame=message)

    def _follow_channel(self, channel: Channel) -> None:
        if not self.carries(channel):
            self.counters["private_channels"] = self.counters.get("private_channels", 0) + 1
            return
        task = asyncio.ensure_future(self._run(channel.feed))
        task.set_name(f"mqtt-bridge-{channel.name}")
        self._channel_tasks.add(task)
        task.add_done_callback(self._channel_tasks.discard)
        if self._connected.is_set():
            self.publish_meta(channel.feed, channel.name)

    def _presence(self, channel: Channel, frame: Control) -> None:
        """join/leave go to the channel's topic at QoS 0, outside the seq-ordered window."""
        if self._client is not None and self._connected.is_set():
            # Public channels: on the channel's topic, as ever. Private ones: on a presence
            # topic only tokens with the presence right may read (dynsec.py).
            topic: str | None = None
            if channel.name != DEFAULT and not private(channel):
                topic = f"{self.prefix}/{channel.name}"
            elif channel.name != DEFAULT and self.carries(channel):
                topic = presence_topic(self.prefix, channel.name)
            if topic is not None:
                self._client.publish(topic, codec.encode(frame), qos=0)

    # ---- inbound: clients publish to <prefix>/_in/<user>/<channel> ------------------------
    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        # Runs on paho's thread. The broker's own $SYS figures are one dict store (atomic
        # under the GIL); everything else is a client's inbound publish, handled on our loop.
        if msg.topic.startswith("$SYS/"):
            with contextlib.suppress(ValueError):
                self.broker_sys[msg.topic] = float(msg.payload)
            return
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._inbound, msg)

    def _inbound(self, msg: mqtt.MQTTMessage) -> None:
        task = asyncio.ensure_future(self._answer(msg))
        self._channel_tasks.add(task)
        task.add_done_callback(self._channel_tasks.discard)

    async def _answer(self, msg: mqtt.MQTTMessage) -> None:
        if self.hub is None or self._client is None:
            return
        props = getattr(msg, "properties", None)
        reply_to = getattr(props, "ResponseTopic", None) if props is not None else None
        correlation = getattr(props, "CorrelationData", None) if props is not None else None
        reply: dict[str, Any]
        msg_id: object = None
        try:
            user, channel = parse_inbound(self.prefix, msg.topic)
            body = strict_loads(bytes(msg.payload), max_bytes=self.max_frame_bytes)
            if not isinstance(body, dict) or "data" not in body or set(body) - {"data", "id"}:
                raise TransportError("bad_message", 'payload must be {"data": ..., "id": ...}')
            msg_id = body.get("id")
            principal = ANONYMOUS if user == ANONYMOUS.id else Principal(user)
            principal = self.principal_of(user) or principal
            reply = await self.hub.publish(principal, channel, body["data"], msg_id)
            self.counters["inbound"] = self.counters.get("inbound", 0) + 1
        except TransportError as error:
            log.warning(
                "mqtt inbound %s refused %s: %s", msg.topic[:120], error.reason, error.detail
            )
            reply = {"type": "error", "reason": error.reason, "detail": error.detail}
            if isinstance(msg_id, str):
                reply["id"] = msg_id
        if reply_to and self._client is not None:
            out = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            if correlation is not None:
                out.CorrelationData = correlation
            text = json.dumps(reply, separators=(",", ":"), ensure_ascii=False)
            self._client.publish(reply_to, text, qos=1, properties=out)

    async def _run(self, feed: Feed) -> None:
        if self.gate is not None:  # a cluster: publish only while this node is elected
            await self.gate.run(feed, self.window, self.queue_size, self._publish)
            return
        after = feed.last_seq
        while True:
            try:
                sub = feed.subscribe(after, feed.epoch, queue_size=self.queue_size)
            except TransportError:
                # Closed before this task first ran: the hub evicted the channel to make
                # room for another (one request naming several new channels in a full hub).
                return
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
            if sub.closed_reason != "slow_consumer" or feed.draining:
                return
            self.counters["resubscribed"] += 1
            log.warning("bridge dropped as slow consumer at seq %s; resuming from there", after)
