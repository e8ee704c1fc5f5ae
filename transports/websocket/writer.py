"""Write frames to one WebSocket without a task switch or a timeout object per frame.

Starlette's ``send_text`` is a coroutine, but on uvicorn it only *waits* when the socket's
write buffer is above its high-water mark (``asyncio.Protocol.pause_writing``); otherwise it
frames the text and calls ``transport.write`` without ever suspending. :meth:`Writer.write`
therefore runs the coroutine one step by hand: if it finishes in that step (the common
case), the frame is written and nothing was scheduled. Only a send that does suspend — a
client that does not read — is handed to a task, bounded by ``send_timeout``; while it is
pending the writer is *busy* and the feed queues (bounded) instead, which is how a slow
consumer still overflows and is dropped.

This is the shape of ``websockets.broadcast``: the publisher's loop writes an encoded frame
to every connection that has room, instead of waking one task per subscriber per message
(the cost the fan-out benchmark measured as a third of the server's CPU). Python 3.12's
eager tasks do the same in general; this project supports 3.11.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Generator
from typing import Any, Generic, TypeVar

from transports.feed import Subscription, SubscriptionClosed
from transports.message import Frame

T = TypeVar("T")
Send = Callable[[T], Coroutine[Any, Any, None]]


class Writer(Generic[T]):
    """Serialises sends to one connection; ``on_error(reason)`` ends it on failure.

    ``T`` is what ``send`` takes: text for a WebSocket, bytes for an SSE stream."""

    __slots__ = ("_on_error", "_on_idle", "_send", "_timeout", "pending")

    def __init__(
        self,
        send: Send[T],
        timeout: float,
        on_error: Callable[[str], None],
        on_idle: Callable[[], None] | None = None,
    ) -> None:
        self._send = send
        self._timeout = timeout
        self._on_error = on_error
        # Called when a send that had to wait has finished (not when cancelled): the owner
        # writes what queued meanwhile, with no task of its own waiting for that moment.
        self._on_idle = on_idle
        # The task finishing a send that had to wait; None when idle (no Event per
        # connection: most connections are never busy).
        self.pending: asyncio.Task[None] | None = None

    @property
    def busy(self) -> bool:
        return self.pending is not None

    def write(self, text: T) -> None:
        """Start sending ``text``; only call when not :attr:`busy`."""
        self.start(self._send(text))

    def start(self, coro: Coroutine[Any, Any, None]) -> None:
        """:meth:`write` for a send coroutine the caller made (one call fewer per frame on
        the fan-out path); only call when not :attr:`busy`."""
        try:
            waiting = coro.send(None)
        except StopIteration:
            return  # written synchronously
        except Exception as exc:
            self._on_error(_reason(exc))
            return
        # The send is waiting for the socket to drain: finish it in a task, with a bound.
        self.pending = asyncio.ensure_future(self._finish(coro, waiting))

    async def _finish(self, coro: Coroutine[Any, Any, None], waiting: Any) -> None:
        sent = False
        try:
            async with asyncio.timeout(self._timeout):
                while True:
                    await _Yield(waiting)
                    try:
                        waiting = coro.send(None)
                    except StopIteration:
                        break
            sent = True
        except TimeoutError:
            self._on_error("send_timeout")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._on_error(_reason(exc))
        finally:
            coro.close()
            self.pending = None
        if sent and self._on_idle is not None:
            self._on_idle()  # may start the next waiting send: pending is already cleared

    async def write_when_idle(self, text: T) -> None:
        """Wait until no send is pending, then :meth:`write` (no await in between)."""
        while self.pending is not None:
            await asyncio.wait((self.pending,))  # never raises for the awaited task
        self.write(text)

    def cancel(self) -> None:
        if self.pending is not None:
            self.pending.cancel()


async def drain(sub: Subscription, writer: Writer[Any], emit: Callable[[Frame], None]) -> str:
    """The slow path beside the publisher's direct writes: hand what queued on ``sub``
    (hello, replay, backlog while a send waited) to ``emit`` one frame at a time, never
    while a send is pending; return the reason the subscription ended."""
    try:
        while True:
            frame = sub.get_nowait()
            if frame is None:
                await sub.wait()
                continue
            while writer.pending is not None:
                # A send waits for the socket: watch the subscription too, so an overflow
                # (slow_consumer) drops the client at once.
                closed = asyncio.ensure_future(sub.closed.wait())
                await asyncio.wait((writer.pending, closed), return_when=asyncio.FIRST_COMPLETED)
                closed.cancel()
                if sub.closed_reason is not None:
                    return sub.closed_reason
            emit(frame)
    except SubscriptionClosed as ended:
        return ended.reason


class _Yield:
    """Await, in our task, whatever the hand-driven coroutine yielded (an asyncio future)."""

    __slots__ = ("_what",)

    def __init__(self, what: Any) -> None:
        self._what = what

    def __await__(self) -> Generator[Any, None, None]:
        yield self._what


def _reason(exc: BaseException) -> str:
    # Starlette raises WebSocketDisconnect / uvicorn ClientDisconnected (an OSError) when the
    # peer has gone; anything else while sending also means this connection is unusable.
    return "client_gone"
