"""A node's copy of a channel whose seq and history live in an engine (Redis).

:class:`MirrorHistory` is a :class:`~transports.history.MemoryHistory` that never decides a
seq itself: the engine loads it from Redis (:meth:`MirrorHistory.load`) and then applies
every message in Redis' order, gap-free, so the ring's own stamping (``last_seq + 1``) is the
seq Redis assigned — the engine checks that before each append. The channel's ``Feed`` then
fans out to this node's connections exactly as it does without an engine.
"""

from __future__ import annotations

from collections.abc import Iterable

from transports.history import MemoryHistory
from transports.message import Message


class MirrorHistory(MemoryHistory):
    """The recent history of one channel as held in Redis (``capacity`` newest messages)."""

    def __init__(self, capacity: int, channel: str, epoch: str = "pending") -> None:
        super().__init__(capacity, epoch=epoch, channel=channel)
        self.loaded = False

    def load(self, epoch: str, last_seq: int, messages: Iterable[Message]) -> None:
        """Start over from what Redis holds: ``epoch``, ``last_seq`` and its newest messages."""
        self._epoch = epoch
        self._ring.clear()
        self._ring.extend(messages)
        self._last = last_seq
        self.loaded = True

    def skip_to(self, seq: int) -> None:
        """History in Redis no longer holds ``last_seq+1 .. seq``: continue after it.

        Subscribers see the jump as a gap (``follow()`` reports it); resuming clients get a
        ``gap`` control from the ring's first seq. Only when a node was cut off longer than
        the stream's MAXLEN covers.
        """
        self._ring.clear()
        self._last = seq
