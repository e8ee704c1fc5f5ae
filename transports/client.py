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
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Protocol

from transports.backoff import Backoff
from transports.errors import TransportError
from transports.message import Control, Cursor, Frame, Message

log = logging.getLogger("transports.client")


class Subscriber(Protocol):
    """One transport's client side: open a connection at a cursor and yield its frames."""

    name: str

    def stream(self, after: int | None, epoch: str | None) -> AsyncIterator[Frame]:
        """Yield frames until the connection ends; raise the reason it ended."""
        ...


class ConnectionLost(Exception):
    """The connection ended without a documented reason (retryable)."""


# ---- events -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Connected:
    transport: str
    epoch: str | None
    last_seq: int | None
    attempt: int


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


@dataclass(frozen=True, slots=True)
class EpochChanged:
    previous: str | None
    epoch: str


@dataclass(frozen=True, slots=True)
class Duplicate:
    seq: int


Event = Connected | Delivered | Disconnected | Reconnecting | GapDetected | EpochChanged | Duplicate


@dataclass(slots=True)
class FollowStats:
    delivered: int = 0
    duplicates: int = 0
    gaps: int = 0
    missing: int = 0
    epoch_changes: int = 0
    connects: int = 0
    disconnects: dict[str, int] = field(default_factory=dict)


def is_retryable(exc: BaseException) -> bool:
    """Default classifier: documented errors say; everything else network-ish is retryable."""
    if isinstance(exc, TransportError):
        return exc.retryable
    # Network errors, timeouts, garbled frames, a closed stream: a new connection may help.
    return isinstance(exc, Exception)


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
    backoff: Backoff | None = None,
    idle_timeout: float | None = 30.0,
    max_attempts: int | None = None,
    classify: Callable[[BaseException], bool] = is_retryable,
    stats: FollowStats | None = None,
    sleep: Callable[[float], object] = asyncio.sleep,
) -> AsyncGenerator[Event, None]:
    """Follow the feed through ``subscriber`` from ``after`` (``None`` = live only), forever.

    Raises the fatal error (after yielding :class:`Disconnected`) or, when ``max_attempts``
    consecutive failed attempts are used up, the last error.
    """
    backoff = backoff or Backoff()
    stats = stats if stats is not None else FollowStats()
    cursor = Cursor(epoch, after or 0)
    live_only = after is None
    failures = 0
    while True:
        heard = False
        error: BaseException | None = None
        frames = subscriber.stream(None if live_only else cursor.seq, cursor.epoch)
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
                    if frame.seq <= cursor.seq and not live_only:
                        stats.duplicates += 1
                        yield Duplicate(frame.seq)
                        continue
                    if not live_only and frame.seq > cursor.seq + 1:
                        stats.gaps += 1
                        stats.missing += frame.seq - cursor.seq - 1
                        yield GapDetected(cursor.seq, frame.seq, signalled=False)
                    live_only = False
                    cursor = cursor.advance(frame)
                    stats.delivered += 1
                    yield Delivered(frame, time.time())
                    continue
                event = _control(frame, cursor, stats, subscriber.name, failures)
                if isinstance(event, Connected):
                    failures = 0
                    if cursor.epoch is None:
                        cursor = Cursor(event.epoch, cursor.seq)
                    stats.connects += 1
                elif isinstance(event, EpochChanged):
                    cursor = Cursor(event.epoch, 0)
                elif isinstance(event, GapDetected):
                    cursor = Cursor(cursor.epoch, event.first - 1)
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
    frame: Control, cursor: Cursor, stats: FollowStats, name: str, attempt: int
) -> Event | None:
    if frame.type == "hello":
        return Connected(name, frame.get("epoch"), frame.get("last_seq"), attempt)
    if frame.type == "reset":
        stats.epoch_changes += 1
        return EpochChanged(frame.get("previous", cursor.epoch), str(frame.get("epoch")))
    if frame.type == "gap":
        first = int(frame.get("first", cursor.seq + 1))
        stats.gaps += 1
        stats.missing += max(0, first - cursor.seq - 1)
        return GapDetected(cursor.seq, first, signalled=True)
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
