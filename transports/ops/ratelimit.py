"""Repeated client-caused errors folded into one summary line.

A misbehaving client (or a scanner) can cause thousands of identical rejections a second;
logging each would turn the log into a denial of service of its own. Per key (transport,
reason — both from fixed sets, so the table stays small) the first ``burst`` lines of each
``window`` seconds are logged; the rest are counted and reported in one ``suppressed`` line
when the window ends (a timer on the event loop, so the summary appears even if the flood
stops).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class _Window:
    start: float
    logged: int = 0
    suppressed: int = 0
    timer: asyncio.TimerHandle | None = None


class LogLimiter:
    def __init__(self, log: logging.Logger, burst: int = 5, window: float = 10.0) -> None:
        self.log, self.burst, self.window = log, burst, window
        self._windows: dict[tuple[str, ...], _Window] = {}

    def warn(self, key: tuple[str, ...], msg: str, *args: Any, extra: dict[str, Any]) -> None:
        now = time.monotonic()
        w = self._windows.get(key)
        if w is None or now - w.start >= self.window:
            if w is not None:
                self._summarise(key, w)
            w = self._windows[key] = _Window(now)
        if w.logged < self.burst:
            w.logged += 1
            self.log.warning(msg, *args, extra=extra)
            return
        w.suppressed += 1
        if w.timer is None:
            with contextlib.suppress(RuntimeError):  # no running loop: summarised later
                loop = asyncio.get_running_loop()
                w.timer = loop.call_later(
                    max(0.0, w.start + self.window - now), self._expire, key, w
                )

    def _expire(self, key: tuple[str, ...], w: _Window) -> None:
        if self._windows.get(key) is w:
            del self._windows[key]
        w.timer = None
        self._summarise(key, w)

    def _summarise(self, key: tuple[str, ...], w: _Window) -> None:
        if w.timer is not None:
            w.timer.cancel()
            w.timer = None
        if w.suppressed:
            count, w.suppressed = w.suppressed, 0
            self.log.warning(
                "%d more %s suppressed in %.0f s",
                count,
                " ".join(key),
                self.window,
                extra={
                    "event": "suppressed",
                    "transport": key[0],
                    "reason": key[1] if len(key) > 1 else None,
                    "count": count,
                    "window_s": self.window,
                },
            )

    def flush(self) -> None:
        """Report everything still counted (at shutdown)."""
        for key, w in list(self._windows.items()):
            self._summarise(key, w)
        self._windows.clear()
