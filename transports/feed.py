"""The feed: stamps seq, keeps history, fans out to bounded subscriptions, replays from a cursor.

Everything here runs on one asyncio event loop and :meth:`Feed.publish` never awaits, so
"read history up to seq N" and "receive live messages after N" happen in one step with no
await between them: a subscriber can neither miss nor double a message at the seam between
replay and live (the race that unsynchronised pub/sub libraries have).

Each subscription owns a bounded queue. When a publish finds it full, that subscription is
closed with reason ``slow_consumer`` and dropped: the publisher never blocks on the slowest
client and memory never grows without bound. The client resumes from its cursor, and the
history serves what it missed.

Fast path: a transport that can write a frame without waiting sets
:attr:`Subscription.direct`. While the subscription is caught up (nothing in its head, its
replay or its queue), publish hands it each message directly, instead of queueing it and
waking the connection's task — one wake-up per subscriber per message was the largest cost
of fan-out after the socket write itself. ``direct`` returns False when it cannot take the
message now (a send is still waiting for the socket); the message is then queued as usual,
so ordering, the queue bound and the slow-consumer rule are unchanged.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Self

from transports.errors import TransportError
from transports.history import History, MemoryHistory
from transports.message import Control, Frame, Message

REPLAY_PAGE = 256


class SubscriptionClosed(Exception):
    """The subscription ended; ``reason`` is a documented error reason (see ``errors.py``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class FeedStats:
    published: int = 0
    subscribed: int = 0
    slow_consumer_disconnects: int = 0


class FrameStream:
    """Blocking iteration over ``get_nowait`` and a wake-up event: what a channel's
    :class:`Subscription` and a connection's multi-channel stream
    (:class:`~transports.streams.MultiSubscription`) share. Subclasses provide
    ``get_nowait`` (None when empty, clearing the event), ``wait`` and ``close``."""

    __slots__ = ()

    def get_nowait(self) -> Frame | None:
        raise NotImplementedError

    def close(self, reason: str = "closed") -> None:
        raise NotImplementedError

    async def wait(self) -> None:
        """Until there may be something for :meth:`get_nowait` (or the stream closed)."""
        raise NotImplementedError

    async def get(self) -> Frame:
        while True:
            frame = self.get_nowait()
            if frame is not None:
                return frame
            await self.wait()

    def __aiter__(self) -> AsyncIterator[Frame]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Frame]:
        while True:
            try:
                yield await self.get()
            except SubscriptionClosed:
                return

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Subscription(FrameStream):
    """One client's view of the feed, opened at a cursor. Iterate it to get frames.

    The first frame is always ``Control("hello", epoch=..., last_seq=...)`` so a client
    learns the epoch before any message; then ``reset``/``gap`` controls if the cursor needs
    them, then the replay from history, then live messages.
    """

    # Per-connection memory is most of an idle server's memory: slots, and the deques and
    # events that most connections never use are created only when needed (an empty deque
    # is ~760 bytes; an Event is a deque too). See docs/fanout.md.
    __slots__ = (
        "_caught_up",
        "_closed",
        "_feed",
        "_head",
        "_queue",
        "_queue_size",
        "_replay_next",
        "_replay_until",
        "_waiter",
        "_wakeup",
        "closed_reason",
        "direct",
        "on_close",
    )

    def __init__(
        self,
        feed: Feed,
        head: list[Frame],
        replay_next: int,
        replay_until: int,
        queue_size: int,
        wakeup: asyncio.Event | None = None,
        on_close: Callable[[str], None] | None = None,
    ) -> None:
        self._feed = feed
        self.on_close = on_close  # told the reason once, when it ends
        # Frames before the live ones (controls, a replay page); a list, drained from the end.
        self._head: list[Frame] = head[::-1]
        self._replay_next = replay_next
        self._replay_until = replay_until
        self._queue: deque[Message] | None = None  # created by the first queued message
        self._queue_size = queue_size
        # A multi-channel stream shares one wake-up event among its channels' subscriptions;
        # a lone subscription parks its reader on a bare future instead (no Event, no deque).
        self._wakeup = wakeup
        self._waiter: asyncio.Future[None] | None = None
        # Fast path (see the module docstring): True once get_nowait found nothing left; only
        # then may publish hand a message to ``direct`` instead of queueing it.
        self._caught_up = False
        self.direct: Callable[[Message], bool] | None = None
        self.closed_reason: str | None = None
        self._closed: asyncio.Event | None = None

    @property
    def closed(self) -> asyncio.Event:
        """Set on close, so a transport blocked in a send can notice and drop the connection
        (created on first use: only a connection waiting on a slow socket needs it)."""
        if self._closed is None:
            self._closed = asyncio.Event()
            if self.closed_reason is not None:
                self._closed.set()
        return self._closed

    @property
    def queued(self) -> int:
        return len(self._queue) if self._queue is not None else 0

    def _wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self) -> None:
        if self._wakeup is not None:
            await self._wakeup.wait()
            return
        if self.closed_reason is not None or not self._caught_up:
            return  # something may be there: get_nowait has not found it empty since
        waiter = self._waiter
        if waiter is None or waiter.done():
            waiter = self._waiter = asyncio.get_running_loop().create_future()
        await waiter

    def _enqueue(self, message: Message) -> bool:
        """Called by publish when no direct write took ``message``: queue it, bounded;
        False means the subscription overflowed and was closed."""
        self._caught_up = False
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
        elif len(queue) >= self._queue_size:
            self.close("slow_consumer")
            return False
        queue.append(message)
        self._wake()
        return True

    def close(self, reason: str = "closed") -> None:
        if self.closed_reason is None:
            self.closed_reason = reason
            self._queue = None
            self._wake()
            if self._closed is not None:
                self._closed.set()
            self._feed._drop(self)
            if self.on_close is not None:  # a multi-channel stream ends with its channel
                self.on_close(reason)

    def _next_replay(self) -> None:
        """Move one page of history into the head, reporting a gap if history moved on."""
        history = self._feed.history
        want = min(REPLAY_PAGE, self._replay_until - self._replay_next + 1)
        # Messages above replay_until are already in the live queue: never take them here.
        page = [
            m for m in history.since(self._replay_next - 1, want) if m.seq <= self._replay_until
        ]
        if not page or page[0].seq > self._replay_next:
            # The ring rotated past our position while the client was reading the replay.
            first = page[0].seq if page else self._replay_until + 1
            self._head.append(Control("gap", {"after": self._replay_next - 1, "first": first}))
        # Called only when the head is empty; it is popped from the end.
        self._head = [*page[::-1], *self._head]
        self._replay_next = page[-1].seq + 1 if page else self._replay_until + 1

    def get_nowait(self) -> Frame | None:
        if self.closed_reason is not None:
            raise SubscriptionClosed(self.closed_reason)
        if not self._head and self._replay_next <= self._replay_until:
            self._next_replay()
        if self._head:
            return self._head.pop()
        if self._queue:
            return self._queue.popleft()
        self._queue = None  # a burst's deque is not kept for the connection's lifetime
        if self._wakeup is not None:
            self._wakeup.clear()
        self._caught_up = True
        return None


class Feed:
    """A sequence-stamped live feed with history and bounded fan-out.

    ``queue_size`` bounds each subscriber's pending live messages (history replay is not
    counted; history is bounded by its own capacity).
    """

    def __init__(
        self, history: History | None = None, queue_size: int = 1024, poll_linger: float = 0.0
    ) -> None:
        self.history: History = history or MemoryHistory()
        self.queue_size = queue_size
        # Held polls are answered this long after the publish that woke them, with whatever
        # was published meanwhile (ServerConfig.poll_linger): fewer, larger answers.
        self.poll_linger = poll_linger
        self._due: dict[asyncio.Future[bool], None] = {}  # woken, answered at the flush
        self._flush: asyncio.TimerHandle | None = None
        self.stats = FeedStats()
        self._subs: set[Subscription] = set()
        # Replaced on every publish: long polls wait on "the next publish after now".
        self._published = asyncio.Event()
        # Held long polls' futures, woken (True) by the next publish or the drain; a dict
        # for FIFO wake-up order and O(1) removal when a poll ends otherwise (notify_next).
        self._waiters: dict[asyncio.Future[bool], None] = {}
        self._closed = False
        # Told of every new subscription (the server ties it to its connection record).
        self.on_subscribe: Callable[[Subscription], None] | None = None

    @property
    def epoch(self) -> str:
        return self.history.epoch

    @property
    def last_seq(self) -> int:
        return self.history.last_seq

    @property
    def draining(self) -> bool:
        """True once :meth:`drain` or :meth:`close` ran: no new subscriptions."""
        return self._closed

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def publish(self, data: Any, topic: str = "ticker", sent_at: float | None = None) -> Message:
        """Stamp, store and fan out one message. Never blocks, never awaits."""
        if self._closed:
            raise RuntimeError("feed is closed")
        message = self.history.append(topic, time.time() if sent_at is None else sent_at, data)
        self.stats.published += 1
        for sub in list(self._subs):
            # A caught-up subscription with a direct writer is written now, in this loop
            # (which runs once per delivery: no method call more than needed).
            direct = sub.direct
            if direct is not None and sub._caught_up and direct(message):
                continue
            if not sub._enqueue(message):
                self.stats.slow_consumer_disconnects += 1
        self._published.set()
        self._published = asyncio.Event()
        if self._waiters:
            if self.poll_linger > 0:
                self._linger()
            else:
                self._wake_waiters()
        return message

    def notify_next(self, waiter: asyncio.Future[bool]) -> None:
        """Set ``waiter``'s result to True at the next publish (or drain), unless it is done
        by then; :meth:`forget` it when it ends otherwise.

        The callback form of :meth:`wait` for one held poll: no task and no timeout context
        per wait (the caller arms its own timer on the same future).
        """
        if self._closed:
            if not waiter.done():
                waiter.set_result(True)
            return
        self._waiters[waiter] = None

    def forget(self, waiter: asyncio.Future[bool]) -> None:
        self._waiters.pop(waiter, None)
        self._due.pop(waiter, None)

    def _wake_waiters(self) -> None:
        waiters, self._waiters = self._waiters, {}
        _wake(waiters)

    def _linger(self) -> None:
        """The waiters this publish woke are answered at one shared flush, ``poll_linger``
        after the first publish since the last flush (one timer per window, not per poll).
        A poll that starts waiting after this publish waits for the next one."""
        self._due.update(self._waiters)
        loop = next(iter(self._waiters)).get_loop()
        self._waiters = {}
        if self._flush is None:
            self._flush = loop.call_later(self.poll_linger, self._flush_due)

    def _flush_due(self) -> None:
        self._flush = None
        due, self._due = self._due, {}
        _wake(due)

    def start(self, after: int | None, epoch: str | None) -> tuple[list[Frame], int]:
        """Resolve a client cursor into leading control frames and the first seq to send.

        Raises ``TransportError("cursor_ahead")`` when ``after`` is beyond the last seq of the
        client's own epoch; a *different* epoch is not an error but a ``reset`` frame.
        """
        head: list[Frame] = [Control("hello", {"epoch": self.epoch, "last_seq": self.last_seq})]
        return self._resolve(head, after, epoch)

    def _resolve(
        self, head: list[Frame], after: int | None, epoch: str | None
    ) -> tuple[list[Frame], int]:
        """:meth:`start` after its hello: append the cursor's controls to ``head``."""
        if after is None:
            return head, self.last_seq + 1
        if after < 0:
            raise TransportError("bad_cursor", f"after={after} is negative")
        if epoch is not None and epoch != self.epoch:
            head.append(
                Control(
                    "reset", {"epoch": self.epoch, "previous": epoch, "last_seq": self.last_seq}
                )
            )
            after = 0
        elif after > self.last_seq:
            raise TransportError(
                "cursor_ahead",
                f"after={after} but last seq of epoch {self.epoch} is {self.last_seq}",
            )
        first = self.history.first_seq
        if after + 1 < first and after < self.last_seq:
            head.append(Control("gap", {"after": after, "first": first}))
            after = first - 1
        return head, after + 1

    def subscribe(
        self,
        after: int | None = None,
        epoch: str | None = None,
        queue_size: int | None = None,
        wakeup: asyncio.Event | None = None,
        on_close: Callable[[str], None] | None = None,
    ) -> Subscription:
        """Open a subscription at a cursor. ``after=None`` means live only."""
        if self._closed:
            raise TransportError("shutting_down")
        head, replay_next = self.start(after, epoch)
        size = queue_size or self.queue_size
        sub = Subscription(self, head, replay_next, self.last_seq, size, wakeup, on_close)
        self._subs.add(sub)
        self.stats.subscribed += 1
        if self.on_subscribe is not None:
            self.on_subscribe(sub)
        return sub

    def read(self, after: int | None, epoch: str | None, limit: int) -> list[Frame]:
        """One batch for request/response transports (long polling): controls + messages."""
        # No hello here (a poll's response carries epoch and last_seq itself), so none is made.
        head, first = self._resolve([], after, epoch)
        head.extend(self.history.since(first - 1, limit))
        return head

    async def wait(self, after: int, timeout: float) -> bool:
        """Wait until a message with ``seq > after`` exists (then ``poll_linger`` more); False
        when none came by the timeout."""
        if self.last_seq > after:
            return True
        try:
            async with asyncio.timeout(timeout):
                while self.last_seq <= after and not self._closed:
                    await self._published.wait()
                if self.poll_linger > 0 and not self._closed:
                    await asyncio.sleep(self.poll_linger)  # what follows joins the answer
        except TimeoutError:
            pass  # the timeout ends a linger too: answer with what is there
        return self.last_seq > after

    def _drop(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    def drain(self, reason: str = "shutting_down") -> None:
        """Refuse new subscriptions, end every open one with ``reason``, wake held waiters.

        History stays readable; :meth:`close` also closes it.
        """
        self._closed = True
        for sub in list(self._subs):
            sub.close(reason)
        self._published.set()
        self._wake_waiters()
        if self._flush is not None:
            self._flush.cancel()
        self._flush_due()

    def close(self, reason: str = "shutting_down") -> None:
        """:meth:`drain`, then close the history store."""
        self.drain(reason)
        self.history.close()


def _wake(waiters: dict[asyncio.Future[bool], None]) -> None:
    """Set True on every held poll's future that is not done yet, in the order they came."""
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(True)
