"""Test helpers shared by the transport suites: collect a feed through follow(), cut a
connection mid-stream, publish from the test thread."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from transports.backoff import Backoff
from transports.client import (
    Connected,
    ConnectionLost,
    Delivered,
    EpochChanged,
    Event,
    FollowStats,
    GapDetected,
    Subscriber,
    follow,
)
from transports.live import LiveServer
from transports.message import Cursor, Frame, Message

FAST = Backoff(initial=0.05, maximum=0.5)


class Cutter:
    """Wraps a subscriber and drops its connection after every ``every`` messages, ``cuts``
    times: the connection is closed under the client, which must resume from its cursor."""

    def __init__(self, inner: Subscriber, every: int, cuts: int) -> None:
        self.inner = inner
        self.name = inner.name
        self.every = every
        self.cuts_left = cuts

    def stream(self, after: int | None, epoch: str | None) -> AsyncIterator[Frame]:
        return self._cut(self.inner.stream(after, epoch))

    async def _cut(self, frames: AsyncIterator[Frame]) -> AsyncIterator[Frame]:
        # The caller iterates this generator itself (``stream`` returns it rather than
        # re-yielding from it), so the inner stream is closed here, when the caller's loop
        # ends, exactly as if the inner stream were iterated directly.
        count = 0
        try:
            async for frame in frames:
                yield frame
                if isinstance(frame, Message):
                    count += 1
                    if self.cuts_left > 0 and count >= self.every:
                        self.cuts_left -= 1
                        raise ConnectionLost("cut by test")
        finally:
            await frames.aclose()  # type: ignore[attr-defined]


@dataclass
class Collected:
    seqs: list[int] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    stats: FollowStats = field(default_factory=FollowStats)

    def of(self, kind: type) -> list[Event]:
        return [e for e in self.events if isinstance(e, kind)]


async def collect(
    sub: Subscriber,
    count: int,
    after: int | None = 0,
    *,
    epoch: str | None = None,
    timeout: float = 30.0,
    until_seq: int | None = None,
    **kwargs: object,
) -> Collected:
    """Follow until ``count`` messages were delivered (or ``until_seq`` reached)."""
    out = Collected()
    events = follow(sub, after, epoch=epoch, backoff=FAST, stats=out.stats, **kwargs)  # type: ignore[arg-type]
    async with asyncio.timeout(timeout), contextlib.aclosing(events):
        async for event in events:
            if isinstance(event, Delivered):
                out.seqs.append(event.message.seq)
                if len(out.seqs) >= count or (until_seq and event.message.seq >= until_seq):
                    return out
            else:
                out.events.append(event)
    return out


async def publish(server: LiveServer, n: int, size: int = 16) -> None:
    """Publish ``n`` messages on the server's loop from a worker thread."""

    def batch() -> None:
        for i in range(n):
            server.ctx.feed.publish({"i": i, "pad": "x" * size})

    await asyncio.to_thread(server.call, batch)


__all__ = ["FAST", "Collected", "Cutter", "EpochChanged", "GapDetected", "collect", "publish"]


# ---- channels ---------------------------------------------------------------------------
class ChannelCutter(Cutter):
    """Like :class:`Cutter`, for multi-channel streams (``stream_channels``)."""

    def __init__(self, inner: Any, every: int, cuts: int) -> None:
        super().__init__(inner, every, cuts)

    def stream(self, after: int | None, epoch: str | None) -> AsyncIterator[Frame]:
        raise NotImplementedError  # pragma: no cover - channels only

    def stream_channels(self, cursors: Mapping[str, Cursor | None]) -> AsyncIterator[Frame]:
        inner: Any = self.inner  # a channels subscriber, not the single-stream protocol
        return self._cut(inner.stream_channels(cursors))


@dataclass
class ChannelsCollected:
    seqs: dict[str, list[int]] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    stats: FollowStats = field(default_factory=FollowStats)

    def of(self, kind: type) -> list[Event]:
        return [e for e in self.events if isinstance(e, kind)]


async def collect_channels(
    sub: Any,
    channels: Sequence[str] | Mapping[str, Cursor | None],
    done: Callable[[ChannelsCollected], bool],
    *,
    timeout: float = 30.0,
    started: asyncio.Event | None = None,
    **kwargs: Any,
) -> ChannelsCollected:
    """Follow ``channels`` until ``done(collected)``; ``started`` is set once every channel
    said hello (the subscription is open, so what is published next is seen)."""
    out = ChannelsCollected()
    names = set(channels)
    hellos: set[str] = set()
    events = follow(sub, 0, channels=channels, backoff=FAST, stats=out.stats, **kwargs)
    async with asyncio.timeout(timeout), contextlib.aclosing(events):
        async for event in events:
            if isinstance(event, Delivered):
                out.messages.append(event.message)
                name = event.message.channel or "default"
                out.seqs.setdefault(name, []).append(event.message.seq)
            else:
                out.events.append(event)
                if isinstance(event, Connected):
                    hellos.add(event.channel)
                    if started is not None and hellos >= names:
                        started.set()
            if done(out):
                return out
    return out


def publish_on(server: LiveServer, channel: str, n: int, start: int = 0) -> None:
    """Publish ``n`` messages on ``channel`` on the server's loop (from any thread)."""

    def batch() -> None:
        feed = server.ctx.hub.channel(channel).feed
        for i in range(start, start + n):
            feed.publish({"i": i}, "test")

    server.call(batch)


async def offer_sdp() -> str:
    """A real aiortc offer with a data channel and loopback host candidates."""
    from aiortc import RTCPeerConnection

    from transports.webrtc import ice

    pc = RTCPeerConnection(ice.configuration())
    pc.createDataChannel("feed")
    with ice.loopback_only(True):
        await pc.setLocalDescription(await pc.createOffer())
    assert pc.localDescription is not None
    sdp = str(pc.localDescription.sdp)
    await pc.close()
    return sdp
