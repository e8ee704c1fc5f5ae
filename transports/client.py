"""``follow()``: the one resilient consumer loop shared by every transport's client.

A transport client (a :class:`Subscriber`) knows how to open *one* connection at a cursor
and yield the frames it receives; it raises when the connection ends. ``follow()`` turns
that into a stream the application can trust:

- reconnects with a :class:`~transports.backoff.Backoff` schedule (full jitter by default),
  classifying each error as retryable or fatal (``TransportError.retryable``; network errors
  and timeouts are retryable);
- resumes from its cursor (epoch + last delivered seq), so nothing is lost if the server
  still has it;
- drops duplicates (seq at or below the cursor) and counts them;
- reports history gaps and epoch changes as events, never skipping silently;
- treats a connection that yields nothing — no data, no heartbeat — for ``idle_timeout``
  seconds as dead (the heartbeat watchdog).

Events are yielded in order; the application usually only looks at :class:`Delivered`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, cast

from transports.backoff import Backoff
from transports.channels import DEFAULT
from transports.codec import CodecError
from transports.errors import ConnectionLost, TransportError
from transports.message import Control, Cursor, Frame, Message

log = logging.getLogger("transports.client")


class Subscriber(Protocol):
    """One transport's client side: open a connection at a cursor and yield its frames.

    Clients that serve channels also have ``stream_channels(cursors)``: one connection to
    the named channels, each at its cursor (``None`` = live only), see :class:`Channels`.
    """

    name: str

    def stream(self, after: int | None, epoch: str | None) -> AsyncIterator[Frame]:
        """Yield frames until the connection ends; raise the reason it ended."""
        ...


class Channels(Protocol):
    def stream_channels(self, cursors: Mapping[str, Cursor | None]) -> AsyncIterator[Frame]: ...


# ---- events -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Connected:
    transport: str
    epoch: str | None
    last_seq: int | None
    attempt: int
    channel: str = DEFAULT


@dataclass(frozen=True, slots=True)
class Delivered:
    message: Message
    received_at: float


@dataclass(frozen=True, slots=True)
class Disconnected:
    reason: str
    retryable: bool


@dataclass(frozen=True, slots=True)
class Reconnecting:
    attempt: int
    delay: float


@dataclass(frozen=True, slots=True)
class GapDetected:
    """Messages ``after+1 .. first-1`` will never arrive (history no longer holds them)."""

    after: int
    first: int
    signalled: bool  # True if the server said so; False if inferred from a seq jump
    channel: str = DEFAULT


@dataclass(frozen=True, slots=True)
class EpochChanged:
    previous: str | None
    epoch: str
    channel: str = DEFAULT


@dataclass(frozen=True, slots=True)
class Duplicate:
    seq: int
    channel: str = DEFAULT


@dataclass(frozen=True, slots=True)
class Presence:
    """Someone joined or left a channel (namespaces with presence on)."""

    channel: str
    kind: str  # "join" | "leave"
    client: str
    user: str


Event = (
    Connected
    | Delivered
    | Disconnected
    | Reconnecting
    | GapDetected
    | EpochChanged
    | Duplicate
    | Presence
)


@dataclass(slots=True)
class FollowStats:
    delivered: int = 0
    duplicates: int = 0
    gaps: int = 0
    missing: int = 0
    epoch_changes: int = 0
    connects: int = 0
    unexpected: int = 0  # messages of channels not subscribed to (dropped; should stay 0)
    disconnects: dict[str, int] = field(default_factory=dict)


# Errors a new connection can cure: the connection broke, timed out, or garbled a frame.
# Transport clients add their library's network errors with :func:`transient` (as
# python-websockets' ``process_exception`` retries only known-transient failures).
TRANSIENT: list[type[BaseException]] = [
    ConnectionLost,
    OSError,
    TimeoutError,
    EOFError,
    CodecError,
    json.JSONDecodeError,
]


def transient(*kinds: type[BaseException]) -> None:
    for kind in kinds:
        if kind not in TRANSIENT:
            TRANSIENT.append(kind)


def is_retryable(exc: BaseException) -> bool:
    """Default classifier: documented errors say; otherwise only the :data:`TRANSIENT` list."""
    if isinstance(exc, TransportError):
        return exc.retryable
    return isinstance(exc, tuple(TRANSIENT))


def describe(exc: BaseException) -> str:
    if isinstance(exc, TransportError):
        return exc.reason
    if isinstance(exc, TimeoutError):
        return "idle_timeout"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def follow(
    subscriber: Subscriber,
    after: int | None = 0,
    *,
    epoch: str | None = None,
    channels: Sequence[str] | Mapping[str, Cursor | None] | None = None,
    backoff: Backoff | None = None,
    idle_timeout: float | None = 30.0,
    max_attempts: int | None = None,
    classify: Callable[[BaseException], bool] = is_retryable,
    stats: FollowStats | None = None,
    sleep: Callable[[float], object] = asyncio.sleep,
) -> AsyncGenerator[Event, None]:
    """Follow the feed through ``subscriber`` from ``after`` (``None`` = live only), forever.

    With ``channels`` (names, each starting at ``Cursor(None, after)`` or live only when
    ``after`` is ``None``; or a mapping name → cursor) it follows those channels on one
    connection, with one cursor each: dedupe, gaps and epoch changes are per channel and
    the events name their channel.

    Raises the fatal error (after yielding :class:`Disconnected`) or, when ``max_attempts``
    consecutive failed attempts are used up, the last error.
    """
    backoff = backoff or Backoff()
    stats = stats if stats is not None else FollowStats()
    if channels is None:
        cursors: dict[str, Cursor] = {DEFAULT: Cursor(epoch, after or 0)}
        live = {DEFAULT} if after is None else set()
    elif isinstance(channels, Mapping):
        cursors = {n: c or Cursor() for n, c in channels.items()}
        live = {n for n, c in channels.items() if c is None}
    else:
        cursors = {n: Cursor(epoch, after or 0) for n in channels}
        live = set(cursors) if after is None else set()
    failures = 0
    while True:
        heard = False
        error: BaseException | None = None
        if channels is None:
            cursor = cursors[DEFAULT]
            frames = subscriber.stream(None if live else cursor.seq, cursor.epoch)
        else:
            opener = cast(Channels, subscriber)
            frames = opener.stream_channels(
                {n: None if n in live else c for n, c in cursors.items()}
            )
        hellos = 0
        try:
            while True:
                try:
                    if idle_timeout is None:
                        frame = await anext(frames)
                    else:
                        async with asyncio.timeout(idle_timeout):
                            frame = await anext(frames)
                except StopAsyncIteration:
                    error = ConnectionLost("stream ended")
                    break
                heard = True
                if isinstance(frame, Message):
                    name = frame.channel or DEFAULT
                    found = cursors.get(name)
                    if found is None:
                        stats.unexpected += 1
                        continue
                    cursor = found
                    if frame.seq <= cursor.seq and name not in live:
                        stats.duplicates += 1
                        yield Duplicate(frame.seq, name)
                        continue
                    if name not in live and frame.seq > cursor.seq + 1:
                        stats.gaps += 1
                        stats.missing += frame.seq - cursor.seq - 1
                        yield GapDetected(cursor.seq, frame.seq, signalled=False, channel=name)
                    live.discard(name)
                    cursors[name] = cursor.advance(frame)
                    stats.delivered += 1
                    yield Delivered(frame, time.time())
                    continue
                name = str(frame.get("channel") or DEFAULT)
                if name not in cursors and frame.type != "close":
                    continue  # a reply (ack/error) or a frame of a channel we left
                cursor = cursors.get(name, Cursor())
                event = _control(frame, cursor, stats, subscriber.name, failures, name)
                if isinstance(event, Connected):
                    failures = 0
                    if cursor.epoch is None:
                        cursors[name] = Cursor(event.epoch, cursor.seq)
                    hellos += 1
                    if hellos == 1:
                        stats.connects += 1
                elif isinstance(event, EpochChanged):
                    cursors[name] = Cursor(event.epoch, 0)
                    live.discard(name)
                elif isinstance(event, GapDetected):
                    cursors[name] = Cursor(cursor.epoch, event.first - 1)
                elif isinstance(event, Disconnected):
                    error = (
                        TransportError(event.reason)
                        if event.reason in _REASONS
                        else ConnectionLost(event.reason)
                    )
                    break
                if event is not None:
                    yield event
        except (Exception, TimeoutError) as exc:
            error = exc
        finally:
            aclose = getattr(frames, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
        assert error is not None
        reason, retryable = describe(error), classify(error)
        stats.disconnects[reason] = stats.disconnects.get(reason, 0) + 1
        log.info(
            "%s disconnected: %s (%s)",
            subscriber.name,
            reason,
            "retrying" if retryable else "fatal",
        )
        yield Disconnected(reason, retryable)
        if not retryable:
            raise error
        if heard:
            failures = 0
        if max_attempts is not None and failures >= max_attempts:
            raise error
        delay = backoff.delay(failures)
        failures += 1
        yield Reconnecting(failures, delay)
        await _maybe_await(sleep(delay))


_REASONS = {"slow_consumer", "shutting_down", "too_many_connections", "rate_limited"}


def _control(
    frame: Control, cursor: Cursor, stats: FollowStats, name: str, attempt: int, channel: str
) -> Event | None:
    if frame.type == "hello":
        return Connected(name, frame.get("epoch"), frame.get("last_seq"), attempt, channel)
    if frame.type == "reset":
        stats.epoch_changes += 1
        previous = frame.get("previous", cursor.epoch)
        return EpochChanged(previous, str(frame.get("epoch")), channel)
    if frame.type == "gap":
        first = int(frame.get("first", cursor.seq + 1))
        stats.gaps += 1
        stats.missing += max(0, first - cursor.seq - 1)
        return GapDetected(cursor.seq, first, signalled=True, channel=channel)
    if frame.type in ("join", "leave"):
        return Presence(channel, frame.type, str(frame.get("client")), str(frame.get("user")))
    if frame.type == "close":
        return Disconnected(str(frame.get("reason", "closed")), True)
    return None  # ping/pong and unknown controls only feed the watchdog


async def _maybe_await(value: object) -> None:
    if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
        await value


async def messages(
    subscriber: Subscriber, after: int | None = 0, **kwargs: object
) -> AsyncIterator[Message]:
    """Convenience: only the delivered messages of :func:`follow`."""
    async for event in follow(subscriber, after, **kwargs):  # type: ignore[arg-type]
        if isinstance(event, Delivered):
            yield event.message


__all__ = ["ConnectionLost"]
