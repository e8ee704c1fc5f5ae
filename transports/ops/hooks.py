"""What the server tells operations: who connected, who was refused, what was sent.

One :class:`Operations` per :class:`~transports.server.ServerContext`. It is fed at three
seams every transport already passes through, so no protocol handler carries logging code:

- :meth:`ServerContext.admit` → :meth:`Operations.admitted` opens a :class:`Conn` record and
  binds it to the connection's task through a context variable (asyncio copies the context
  into the tasks a handler starts, so the pump and the WebRTC peer task see it too);
- :class:`~transports.stats.TransportStats` calls :class:`TransportHooks` on connect,
  disconnect and every delivery (a context-variable read, two additions and one histogram
  observation per frame — no label lookups: each transport's histogram is bound once);
- :meth:`ServerContext.reject` → :meth:`Operations.rejected`, rate-limited per
  (transport, reason) into a summary line (:class:`~.ratelimit.LogLimiter`).

The feed's subscribe hook ties each subscription to its ``Conn``, so the admin view can close
one connection (:meth:`Operations.disconnect`).
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import HTTPConnection

from transports import codec
from transports.auth import Principal
from transports.errors import TransportError
from transports.feed import Subscription
from transports.message import Frame, Message
from transports.ops.metrics import Metrics
from transports.ops.ratelimit import LogLimiter

conn_log = logging.getLogger("transports.conn")
traffic_log = logging.getLogger("transports.traffic")

RECENT_DISCONNECTS = 100  # newest disconnects kept for the admin view
# Long polling opens a "connection" per request; its connect/disconnect lines go to DEBUG so
# a busy poller does not flood the log (its traffic is still in the traffic log).
QUIET = frozenset({"poll"})


@dataclass(slots=True, eq=False)
class Conn:
    """One client connection, from admission to disconnect."""

    id: str
    transport: str
    client: str
    principal: str
    path: str
    # A shared tuple rather than a list per connection (most name only the default channel).
    channels: tuple[str, ...] = ("default",)
    admitted_at: float = field(default_factory=time.time)
    opened_at: float | None = None
    frames: int = 0
    bytes: int = 0
    sub: Subscription | None = None

    def fields(self) -> dict[str, Any]:
        return {
            "conn": self.id,
            "transport": self.transport,
            "client": self.client,
            "principal": self.principal,
            "channels": self.channels,
        }

    def view(self, now: float) -> dict[str, Any]:
        return {
            **self.fields(),
            "path": self.path,
            "since": self.opened_at or self.admitted_at,
            "duration_s": round(now - (self.opened_at or self.admitted_at), 3),
            "frames": self.frames,
            "bytes": self.bytes,
            "disconnectable": self.sub is not None,
        }


CURRENT: contextvars.ContextVar[Conn | None] = contextvars.ContextVar("conn", default=None)


def url_path(conn: HTTPConnection) -> str:
    """``conn.url.path`` without building ``conn.url`` (a parsed URL kept on the request, for
    as long as a held poll lasts, and a ``urlsplit`` per request): the same escaping of
    ``?``, ``#`` and backslash that Starlette's ``URL`` applies to the ASGI path."""
    path: str = conn.scope["path"]
    return path.replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")


def client_of(conn: HTTPConnection) -> str:
    return f"{conn.client.host}:{conn.client.port}" if conn.client else "?"


class TransportHooks:
    """The :class:`~transports.stats.StatsHooks` of one transport."""

    def __init__(self, ops: Operations, transport: str) -> None:
        self.ops, self.transport = ops, transport
        self.lag = ops.metrics.lag_for(transport)
        self.level = logging.DEBUG if transport in QUIET else logging.INFO

    def opened(self) -> None:
        conn = CURRENT.get()
        if conn is None:
            return
        conn.opened_at = time.time()
        self.ops.connections[conn.id] = conn
        # Each long poll connects and disconnects: build the records' ``extra`` only for a
        # line that is logged (poll lines are DEBUG, so usually not).
        if not conn_log.isEnabledFor(self.level):
            return
        conn_log.log(
            self.level,
            "%s %s connect principal=%s",
            conn.transport,
            conn.client,
            conn.principal,
            extra={"event": "connect", **conn.fields()},
        )

    def ended(self, reason: str) -> None:
        conn = CURRENT.get()
        if conn is None:
            return
        now = time.time()
        self.ops.connections.pop(conn.id, None)
        duration = round(now - (conn.opened_at or conn.admitted_at), 3)
        record = {
            **conn.fields(),
            "reason": reason,
            "duration_s": duration,
            "bytes": conn.bytes,
            "frames": conn.frames,
        }
        self.ops.disconnects.appendleft({**record, "at": now})
        if not conn_log.isEnabledFor(self.level):
            return
        conn_log.log(
            self.level,
            "%s %s disconnect %s after %.1f s, %d frames, %d bytes",
            conn.transport,
            conn.client,
            reason,
            duration,
            conn.frames,
            conn.bytes,
            extra={"event": "disconnect", **record},
        )

    def owner(self) -> Conn | None:
        return CURRENT.get()

    def sent_one(self, nbytes: int, frame: Frame, owner: object = None) -> None:
        """The per-delivery path (pump, SSE, the MQTT bridge): kept to the minimum.
        ``owner``: the connection's record when the write runs in another task (the
        publisher's, on the WebSocket and SSE fast paths), whose context is not the
        connection's."""
        conn = owner if isinstance(owner, Conn) else CURRENT.get()
        if conn is not None:
            conn.bytes += nbytes
            conn.frames += 1
        if isinstance(frame, Message):
            now = time.time()
            self.lag.observe(now - frame.sent_at)
            if self.ops.traffic:
                self.ops.log_traffic("out", self.transport, conn, (frame,), now)

    def sent_message(self, nbytes: int, message: Message, owner: object) -> None:
        """The fan-out loop's direct write of ``message`` for ``owner`` (the connection's
        record, or None when it had none): :meth:`sent_one` without its type checks, and
        with the lag observed per run of deliveries (:meth:`LagHistogram.delivered`)."""
        conn = owner if isinstance(owner, Conn) else None
        if conn is not None:
            conn.bytes += nbytes
            conn.frames += 1
        if self.ops.traffic:
            now = time.time()
            self.lag.observe(now - message.sent_at)
            self.ops.log_traffic("out", self.transport, conn, (message,), now)
        else:
            self.lag.delivered(message, message.sent_at)

    def sent(self, nbytes: int, frames: Sequence[Frame]) -> None:
        conn = CURRENT.get()
        if conn is not None:
            conn.bytes += nbytes
            conn.frames += len(frames)
        now = time.time()
        for frame in frames:
            if isinstance(frame, Message):
                self.lag.observe(now - frame.sent_at)
        if self.ops.traffic:
            self.ops.log_traffic("out", self.transport, conn, frames, now)


class Operations:
    """Per-server operations state; ``ctx.ops``."""

    def __init__(self, *, traffic: bool = False, traffic_payload: bool = False) -> None:
        self.metrics = Metrics()
        self.traffic, self.traffic_payload = traffic, traffic_payload
        self.connections: dict[str, Conn] = {}
        self.disconnects: deque[dict[str, Any]] = deque(maxlen=RECENT_DISCONNECTS)
        self.limiter = LogLimiter(conn_log)
        self._ids = itertools.count(1)

    def hooks(self, transport: str) -> TransportHooks:
        return TransportHooks(self, transport)

    # ---- seams -----------------------------------------------------------------------------
    def admitted(self, transport: str, conn: HTTPConnection, principal: Principal) -> Conn:
        record = Conn(
            f"{transport}-{next(self._ids)}",
            transport,
            client_of(conn),
            principal.id,
            url_path(conn),
        )
        CURRENT.set(record)
        return record

    def named_channels(self, names: list[str]) -> None:
        """The channels a multi-channel connection asked for at admission (its log lines
        and the admin view name them; later subscribe frames are not tracked here)."""
        conn = CURRENT.get()
        if conn is not None:
            conn.channels = tuple(names)

    def subscribed(self, sub: Subscription) -> None:
        """The feed's subscribe hook: remember which subscription serves this connection."""
        conn = CURRENT.get()
        if conn is not None and conn.sub is None:
            conn.sub = sub
            # How much history this subscription replays (private to the feed; read once).
            replay = max(0, getattr(sub, "_replay_until", 0) - getattr(sub, "_replay_next", 1) + 1)
            if replay:
                self.metrics.resumes.labels(conn.transport).inc()
                self.metrics.replayed.labels(conn.transport).inc(replay)

    def rejected(self, transport: str, conn: HTTPConnection, error: TransportError) -> None:
        client = client_of(conn)
        if transport == "admin":
            self.metrics.admin_refusals.labels(error.reason).inc()
        self.limiter.warn(
            (transport, error.reason),
            "%s %s rejected %s: %s",
            transport,
            client,
            error.reason,
            error.detail,
            extra={
                "event": "reject",
                "transport": transport,
                "client": client,
                "principal": None,
                "path": url_path(conn),
                "reason": error.reason,
                "status": error.kind.status,
                "detail": error.detail,
            },
        )

    def published(self, source: str, message: Message, client: str) -> None:
        """A message entered the feed (``POST /api/publish``; client publishes later)."""
        self.metrics.client_publishes.labels(source).inc()
        if self.traffic:
            self.log_traffic("in", source, None, (message,), time.time(), client=client)

    # ---- admin -----------------------------------------------------------------------------
    def disconnect(self, conn_id: str) -> Conn:
        conn = self.connections.get(conn_id)
        if conn is None:
            raise TransportError("bad_param", f"no connection {conn_id[:80]!r}")
        if conn.sub is None:
            raise TransportError(
                "bad_param", f"{conn.transport} connections have no stream to close"
            )
        conn.sub.close("admin_disconnect")
        return conn

    # ---- traffic log -----------------------------------------------------------------------
    def log_traffic(
        self,
        direction: str,
        transport: str,
        conn: Conn | None,
        frames: Sequence[Frame],
        now: float,
        client: str | None = None,
    ) -> None:
        base: dict[str, Any] = {
            "event": "traffic",
            "direction": direction,
            "transport": transport,
            "client": conn.client if conn else client,
            "conn": conn.id if conn else None,
            "at": now,
        }
        for frame in frames:
            if not isinstance(frame, Message):
                continue
            _, size = codec.wire(frame)
            fields = {
                **base,
                "seq": frame.seq,
                "channel": frame.topic,
                "size": size,
                "sent_at": frame.sent_at,
                "lag_s": round(now - frame.sent_at, 6),
            }
            if self.traffic_payload:
                fields["payload"] = frame.data
            traffic_log.info(
                "%s %s %s seq=%d %d B",
                direction,
                transport,
                base["client"],
                frame.seq,
                size,
                extra=fields,
            )
