"""The Redis engine: named channels shared by every server process that points at one Redis.

Per channel (keys share the hash tag ``{CHANNEL}``, prefix ``tl``):

- ``tl:{C}:meta`` hash ``epoch``, ``seq``: the seq counter, advanced only inside the publish
  script (:mod:`.scripts`), so two nodes can never hand out the same seq;
- ``tl:{C}:log`` a Redis Stream, one entry per message with the ID ``0-SEQ``, trimmed with
  ``XADD … MAXLEN ~ N`` (N = the namespace's history); replay reads ``XRANGE``;
- ``tl:{C}:id:HASH`` the ack of a client message id (``SET NX EX``, ``idempotency_ttl``);
- ``tl:{C}:presence`` a sorted set of members scored by expiry time.

**Fan-out: Redis pub/sub, repaired from the stream.** The publish script also ``PUBLISH``es
the message on one channel ``tl:fanout`` that every node subscribes to on a connection of
its own. Chosen over ``XREAD BLOCK`` because a node serves many channels whose set changes
all the time: pub/sub pushes each message to every node at once over one connection, while
XREAD would need one blocking read over a changing list of streams (re-issued whenever a
channel opens) and a cursor per channel per node. Pub/sub alone is at-most-once — a node
whose subscription drops misses what was published meanwhile — so it is never trusted for
completeness: messages of a script arrive in seq order (a script is atomic), a node applies
only ``last_seq + 1`` and fills any jump with ``XRANGE`` first, and after every reconnect
it re-reads every open channel's ``meta`` (epoch, seq) and fills from the stream.

**When Redis fails** (``docs/scale.md``): publishes are refused with ``not_ready`` (503) at
once; open streams stay open and keep serving from the node's mirror; subscribing to a
channel the node has not loaded is ``not_ready``; ``/readyz`` answers 503. When Redis is
back the node resubscribes and catches up. If Redis came back without the data (no
persistence), ``meta`` is gone, the next script sets a new epoch, and every node ends the
streams of that channel with ``not_ready``: clients reconnect and are told ``reset``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from transports.engine import scripts
from transports.engine.mirror import MirrorHistory
from transports.errors import TransportError
from transports.feed import Feed
from transports.message import Control, Message

if TYPE_CHECKING:
    from transports.auth import Principal
    from transports.hub import Channel, Hub

log = logging.getLogger("transports.engine.redis")

PREFIX = "tl"
FILL_PAGE = 1000  # stream entries read per XRANGE while catching up
PRESENCE_TTL = 30.0  # a member not refreshed for this long is gone (its node died)
READY_TIMEOUT = 1.0
POOL_SIZE = 32  # connections per node for commands (the fan-out has one of its own)
POOL_WAIT = 3.0
FAILURES = (RedisError, OSError, asyncio.TimeoutError)


def new_epoch() -> str:
    return secrets.token_hex(4)


@dataclass(slots=True)
class _State:
    """What the engine knows of one open channel on this node."""

    channel: Channel
    ready: bool = False
    busy: bool = False  # loading or filling: fan-out messages wait in `pending`
    pending: list[tuple[str, int, bytes] | None] = field(default_factory=list)  # None = resync
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def history(self) -> MirrorHistory:
        history = self.channel.feed.history
        assert isinstance(history, MirrorHistory)
        return history


class RedisEngine:
    def __init__(self, url: str, prefix: str = PREFIX) -> None:
        self.url = url
        self.public_url = _redact(url)
        self.prefix = prefix
        self.node = secrets.token_hex(4)  # tells this node's own presence frames apart
        self.fanout = f"{prefix}:fanout"
        self.connected = False  # the fan-out subscription is live
        self.follow_all = False  # open every channel seen in the fan-out (the MQTT leader)
        self.stats = {"applied": 0, "filled": 0, "resets": 0, "reconnects": 0, "skipped": 0}
        self._state: dict[str, _State] = {}
        self._hub: Hub | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        # No retries inside redis-py: a publish during an outage fails fast with not_ready,
        # and the fan-out loop below does its own reconnect (and resync) when Redis is back.
        common: dict[str, Any] = {
            "socket_connect_timeout": 1.0,
            "socket_timeout": 3.0,
            "retry": Retry(NoBackoff(), 0),
        }
        # A bounded pool: a burst of publishes waits for a connection (up to POOL_WAIT s)
        # instead of opening one socket per concurrent publish.
        pool = BlockingConnectionPool.from_url(
            url, max_connections=POOL_SIZE, timeout=POOL_WAIT, **common
        )
        self.redis: Redis = Redis(connection_pool=pool)
        self._sub_redis: Redis = Redis.from_url(url, **{**common, "socket_timeout": None})
        self._publish = self.redis.register_script(scripts.PUBLISH)
        self._snapshot = self.redis.register_script(scripts.SNAPSHOT)

    def key(self, channel: str, part: str) -> str:
        return f"{self.prefix}:{{{channel}}}:{part}"

    # ---- lifecycle ----------------------------------------------------------------------
    async def start(self, hub: Hub) -> None:
        self._hub = hub
        self._spawn(self._fanout_loop(), "redis-fanout")
        self._spawn(self._presence_loop(), "redis-presence")
        # Serve at once when Redis answers; when it does not, start anyway (not ready) and
        # keep trying: an orchestrator watches /readyz.
        for _ in range(20):
            if self.connected:
                break
            await asyncio.sleep(0.05)

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        self._closing = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for client in (self.redis, self._sub_redis):
            with contextlib.suppress(*FAILURES):
                await client.aclose(close_connection_pool=True)

    async def readiness(self) -> dict[str, Any]:
        """``/readyz``'s engine check: the fan-out subscription is live and Redis answers."""
        out: dict[str, Any] = {"url": _redact(self.url), "subscribed": self.connected}
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                await self.redis.ping()
            out["reachable"] = True
        except FAILURES as exc:
            out.update(reachable=False, error=type(exc).__name__)
        out["ok"] = out["reachable"] and self.connected
        return out

    # ---- publishing ---------------------------------------------------------------------
    async def publish(
        self, channel: Channel, principal: Principal, msg_id: str | None, data: Any
    ) -> tuple[str, int]:
        name = channel.name
        body = json.dumps(
            {"t": channel.namespace or name, "a": time.time(), "d": data},
            separators=(",", ":"),
            ensure_ascii=False,
        )
        digest = hashlib.sha256(f"{principal.id}\0{msg_id or ''}".encode()).hexdigest()[:32]
        assert self._hub is not None
        ttl = max(1, int(self._hub.config.idempotency_ttl))
        keys = [self.key(name, "meta"), self.key(name, "log"), self.key(name, f"id:{digest}")]
        args: list[str | int] = [new_epoch(), channel.options.history, body, name, ttl]
        args += [self.fanout, int(bool(msg_id))]
        try:
            epoch_b, seq, seen = await self._publish(keys=keys, args=args)
        except FAILURES as exc:
            raise TransportError("not_ready", f"the engine is unreachable ({exc})"[:200]) from None
        if int(seq) < 0:  # a known client id: the first attempt's ack
            epoch, _, first = seen.decode().partition(":")
            return epoch, int(first)
        return epoch_b.decode(), int(seq)

    # ---- opening a channel on this node -------------------------------------------------
    async def open(self, channel: Channel) -> None:
        state = self._state.get(channel.name)
        if state is None or state.channel is not channel:
            state = self._state[channel.name] = _State(channel)
        deadline = time.monotonic() + 5.0
        while not state.ready:
            if not state.busy:
                await self._run(state, self._load(state))
                continue
            state.changed.clear()
            try:
                async with asyncio.timeout(max(0.01, deadline - time.monotonic())):
                    await state.changed.wait()
            except TimeoutError:
                raise TransportError("not_ready", "the channel is still loading") from None

    def forget(self, channel: Channel) -> None:
        state = self._state.get(channel.name)
        if state is not None and state.channel is channel:
            del self._state[channel.name]

    async def _read(self, channel: Channel) -> tuple[str, int, list[Message]]:
        """epoch, last seq and the newest messages of a channel, read in one script."""
        name = channel.name
        keys = [self.key(name, "meta"), self.key(name, "log")]
        try:
            epoch, seq, entries = await self._snapshot(
                keys=keys, args=[new_epoch(), channel.options.history]
            )
        except FAILURES as exc:
            raise TransportError("not_ready", f"the engine is unreachable ({exc})"[:200]) from None
        messages = [_message(name, entry_id, fields) for entry_id, fields in reversed(entries)]
        return epoch.decode(), int(seq), messages

    async def _load(self, state: _State) -> None:
        epoch, last, messages = await self._read(state.channel)
        history = state.history
        if history.loaded and history.epoch != epoch:
            self._replace(state, epoch, last, messages)
        elif not history.loaded:
            history.load(epoch, last, messages)
            assert self._hub is not None
            self._hub.created(state.channel)
        state.ready = True

    def _replace(self, state: _State, epoch: str, last: int, messages: list[Message]) -> None:
        """Redis lost the channel: a new epoch. End this node's streams so clients resume
        (and are told ``reset``); followers such as the MQTT bridge re-attach."""
        channel, old = state.channel, state.channel.feed
        history = MirrorHistory(channel.options.history, channel.name)
        history.load(epoch, last, messages)
        channel.feed = Feed(history, old.queue_size, old.poll_linger)
        self.stats["resets"] += 1
        log.warning("channel %s: epoch %s -> %s (Redis lost it)", channel.name, old.epoch, epoch)
        old.drain("not_ready")
        assert self._hub is not None
        self._hub.created(channel)

    async def _run(self, state: _State, work: Any) -> None:
        """Do async work on a channel while fan-out messages for it wait, then apply them."""
        state.busy = True
        try:
            await work
            while state.pending and state.ready:
                item = state.pending.pop(0)
                await (self._resync(state) if item is None else self._apply(state, *item))
        finally:
            state.busy = False
            state.changed.set()

    # ---- fan-out ------------------------------------------------------------------------
    async def _fanout_loop(self) -> None:
        attempt = 0
        while not self._closing:
            pubsub = self._sub_redis.pubsub()
            try:
                await pubsub.subscribe(self.fanout)
                while (await pubsub.get_message(timeout=5.0)) is None:
                    pass  # the subscribe confirmation: from here on, nothing is missed
                if attempt:
                    self.stats["reconnects"] += 1
                    log.warning("fan-out subscription to %s restored", _redact(self.url))
                self.connected, attempt = True, 0
                for state in list(self._state.values()):
                    await self._offer(state, None)  # catch up on what the cut hid
                while True:
                    msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if msg is not None and msg["type"] == "message":
                        try:
                            await self._dispatch(msg["data"])
                        except (ValueError, KeyError, TypeError) as exc:  # not ours: skip it
                            log.warning("fan-out frame not understood: %s", exc)
            except (*FAILURES, TransportError) as exc:
                if self.connected or attempt == 0:
                    log.warning("fan-out subscription lost (%s); retrying", type(exc).__name__)
                self.connected = False
            finally:
                with contextlib.suppress(*FAILURES):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            attempt += 1
            await asyncio.sleep(min(2.0, 0.05 * 2**attempt))

    async def _dispatch(self, raw: bytes) -> None:
        kind, _, rest = raw.partition(b"\n")
        if kind == b"P":
            self._presence_frame(rest)
            return
        name_b, epoch_b, seq_b, body = rest.split(b"\n", 3)
        name = name_b.decode()
        state = self._state.get(name)
        if state is not None:
            await self._offer(state, (epoch_b.decode(), int(seq_b), body))
        elif self.follow_all and self._hub is not None:
            # The elected MQTT bridge carries every channel, not only those open here.
            with contextlib.suppress(TransportError):
                await self.open(self._hub.channel(name))  # the snapshot holds this message

    async def _offer(self, state: _State, item: tuple[str, int, bytes] | None) -> None:
        if state.busy:
            state.pending.append(item)
        elif not state.ready:
            return  # not loaded (Redis was down when it was opened): open() reads it all
        elif item is None:
            await self._run(state, self._resync(state))
        elif not self._apply_now(state, *item):
            await self._run(state, self._apply(state, *item))

    def _apply_now(self, state: _State, epoch: str, seq: int, body: bytes) -> bool:
        """The common case, without an await: the next seq of the current epoch."""
        history = state.history
        if epoch != history.epoch or seq > history.last_seq + 1:
            return False
        if seq == history.last_seq + 1:
            self._deliver(state, seq, body)
        return True

    async def _apply(self, state: _State, epoch: str, seq: int, body: bytes) -> None:
        if self._apply_now(state, epoch, seq, body):
            return
        if epoch != state.history.epoch:
            await self._load(state)  # the snapshot already holds this message
            return
        await self._fill(state, seq - 1)
        self._apply_now(state, epoch, seq, body)

    async def _resync(self, state: _State) -> None:
        epoch, last, messages = await self._read(state.channel)
        if epoch != state.history.epoch:
            self._replace(state, epoch, last, messages)
        elif last > state.history.last_seq:
            await self._fill(state, last)

    async def _fill(self, state: _State, upto: int) -> None:
        """Apply ``last_seq+1 .. upto`` from the stream (what pub/sub did not bring)."""
        name = state.channel.name
        while state.history.last_seq < upto:
            start = state.history.last_seq + 1
            try:
                entries: list[Any] = await self.redis.xrange(  # type: ignore[assignment]
                    self.key(name, "log"), f"0-{start}", f"0-{upto}", count=FILL_PAGE
                )
            except FAILURES as exc:
                raise TransportError("not_ready", str(exc)[:200]) from None
            if not entries or _seq(entries[0][0]) > start:
                first = _seq(entries[0][0]) if entries else upto + 1
                log.warning("channel %s: %d..%d trimmed from Redis", name, start, first - 1)
                self.stats["skipped"] += first - start
                state.history.skip_to(first - 1)
            for entry_id, fields in entries:
                self._deliver(state, _seq(entry_id), fields[b"m"])
                self.stats["filled"] += 1

    def _deliver(self, state: _State, seq: int, body: bytes) -> None:
        feed = state.channel.feed
        if feed.draining:
            return
        obj = json.loads(body)
        message = feed.publish(obj["d"], obj["t"], obj["a"])
        assert message.seq == seq, (message.seq, seq)
        self.stats["applied"] += 1

    # ---- presence: members in a sorted set scored by expiry, join/leave to every node ---
    def joined(self, channel: Channel, client: str, user: str) -> None:
        self._spawn(self._presence("join", channel, client, user), "redis-presence-join")

    def left(self, channel: Channel, client: str, user: str) -> None:
        self._spawn(self._presence("leave", channel, client, user), "redis-presence-leave")

    async def _presence(self, kind: str, channel: Channel, client: str, user: str) -> None:
        key = self.key(channel.name, "presence")
        member = json.dumps({"client": client, "user": user})
        fields = {"c": channel.name, "k": kind, "id": client, "u": user, "n": self.node}
        frame = "P\n" + json.dumps(fields)  # JSON: a user id may hold any character
        with contextlib.suppress(*FAILURES):  # presence is best effort; expiry cleans up
            async with self.redis.pipeline(transaction=False) as pipe:
                if kind == "join":
                    pipe.zadd(key, {member: time.time() + PRESENCE_TTL})
                else:
                    pipe.zrem(key, member)
                pipe.publish(self.fanout, frame)
                await pipe.execute()

    def _presence_frame(self, raw: bytes) -> None:
        obj = json.loads(raw)
        name, kind, client, user, node = obj["c"], obj["k"], obj["id"], obj["u"], obj["n"]
        if node == self.node or self._hub is None:
            return
        channel = self._hub.find(name)
        if channel is not None:
            frame = Control(kind, {"channel": name, "client": client, "user": user})
            self._hub.fan_presence(channel, frame)

    async def members(self, channel: Channel) -> list[dict[str, str]]:
        """Every node's members of a channel (expired ones dropped)."""
        key = self.key(channel.name, "presence")
        now = time.time()
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(key, "-inf", now)
            pipe.zrange(key, 0, -1)
            _, raw = await pipe.execute()
        return [json.loads(m) for m in raw]

    async def _presence_loop(self) -> None:
        """Refresh this node's members before they expire (a dead node's members lapse)."""
        while True:
            await asyncio.sleep(PRESENCE_TTL / 3)
            if self._hub is None:
                continue
            with contextlib.suppress(*FAILURES):
                async with self.redis.pipeline(transaction=False) as pipe:
                    for channel in self._hub.all():
                        if channel.options.presence and channel.members:
                            expires = time.time() + PRESENCE_TTL
                            key = self.key(channel.name, "presence")
                            pipe.zadd(
                                key,
                                {
                                    json.dumps({"client": c, "user": u}): expires
                                    for c, u in channel.members.items()
                                },
                            )
                    await pipe.execute()


def _seq(entry_id: bytes) -> int:
    return int(entry_id.split(b"-", 1)[1])


def _message(channel: str, entry_id: bytes, fields: list[bytes]) -> Message:
    """A stream entry as a script returns it: ``[id, [b"m", body]]``."""
    obj = json.loads(fields[1])
    return Message(_seq(entry_id), obj["t"], obj["a"], obj["d"], channel)


def _redact(url: str) -> str:
    """The URL without a password (``redis://:secret@host`` -> ``redis://***@host``)."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return scheme + sep + rest
