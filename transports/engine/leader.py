"""Exactly one MQTT bridge per cluster: a leader lock in Redis with a fencing token.

With several nodes on one Redis and one MQTT broker, every node's bridge would publish every
channel to the broker, so MQTT subscribers would get each message once per node. Instead the
nodes elect one bridge (:class:`LeaderGate`):

- **lock**: ``tl:mqtt:leader`` = node id, ``SET … PX ttl`` only when absent, renewed by its
  holder every ``ttl/3`` (the ``ACQUIRE`` script in :mod:`.scripts`). A node that cannot
  renew within ``ttl`` (Redis unreachable, process paused) stops publishing on its own,
  since the lock has expired by then and another node may hold it;
- **fencing token**: each new holder gets ``INCR tl:mqtt:fence``. The bridge's position per
  channel (``tl:{C}:mqtt`` = ``EPOCH:SEQ``, the last seq it handed to the broker) is written
  only with the newest token (``FENCED_SET``), so an old leader that wakes up late cannot
  move the position of the new one;
- **failover**: when the leader dies its lock expires after at most ``ttl`` (3 s by
  default); the next renewal round of another node (every ``ttl/3``) takes it, so the new
  leader publishes within ``ttl + ttl/3`` (4 s) of the death. It starts each channel
  ``window`` messages before the recorded position (the old leader's unacknowledged
  in-flight publishes), so MQTT subscribers see at most ``window`` repeats, which they drop
  by seq — a duplicate, never a gap. Positions are flushed every ``FLUSH`` seconds, so the
  overlap also covers what the last flush missed.

Inbound client publishes (``<prefix>/_in/...``) are taken with an MQTT shared subscription
(``$share/<group>/...``, MQTT 5 §4.8.2), so the broker hands each one to exactly one node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from transports.engine import scripts
from transports.feed import Feed, Subscription
from transports.message import Message

if TYPE_CHECKING:
    from transports.engine.redis import RedisEngine

log = logging.getLogger("transports.engine.leader")

TTL = 3.0
FLUSH = 0.2


class LeaderGate:
    def __init__(self, engine: RedisEngine, ttl: float = TTL, name: str = "mqtt") -> None:
        self.engine = engine
        self.ttl = ttl
        self.lock_key = f"{engine.prefix}:{name}:leader"
        self.fence_key = f"{engine.prefix}:{name}:fence"
        self.token = 0  # > 0 while this node leads; it then follows every channel
        self.became_leader_at: float | None = None
        self.elected = asyncio.Event()
        self.on_elected: list[Callable[[], None]] = []
        self._subs: set[Subscription] = set()
        self._positions: dict[str, str] = {}  # channel -> "EPOCH:SEQ" not yet written
        self._acquire = engine.redis.register_script(scripts.ACQUIRE)
        self._fenced = engine.redis.register_script(scripts.FENCED_SET)
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def leader(self) -> bool:
        return self.token > 0

    def start(self) -> None:
        self._tasks = [
            asyncio.ensure_future(self._elect()),
            asyncio.ensure_future(self._flush_loop()),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.leader:  # hand over at once instead of after the ttl
            with contextlib.suppress(Exception):
                await self._flush()
                if await self.engine.redis.get(self.lock_key) == self.engine.node.encode():
                    await self.engine.redis.delete(self.lock_key)
        self.token = 0

    async def _elect(self) -> None:
        renewed = 0.0
        while True:
            try:
                token = int(
                    await self._acquire(
                        keys=[self.lock_key, self.fence_key],
                        args=[self.engine.node, int(self.ttl * 1000)],
                    )
                )
                renewed = time.monotonic()
            except Exception as exc:  # Redis down: keep leading only while the lock holds
                token = self.token if time.monotonic() - renewed < self.ttl else 0
                if self.leader and not token:
                    log.warning("MQTT bridge leader lock not renewed (%s)", type(exc).__name__)
            if token and not self.leader:
                self.token, self.became_leader_at = token, time.time()
                self.engine.follow_all = True
                log.info("this node now bridges MQTT (fencing token %d)", token)
                self.elected.set()
                for callback in self.on_elected:
                    callback()
            elif not token and self.leader:
                log.warning("this node no longer bridges MQTT")
                self._step_down()
            await asyncio.sleep(self.ttl / 3)

    def _step_down(self) -> None:
        self.token = 0
        self.engine.follow_all = False
        self.elected.clear()
        for sub in list(self._subs):
            sub.close("closed")

    # ---- the bridge's per-feed loop while leading -------------------------------------
    async def run(
        self, feed: Feed, window: int, queue_size: int, publish: Callable[[Message], Awaitable[Any]]
    ) -> None:
        """Publish ``feed`` through ``publish`` whenever this node leads; return when the feed
        ends (drained, or replaced after an epoch change; the bridge follows the new one)."""
        name = getattr(feed.history, "channel", "") or ""
        while not feed.draining:
            await self.elected.wait()
            after = await self._start_seq(name, feed, window)
            sub = feed.subscribe(after, feed.epoch, queue_size=queue_size)
            self._subs.add(sub)
            try:
                async for frame in sub:
                    if isinstance(frame, Message):
                        await publish(frame)
                        self._positions[name] = f"{feed.epoch}:{frame.seq}"
            finally:
                self._subs.discard(sub)
                sub.close()
            if sub.closed_reason not in ("closed", "slow_consumer"):
                return

    async def _start_seq(self, name: str, feed: Feed, window: int) -> int:
        try:
            raw = await self.engine.redis.get(self.engine.key(name or "default", "mqtt"))
        except Exception:
            raw = None
        if raw is None:  # never bridged: the window before now (a new channel: all of it)
            return max(0, feed.last_seq - window)
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        epoch, _, seq = text.partition(":")
        if epoch != feed.epoch:
            return 0  # the channel has a new epoch: all of it
        return max(0, min(int(seq), feed.last_seq) - window)

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH)
            with contextlib.suppress(Exception):
                await self._flush()

    async def _flush(self) -> None:
        positions, self._positions = self._positions, {}
        for name, value in positions.items():
            if not self.leader:
                return
            key = self.engine.key(name or "default", "mqtt")
            await self._fenced(keys=[key, self.fence_key], args=[self.token, value])

    def describe(self) -> dict[str, Any]:
        return {"leader": self.leader, "token": self.token, "since": self.became_leader_at}
