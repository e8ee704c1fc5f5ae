"""``transport-lab watch``: a watchdog following a server from outside over its transports.

Each transport is followed with its ordinary client and :func:`~transports.client.follow`,
live only (``after=None``). Three conditions raise an alert, per transport:

- ``silent``: no message delivered for longer than ``silent_after`` seconds;
- ``refused``: a connection attempt failed before the server said hello (refused, timed out,
  or a documented refusal such as ``too_many_connections``);
- ``latency``: a message arrived more than ``max_latency`` seconds after its ``sent_at``
  (the server's clock: meaningful on one machine or with synchronised clocks).

A condition fires once when it starts and sends ``recovered`` when a message arrives again
within the latency bound. Every event is one JSON line on stdout, is passed to ``--exec``
(JSON on stdin and in ``$TRANSPORT_LAB_EVENT``) and POSTed to ``--webhook``. The exit code
says how it went: 0 no alert, 1 alerts that all recovered, 2 an alert still active at exit.
Runs are bounded by ``duration`` and ``max_alerts``; ``HOOK_WORKERS`` deliveries to
``--exec``/``--webhook`` run at once, at most ``MAX_QUEUED`` events wait (more are dropped and
logged).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from transports.backoff import Backoff
from transports.client import Connected, Delivered, Disconnected, Reconnecting, follow
from transports.clients import server_info, subscriber

log = logging.getLogger("transports.watch")

HOOK_TIMEOUT = 10.0  # an --exec command or a webhook POST taking longer is abandoned
STOP_TIMEOUT = 5.0
HOOK_WORKERS = 4  # --exec / --webhook deliveries running at once
MAX_QUEUED = 100  # events waiting for them; more are dropped
CONDITIONS = ("silent", "refused", "latency")


@dataclass(slots=True)
class _State:
    last_heard: float
    active: dict[str, str] = field(default_factory=dict)  # condition -> detail
    said_hello: bool = False


@dataclass(slots=True)
class WatchSettings:
    url: str
    transports: list[str] | None = None  # None: every transport the server serves
    silent_after: float = 10.0
    max_latency: float | None = None
    exec_cmd: str | None = None
    webhook: str | None = None
    duration: float | None = None
    max_alerts: int | None = None


class Watch:
    def __init__(
        self, settings: WatchSettings, emit: Callable[[dict[str, Any]], None] | None = None
    ) -> None:
        self.s = settings
        self.emit = emit or _print
        self.states: dict[str, _State] = {}
        self.alerts = 0
        self.hooks_dropped = 0
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(MAX_QUEUED)
        self._workers: list[asyncio.Task[None]] = []
        self._done = asyncio.Event()

    # ---- events ----------------------------------------------------------------------------
    def _event(self, kind: str, transport: str, **fields: Any) -> dict[str, Any]:
        event = {"event": kind, "transport": transport, "url": self.s.url, "at": time.time()}
        event.update(fields)
        self.emit(event)
        return event

    def _raise(self, transport: str, condition: str, detail: str) -> None:
        state = self.states[transport]
        if condition in state.active:
            return
        state.active[condition] = detail
        self.alerts += 1
        self._notify(self._event("alert", transport, condition=condition, detail=detail))
        if self.s.max_alerts is not None and self.alerts >= self.s.max_alerts:
            self._done.set()

    def _clear(self, transport: str, conditions: tuple[str, ...] = CONDITIONS) -> None:
        state = self.states[transport]
        for condition in conditions:
            if condition in state.active:
                detail = state.active.pop(condition)
                self._notify(
                    self._event("recovered", transport, condition=condition, detail=detail)
                )

    def _notify(self, event: dict[str, Any]) -> None:
        if not (self.s.exec_cmd or self.s.webhook):
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:  # a flapping feed must not queue or fork without bound
            self.hooks_dropped += 1
            log.warning("%d events waiting for --exec/--webhook; event dropped", MAX_QUEUED)

    async def _hook_worker(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                await self._deliver(event)
            finally:
                self._queue.task_done()

    async def _deliver(self, event: dict[str, Any]) -> None:
        body = json.dumps(event)
        if self.s.exec_cmd:
            try:
                proc = await asyncio.create_subprocess_shell(
                    self.s.exec_cmd,
                    stdin=asyncio.subprocess.PIPE,
                    env={**os.environ, "TRANSPORT_LAB_EVENT": body},
                )
                try:
                    async with asyncio.timeout(HOOK_TIMEOUT):
                        await proc.communicate(body.encode() + b"\n")
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
                    log.warning("--exec took longer than %s s; killed", HOOK_TIMEOUT)
                else:
                    if proc.returncode:
                        log.warning("--exec exited with %s", proc.returncode)
            except OSError as exc:
                log.warning("--exec failed: %s", exc)
        if self.s.webhook:
            try:
                async with httpx.AsyncClient(timeout=HOOK_TIMEOUT) as http:
                    response = await http.post(self.s.webhook, json=event)
                if response.status_code >= 300:
                    log.warning("webhook answered %s", response.status_code)
            except httpx.HTTPError as exc:
                log.warning("webhook failed: %s", exc)

    # ---- following -------------------------------------------------------------------------
    async def _follow(self, name: str, info: dict[str, Any]) -> None:
        state = self.states[name]
        # Reconnect quickly (a watchdog wants to see recovery soon), and give up on a
        # connection that stays completely quiet (no data, no heartbeat) well after the
        # silence alert.
        backoff = Backoff(initial=0.2, maximum=2.0)
        idle = max(3 * self.s.silent_after, 10.0)
        while True:
            try:
                sub = await subscriber(name, self.s.url, info)
                async with contextlib.aclosing(
                    follow(sub, None, backoff=backoff, idle_timeout=idle)
                ) as events:
                    async for event in events:
                        self._on(name, state, event)
            except Exception as exc:  # a fatal refusal (e.g. unauthorized): keep watching
                self._raise(name, "refused", f"{type(exc).__name__}: {exc}"[:200])
                await asyncio.sleep(1.0)

    def _on(self, name: str, state: _State, event: Any) -> None:
        if isinstance(event, Connected):
            state.said_hello = True
            self._clear(name, ("refused",))
            self._event("connected", name, epoch=event.epoch, last_seq=event.last_seq)
        elif isinstance(event, Reconnecting):
            state.said_hello = False
        elif isinstance(event, Disconnected):
            self._event("disconnected", name, reason=event.reason)
            if not state.said_hello:
                self._raise(name, "refused", event.reason)
        elif isinstance(event, Delivered):
            state.last_heard = time.monotonic()
            latency = event.received_at - event.message.sent_at
            self._clear(name, ("silent", "refused"))
            if self.s.max_latency is not None and latency > self.s.max_latency:
                self._raise(name, "latency", f"{latency * 1000:.1f} ms > {self.s.max_latency} s")
            else:
                self._clear(name, ("latency",))

    async def _silence(self) -> None:
        tick = min(0.25, self.s.silent_after / 4)
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            for name, state in self.states.items():
                quiet = now - state.last_heard
                if quiet > self.s.silent_after:
                    self._raise(name, "silent", f"no message for {quiet:.1f} s")

    async def run(self) -> int:
        """Watch until ``duration`` or ``max_alerts``; return the exit code."""
        self._workers = [asyncio.ensure_future(self._hook_worker()) for _ in range(HOOK_WORKERS)]
        info = await self._info()
        if info is None:  # never answered within the duration
            await self._drain_hooks()
            self._event("summary", "server", alerts=self.alerts, active={"server": ["refused"]})
            return 2
        names = self.s.transports or list(info["transports"])
        now = time.monotonic()
        for name in names:
            self.states[name] = _State(now)
        self._event("watching", ",".join(names), silent_after=self.s.silent_after)
        tasks = [asyncio.create_task(self._follow(n, info), name=f"watch-{n}") for n in names]
        tasks.append(asyncio.ensure_future(self._silence()))
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.s.duration):
                    await self._done.wait()
        finally:
            for task in tasks:
                task.cancel()
            _, pending = await asyncio.wait(tasks, timeout=STOP_TIMEOUT)
            for task in pending:  # a client stuck in its cleanup: say where, do not wait
                log.warning("watch: %s did not stop in %s s", task.get_name(), STOP_TIMEOUT)
                task.print_stack(file=sys.stderr)
            await self._drain_hooks()
        active = {n: sorted(s.active) for n, s in self.states.items() if s.active}
        self._event("summary", ",".join(names), alerts=self.alerts, active=active)
        return 2 if active else (1 if self.alerts else 0)

    async def _drain_hooks(self) -> None:
        """Let queued deliveries finish (bounded), then stop the workers."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2 * HOOK_TIMEOUT):
                await self._queue.join()
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)

    async def _info(self) -> dict[str, Any] | None:
        """``/api/info``, retried until it answers (raising ``refused`` meanwhile)."""
        names = self.s.transports or ["server"]
        deadline = None if self.s.duration is None else time.monotonic() + self.s.duration
        while True:
            try:
                return await server_info(self.s.url, timeout=5.0)
            except (httpx.HTTPError, OSError, ValueError) as exc:
                for name in names:
                    self.states.setdefault(name, _State(time.monotonic()))
                    self._raise(name, "refused", f"/api/info: {type(exc).__name__}")
                if self._done.is_set() or (deadline is not None and time.monotonic() > deadline):
                    return None
                await asyncio.sleep(1.0)


def _print(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()
