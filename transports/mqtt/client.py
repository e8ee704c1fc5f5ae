"""MQTT subscriber on paho-mqtt: a persistent QoS 1 session, fed into ``follow()``.

One :class:`MQTTSubscriber` has one stable client id, so every ``stream()`` (reconnect)
resumes the same broker session: MQTT 5 ``clean_start=False`` with a Session Expiry Interval
(MQTT 5 §3.1.2.4, §3.1.2.11.2), or MQTT 3.1.1 ``clean_session=False`` (amqtt). While the
client is away the broker queues QoS 1 messages for the session; on reconnect it sends them.

Delivery guarantees, and how:

- paho's network loop runs in its own thread; callbacks only hand events to the asyncio
  loop (``call_soon_threadsafe``), and ``stream()`` reads them from a queue;
- QoS 1 messages are acknowledged *manually*, when the consumer asks for the next frame,
  i.e. after ``follow()`` has taken the previous one. A cut between receipt and delivery
  therefore makes the broker re-send (MQTT 5 §4.4), never lose; ``follow()`` drops repeats
  by seq. PUBACKs go out in receive order as MQTT 5 §4.6 requires.
- The first frame is ``Control("hello")`` from the retained ``<prefix>/_meta`` (the feed
  epoch); a different epoch than the cursor's yields a ``reset``.
- Backfill (``backfill=True``, needs the server's ``/mqtt/replay``): when the broker has no
  session for us (first connect, session expired, broker restarted without persistence) or a
  seq jumps (the broker's ``max_queued_messages`` overflowed), the missing range is fetched
  over HTTP and yielded in order before live messages. Without it the jump reaches
  ``follow()``, which reports the gap. ``backfill=False`` shows the broker's behaviour alone.
- Heartbeat: MQTT keepalive (PINGREQ/PINGRESP, MQTT 5 §3.1.2.10) is paho's; each PINGRESP,
  seen through paho's log hook, is yielded as ``Control("pong")`` so ``follow()``'s watchdog
  hears a quiet but live connection. Keep ``idle_timeout`` above ``keepalive``.

Untrusted payloads: anything on the feed topics that is not a valid frame (not JSON, a
``_meta`` that is not a hello) is acknowledged, counted in ``counters["bad_payloads"]``,
logged once and skipped. Raising instead would reconnect, the broker would re-send the same
unacknowledged QoS 1 message, and the client would loop forever on it. (Who may publish there
is the broker's business: the managed Mosquitto lets only the bridge write.)

Known limit: after an epoch change, messages of the old epoch still queued in the session
are not told apart from new ones (the wire format carries no epoch per message).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import paho.mqtt.client as mqtt

from transports import codec
from transports.auth import bearer_token
from transports.client import ConnectionLost
from transports.errors import from_response
from transports.message import Control, Cursor, Frame, Message
from transports.mqtt import channels
from transports.mqtt.pahoutil import META, connect_properties, new_client, stop_loop, target
from transports.tls import client_context

log = logging.getLogger("transports.mqtt.client")
SKIP = ("_private", "_presence", "_ack", "_in")


class MQTTSubscriber:
    name = "mqtt"

    def __init__(
        self,
        broker_url: str,
        *,
        prefix: str = "transport-lab",
        mqtt5: bool = True,
        client_id: str | None = None,
        qos: int = 1,
        keepalive: int = 10,
        session_expiry: int = 3600,
        replay_url: str | None = None,
        info_url: str | None = None,
        backfill: bool = True,
        connect_timeout: float = 10.0,
        headers: dict[str, str] | None = None,
        broker_override: str | None = None,
        credentials_url: str | None = None,
    ) -> None:
        self.broker_url = broker_url
        # With a token (``Authorization: Bearer`` in ``headers``) the client registers it at
        # ``credentials_url`` and CONNECTs as (its sub, the token): the broker enforces the
        # token's rights (credentials.py). Registered again when it is near its expiry.
        self.credentials_url = credentials_url
        self.credentials: tuple[str, str] | None = None
        self._credentials_until = 0.0
        # Connect here instead of the broker /api/info names (e.g. a fault proxy in front of
        # it); the info is still read for everything else.
        self.broker_override = broker_override
        self._info_hello: dict[str, Any] | None = None  # the feed's epoch per /api/info
        self.prefix = prefix
        self.mqtt5 = mqtt5
        self.client_id = client_id or f"transport-lab-{uuid.uuid4().hex[:16]}"
        self.qos = qos
        self.keepalive = keepalive
        self.session_expiry = session_expiry
        self.replay_url = replay_url
        self.info_url = info_url
        self.backfill = backfill and replay_url is not None
        self.connect_timeout = connect_timeout
        self.headers = headers or {}
        self.session_present: bool | None = None  # of the latest connection, for reports
        # What the broker did, for reports: repeats are re-sent messages dropped by seq here.
        self.counters = {
            "connects": 0,
            "sessions_resumed": 0,
            "repeats": 0,
            "backfilled": 0,
            "bad_payloads": 0,
        }

    @classmethod
    def for_server(cls, base_url: str, info: dict[str, Any], **options: Any) -> MQTTSubscriber:
        """Build from ``/api/info``; the broker URL is re-read there on every reconnect, since
        a restarted server may have started its managed broker on another port."""
        t = info["transports"]["mqtt"]
        options.setdefault("mqtt5", "5" in (t.get("broker") or {}).get("protocols", ["5"]))
        options.setdefault("prefix", t["prefix"])
        options.setdefault("replay_url", t.get("replay_url"))
        options.setdefault("credentials_url", t.get("credentials_url"))
        options.setdefault("info_url", base_url.rstrip("/") + "/api/info")
        return cls(t["url"], **options)

    def stream_channels(self, cursors: Mapping[str, Cursor | None]) -> AsyncIterator[Frame]:
        """Named channels: one topic each, backfilled over HTTP (:mod:`.channels`)."""
        return channels.stream_channels(self, cursors)

    def publisher(
        self, user: str = "anonymous", password: str | None = None
    ) -> channels.MQTTPublisher:
        """Publishes through the inbound topic ``<prefix>/_in/<user>/<channel>``, connecting
        to the broker as ``user`` (the broker's ACL lets each user write only its own)."""
        return channels.MQTTPublisher(self, user, password)

    async def _register(self, http: httpx.AsyncClient) -> None:
        """Turn the bearer token into broker credentials (once, until near its expiry)."""
        token = bearer_token({k.lower(): v for k, v in self.headers.items()})
        # Only a JWT (header.payload.signature) is registered: the server's admin token
        # (no dots) gives no MQTT rights, and the broker needs none to read public topics.
        if token is None or token.count(".") != 2 or self.credentials_url is None:
            return
        if self.credentials is not None and time.time() < self._credentials_until:
            return
        try:
            response = await http.post(self.credentials_url, headers=self.headers)
        except httpx.HTTPError as exc:
            raise ConnectionLost(f"MQTT credentials: {exc}") from None
        if response.status_code != 200:
            raise from_response(response)
        body = response.json()
        self.credentials = (str(body["username"]), token)
        self._credentials_until = float(body["expires_at"]) - 5.0

    async def _refresh(self, http: httpx.AsyncClient) -> None:
        await self._register(http)
        if self.info_url is None:
            return
        with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
            response = await http.get(self.info_url, headers=self.headers)
            body = response.json()
            self.broker_url = body["transports"]["mqtt"]["url"]
            self._info_hello = {"epoch": body["epoch"], "last_seq": body["last_seq"]}

    async def stream(self, after: int | None, epoch: str | None) -> AsyncIterator[Frame]:
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

        def put(kind: str, value: Any = None) -> None:
            loop.call_soon_threadsafe(events.put_nowait, (kind, value))

        client = new_client(
            self.client_id, mqtt5=self.mqtt5, clean=False, reconnect=False, manual_ack=True
        )
        client.on_connect = lambda c, u, flags, rc, p=None: put("connack", (rc, flags))
        client.on_subscribe = lambda c, u, mid, codes, p=None: put("suback", codes)
        client.on_message = lambda c, u, msg: put("message", msg)
        client.on_disconnect = lambda c, u, flags, rc, p=None: put("disconnect", rc)
        client.on_connect_fail = lambda c, u: put("disconnect", "connection failed")
        client.on_log = lambda c, u, level, buf: put("pong") if "PINGRESP" in buf else None
        http = httpx.AsyncClient(timeout=10.0, verify=client_context())
        self._info_hello = None
        started = False
        try:
            await self._refresh(http)
            if self.credentials is not None:
                client.username_pw_set(*self.credentials)
            host, port = target(client, self.broker_override or self.broker_url)
            if self.mqtt5:
                client.connect_async(
                    host,
                    port,
                    self.keepalive,
                    clean_start=False,
                    properties=connect_properties(self.session_expiry),
                )
            else:
                client.connect_async(host, port, self.keepalive)
            client.loop_start()
            started = True
            rc, flags = await self._expect(events, "connack")
            if rc.is_failure:
                self._credentials_until = 0.0  # an expired or replaced token: register again
                raise ConnectionLost(f"broker refused: {rc}")
            self.session_present = bool(flags.session_present)
            self.counters["connects"] += 1
            self.counters["sessions_resumed"] += self.session_present
            # Subscribe on every connect, even with a session: the broker then sends the
            # retained hello (MQTT 5 §3.3.1.3) and the queued messages are kept.
            client.subscribe(f"{self.prefix}/#", qos=self.qos)
            pending: list[mqtt.MQTTMessage] = []
            hello: dict[str, Any] | None = None
            while hello is None:
                kind, value = await self._next(events, self.connect_timeout)
                if kind == "suback" and any(c.is_failure for c in value):
                    raise ConnectionLost(f"subscription refused: {value}")
                if kind == "message":
                    if value.topic == f"{self.prefix}/{META}":
                        # A bad retained hello: the server's /api/info says the same.
                        hello = self._hello(value) or self._info_hello
                        client.ack(value.mid, value.qos)
                    else:
                        pending.append(value)
                        # Queued session messages come before the retained hello and fill
                        # the broker's inflight window (unacked until delivered): waiting
                        # for the hello would deadlock. The server's /api/info says the same.
                        hello = self._info_hello
            # The retained hello's last_seq is from when the bridge connected; /api/info,
            # read just before connecting, says where the feed is now (as WS/SSE/poll/WebRTC
            # hellos do).
            last_seq = hello["last_seq"]
            if self._info_hello is not None and self._info_hello["epoch"] == hello["epoch"]:
                last_seq = max(int(last_seq or 0), int(self._info_hello["last_seq"]))
            yield Control("hello", {"epoch": hello["epoch"], "last_seq": last_seq})
            current = str(hello["epoch"])
            # Live (no cursor): the stream starts after the hello's last_seq, as on the other
            # transports. The broker's subscription takes effect a little after /api/info was
            # read, so a message published in between is backfilled, and older ones (a retained
            # last message, the bridge catching up) are dropped as repeats.
            last: int | None = after if after is not None else int(last_seq or 0)
            replay_epoch: str | None = None
            if epoch is not None and epoch != current and after is not None:
                if self.backfill:
                    replay_epoch = epoch  # the server answers with reset + the new epoch
                else:
                    yield Control(
                        "reset",
                        {"epoch": current, "previous": epoch, "last_seq": hello["last_seq"]},
                    )
                    last = 0
            elif after is not None and self.backfill and not self.session_present:
                replay_epoch = current
            if replay_epoch is not None and after is not None:
                async for early in self._replay(http, after, replay_epoch, None):
                    last = _advance(early, last)
                    yield early
            while True:
                if pending:
                    kind, value = "message", pending.pop(0)
                else:
                    kind, value = await events.get()
                if kind == "pong":
                    yield Control("pong")
                    continue
                if kind == "disconnect":
                    raise ConnectionLost(f"broker disconnected: {value}")
                if kind != "message":
                    continue
                frame: Frame | None = self._decode(value, current)
                if (
                    isinstance(frame, Message)
                    and value.retain
                    and last is not None
                    and frame.seq <= last
                ):
                    frame = None  # a retained "last message" we already have
                if isinstance(frame, Control) and frame.type == "reset":
                    current, last = str(frame.get("epoch")), 0
                if isinstance(frame, Message) and last is not None:
                    if frame.seq <= last:
                        self.counters["repeats"] += 1
                        frame = None  # already yielded (backfill overlap or re-send)
                    elif frame.seq > last + 1 and self.backfill:
                        async for early in self._replay(http, last, current, frame.seq - 1):
                            last = _advance(early, last)
                            yield early
                if frame is not None:
                    if isinstance(frame, Message):
                        last = frame.seq
                    yield frame
                client.ack(value.mid, value.qos)  # after the consumer took the frame
        finally:
            await http.aclose()
            if started:
                client.disconnect()
                stop_loop(client)

    def _bad(self, msg: mqtt.MQTTMessage, why: str) -> None:
        self.counters["bad_payloads"] += 1
        log.warning("mqtt: skipped a bad payload on %s: %s", msg.topic[:100], why[:120])

    def _hello(self, msg: mqtt.MQTTMessage) -> dict[str, Any] | None:
        """The retained hello, or None (logged, counted) when it is not one."""
        try:
            hello = json.loads(msg.payload)
        except ValueError as exc:
            self._bad(msg, f"not JSON: {exc}")
            return None
        if not isinstance(hello, dict) or not isinstance(hello.get("epoch"), str):
            self._bad(msg, "not a hello")
            return None
        if not isinstance(hello.get("last_seq"), int):
            hello["last_seq"] = 0
        return hello

    def _decode(self, msg: mqtt.MQTTMessage, epoch: str) -> Frame | None:
        # A token's private channels, presence and publish answers reach this `<prefix>/#`
        # subscription too; they are not the default feed.
        if msg.topic.startswith(tuple(f"{self.prefix}/{t}/" for t in SKIP)):
            return None
        if msg.topic == f"{self.prefix}/{META}":
            hello = self._hello(msg)
            if hello is None:
                return None
            if hello.get("epoch") != epoch:  # the server restarted while we were connected
                return Control(
                    "reset",
                    {
                        "epoch": hello["epoch"],
                        "previous": epoch,
                        "last_seq": hello.get("last_seq", 0),
                    },
                )
            return None
        try:
            return codec.decode(bytes(msg.payload))
        except codec.CodecError as exc:
            self._bad(msg, str(exc))
            return None

    async def _replay(
        self, http: httpx.AsyncClient, after: int, epoch: str, until: int | None
    ) -> AsyncIterator[Frame]:
        """Frames after ``after`` (up to ``until``) from the server's history, in pages."""
        assert self.replay_url is not None
        while until is None or after < until:
            limit = 500 if until is None else min(500, until - after)
            params = {"after": str(after), "epoch": epoch, "limit": str(limit)}
            response = await http.get(self.replay_url, params=params, headers=self.headers)
            if response.status_code != 200:
                raise from_response(response)
            frames = [codec.from_obj(obj) for obj in response.json()["messages"]]
            messages = [f for f in frames if isinstance(f, Message)]
            self.counters["backfilled"] += len(messages)
            for frame in frames:
                if isinstance(frame, Control) and frame.type == "reset":
                    epoch = str(frame.get("epoch"))
                yield frame
            if not messages:
                return
            after = messages[-1].seq
            if until is None and len(messages) < limit:
                return  # caught up: the rest arrives live

    async def _expect(self, events: asyncio.Queue[tuple[str, Any]], want: str) -> Any:
        while True:
            kind, value = await self._next(events, self.connect_timeout)
            if kind == want:
                return value
            if kind == "disconnect":
                raise ConnectionLost(f"broker disconnected: {value}")

    async def _next(
        self, events: asyncio.Queue[tuple[str, Any]], timeout: float
    ) -> tuple[str, Any]:
        try:
            async with asyncio.timeout(timeout):
                kind, value = await events.get()
        except TimeoutError:
            raise ConnectionLost(f"no answer from {self.broker_url} in {timeout}s") from None
        if kind == "disconnect":
            raise ConnectionLost(f"broker disconnected: {value}")
        return kind, value


def _advance(frame: Frame, last: int | None) -> int | None:
    """The cursor after yielding ``frame`` from the replay."""
    if isinstance(frame, Message):
        return frame.seq
    if isinstance(frame, Control) and frame.type == "reset":
        return 0
    if isinstance(frame, Control) and frame.type == "gap":
        return int(frame.get("first", 1)) - 1
    return last
