"""A multi-channel stream: one connection's subscriptions to several channels, as one iterator.

:class:`MultiSubscription` has the interface of :class:`~transports.feed.Subscription`
(``get``, ``async for``, ``close``, ``closed_reason``), so :func:`~transports.server.pump`,
SSE and the data-channel peer consume either without knowing which. Underneath it holds one
feed subscription per channel, all sharing one wake-up event: a publish on any channel wakes
the connection once, and taking a frame is a loop over a few deques with no await.

Frames it yields:

- the channel subscriptions' controls (``hello``, ``gap``, ``reset``) with ``"channel"``
  added, so every control names its channel;
- messages as they are: a channel's messages already carry ``"channel"`` in their one shared
  encoding (the default channel's carry none; see ``docs/wire.md``);
- frames pushed by the server for this connection: presence ``join``/``leave``, and the
  replies to the client's own frames (``subscribed``, ``unsubscribed``, ``ack``, ``error``).

A channel subscription ending (overflow, shutdown) ends the whole stream with its reason: the
client resumes every channel from its cursors, as it would after any cut.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import deque
from collections.abc import Callable

from transports.auth import Principal
from transports.errors import TransportError
from transports.feed import FrameStream, Subscription, SubscriptionClosed
from transports.hub import Channel, Hub
from transports.message import Control, Cursor, Frame, Message

PUSH_LIMIT = 1024  # pending presence/reply frames per connection before slow_consumer


class MultiSubscription(FrameStream):
    def __init__(self, hub: Hub, principal: Principal, limit: int) -> None:
        self.hub = hub
        self.principal = principal
        self.client = secrets.token_hex(6)  # the presence id of this connection
        self.limit = limit
        self._subs: dict[str, tuple[Channel, Subscription]] = {}
        self._order: list[str] = []  # round robin, so one busy channel cannot starve others
        self._next = 0
        self._pushed: deque[Frame] = deque()
        self._wakeup = asyncio.Event()
        self.closed_reason: str | None = None
        self.closed = asyncio.Event()
        # The transport's writer for messages published while this stream is idle (see
        # write_directly); None: every frame goes through get().
        self._writer: Callable[[Message], bool] | None = None

    def write_directly(self, writer: Callable[[Message], bool]) -> None:
        """Let each channel's publisher hand its messages to ``writer`` (True: written)
        while this stream has nothing pending, instead of waking the connection's reader
        once per message (the single-stream fan-out's fast path, :class:`Subscription`'s
        ``direct``). The shared wake-up event is clear only when the last :meth:`get_nowait`
        found every channel and the pushed frames empty, so a direct write never overtakes
        a queued frame; once anything is queued, everything queues until the reader has
        caught up."""
        self._writer = writer
        for _, sub in self._subs.values():
            sub.direct = self._direct

    def _direct(self, message: Message) -> bool:
        writer = self._writer
        return writer is not None and not self._wakeup.is_set() and writer(message)

    @property
    def channels(self) -> list[str]:
        return list(self._order)

    def add(self, channel: Channel, cursor: Cursor | None) -> None:
        """Subscribe to ``channel`` at ``cursor`` (``None`` = live only); replaces an old one."""
        if channel.name not in self._subs and len(self._subs) >= self.limit:
            raise TransportError("too_many_channels", f"at most {self.limit} per connection")
        after, epoch = (None, None) if cursor is None else (cursor.seq, cursor.epoch)
        sub = channel.feed.subscribe(after, epoch, wakeup=self._wakeup, on_close=self._ended)
        if self._writer is not None:
            sub.direct = self._direct
        self.remove(channel.name, quiet=True)
        self._subs[channel.name] = (channel, sub)
        self._order.append(channel.name)
        self.hub.join(channel, self.client, self.principal.id, self)
        self._wakeup.set()

    def _ended(self, reason: str) -> None:
        """A channel's subscription ended: overflow or shutdown ends the whole stream at
        once (a sender blocked on a full socket notices through ``closed``)."""
        if reason != "closed":
            self.close(reason)

    def remove(self, name: str, quiet: bool = False) -> bool:
        entry = self._subs.pop(name, None)
        if entry is None:
            return False
        channel, sub = entry
        self._order.remove(name)
        sub.close()
        self.hub.leave(channel, self.client, self)
        return True

    def push(self, frame: Frame) -> None:
        """Queue a server frame for this connection only (presence, replies)."""
        if self.closed_reason is not None:
            return
        if len(self._pushed) >= PUSH_LIMIT:
            self.close("slow_consumer")
            return
        self._pushed.append(frame)
        self._wakeup.set()

    def close(self, reason: str = "closed") -> None:
        if self.closed_reason is not None:
            return
        self.closed_reason = reason
        for name in list(self._subs):
            self.remove(name)
        self._pushed.clear()
        self._wakeup.set()
        self.closed.set()

    async def wait(self) -> None:
        await self._wakeup.wait()

    def get_nowait(self) -> Frame | None:
        if self.closed_reason is not None:
            raise SubscriptionClosed(self.closed_reason)
        if self._pushed:
            return self._pushed.popleft()
        count = len(self._order)
        for i in range(count):
            name = self._order[(self._next + i) % count]
            sub = self._subs[name][1]
            try:
                frame = sub.get_nowait()  # clears the shared event only when it is empty
            except SubscriptionClosed as ended:
                self.close(ended.reason)
                raise SubscriptionClosed(ended.reason) from None
            if frame is not None:
                self._next = (self._next + i + 1) % count
                if isinstance(frame, Control):
                    return Control(frame.type, {**frame.fields, "channel": name})
                return frame
        self._wakeup.clear()
        return None
