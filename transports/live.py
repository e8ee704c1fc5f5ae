"""Run the server in-process on a free loopback port, in a background thread.

Used by the tests, the notebooks and the lab. Modelled on httpx's live-server test fixture:
``start()``, ``stop()`` and ``restart()`` (same port, so clients reconnect to the same URL).
The feed lives on the server's own event loop; :meth:`LiveServer.publish` hops onto it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

import uvicorn

from transports.auth import Authenticator, allow_anonymous
from transports.config import ServerConfig
from transports.message import Message
from transports.netutil import free_port
from transports.protocols import protocol_classes
from transports.server import ServerContext, create_app

__all__ = ["LiveServer", "Server", "free_port", "uvicorn_config"]


class ClientErrorLog(logging.Filter):
    """One warning line, no traceback, for the client-caused errors uvicorn logs with one.

    uvicorn's WebSocket protocol closes a text frame that is not UTF-8 with 1007 (RFC 6455
    §8.1) — right — but logs it with ``logger.exception``: a client could fill the log with
    tracebacks. The project's rule is one line per client error.
    """

    MESSAGES = frozenset({"Invalid UTF-8 sequence received from client."})

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.msg in self.MESSAGES:
            exc = record.exc_info[1]
            record.msg = f"{record.msg} Closed 1007. ({type(exc).__name__}: {str(exc)[:120]})"
            record.args = None
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def _install_log_filter() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, ClientErrorLog) for f in logger.filters):
        logger.addFilter(ClientErrorLog())


def uvicorn_config(
    app: Any, host: str, port: int, cfg: ServerConfig, **extra: Any
) -> uvicorn.Config:
    """The uvicorn settings every entry point uses, so measurements match what `serve` runs."""
    _install_log_filter()
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        ws_ping_interval=cfg.ws_ping_interval,
        ws_ping_timeout=cfg.ws_ping_timeout,
        # uvicorn negotiates permessage-deflate unless told otherwise: state it explicitly.
        ws_per_message_deflate=cfg.ws_compression,
        ws_max_size=cfg.max_frame_bytes,
        timeout_graceful_shutdown=3,
        # X-Forwarded-For from any loopback client would let it pick its address (and so
        # escape per-IP limits); behind a real proxy, enable it there explicitly.
        proxy_headers=False,
        ssl_certfile=cfg.tls_certfile,
        ssl_keyfile=cfg.tls_keyfile,
        **protocol_classes(cfg),
        **extra,
    )


class Server(uvicorn.Server):
    """uvicorn's server, ending the feed's streams before uvicorn waits for them to finish.

    uvicorn stops accepting, then waits up to ``timeout_graceful_shutdown`` for open responses
    to complete, and only then runs the lifespan shutdown. Endless responses (SSE, held polls,
    WebSocket pumps) would each wait out that timeout; :meth:`ServerContext.drain` ends them
    first, so a stop is quick and every client sees a documented close.
    """

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        ctx = getattr(getattr(self.config.app, "state", None), "ctx", None)
        if ctx is not None:
            await ctx.drain()
        await super().shutdown(sockets)


class LiveServer:
    def __init__(
        self,
        transports: Sequence[str] = ("ws", "sse", "poll"),
        config: ServerConfig | None = None,
        auth: Authenticator = allow_anonymous,
        host: str = "127.0.0.1",
        port: int | None = None,
        app_factory: Any = create_app,
    ) -> None:
        # app_factory(transports=, config=, auth=) builds the app, e.g. app.build_app for the
        # dashboard.
        self.app_factory = app_factory
        self.transports = tuple(transports)
        self.config = config or ServerConfig()
        # Fixed up front, so it survives restart() (a new app, a new context).
        if self.config.admin_token is None:
            self.config = self.config.replace(admin_token=secrets.token_urlsafe(32))
        self.auth = auth
        self.host = host
        self.port = port or free_port(host)
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self.app: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.config.tls_certfile else "http"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        scheme = "wss" if self.config.tls_certfile else "ws"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def admin_token(self) -> str:
        assert self.config.admin_token is not None
        return self.config.admin_token

    @property
    def admin_headers(self) -> dict[str, str]:
        """Headers for write/admin requests (``/api/publish``, ``/api/faults/*``, ...)."""
        return {"Authorization": f"Bearer {self.admin_token}"}

    @property
    def ctx(self) -> ServerContext:
        ctx: ServerContext = self.app.state.ctx
        return ctx

    def start(self, timeout: float = 15.0) -> LiveServer:
        app = self.app_factory(transports=self.transports, config=self.config, auth=self.auth)
        server = Server(uvicorn_config(app, self.host, self.port, self.config))
        self._server = server

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            await server.serve()

        def run() -> None:
            # asyncio.run cancels what is left at exit (e.g. sse-starlette's per-thread
            # shutdown watcher), so a stopped server leaves no pending task behind.
            asyncio.run(main())

        self._thread = threading.Thread(target=run, name=f"live-server-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on port {self.port} did not start")
            time.sleep(0.01)
        self.app = app
        return self

    def stop(self, timeout: float = 15.0) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout)
        self._server = self._thread = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def call(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` on the server's loop and return its result."""
        assert self._loop is not None
        fut: Future[Any] = Future()

        def run() -> None:
            try:
                fut.set_result(fn(*args))
            except BaseException as exc:
                fut.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        return fut.result(10)

    def publish(self, data: Any, topic: str = "ticker") -> Message:
        msg: Message = self.call(self.ctx.feed.publish, data, topic)
        return msg

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
