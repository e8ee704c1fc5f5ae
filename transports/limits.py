"""Connection limits per transport and per client IP, and a token bucket for client frames.

**Connections** (:class:`ConnectionLimits`, an ASGI middleware): every streaming endpoint
(``/ws``, ``/sse``, ``/poll``, ``/mqtt``) holds a slot for as long as the ASGI call runs —
the WebSocket session, the SSE stream, the held poll. Beyond ``max_connections`` per
transport, or ``max_connections_per_ip`` from one client address per transport, the request is
refused ``503 too_many_connections`` (a WebSocket is accepted and closed ``4503``, the
documented form of every WebSocket refusal), with one log line; every admitted client keeps
its feed. A middleware, so the count wraps each handler whole and no protocol file has to
remember to release a slot. WebRTC peers live outside any request and are bounded by the
transport itself (``webrtc_max_peers``, ``webrtc_max_pending_per_ip``).

**Client frames** (:class:`TokenBucket`): the frames a client may send on a bidirectional
transport (WebSocket and data-channel messages: pings) are metered per connection:
``client_frame_rate`` per second on average, bursts of ``client_frame_burst``. A client beyond
that is closed ``rate_limited`` (WebSocket 4429, data channel ``{"type":"close"}``). The
``/mqtt`` bridge is not metered: a QoS 1 subscriber sends a PUBACK per message, so its
upstream rate follows the feed's; what those packets can do is the broker's to bound.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Awaitable, Generator
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from transports.errors import TransportError

log = logging.getLogger("transports.server")

# Path -> transport whose connections are counted (the streaming endpoints).
COUNTED = {"/ws": "ws", "/sse": "sse", "/poll": "poll", "/mqtt": "mqtt"}


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; :meth:`take` spends one."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = burst
        self.stamp = time.monotonic()

    def take(self) -> bool:
        if self.rate <= 0:
            return True  # unlimited
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class ConnectionLimits:
    """ASGI middleware counting open connections per transport and per (transport, IP)."""

    def __init__(self, app: ASGIApp, max_connections: int, max_per_ip: int) -> None:
        self.app = app
        self.max_connections, self.max_per_ip = max_connections, max_per_ip
        self.total: Counter[str] = Counter()
        self.per_ip: Counter[tuple[str, str]] = Counter()

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # A plain function: a held stream keeps a three-slot _Held instead of this
        # middleware's coroutine frame (~0.3 KB per idle connection, docs/fanout.md).
        transport = COUNTED.get(scope.get("path", "")) if scope["type"] != "lifespan" else None
        if transport is None:
            return self.app(scope, receive, send)
        return _Held(self, transport, scope, receive, send)

    def _admit(self, transport: str, scope: Scope) -> tuple[str, str] | TransportError:
        client = scope.get("client")
        ip = str(client[0]) if client else "?"
        key = (transport, ip)
        if self.total[transport] >= self.max_connections:
            detail = f"{self.max_connections} {transport} connections open"
        elif self.per_ip[key] >= self.max_per_ip:
            detail = f"{self.max_per_ip} {transport} connections open from {ip}"
        else:
            self.total[transport] += 1
            self.per_ip[key] += 1
            return key
        return TransportError("too_many_connections", detail)

    def _release(self, key: tuple[str, str]) -> None:
        self.total[key[0]] -= 1
        self.per_ip[key] -= 1
        if not self.per_ip[key]:
            del self.per_ip[key]

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, transport: str, error: TransportError
    ) -> None:
        app = scope.get("app")
        ctx = getattr(getattr(app, "state", None), "ctx", None)
        if ctx is not None and transport in ctx.stats:
            ctx.stats[transport].rejected += 1
        client = scope.get("client")
        where = f"{client[0]}:{client[1]}" if client else "?"
        log.warning("%s %s rejected %s: %s", transport, where, error.reason, error.detail)
        if scope["type"] == "http":
            await JSONResponse(error.body(), status_code=error.kind.status)(scope, receive, send)
        else:
            ws = WebSocket(scope, receive, send)
            offered = "mqtt" in scope.get("subprotocols", [])
            await ws.accept(subprotocol="mqtt" if transport == "mqtt" and offered else None)
            await ws.close(error.kind.ws_code, error.reason)


class _Held:
    """One counted ASGI call: takes its slot when awaited, gives it back when the wrapped
    call ends, however it ends (return, exception, cancellation, ``close()``).

    Hand-written rather than an ``async def`` with ``try/finally`` because a coroutine's frame
    stays allocated for the whole call, i.e. for every open stream; this object delegates
    ``send``/``throw``/``close`` to the app's coroutine the way ``await`` (``yield from``,
    PEP 380) drives any iterator, so what a stream holds here is three slots. No library
    offers it (``contextlib`` and ``asyncio`` wrappers are coroutines themselves). Nothing is
    counted before ``await``: a call that is never awaited holds no slot.
    """

    __slots__ = ("_args", "_inner", "_key", "_limits")

    def __init__(
        self, limits: ConnectionLimits, transport: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        self._limits = limits
        self._args: tuple[str, Scope, Receive, Send] | None = (transport, scope, receive, send)
        self._key: tuple[str, str] | None = None
        self._inner: Any = None

    def __await__(self) -> Generator[Any, Any, None]:
        assert self._args is not None, "awaited twice"
        transport, scope, receive, send = self._args
        self._args = None
        admitted = self._limits._admit(transport, scope)
        if isinstance(admitted, TransportError):
            return self._limits._refuse(scope, receive, send, transport, admitted).__await__()
        self._key = admitted
        try:
            self._inner = self._limits.app(scope, receive, send).__await__()
        except BaseException:
            self._end()
            raise
        return self

    def __iter__(self) -> _Held:
        return self

    def __next__(self) -> Any:
        return self.send(None)

    def send(self, value: Any) -> Any:
        try:
            return self._inner.send(value)
        except BaseException:  # StopIteration (the call returned) included
            self._end()
            raise

    def throw(self, *exc: Any) -> Any:
        try:
            return self._inner.throw(*exc)
        except BaseException:
            self._end()
            raise

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            self._end()

    def _end(self) -> None:
        if self._key is not None:
            self._limits._release(self._key)
            self._key = None
        self._inner = None
