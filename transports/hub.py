"""The hub: named channels created on demand, each a :class:`~transports.feed.Feed` of its own.

Centrifugo's model: every channel has its own gap-free ``seq``, its own ``epoch`` and its own
bounded history, so a connection holds one cursor per channel and resumes each on its own.
The hub adds what a single feed does not need:

- **a bounded number of channels** (``ServerConfig.max_channels``): a channel is created by
  the first subscribe or publish naming it; when the hub is full, a channel with no
  subscriber is closed to make room — one holding no message first, else the least recently
  used (its next user sees a new epoch, i.e. a ``reset``) — and if every channel is in use
  the request is ``too_many_channels``;
- **namespace options** (:class:`~transports.channels.NamespaceOptions`): history size,
  durable history, presence, whether clients may publish, anonymous publishing, message size;
- **client publishing** with an ack ``(channel, epoch, seq)`` and **idempotency**: a publish
  carrying a client message id that the channel has already stored, for the same principal,
  within the window (``idempotency_size`` ids per channel and ``idempotency_ttl`` seconds),
  is not stored again; it gets the first attempt's ack;
- **presence** (per namespace): who is subscribed, and ``join``/``leave`` frames to the
  channel's other subscribers;
- the **hooks** ``on_subscribe(principal, channel)`` and ``on_publish(principal, channel,
  data)`` (see :class:`~transports.config.ServerConfig`): raise a ``TransportError`` to
  refuse, return new data from ``on_publish`` to transform it.

The default channel is the server's own feed: the hub wraps it, never replaces it.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from transports import rights
from transports.auth import Principal
from transports.channels import DEFAULT, NamespaceOptions, parse_channel
from transports.config import ServerConfig
from transports.errors import TransportError
from transports.feed import Feed
from transports.history import History, MemoryHistory, SqliteHistory
from transports.message import Control
from transports.strictjson import check as strict_check

__all__ = ["Channel", "Engine", "Hub", "Listener"]

MAX_ID = 64  # characters of a client message id


class Listener(Protocol):
    """A connection that wants a channel's presence frames (a multi-channel stream)."""

    principal: Principal  # whose ``presence`` right decides if it hears join/leave

    def push(self, frame: Control) -> None: ...


class Engine(Protocol):
    """What the hub asks of an engine (see :class:`~transports.engine.redis.RedisEngine`;
    :func:`transports.engine.open_engine` picks one by URL)."""

    url: str

    async def start(self, hub: Hub) -> None: ...
    async def open(self, channel: Channel) -> None:
        """Make the channel's local feed current (epoch, last seq, recent history)."""
        ...

    async def publish(
        self, channel: Channel, principal: Principal, msg_id: str | None, data: Any
    ) -> tuple[str, int]:
        """Store one message; ``(epoch, seq)`` it got (the first attempt's, for a known id)."""
        ...

    def joined(self, channel: Channel, client: str, user: str) -> None: ...
    def left(self, channel: Channel, client: str, user: str) -> None: ...
    def forget(self, channel: Channel) -> None: ...
    async def readiness(self) -> dict[str, Any]: ...
    async def close(self) -> None: ...


@dataclass(slots=True)
class Channel:
    name: str
    namespace: str
    options: NamespaceOptions
    feed: Feed
    members: dict[str, str] = field(default_factory=dict)  # client id -> principal id
    listeners: set[Listener] = field(default_factory=set)
    recent: OrderedDict[tuple[str, str], tuple[dict[str, Any], float]] = field(
        default_factory=OrderedDict
    )
    used: float = field(default_factory=time.monotonic)

    @property
    def idle(self) -> bool:
        # The MQTT bridge's subscription does not count: it follows every channel.
        return self.name != DEFAULT and not self.listeners

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "channel": self.name,
            "epoch": self.feed.epoch,
            "last_seq": self.feed.last_seq,
            "first_seq": self.feed.history.first_seq,
            "subscribers": len(self.listeners) if self.name != DEFAULT else self.feed.subscribers,
            "presence": self.options.presence,
        }
        if self.options.presence:
            out["members"] = [{"client": c, "user": u} for c, u in self.members.items()]
        return out


class Hub:
    def __init__(self, default: Feed, config: ServerConfig) -> None:
        self.config = config
        self.namespaces = dict(config.namespaces)
        self._channels: dict[str, Channel] = {
            DEFAULT: Channel(DEFAULT, "", self.namespaces.get("", NamespaceOptions()), default)
        }
        self.evicted = 0
        # Called with each new channel / each presence frame (the MQTT bridge uses both).
        self.on_created: list[Callable[[Channel], None]] = []
        self.on_presence: list[Callable[[Channel, Control], None]] = []
        # Set by the server for `--engine redis://...`: seq, epoch, history, ids and fan-out
        # of the named channels live there (transports/engine/); None = this process only.
        self.engine: Engine | None = None

    @property
    def count(self) -> int:
        return len(self._channels)

    def all(self) -> list[Channel]:
        return list(self._channels.values())

    def find(self, name: str) -> Channel | None:
        return self._channels.get(name)

    def channel(self, raw: object) -> Channel:
        """The channel named ``raw``, created if needed (``bad_channel``/``too_many_channels``)."""
        name, namespace = parse_channel(raw)
        existing = self._channels.get(name)
        if existing is not None:
            existing.used = time.monotonic()
            return existing
        options = self.namespaces.get(namespace)
        if options is None:
            raise TransportError("bad_channel", f"namespace {namespace!r} is not declared")
        if self._channels[DEFAULT].feed.draining:
            raise TransportError("shutting_down")
        if len(self._channels) >= self.config.max_channels:
            self._evict()
        feed = Feed(self._history(name, options), self.config.queue_size, self.config.poll_linger)
        channel = Channel(name, namespace, options, feed)
        self._channels[name] = channel
        if self.engine is None:  # with an engine: once it has loaded the channel (open)
            self.created(channel)
        return channel

    def created(self, channel: Channel) -> None:
        """Tell followers (the MQTT bridge) about a new channel, or one whose feed was
        replaced (the engine lost it and it has a new epoch)."""
        for callback in self.on_created:
            callback(channel)

    def _history(self, name: str, options: NamespaceOptions) -> History:
        if self.engine is not None:
            from transports.engine.mirror import MirrorHistory

            return MirrorHistory(options.history, name)
        if not options.durable:
            return MemoryHistory(options.history, channel=name)
        if not self.config.channels_dir:
            raise TransportError("forbidden", "durable namespace but no channels_dir configured")
        folder = Path(self.config.channels_dir)
        folder.mkdir(parents=True, exist_ok=True)
        # The grammar keeps names file-safe; ':' is legal on POSIX but not on every system.
        return SqliteHistory(folder / f"{name.replace(':', '~')}.db", options.history, name)

    def _evict(self) -> None:
        idle = [c for c in self._channels.values() if c.idle]
        if not idle:
            raise TransportError(
                "too_many_channels", f"the server holds {self.config.max_channels} channels"
            )
        # Empty channels go first: any client that may subscribe makes them (anonymous ones in
        # a public namespace), and 1000 such polls used to evict every idle channel holding
        # messages (a chat room between its visitors) and with it their history.
        victim = min(idle, key=lambda c: (c.feed.last_seq > 0, c.used))
        del self._channels[victim.name]
        if self.engine is not None:
            self.engine.forget(victim)
        victim.feed.close("closed")
        self.evicted += 1

    def _declared(self, raw: object) -> tuple[str, str, NamespaceOptions]:
        """Name, namespace and options of ``raw`` without creating the channel: rights are
        checked before a channel is made, since making one may evict an idle channel (and
        its history) — refused requests used to do that (1100 anonymous 401 publishes to
        new names wiped every idle channel)."""
        name, namespace = parse_channel(raw)
        existing = self._channels.get(name)
        options = existing.options if existing is not None else self.namespaces.get(namespace)
        if options is None:
            raise TransportError("bad_channel", f"namespace {namespace!r} is not declared")
        return name, namespace, options

    async def admit(self, principal: Principal, raw: object) -> Channel:
        """A subscribe: the channel (created if needed), after the ``on_subscribe`` hook."""
        name, _, options = self._declared(raw)
        rights.require(principal, "subscribe", name, options)
        channel = self.channel(raw)
        hook = self.config.on_subscribe
        if hook is not None:
            await hook(principal, channel.name)
        if self.engine is not None:
            await self.engine.open(channel)  # current epoch, seq and history from the engine
        return channel

    async def publish(
        self, principal: Principal, raw: object, data: Any, msg_id: object = None
    ) -> dict[str, Any]:
        """A client publish; returns the ack frame or raises a documented error."""
        if msg_id is not None and (
            not isinstance(msg_id, str) or not 0 < len(msg_id) <= MAX_ID or not msg_id.isprintable()
        ):
            raise TransportError("bad_message", f"id must be 1-{MAX_ID} printable characters")
        name, namespace, options = self._declared(raw)
        if not options.publish:
            raise TransportError("forbidden", f"namespace {namespace!r} is subscribe-only")
        if principal.anonymous and not options.anonymous_publish:
            raise TransportError("unauthorized", "anonymous clients may not publish here")
        rights.require(principal, "publish", name, options)
        channel = self.channel(raw)
        key = (principal.id, msg_id) if msg_id is not None else None
        if key is not None and self.engine is None:
            seen = self._seen(channel, key)
            if seen is not None:
                return seen
        strict_check(data)
        hook = self.config.on_publish
        if hook is not None:
            data = await hook(principal, channel.name, data)
            strict_check(data)
        size = len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode())
        if size > options.max_message_bytes:
            raise TransportError("too_large", f"data of {size} bytes > {options.max_message_bytes}")
        ack: dict[str, Any] = {"type": "ack", "channel": channel.name}
        if self.engine is not None:  # the engine stamps, stores, dedupes by id and fans out
            await self.engine.open(channel)  # this node mirrors what it publishes to
            epoch, seq = await self.engine.publish(channel, principal, msg_id, data)
            ack.update(epoch=epoch, seq=seq)
            if msg_id is not None:
                ack["id"] = msg_id
            return ack
        message = channel.feed.publish(data, channel.namespace or channel.name)
        ack.update(epoch=channel.feed.epoch, seq=message.seq)
        if msg_id is not None:
            ack["id"] = msg_id
        if key is not None:
            channel.recent[key] = (ack, time.monotonic())
            while len(channel.recent) > self.config.idempotency_size:
                channel.recent.popitem(last=False)
        return ack

    def _seen(self, channel: Channel, key: tuple[str, str]) -> dict[str, Any] | None:
        now, ttl = time.monotonic(), self.config.idempotency_ttl
        while channel.recent:  # oldest first: drop what left the time window
            oldest = next(iter(channel.recent.values()))
            if now - oldest[1] <= ttl:
                break
            channel.recent.popitem(last=False)
        hit = channel.recent.get(key)
        return hit[0] if hit is not None else None

    # ---- presence ---------------------------------------------------------------------
    def join(self, channel: Channel, client: str, user: str, listener: Listener) -> None:
        """Add a subscriber; the channel's *other* subscribers hear its ``join``."""
        if channel.options.presence:
            channel.members[client] = user
            self._tell(channel, "join", client, user)
            if self.engine is not None:
                self.engine.joined(channel, client, user)
        channel.listeners.add(listener)

    def leave(self, channel: Channel, client: str, listener: Listener) -> None:
        """Remove a subscriber; the others hear its ``leave``."""
        channel.listeners.discard(listener)
        channel.used = time.monotonic()
        user = channel.members.pop(client, None)
        if channel.options.presence and user is not None:
            self._tell(channel, "leave", client, user)
            if self.engine is not None:
                self.engine.left(channel, client, user)

    def _tell(self, channel: Channel, kind: str, client: str, user: str) -> None:
        frame = Control(kind, {"channel": channel.name, "client": client, "user": user})
        self.fan_presence(channel, frame)
        for callback in self.on_presence:
            callback(channel, frame)

    def fan_presence(self, channel: Channel, frame: Control) -> None:
        """Give a join/leave frame to the channel's listeners that hold its ``presence``
        right: who comes and goes is the member list told in parts (rights.py), so the
        right that hides the list hides these frames too, on every transport."""
        for listener in list(channel.listeners):
            if rights.allowed(listener.principal, "presence", channel.name, channel.options):
                listener.push(frame)

    def describe(self) -> dict[str, Any]:
        return {
            "count": len(self._channels),
            "max": self.config.max_channels,
            "per_connection": self.config.max_channels_per_connection,
            "evicted": self.evicted,
            "namespaces": {
                ns or "(none)": {
                    "history": o.history,
                    "durable": o.durable,
                    "presence": o.presence,
                    "publish": o.publish,
                    "anonymous_publish": o.anonymous_publish,
                    "max_message_bytes": o.max_message_bytes,
                }
                for ns, o in self.namespaces.items()
            },
        }

    def close(self) -> None:
        for channel in list(self._channels.values()):
            if channel.name != DEFAULT:
                channel.feed.close("shutting_down")

    def drain(self) -> None:
        for channel in self._channels.values():
            if channel.name != DEFAULT:
                channel.feed.drain("shutting_down")
