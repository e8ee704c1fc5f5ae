"""What ``transport-lab follow`` prints: one line per message or event, and a summary.

Latency is only meaningful for a message published after this client connected. Anything
with ``seq <=`` the ``Connected`` event's ``last_seq`` was already in the server's history
(``--after N``, or messages published while the connection was being set up): it arrives
*replayed*, and ``received_at - sent_at`` is its age, not how long the transport took. Such
messages are shown with ``age=`` and counted as ``replayed``, never in the latency figures.
The same rule is used by the dashboard (``web/static/js/panel.js``).

Lines are written without wrapping (a pipe would otherwise be cut at 80 columns in the
middle of a dict); ``--json`` writes one JSON object per line instead.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import sys
import time
from collections import deque
from typing import Any, TextIO

from transports.channels import DEFAULT
from transports.client import Connected, Delivered, Event, FollowStats

KEEP = 100_000  # latencies kept for the summary's percentiles (the newest ones)


class FollowView:
    def __init__(self, *, json_lines: bool = False, quiet: bool = False, out: TextIO | None = None):
        self.json_lines, self.quiet = json_lines, quiet
        self.out = out or sys.stdout
        self.stats = FollowStats()
        self.replayed = 0
        self.latencies: deque[float] = deque(maxlen=KEEP)
        # last_seq of the current connection's Connected, per channel
        self.live_from: dict[str, int | None] = {}
        self.t0 = time.monotonic()

    def is_replayed(self, seq: int, channel: str = DEFAULT) -> bool:
        live_from = self.live_from.get(channel)
        return live_from is not None and seq <= live_from

    def show(self, event: Event) -> None:
        elapsed = time.monotonic() - self.t0
        if isinstance(event, Connected):
            self.live_from[event.channel] = event.last_seq
        if not isinstance(event, Delivered):
            self._event(elapsed, event)
            return
        m = event.message
        ms = (event.received_at - m.sent_at) * 1000
        replayed = self.is_replayed(m.seq, m.channel or DEFAULT)
        if replayed:
            self.replayed += 1
        else:
            self.latencies.append(ms)
        if self.quiet:
            return
        if self.json_lines:
            key = "age_ms" if replayed else "latency_ms"
            self._json(
                {"t": round(elapsed, 3), "event": "delivered", "channel": m.channel or DEFAULT,
                 "seq": m.seq, "topic": m.topic,
                 "sent_at": m.sent_at, "replayed": replayed, key: round(ms, 3), "data": m.data}
            )  # fmt: skip
            return
        timing = f"replayed age={_duration(ms)}" if replayed else f"latency={ms:.1f}ms"
        where = f"channel={m.channel} " if m.channel else ""
        self._line(
            f"{elapsed:8.3f}s {where}seq={m.seq} topic={m.topic} {timing} data={_short(m.data)}"
        )

    def _event(self, elapsed: float, event: Event) -> None:
        name = _snake(type(event).__name__)
        if self.json_lines:
            self._json({"t": round(elapsed, 3), "event": name, **dataclasses.asdict(event)})
            return
        fields = " ".join(f"{k}={v}" for k, v in dataclasses.asdict(event).items())
        extra = ""
        if isinstance(event, Connected) and event.last_seq is not None:
            extra = f" (live from seq {event.last_seq + 1}; older ones are replayed history)"
        self._line(f"{elapsed:8.3f}s {name}: {fields}{extra}")

    def summary(self) -> None:
        s = self.stats
        lat = sorted(self.latencies)
        # The first six keep the order of earlier releases: scripts grep for them.
        figures: dict[str, Any] = {
            "delivered": s.delivered, "duplicates": s.duplicates, "gaps": s.gaps,
            "missing": s.missing, "connects": s.connects, "disconnects": dict(s.disconnects),
            "live": s.delivered - self.replayed, "replayed": self.replayed,
        }  # fmt: skip
        if lat:
            figures["latency_p50_ms"] = round(statistics.median(lat), 2)
            figures["latency_max_ms"] = round(lat[-1], 2)
        if self.json_lines:
            self._json({"event": "summary", **figures})
        else:
            self._line(" ".join(f"{k}={v}" for k, v in figures.items()))

    def _line(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def _json(self, obj: dict[str, Any]) -> None:
        self._line(json.dumps(obj, separators=(",", ":"), default=str))


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def _duration(ms: float) -> str:
    if ms < 1000:
        return f"{ms:.0f}ms"
    if ms < 120_000:
        return f"{ms / 1000:.1f}s"
    return f"{ms / 60_000:.1f}min"


def _short(data: object, limit: int = 80) -> str:
    text = json.dumps(data, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
