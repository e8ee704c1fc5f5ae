"""One client's server side of a WebRTC connection: peer connection, ``feed`` channel, pump.

Life of a peer: the offer handler creates it; the client opens the data channel and sends
``{"type":"subscribe","after":N|null,"epoch":E|null}`` first; the peer opens a feed
subscription there and pumps frames as channel messages (one JSON text message per frame),
with an application ``{"type":"ping"}`` every ``webrtc_ping_interval`` seconds because SCTP
heartbeats (RFC 9260 §8.3) are invisible to the application. It ends when the pump ends
(slow consumer, shutdown), the channel or connection closes (ICE consent freshness, RFC 7675,
is what notices a vanished client), or the client sends something it should not; the peer
connection is always closed at the end.

Backpressure: ``RTCDataChannel.send`` only queues in aiortc. Above ``webrtc_high_water``
bytes of ``bufferedAmount`` the pump stops pulling from the subscription, so the feed's
bounded queue overflows and ends it as ``slow_consumer`` (like any other transport); if the
buffer stays above the mark for ``send_timeout`` seconds the peer is closed as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any, Protocol

from aiortc import RTCDataChannel, RTCPeerConnection

from transports import closing, codec, inbound, rights, strictjson
from transports.admission import expire_with_token, open_multi
from transports.auth import ANONYMOUS, Principal
from transports.channels import DEFAULT
from transports.errors import TransportError
from transports.feed import Subscription
from transports.message import Control, Frame
from transports.params import parse_epoch
from transports.server import ServerContext, answer_client_frame, pump
from transports.streams import MultiSubscription
from transports.webrtc import LABEL

log = logging.getLogger("transports.webrtc")


class PeerOwner(Protocol):
    """What a peer needs of the transport that made it (``server.WebRTCTransport``); a
    protocol so this module does not import the one that imports it."""

    @property
    def name(self) -> str: ...

    @property
    def ctx(self) -> ServerContext: ...

    @property
    def peers(self) -> set[Peer]: ...


class ChannelGone(Exception):
    """The data channel is no longer open."""


def is_single_stream(text: str | bytes) -> bool:
    """A first message ``{"type":"subscribe"}`` without ``"channel"`` opens the single stream;
    anything else opens a multi-channel connection (``transports/inbound.py``)."""
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        return True  # parse_subscribe reports it
    return not (isinstance(obj, dict) and ("channel" in obj or obj.get("type") != "subscribe"))


def parse_subscribe(text: str | bytes) -> tuple[int | None, str | None]:
    """Validate the client's first channel message; return its cursor ``(after, epoch)``."""
    obj = strictjson.loads(text)  # bad_message unless strict JSON
    if not isinstance(obj, dict) or obj.get("type") != "subscribe":
        raise TransportError("bad_param", 'first channel message must be {"type":"subscribe"}')
    unknown = sorted(set(obj) - {"type", "after", "epoch"})
    if unknown:
        raise TransportError("bad_param", f"unknown field(s): {', '.join(unknown)}")
    after = obj.get("after")
    if after is not None and (
        not isinstance(after, int) or isinstance(after, bool) or not 0 <= after < 10**18
    ):
        raise TransportError("bad_cursor", f"after={str(after)[:40]!r} is not a non-negative int")
    epoch = obj.get("epoch")
    if epoch is not None and not isinstance(epoch, str):
        raise TransportError("bad_param", "epoch must be a string")
    return after, parse_epoch(epoch)


class Peer:
    """Server side of one client's WebRTC connection (see the module docstring)."""

    def __init__(
        self,
        transport: PeerOwner,
        pc: RTCPeerConnection,
        client: str,
        ip: str = "?",
        principal: Principal = ANONYMOUS,
    ) -> None:
        self.transport = transport
        self.ip = ip
        self.principal = principal
        self.subscribed = False  # pending until the client's subscribe message is accepted
        self.ctx = transport.ctx
        self.pc = pc
        self.client = client
        self.channel: RTCDataChannel | None = None
        self.task: asyncio.Task[Any] | None = None
        self._inbox: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        self._stop_reason: str | None = None
        self._sub: Subscription | MultiSubscription | None = None
        self._drained = asyncio.Event()  # set by the channel's "bufferedamountlow"
        pc.on("datachannel", self._on_channel)
        pc.on("connectionstatechange", self._on_state)

    def __repr__(self) -> str:
        return f"<Peer {self.client} {self.pc.connectionState}>"

    # ---- aiortc callbacks (run on the loop, must not block) ----------------------------
    def _on_channel(self, channel: RTCDataChannel) -> None:
        if self.channel is not None or channel.label != LABEL:
            log.warning("webrtc %s: unexpected channel %r closed", self.client, channel.label)
            channel.close()
            return
        self.channel = channel
        channel.bufferedAmountLowThreshold = self.ctx.config.webrtc_high_water // 2
        channel.on("bufferedamountlow", self._drained.set)
        channel.on("message", self._inbox.put_nowait)
        channel.on("close", lambda: self._inbox.put_nowait(None))

    def _on_state(self) -> None:
        if self.pc.connectionState in ("failed", "closed"):
            self._inbox.put_nowait(None)

    # ---- lifecycle ---------------------------------------------------------------------
    def stop(self, reason: str) -> None:
        """Ask the peer to end (e.g. server shutdown, a test cutting the connection)."""
        if self._stop_reason is None:
            self._stop_reason = reason
        self._inbox.put_nowait(None)

    async def run(self) -> None:
        cfg, stats = self.ctx.config, self.ctx.stats[self.transport.name]
        sub: Subscription | MultiSubscription | None = None
        reason = "closed"
        opened = False
        tasks: list[asyncio.Task[Any]] = []
        try:
            try:
                async with asyncio.timeout(cfg.webrtc_open_timeout):
                    first = await self._inbox.get()
            except TimeoutError:
                reason = "open_timeout"
                return
            if first is None:
                reason = self._stop_reason or "client_gone"
                return
            try:
                if len(first) > cfg.max_frame_bytes:
                    raise TransportError("too_large", f"{len(first)} bytes")
                if is_single_stream(first):
                    after, epoch = parse_subscribe(first)
                    default = self.ctx.hub.find(DEFAULT)
                    if default is not None:  # same rights as the default channel's
                        rights.require(self.principal, "subscribe", DEFAULT, default.options)
                    sub = self._sub = self.ctx.feed.subscribe(after, epoch)
                    expire_with_token(sub, self.principal)
                else:  # a multi-channel connection: the first frame is its first request
                    sub = self._sub = open_multi(self.ctx, self.principal)
                    expire_with_token(sub, self.principal)
                    refused = await inbound.handle(self.ctx, sub, first)
                    if refused is not None:
                        raise TransportError(refused, "first channel message")
            except TransportError as error:
                stats.refuse(error.reason)
                log.warning("webrtc %s rejected %s: %s", self.client, error.reason, error.detail)
                self._tell(error.reason)
                reason = error.reason
                return
            stats.opened()
            opened = self.subscribed = True
            tasks = [
                asyncio.ensure_future(pump(sub, self._send_frame, stats)),
                asyncio.ensure_future(self._read()),
            ]
            heartbeat = asyncio.ensure_future(self._heartbeat())
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                heartbeat.cancel()
                tasks.append(heartbeat)
            finished = done.pop()
            exc = finished.exception()
            if isinstance(exc, TimeoutError):
                reason = "send_timeout"
            elif isinstance(exc, ChannelGone):
                reason = self._stop_reason or "client_gone"
            elif exc is not None:
                raise exc
            else:
                reason = finished.result()
            if closing.told(reason):
                self._tell(reason)
        finally:
            if sub is not None:
                sub.close()
            if opened:
                stats.ended(reason)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._close(reason)

    async def _close(self, reason: str) -> None:
        channel = self.channel
        if channel is not None and channel.readyState == "open" and channel.bufferedAmount:
            # Give a close frame a moment to leave before the association is torn down.
            channel.bufferedAmountLowThreshold = 0
            self._drained.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.5):
                    await self._drained.wait()
        with contextlib.suppress(Exception):
            await self.pc.close()
        self.transport.peers.discard(self)
        log.info("webrtc %s closed: %s", self.client, reason)

    # ---- sending -----------------------------------------------------------------------
    def _tell(self, reason: str) -> None:
        channel = self.channel
        if channel is not None and channel.readyState == "open":
            channel.send(codec.encode(Control("close", {"reason": reason})))

    async def _send_frame(self, frame: Frame, text: str) -> None:
        channel = self.channel
        if channel is None or channel.readyState != "open":
            raise ChannelGone
        high = self.ctx.config.webrtc_high_water
        if channel.bufferedAmount > high:
            # Stop pulling from the subscription while the SCTP queue drains; if the client
            # stays behind the feed queue overflows and closes the subscription for us.
            async with asyncio.timeout(self.ctx.config.send_timeout):
                while channel.bufferedAmount > channel.bufferedAmountLowThreshold:
                    if channel.readyState != "open":
                        raise ChannelGone
                    if self._sub is not None and self._sub.closed_reason is not None:
                        return  # overflowed meanwhile: the pump ends on its next pull
                    self._drained.clear()
                    # Re-check the subscription and channel state at least every 100 ms.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.1):
                            await self._drained.wait()
        channel.send(text)

    async def _heartbeat(self) -> None:
        interval = self.ctx.config.webrtc_ping_interval
        while interval > 0:
            await asyncio.sleep(interval)
            channel = self.channel
            high = self.ctx.config.webrtc_high_water
            # Skipped while backlogged: queued data already proves the path to the client.
            if (
                channel is not None
                and channel.readyState == "open"
                and channel.bufferedAmount <= high
            ):
                channel.send('{"type":"ping"}')

    async def _read(self) -> str:
        """Later channel messages: only ``{"type":"ping"}`` is allowed (answered with pong)."""
        channel = self.channel
        assert channel is not None
        bucket = self.ctx.frame_bucket()
        while True:
            raw = await self._inbox.get()
            if raw is None:
                raise ChannelGone
            if isinstance(self._sub, MultiSubscription):
                if bucket is not None and not bucket.take():
                    return "rate_limited"
                refused = await inbound.handle(self.ctx, self._sub, raw)
                if refused is not None:
                    return refused
                continue
            pong, error = answer_client_frame(raw, self.ctx.config.max_frame_bytes, bucket)
            if pong is None:
                return error or "bad_param"
            if channel.readyState == "open":
                channel.send(pong)
