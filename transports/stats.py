"""Server-side counters per transport, exposed at ``GET /api/stats`` and used by the dashboard.

``bytes_out`` counts the encoded frames the server handed to the transport (application
payload incl. our JSON, excluding protocol framing); wire-level bytes are measured by the lab's
counting proxy, not here.

These counters are also what ``/metrics`` reports (read at scrape time, so counting costs
nothing extra). ``hooks``, when set by the server (:mod:`transports.ops.hooks`), is told of
every connect, disconnect and delivery: per-connection logs, the lag histogram and the
traffic log hang off this one seam rather than off every transport handler.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from transports.message import Frame, Message


class StatsHooks(Protocol):
    def opened(self) -> None: ...
    def ended(self, reason: str) -> None: ...
    def sent(self, nbytes: int, frames: Sequence[Frame]) -> None: ...
    def sent_one(self, nbytes: int, frame: Frame, owner: object = None) -> None: ...
    def owner(self) -> object: ...
    def sent_message(self, nbytes: int, message: Message, owner: object) -> None: ...


@dataclass(slots=True)
class TransportStats:
    active: int = 0
    accepted: int = 0
    rejected: int = 0
    frames_out: int = 0
    bytes_out: int = 0
    closed: dict[str, int] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)  # rejected, by reason
    hooks: StatsHooks | None = field(default=None, repr=False, compare=False)

    def opened(self) -> None:
        self.active += 1
        self.accepted += 1
        if self.hooks is not None:
            self.hooks.opened()

    def ended(self, reason: str) -> None:
        self.active -= 1
        self.closed[reason] = self.closed.get(reason, 0) + 1
        if self.hooks is not None:
            self.hooks.ended(reason)

    def refuse(self, reason: str) -> None:
        self.rejected += 1
        self.refused[reason] = self.refused.get(reason, 0) + 1

    def owner(self) -> object:
        """The hooks' record of the connection the current task serves (None without
        hooks). A fast path whose writes run in the *publisher's* task keeps it and passes
        it to :meth:`sent`, so per-connection counters still see those writes."""
        return None if self.hooks is None else self.hooks.owner()

    def sent(
        self, nbytes: int, frames: int = 1, frame: Frame | None = None, owner: object = None
    ) -> None:
        """Count ``frames`` frames of ``nbytes`` handed to the transport; ``frame`` is the
        frame itself when one was sent (the hooks measure its lag and log it); ``owner`` is
        what :meth:`owner` returned in the connection's own task, when the caller is not it."""
        self.frames_out += frames
        self.bytes_out += nbytes
        if self.hooks is not None:
            if frame is not None:
                self.hooks.sent_one(nbytes, frame, owner)
            else:
                self.hooks.sent(nbytes, ())

    def sent_message(self, nbytes: int, message: Message, owner: object) -> None:
        """:meth:`sent` for the fan-out loop's direct writes: one message, written in the
        publisher's task for the connection whose :meth:`owner` is ``owner``. The same
        counts with no branching on the frame's kind (this runs once per delivery)."""
        self.frames_out += 1
        self.bytes_out += nbytes
        hooks = self.hooks
        if hooks is not None:
            hooks.sent_message(nbytes, message, owner)

    def sent_batch(self, nbytes: int, batch: Sequence[Frame]) -> None:
        """Count one response carrying ``batch`` (long polling)."""
        self.frames_out += len(batch)
        self.bytes_out += nbytes
        if self.hooks is not None:
            self.hooks.sent(nbytes, batch)

    def as_dict(self) -> dict[str, Any]:
        return {
            "active": self.active,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "frames_out": self.frames_out,
            "bytes_out": self.bytes_out,
            "closed": dict(self.closed),
            "refused": dict(self.refused),
        }
