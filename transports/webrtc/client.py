"""WebRTC data-channel subscriber on aiortc.

Each :meth:`WebRTCSubscriber.stream` call is one connection: a new ``RTCPeerConnection``,
the ``feed`` data channel with the chosen reliability, the offer POSTed to the server
(``httpx``), the answer applied, the channel opened (within ``open_timeout``), the cursor sent
as the first channel message, then one frame per channel message. A reconnect is simply a new
``stream()`` — new signalling with the cursor — which ``follow()`` does.

Channel options (RFC 8831 §6.1, RFC 8832 §5.1): ``ordered=False`` lets messages overtake each
other; ``max_retransmits`` or ``max_packet_life_time`` (ms; at most one of them) make the
channel partially reliable, so messages may be lost. ``follow()`` then reports overtaken
messages as duplicates and missing ones as gaps — the lesson of partial reliability.

The server sends ``{"type":"ping"}`` every few seconds; each is yielded as a ``Control`` so
``follow()``'s idle watchdog hears a quiet but live connection.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import httpx
from aiortc import RTCDataChannel, RTCPeerConnection, RTCSessionDescription

from transports import codec
from transports.client import ConnectionLost
from transports.errors import KINDS, TransportError, from_response
from transports.message import Control, Cursor, Frame
from transports.publishing import FrameLink, FramePublisher
from transports.tls import client_context
from transports.webrtc import LABEL, ice


class WebRTCSubscriber:
    name = "webrtc"

    def __init__(
        self,
        url: str,
        *,
        ordered: bool = True,
        max_retransmits: int | None = None,
        max_packet_life_time: int | None = None,
        open_timeout: float = 10.0,
        loopback_only: bool = True,
        stun: Sequence[str] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        if max_retransmits is not None and max_packet_life_time is not None:
            # RFC 8831 §6.1: a channel is reliable, or limited by count, or by time.
            raise ValueError("set at most one of max_retransmits and max_packet_life_time")
        self.url = url
        self.ordered = ordered
        self.max_retransmits = max_retransmits
        self.max_packet_life_time = max_packet_life_time
        self.open_timeout = open_timeout
        self.loopback_only = loopback_only
        self.stun = tuple(stun)
        self.headers = headers or {}
        self.pc: RTCPeerConnection | None = None  # the current connection, for tests/probes

    @classmethod
    def for_server(cls, base_url: str, info: dict[str, Any], **options: Any) -> WebRTCSubscriber:
        """Build from the server's ``/api/info`` (see :func:`transports.clients.subscriber`)."""
        entry = info["transports"]["webrtc"]
        options.setdefault("loopback_only", entry.get("loopback_only", True))
        options.setdefault("stun", entry.get("stun", ()))
        return cls(entry["url"], **options)

    def stream(self, after: int | None, epoch: str | None) -> AsyncIterator[Frame]:
        first = {"type": "subscribe", "after": after, "epoch": epoch}
        return self._stream([json.dumps(first)])

    def stream_channels(self, cursors: Mapping[str, Cursor | None]) -> AsyncIterator[Frame]:
        """One subscribe frame per channel (a frame with ``channel`` makes the connection
        multi-channel, ``docs/wire.md``); a ping when there is no channel yet."""
        frames = [
            json.dumps(
                {
                    "type": "subscribe",
                    "channel": name,
                    "after": None if c is None else c.seq,
                    "epoch": None if c is None else c.epoch,
                }
            )
            for name, c in cursors.items()
        ]
        return self._stream(frames or ['{"type":"ping"}'])

    def publisher(self) -> FramePublisher:
        return FramePublisher(self.name, self._open_link)

    async def _open_link(self) -> FrameLink:
        link = DataChannelLink(*await self._open())
        return link

    async def _open(
        self,
    ) -> tuple[RTCPeerConnection, RTCDataChannel, asyncio.Queue[str | bytes | None]]:
        pc = RTCPeerConnection(ice.configuration(self.stun))
        self.pc = pc
        inbox: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        opened = asyncio.Event()
        try:
            channel = pc.createDataChannel(
                LABEL,
                ordered=self.ordered,
                maxRetransmits=self.max_retransmits,
                maxPacketLifeTime=self.max_packet_life_time,
            )
            channel.on("open", opened.set)
            channel.on("message", inbox.put_nowait)
            channel.on("close", lambda: inbox.put_nowait(None))

            @pc.on("connectionstatechange")
            def _state() -> None:
                if pc.connectionState in ("failed", "closed"):
                    inbox.put_nowait(None)

            with ice.loopback_only(self.loopback_only):
                await pc.setLocalDescription(await pc.createOffer())
            local = pc.localDescription
            assert local is not None
            answer = await self._signal(local.sdp)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
            try:
                async with asyncio.timeout(self.open_timeout):
                    await opened.wait()
            except TimeoutError:
                raise ConnectionLost(f"channel not open after {self.open_timeout}s") from None
        except BaseException:
            await pc.close()
            raise
        return pc, channel, inbox

    async def _stream(self, first: list[str]) -> AsyncIterator[Frame]:
        pc, channel, inbox = await self._open()
        try:
            for text in first:
                channel.send(text)
            while True:
                raw = await inbox.get()
                if raw is None:
                    raise ConnectionLost(f"peer {pc.connectionState}, channel closed")
                frame = codec.decode(raw)
                if isinstance(frame, Control) and frame.type == "close":
                    reason = str(frame.get("reason", "closed"))
                    if reason in KINDS:
                        raise TransportError(reason, "closed by the server")
                    raise ConnectionLost(reason)
                yield frame
        finally:
            await pc.close()

    async def _signal(self, sdp: str) -> str:
        async with httpx.AsyncClient(
            timeout=self.open_timeout, headers=self.headers, verify=client_context()
        ) as http:
            try:
                response = await http.post(self.url, json={"sdp": sdp, "type": "offer"})
            except httpx.TransportError as exc:
                raise ConnectionLost(f"signalling failed: {exc!r}") from exc
        if response.status_code != 200:
            raise from_response(response)
        body = response.json()
        if not isinstance(body, dict) or body.get("type") != "answer":
            raise ConnectionLost("signalling: the server did not send an answer")
        return str(body["sdp"])


class DataChannelLink:
    """A :class:`~transports.publishing.FrameLink` over one data channel."""

    def __init__(
        self,
        pc: RTCPeerConnection,
        channel: RTCDataChannel,
        inbox: asyncio.Queue[str | bytes | None],
    ) -> None:
        self.pc, self.channel, self.inbox = pc, channel, inbox

    async def send(self, text: str) -> None:
        if self.channel.readyState != "open":
            raise ConnectionLost("data channel closed")
        self.channel.send(text)

    async def recv(self) -> str | bytes:
        raw = await self.inbox.get()
        if raw is None:
            raise ConnectionLost("data channel closed")
        return raw

    async def close(self) -> None:
        await self.pc.close()
