"""The one way in: every transport's connection or request passes :func:`admit_stream`.

It parses what the client asked for — the default channel at ``after``/``epoch`` (the
single-stream contract), or named ``channel`` parameters with one cursor each from a cursor
token (``cursor=`` or SSE's ``Last-Event-ID``) — then checks the Origin and runs the auth hook
(:meth:`ServerContext.admit`), then the ``on_subscribe`` hook for each channel. A refusal is
logged once and counted, here, and raised as the documented ``TransportError`` for the
transport to render in its protocol (see :mod:`transports.closing`).

:class:`Admitted` then opens the stream: the default feed's own subscription (unchanged
single-stream path), or a :class:`~transports.streams.MultiSubscription`. Long polling opens
nothing and reads :meth:`Admitted.read` instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from starlette.requests import HTTPConnection

from transports import rights
from transports.auth import Principal, refuse_url_token
from transports.channels import DEFAULT, decode_token, encode_token
from transports.errors import TransportError
from transports.feed import Subscription
from transports.hub import Channel
from transports.jwtauth import expires_in, verify
from transports.message import Control, Cursor, Frame, Message
from transports.params import check_known, parse_after, parse_epoch
from transports.streams import MultiSubscription

if TYPE_CHECKING:
    from transports.server import ServerContext


class Query(Protocol):
    def get(self, key: str, default: Any = None) -> Any: ...
    def getlist(self, key: str) -> list[str]: ...
    def __iter__(self) -> Any: ...


@dataclass(slots=True)
class Admitted:
    """What a client is allowed to have: its principal and channels with their cursors."""

    ctx: ServerContext
    transport: str
    conn: HTTPConnection
    principal: Principal
    after: int | None = None  # single-stream cursor (default channel)
    epoch: str | None = None
    channels: list[tuple[Channel, Cursor | None]] | None = None  # None = single stream
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def multi(self) -> bool:
        return self.channels is not None

    def reject(self, error: TransportError) -> TransportError:
        """Log and count a refusal found after admission (e.g. ``cursor_ahead``)."""
        self.ctx.reject(self.transport, self.conn, error)
        return error

    def open(self) -> Subscription | MultiSubscription:
        """Open the stream at the cursors; refusals are logged and counted, then raised.

        A principal whose token expires has its stream closed with ``token_expired`` then.
        """
        try:
            if self.channels is None:
                return expire_with_token(
                    self.ctx.feed.subscribe(self.after, self.epoch), self.principal
                )
            stream = open_multi(self.ctx, self.principal)
            try:
                for channel, cursor in self.channels:
                    stream.add(channel, cursor)
            except TransportError:
                stream.close()
                raise
            return expire_with_token(stream, self.principal)
        except TransportError as error:
            raise self.reject(error) from None

    def read(self, limit: int) -> tuple[list[Frame], list[Cursor | None]]:
        """Long polling: the frames after each cursor, and the cursors after them."""
        assert self.channels is not None
        frames: list[Frame] = []
        cursors: list[Cursor | None] = []
        for channel, cursor in self.channels:
            feed = channel.feed
            if cursor is None:  # live only: start at the newest seq
                cursor = Cursor(feed.epoch, feed.last_seq)
            batch = feed.read(cursor.seq, cursor.epoch, max(0, limit - len(frames)))
            seq = cursor.seq if cursor.epoch in (None, feed.epoch) else 0
            for frame in batch:
                if isinstance(frame, Message):
                    seq = frame.seq
                    frames.append(frame)
                else:
                    if frame.type == "gap":
                        seq = int(frame.get("first", 1)) - 1
                    elif frame.type == "reset":
                        seq = 0
                    frames.append(Control(frame.type, {**frame.fields, "channel": channel.name}))
            cursors.append(Cursor(feed.epoch, seq))
        return frames, cursors


class Closable(Protocol):
    def close(self, reason: str = ...) -> None: ...


S = TypeVar("S", bound=Closable)
_WATCHERS: set[asyncio.Task[None]] = set()
_TIMERS: dict[int, asyncio.TimerHandle] = {}  # id(stream) -> its expiry, for refresh()


def expire_with_token(stream: S, principal: Principal) -> S:
    """Close ``stream`` with ``token_expired`` when the principal's token expires."""
    old = _TIMERS.pop(id(stream), None)
    if old is not None:  # an in-band refresh replaces the earlier expiry
        old.cancel()
    left = expires_in(principal)
    if left is not None:
        handle = asyncio.get_running_loop().call_later(
            max(0.0, left), stream.close, "token_expired"
        )
        _TIMERS[id(stream)] = handle
        # The timer must not keep a closed stream alive until the token's expiry.
        closed = getattr(stream, "closed", None)
        if isinstance(closed, asyncio.Event):
            task = asyncio.ensure_future(_cancel_when(closed, handle))
            _WATCHERS.add(task)
            task.add_done_callback(_WATCHERS.discard)
    return stream


async def _cancel_when(closed: asyncio.Event, handle: asyncio.TimerHandle) -> None:
    await closed.wait()
    handle.cancel()
    for key, value in list(_TIMERS.items()):
        if value is handle:
            del _TIMERS[key]


async def refresh(ctx: ServerContext, stream: MultiSubscription, token: object) -> Principal:
    """In-band refresh on a bidirectional connection: ``{"type":"auth","token":T}``.

    The new token must be for the same ``sub`` and still grant every channel the connection
    holds; then it replaces the principal and its ``exp`` the expiry. Otherwise the refusal
    is an ``error`` frame and the old token (and its expiry) stay.
    """
    settings = ctx.config.jwt
    if settings is None:
        raise TransportError("bad_param", "this server does not use signed tokens")
    if not isinstance(token, str):
        raise TransportError("bad_message", "auth needs a token string")
    principal = verify(token, settings)
    if principal.id != stream.principal.id:
        raise TransportError("forbidden", "a refresh must be for the same sub")
    for name in stream.channels:
        channel = ctx.hub.find(name)
        if channel is not None:
            rights.require(principal, "subscribe", name, channel.options)
    stream.principal = principal
    expire_with_token(stream, principal)
    return principal


def open_multi(ctx: ServerContext, principal: Principal) -> MultiSubscription:
    return MultiSubscription(ctx.hub, principal, ctx.config.max_channels_per_connection)


def token_of(cursors: Iterable[Cursor | None]) -> str:
    return encode_token(list(cursors))


async def admit_stream(
    ctx: ServerContext,
    transport: str,
    conn: HTTPConnection,
    query: Mapping[str, str] | None = None,
    *,
    allowed: Iterable[str] = (),
    last_event_id: str | None = None,
) -> Admitted:
    """Parse the request's channels and cursors, admit the client, run ``on_subscribe``.

    ``query`` defaults to the URL's query; ``last_event_id`` is SSE's header (it wins over
    the cursor in the URL, which an EventSource keeps unchanged when it reconnects).
    """
    q: Any = conn.query_params if query is None else query
    try:
        # No token in the URL (auth.refuse_url_token says where it goes); a single-use
        # ticket is the URL-safe way for an EventSource (tickets.py).
        refuse_url_token(q)
        check_known(q, (*allowed, "channel", "cursor", "ticket"))
        if "channel" not in q:
            if "cursor" in q:
                raise TransportError("bad_param", "cursor= needs channel= parameters")
            if last_event_id is not None and last_event_id.strip():
                after = parse_after(last_event_id, "Last-Event-ID")
            else:
                after = parse_after(q.get("after"))
            epoch = parse_epoch(q.get("epoch"))
            principal = await ctx.admit(transport, conn)
            default = ctx.hub.find(DEFAULT)
            if default is not None:  # the single stream is the default channel: same rights
                rights.require(principal, "subscribe", DEFAULT, default.options)
            return Admitted(ctx, transport, conn, principal, after, epoch)
        names = [n for n in _getlist(q, "channel") if n != ""]
        if "after" in q or "epoch" in q:
            raise TransportError("bad_param", "with channel= the cursors go in cursor=")
        limit = ctx.config.max_channels_per_connection
        if len(names) > limit:
            raise TransportError("too_many_channels", f"{len(names)} > {limit} per connection")
        if len(set(names)) != len(names):
            raise TransportError("bad_channel", "a channel is named twice")
        raw = last_event_id if last_event_id and last_event_id.strip() else q.get("cursor")
        source = "Last-Event-ID" if raw is last_event_id else "cursor"
        cursors = decode_token(raw, len(names), source) if raw else [None] * len(names)
        principal = await ctx.admit(transport, conn)
        channels = []
        for name, cursor in zip(names, cursors, strict=True):
            channels.append((await ctx.hub.admit(principal, name), cursor))
        if any(ctx.hub.find(channel.name) is not channel for channel, _ in channels):
            # A full hub made room for a later name by evicting an earlier one of this very
            # request (new, so still idle): its closed feed would refuse the subscription as
            # `shutting_down`, which clients retry for ever.
            held = ctx.config.max_channels
            raise TransportError("too_many_channels", f"the server holds {held} channels")
        ctx.ops.named_channels(names)
        return Admitted(ctx, transport, conn, principal, channels=channels)
    except TransportError as error:
        ctx.reject(transport, conn, error)
        raise


def _getlist(q: Any, key: str) -> list[str]:
    getlist = getattr(q, "getlist", None)
    if getlist is not None:
        return list(getlist(key))
    value = q.get(key)
    return [] if value is None else [value]
