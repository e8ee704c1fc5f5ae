"""``transport-lab serve --faults``: one process that can restart its own feed server.

A workshop wants to see what a real server restart does to each transport: every client
reconnects, and with in-memory history the feed comes back with a new epoch (seq restarts at
1, each client is told by a ``reset``), while with ``--history sqlite:///…`` the epoch and
seq survive and every client resumes with nothing lost. uvicorn has no "restart the app"
(its ``--reload`` re-executes the whole process, which would take the fault proxies with it),
so this module runs uvicorn servers one after another on the same port in one event loop:

1. The fault proxies (:class:`~transports.chaos.fault_api.FaultLab`) start first and stay up
   for the life of the process: the browser connects through them, so across a restart its
   connections drop and come back on the same URLs, like through a real load balancer.
2. ``POST /api/faults/server/restart`` (answered ``202`` at once) sets the running server's
   ``should_exit``. uvicorn stops accepting, our :class:`~transports.live.Server` drains the
   feed (every stream gets its documented ``shutting_down`` close), the app's lifespan
   shutdown runs, and a fresh app — new :class:`~transports.feed.Feed`, new history object,
   new publisher — is started on the same port. Bounded: uvicorn waits at most its graceful
   timeout (3 s) for open requests; if the old server has not finished ``stop_timeout`` s
   after the request it is forced to exit; startup has the components' own timeouts and a
   failed startup ends the process (uvicorn exits with status 3) rather than hanging.
3. The managed MQTT broker is started here, before the first app, and handed to every app as
   an external broker (``mqtt_url``), as the chaos rig does. It is *kept* across restarts:
   in a deployment the broker is its own service and does not restart with the feed server,
   and keeping it shows MQTT's own resume — browser sessions (clean start off) survive, the
   broker queues what the new server publishes, and the broker's fault proxy keeps pointing
   at the same port. A restarted broker is a different fault (``chaos`` scenario
   ``broker_restart``).

Every phase is logged (``transports.chaos.supervisor``) and the last restart's figures are in
``GET /api/faults`` under ``"server"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

from starlette.applications import Starlette

from transports.chaos import fault_api
from transports.chaos.fault_api import lab_for
from transports.config import ServerConfig
from transports.live import Server, uvicorn_config

log = logging.getLogger("transports.chaos.supervisor")
RESTART_PATH = "/api/faults/server/restart"


class _Server(Server):
    """Our uvicorn server with an event for "listening" (uvicorn only has a bool)."""

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.serving = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.serving.set()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # Stop listening first: the base class drains the feed before uvicorn closes its
        # listeners, and a client reconnecting in between would reach this dying server,
        # be told `shutting_down` again and count one more reconnect. Refused instead, it
        # backs off and finds the fresh server.
        for server in self.servers:
            server.close()
        await super().shutdown(sockets)


class Supervisor:
    """The fault lab plus a restartable feed server on ``host:port`` (see module docstring).

    ``build(names, config)`` makes each app (``transports.app.build_app``: feed + dashboard).
    """

    def __init__(
        self,
        host: str,
        port: int,
        names: Sequence[str],
        config: ServerConfig,
        build: Callable[[Sequence[str], ServerConfig], Starlette] | None = None,
        stop_timeout: float = 10.0,
    ) -> None:
        if build is None:
            from transports.app import build_app

            build = build_app
        self.host, self.port, self.names = host, port, list(names)
        self.build = build
        self.stop_timeout = stop_timeout
        self.lab, self.config = lab_for(host, port, self.names, config)
        self.broker: Any = None
        self.server: Server | None = None
        self.restarts = 0
        self.last_restart: dict[str, Any] | None = None
        self._requested_at: float | None = None  # a restart is under way since then
        self._epoch_before: str | None = None
        self._stopped_in: float | None = None
        self._stopping = False

    # ---- what GET /api/faults shows, what POST .../server/restart does --------------------
    def epoch(self) -> str | None:
        ctx = getattr(getattr(getattr(self.server, "config", None), "app", None), "state", None)
        feed = getattr(getattr(ctx, "ctx", None), "feed", None)
        return getattr(feed, "epoch", None)

    def describe(self) -> dict[str, Any]:
        durable = (self.config.history_url or "memory://").startswith("sqlite")
        return {
            "restart_url": RESTART_PATH,
            "restarting": self._requested_at is not None,
            "restarts": self.restarts,
            "epoch": self.epoch(),
            "history": "sqlite: epoch and seq survive a restart"
            if durable
            else "memory: a restart starts a new epoch",
            "broker": "kept across restarts" if self.broker is not None else None,
            "last_restart": self.last_restart,
        }

    def request_restart(self) -> dict[str, Any]:
        """Ask the running server to stop; :meth:`run` starts a fresh one. Idempotent while a
        restart is under way."""
        server = self.server
        if server is not None and self._requested_at is None and not self._stopping:
            self._requested_at = time.monotonic()
            self._epoch_before = self.epoch()
            log.warning(
                "restart requested: stopping the server on %s:%d (epoch %s)",
                self.host,
                self.port,
                self._epoch_before,
            )
            server.should_exit = True
            asyncio.get_running_loop().call_later(self.stop_timeout, self._force, server)
        return self.describe()

    def _force(self, server: Server) -> None:
        if server is self.server and self._stopped_in is None and self._requested_at:
            log.error("server still stopping after %.0f s: forcing it", self.stop_timeout)
            server.force_exit = True

    def stop(self) -> None:
        """End :meth:`run` (SIGINT/SIGTERM): stop the server, do not start another."""
        self._stopping = True
        if self.server is not None:
            self.server.should_exit = True

    # ---- the loop ------------------------------------------------------------------------
    async def run(self) -> None:
        """Serve until stopped, restarting the server whenever asked."""
        loop = asyncio.get_running_loop()
        signals = _handle_signals(loop, self.stop)
        try:
            await self._start_broker()
            await self.lab.start(broker_url=self._broker_url())
            self.lab.restart, self.lab.server_state = self.request_restart, self.describe
            while not self._stopping:
                server = self._new_server()
                self.server = server
                announce = asyncio.ensure_future(self._announce(server))
                await server.serve()
                announce.cancel()
                if self._requested_at is None:
                    break  # stopped by a signal (uvicorn handled it while serving)
                self._stopped_in = time.monotonic() - self._requested_at
                log.info("server stopped in %.2f s; starting a fresh one", self._stopped_in)
        finally:
            self.server = None
            await self.lab.stop()
            if self.broker is not None:
                await self.broker.close()
            for sig in signals:
                loop.remove_signal_handler(sig)

    def _new_server(self) -> _Server:
        app = self.build(self.names, self.config)
        app.router.routes[:0] = fault_api.routes(self.lab)
        return _Server(uvicorn_config(app, self.host, self.port, self.config))

    async def _announce(self, server: _Server) -> None:
        """Once a restarted server serves, log and record how long the restart took."""
        await server.serving.wait()
        if self._requested_at is None:
            return  # the first start
        took = time.monotonic() - self._requested_at
        self.restarts += 1
        self.last_restart = {
            "stopped_s": round(self._stopped_in or 0.0, 3),
            "serving_again_s": round(took, 3),
            "epoch_before": self._epoch_before,
            "epoch_after": self.epoch(),
        }
        self._requested_at = self._stopped_in = None
        log.warning("restart %d done: %s", self.restarts, self.last_restart)

    async def _start_broker(self) -> None:
        if "mqtt" not in self.names or self.config.mqtt_url:
            return  # no MQTT, or an external broker someone else runs
        from transports.mqtt.choose import open_broker

        broker = open_broker(self.config)
        await broker.start()
        self.broker = broker
        # The apps use it as an external broker, so a server restart leaves it running.
        # The bridge's credentials travel in the URL; amqtt speaks MQTT 3.1.1 only.
        self.config = self.config.replace(
            mqtt_url=broker.bridge_url + ("" if broker.mqtt5 else "?protocol=3.1.1")
        )
        log.info("MQTT broker %s on %s (kept across server restarts)", broker.kind, broker.url)

    def _broker_url(self) -> str | None:
        return self.config.mqtt_url.split("?")[0] if self.config.mqtt_url else None


def _handle_signals(loop: asyncio.AbstractEventLoop, stop: Callable[[], None]) -> list[int]:
    """SIGINT/SIGTERM end the supervisor cleanly. While a server runs, uvicorn handles them
    itself and re-raises them when it is done; they then reach ``stop`` here, so the loop does
    not start another server and the ``finally`` of :meth:`Supervisor.run` is not cancelled."""
    handled: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop)
            handled.append(sig)
    return handled
