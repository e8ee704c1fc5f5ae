"""Scrape ``/metrics`` into rows for pandas: what a Prometheus server does, in a notebook.

:func:`parse` uses ``prometheus_client``'s own text-format parser; :class:`Scraper` polls an
endpoint every ``interval`` seconds in the background and keeps ``(t, name, labels, value)``
rows, bounded by ``max_rows``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families


def parse(text: str, prefix: str = "transportlab_") -> list[tuple[str, dict[str, str], float]]:
    """Every sample of the families whose name starts with ``prefix``."""
    return [
        (sample.name, dict(sample.labels), float(sample.value))
        for family in text_string_to_metric_families(text)
        if family.name.startswith(prefix)
        for sample in family.samples
    ]


class Scraper:
    def __init__(
        self,
        url: str,
        headers: dict[str, str] | None = None,
        interval: float = 0.5,
        max_rows: int = 500_000,
    ) -> None:
        self.url, self.headers, self.interval, self.max_rows = (
            url,
            headers or {},
            interval,
            max_rows,
        )
        self.rows: list[dict[str, Any]] = []
        self.marks: list[tuple[float, str]] = []  # (t, label) of what was done when
        self.t0 = time.monotonic()
        self._task: asyncio.Task[None] | None = None

    def mark(self, label: str) -> None:
        self.marks.append((time.monotonic() - self.t0, label))

    async def scrape_once(self, http: httpx.AsyncClient) -> None:
        response = await http.get(self.url, headers=self.headers)
        response.raise_for_status()
        t = time.monotonic() - self.t0
        for name, labels, value in parse(response.text):
            if len(self.rows) < self.max_rows:
                self.rows.append({"t": t, "name": name, **labels, "value": value})

    async def _run(self) -> None:
        async with httpx.AsyncClient(timeout=5) as http:
            while True:
                await self.scrape_once(http)
                await asyncio.sleep(self.interval)

    async def __aenter__(self) -> Scraper:
        self.t0 = time.monotonic()
        self._task = asyncio.ensure_future(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
