"""The values that travel: a feed :class:`Message`, a :class:`Control` frame, a :class:`Cursor`.

A message is what the application publishes; ``seq`` is gap-free within one feed *epoch*.
A control frame is what a transport needs to say besides messages (a gap in history, an
epoch change, a heartbeat, a reason for closing). On the wire a control frame carries
``"type"`` where a message carries ``"seq"`` (see ``docs/wire.md``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Message:
    """One feed update. ``sent_at`` is Unix time in seconds, stamped by the feed."""

    seq: int
    topic: str
    sent_at: float
    data: Any
    # The channel the message belongs to; "" is the default channel, whose frames carry no
    # "channel" key (byte-identical to the single-stream wire format, see docs/wire.md).
    channel: str = ""
    # The encoded frame and its UTF-8 size, filled by ``codec.wire`` on first use: fan-out
    # sends the same message to every subscriber, so it is encoded once, not once per client.
    _wire: tuple[str, int] | None = field(default=None, init=False, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        out = {"seq": self.seq, "topic": self.topic, "sent_at": self.sent_at, "data": self.data}
        if self.channel:
            out["channel"] = self.channel
        return out


@dataclass(frozen=True, slots=True)
class Control:
    """A non-message frame. ``type`` is one of the names in ``docs/wire.md``.

    - ``gap``: history no longer reaches back to the client's cursor; ``after`` is what the
      client asked for, ``first`` the first seq that will follow.
    - ``reset``: the feed's epoch differs from the client's; seq restarts in ``epoch``.
    - ``ping``: a heartbeat; carries no information beyond "the path is alive".
    - ``close``: the server is about to end the stream, with ``reason`` (e.g. ``slow_consumer``).
    """

    type: str
    fields: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, **self.fields}

    def get(self, key: str, default: Any = None) -> Any:
        return self.fields.get(key, default)


Frame = Message | Control


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a client stands: the feed epoch it has seen and the last seq it delivered."""

    epoch: str | None = None
    seq: int = 0

    def advance(self, message: Message) -> Cursor:
        return Cursor(self.epoch, max(self.seq, message.seq))
