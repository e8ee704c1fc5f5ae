"""MQTT for named channels: one topic per channel, backfill over HTTP, publish via inbound.

Topics (``docs/mqtt.md``): the bridge publishes channel ``C``'s messages to ``<prefix>/C``
and keeps its hello retained at ``<prefix>/_meta/C``; presence ``join``/``leave`` frames go to
``<prefix>/C`` at QoS 0. A client publishes ``{"data": …, "id": …}`` to
``<prefix>/_in/<user>/C`` with an MQTT 5 Response Topic (§4.10 request/response) and gets
the ack (or error) there, with the Correlation Data it sent. Clients never write
``<prefix>/C`` themselves: the server validates, stamps a seq and re-publishes.

:func:`stream_channels` is one connection: a clean session subscribed to each channel's
topic, then, per channel, the history after its cursor from ``/mqtt/replay?channel=C``
(which also carries the channel's epoch and last seq: the ``hello``), then live messages.
Subscribing *before* reading the history means nothing published in between is missed; what
arrives twice (in the history and live) is dropped by ``follow()``, the one place that
dedupes. A reconnect is a new call with the cursors ``follow()`` kept.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

import httpx
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from transports import codec
from transports.auth import ANONYMOUS
from transports.channels import DEFAULT
from transports.client import ConnectionLost
from transports.errors import TransportError, from_response
from transports.message import Control, Cursor, Frame
from transports.mqtt.dynsec import private_meta_topic, private_topic
from transports.mqtt.pahoutil import inbound_topic, meta_topic, new_client, stop_loop, target
from transports.publishing import ACK_TIMEOUT, answer, new_id, with_retries
from transports.tls import client_context


class MQTTSubscriber(Protocol):
    """What this module uses of ``client.MQTTSubscriber`` (a protocol: that module imports
    this one)."""

    prefix: str
    mqtt5: bool
    qos: int
    keepalive: int
    client_id: str
    broker_url: str
    broker_override: str | None
    connect_timeout: float
    headers: dict[str, str]
    replay_url: str | None
    credentials: tuple[str, str] | None

    async def _refresh(self, http: httpx.AsyncClient) -> None: ...
    async def _register(self, http: httpx.AsyncClient) -> None: ...


Events = asyncio.Queue[tuple[str, Any]]


class _Connection:
    """A paho client on its own thread, its callbacks handed to the loop as events."""

    def __init__(
        self,
        sub: MQTTSubscriber,
        client_id: str,
        user: str | None = None,
        password: str | None = None,
    ) -> None:
        self.sub = sub
        self.events: Events = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def put(kind: str, value: Any = None) -> None:
            loop.call_soon_threadsafe(self.events.put_nowait, (kind, value))

        client = new_client(client_id, mqtt5=sub.mqtt5, clean=True, reconnect=False)
        if user is not None and user != ANONYMOUS.id:
            client.username_pw_set(user, password)
        elif sub.credentials is not None:  # a registered token (client.py, credentials.py)
            client.username_pw_set(*sub.credentials)
        client.on_connect = lambda c, u, flags, rc, p=None: put("connack", rc)
        client.on_subscribe = lambda c, u, mid, codes, p=None: put("suback", codes)
        client.on_message = lambda c, u, msg: put("message", msg)
        client.on_publish = lambda c, u, mid, rc, p=None: put("puback", (mid, rc))
        client.on_disconnect = lambda c, u, flags, rc, p=None: put("disconnect", rc)
        client.on_connect_fail = lambda c, u: put("disconnect", "connection failed")
        client.on_log = lambda c, u, level, buf: put("pong") if "PINGRESP" in buf else None
        self.client = client
        self.started = False

    async def open(self, topics: list[str]) -> None:
        host, port = target(self.client, self.sub.broker_override or self.sub.broker_url)
        self.client.connect_async(host, port, self.sub.keepalive)
        self.client.loop_start()
        self.started = True
        rc = await self.expect("connack")
        if rc.is_failure:
            raise ConnectionLost(f"broker refused: {rc}")
        if topics:
            self.client.subscribe([(t, self.sub.qos) for t in topics])
            codes = await self.expect("suback")
            if any(c.is_failure for c in codes):
                raise ConnectionLost(f"subscription refused: {codes}")

    async def expect(self, want: str) -> Any:
        timeout = self.sub.connect_timeout
        while True:
            try:
                async with asyncio.timeout(timeout):
                    kind, value = await self.events.get()
            except TimeoutError:
                raise ConnectionLost(f"no {want} from the broker in {timeout}s") from None
            if kind == "disconnect":
                raise ConnectionLost(f"broker disconnected: {value}")
            if kind == want:
                return value

    def close(self) -> None:
        if self.started:
            self.client.disconnect()
            stop_loop(self.client)
            self.started = False


async def stream_channels(
    sub: MQTTSubscriber, cursors: Mapping[str, Cursor | None]
) -> AsyncIterator[Frame]:
    if DEFAULT in cursors:
        # Its messages live at <prefix>/<topic> for any topic: follow it without channels=.
        raise ValueError("over MQTT the default channel is followed as the single stream")
    prefix = sub.prefix
    # A channel's topics, public and private (dynsec.py): the broker delivers only what this
    # client may read, so subscribing to both costs nothing and needs no namespace list.
    topics = {f"{prefix}/{name}": name for name in cursors}
    topics.update({private_topic(prefix, name): name for name in cursors})
    metas = {meta_topic(prefix, name): name for name in cursors}
    metas.update({private_meta_topic(prefix, name): name for name in cursors})
    http = httpx.AsyncClient(timeout=10.0, headers=sub.headers, verify=client_context())
    try:
        await sub._refresh(http)  # registers a token first (the connection uses it)
    except BaseException:
        await http.aclose()
        raise
    conn = _Connection(sub, f"{sub.client_id}-{secrets.token_hex(3)}")
    try:
        await conn.open([*topics, *metas])
        epochs: dict[str, str] = {}
        for name, cursor in cursors.items():
            async for frame in _backfill(sub, http, name, cursor):
                if isinstance(frame, Control) and frame.type in ("hello", "reset"):
                    epochs[name] = str(frame.get("epoch"))
                yield frame
        while True:
            kind, value = await conn.events.get()
            if kind == "pong":
                yield Control("pong")
            elif kind == "disconnect":
                raise ConnectionLost(f"broker disconnected: {value}")
            elif kind == "message" and value.topic in metas:
                name = metas[value.topic]
                hello = json.loads(value.payload)
                if hello.get("epoch") != epochs.get(name):  # the server restarted meanwhile
                    previous, epochs[name] = epochs.get(name), str(hello.get("epoch"))
                    fields = {"epoch": epochs[name], "previous": previous, "channel": name}
                    yield Control("reset", {**fields, "last_seq": hello.get("last_seq", 0)})
            elif kind == "message" and value.topic in topics:
                yield codec.decode(bytes(value.payload))
    finally:
        await http.aclose()
        conn.close()


async def _backfill(
    sub: MQTTSubscriber, http: httpx.AsyncClient, name: str, cursor: Cursor | None
) -> AsyncIterator[Frame]:
    """The channel's hello, then its history after ``cursor`` (nothing for live only)."""
    if sub.replay_url is None:
        raise ConnectionLost("the server has no /mqtt/replay for channel backfill")
    after, epoch = (0, None) if cursor is None else (cursor.seq, cursor.epoch)
    first = True
    while True:
        params = {"channel": name, "after": str(after), "limit": "500"}
        if epoch is not None:
            params["epoch"] = epoch
        response = await http.get(sub.replay_url, params=params)
        if response.status_code != 200:
            raise from_response(response)
        body = response.json()
        if first:
            first = False
            hello = {"epoch": body["epoch"], "last_seq": body["last_seq"], "channel": name}
            yield Control("hello", hello)
            if cursor is None:
                return  # live only: the hello is all we need
        frames = [codec.from_obj(obj) for obj in body["messages"]]
        seqs = [f.seq for f in frames if not isinstance(f, Control)]
        for frame in frames:
            yield frame
        if not seqs or len(seqs) < 500:
            return
        after, epoch = seqs[-1], str(body["epoch"])


class MQTTPublisher:
    """Publishes to ``<prefix>/_in/<user>/<channel>`` and waits for the ack on its own
    response topic (MQTT 5 Response Topic + Correlation Data, §4.10)."""

    name = "mqtt"

    def __init__(
        self, sub: MQTTSubscriber, user: str = ANONYMOUS.id, password: str | None = None
    ) -> None:
        self.sub, self.user, self.password = sub, user, password
        self.client_id = f"{sub.client_id}-pub-{secrets.token_hex(3)}"
        self.reply_topic = f"{sub.prefix}/_ack/{self.client_id}"
        self._conn: _Connection | None = None
        self._lock = asyncio.Lock()
        self.connects = 0

    async def publish(self, channel: str, data: Any, id: str | None = None) -> dict[str, Any]:
        body = json.dumps({"data": data, "id": id or new_id()}, ensure_ascii=False)
        msg_id = json.loads(body)["id"]
        async with self._lock:
            return answer(await with_retries(lambda: self._request(channel, body, msg_id)))

    async def _request(self, channel: str, body: str, msg_id: str) -> dict[str, Any]:
        if self._conn is None:
            if self.user == ANONYMOUS.id and self.password is None:
                async with httpx.AsyncClient(timeout=10.0, verify=client_context()) as http:
                    await self.sub._register(http)  # a token: publish as its sub
                if self.sub.credentials is not None:
                    self.user = self.sub.credentials[0]
                    self.password = self.sub.credentials[1]
            conn = _Connection(self.sub, self.client_id, self.user, self.password)
            try:
                await conn.open([self.reply_topic])
            except BaseException:
                conn.close()
                raise
            self._conn = conn
            self.connects += 1
        conn = self._conn
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.ResponseTopic = self.reply_topic
        props.CorrelationData = msg_id.encode()
        try:
            topic = inbound_topic(self.sub.prefix, self.user, channel)
            info = conn.client.publish(topic, body, qos=1, properties=props)
            async with asyncio.timeout(ACK_TIMEOUT):
                while True:
                    kind, value = await conn.events.get()
                    if kind == "disconnect":
                        raise ConnectionLost(f"broker disconnected: {value}")
                    if kind == "puback" and value[0] == info.mid and value[1].is_failure:
                        # MQTT 5 PUBACK reason 0x87: the broker's ACL refused the topic.
                        raise TransportError("unauthorized", f"broker refused {topic}: {value[1]}")
                    if kind == "message" and value.topic == self.reply_topic:
                        reply = json.loads(value.payload)
                        if reply.get("id") == msg_id or reply.get("type") == "error":
                            return dict(reply)
        except BaseException:
            await self.drop()
            raise

    async def drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.to_thread(conn.close)

    async def close(self) -> None:
        await self.drop()
