"""WebSocket subscriber on the ``websockets`` library (asyncio implementation).

Heartbeat: the client sends an RFC 6455 ping every ``ping_interval`` seconds and yields a
``Control("pong")`` when the pong arrives, so ``follow()``'s watchdog hears a quiet but live
connection; a pong missing for ``ping_timeout`` seconds ends the connection. The library's
own keepalive is switched off because its pongs are invisible to the application.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from transports import codec
from transports.channels import encode_token
from transports.client import ConnectionLost, transient
from transports.errors import KINDS, TransportError
from transports.message import Control, Cursor, Frame
from transports.publishing import FrameLink, FramePublisher
from transports.tls import client_context

transient(WebSocketException)


class WebSocketSubscriber:
    name = "ws"

    def __init__(
        self,
        url: str,
        *,
        ping_interval: float | None = 10.0,
        ping_timeout: float = 10.0,
        compression: bool = False,
        headers: dict[str, str] | None = None,
        open_timeout: float = 10.0,
        max_size: int = 16 * 1024 * 1024,
    ) -> None:
        self.url = url
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.compression = compression
        self.headers = headers or {}
        self.open_timeout = open_timeout
        self.max_size = max_size

    @classmethod
    def for_server(cls, base_url: str, info: dict[str, Any], **options: Any) -> WebSocketSubscriber:
        """Build from the server's ``/api/info`` (see :func:`transports.clients.subscriber`)."""
        return cls(info["transports"]["ws"]["url"], **options)

    def url_for(self, after: int | None, epoch: str | None) -> str:
        query = {k: v for k, v in (("after", after), ("epoch", epoch)) if v is not None}
        sep = "&" if "?" in self.url else "?"
        return self.url + (sep + urlencode(query) if query else "")

    def url_for_channels(self, cursors: Mapping[str, Cursor | None]) -> str:
        """``?channel=A&channel=B&cursor=TOKEN`` (``channel=`` alone: no channel yet)."""
        query = [("channel", n) for n in cursors] or [("channel", "")]
        if any(c is not None for c in cursors.values()):
            query.append(("cursor", encode_token(list(cursors.values()))))
        sep = "&" if "?" in self.url else "?"
        return self.url + sep + urlencode(query)

    def stream(self, after: int | None, epoch: str | None) -> AsyncIterator[Frame]:
        return self._stream(self.url_for(after, epoch))

    def stream_channels(self, cursors: Mapping[str, Cursor | None]) -> AsyncIterator[Frame]:
        return self._stream(self.url_for_channels(cursors))

    def publisher(self) -> FramePublisher:
        """A :class:`~transports.publishing.FramePublisher` on its own connection."""
        return FramePublisher(self.name, self._open_for_publish)

    async def _open_for_publish(self) -> FrameLink:
        ws = await connect(
            self.url_for_channels({}),
            ping_interval=None,
            compression=None,
            additional_headers=self.headers,
            open_timeout=self.open_timeout,
            ssl=client_context() if self.url.startswith("wss:") else None,
        )
        return WebSocketLink(ws)

    async def _stream(self, url: str) -> AsyncIterator[Frame]:
        try:
            async with connect(
                url,
                ping_interval=None,
                close_timeout=2,
                compression="deflate" if self.compression else None,
                additional_headers=self.headers,
                open_timeout=self.open_timeout,
                max_size=self.max_size,
                # wss: verified against the system's CAs or $TRANSPORT_LAB_CAFILE (tls.py).
                ssl=client_context() if self.url.startswith("wss:") else None,
            ) as ws:
                pong: asyncio.Future[float] | None = None
                pinged_at = 0.0
                interval = self.ping_interval
                while True:
                    if pong is not None and pong.done():
                        pong = None
                        yield Control("pong")
                    if interval is None:
                        wait = None
                    elif pong is not None:
                        wait = max(0.0, pinged_at + self.ping_timeout - time.monotonic())
                    else:
                        wait = max(0.0, pinged_at + interval - time.monotonic())
                    try:
                        raw = await asyncio.wait_for(ws.recv(), wait)  # recv is cancel-safe
                    except TimeoutError:
                        if pong is not None and not pong.done():
                            raise ConnectionLost("pong timeout") from None
                        if pong is None:
                            pong = asyncio.ensure_future(await ws.ping())
                            pinged_at = time.monotonic()
                        continue
                    yield codec.decode(raw)
        except ConnectionClosed as closed:
            rcvd = closed.rcvd
            if rcvd is not None and 4000 <= rcvd.code < 5000:
                reason = rcvd.reason if rcvd.reason in KINDS else None
                raise _documented(rcvd.code - 4000, reason, rcvd.reason) from None
            # 1001 going away (RFC 6455 §7.4.1); 1012 service restart (IANA registry)
            if rcvd is not None and rcvd.code in (1001, 1012):
                raise TransportError("shutting_down", "server going away") from None
            raise ConnectionLost(f"closed: {closed}") from None
        except InvalidStatus as exc:
            raise _documented(exc.response.status_code, None, "handshake refused") from None


def _documented(status: int, reason: str | None, detail: str) -> Exception:
    from transports.errors import from_status

    try:
        return from_status(status, reason, detail)
    except ValueError:
        return ConnectionLost(f"status {status}: {detail}")


class WebSocketLink:
    """A :class:`~transports.publishing.FrameLink` over one WebSocket connection."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def send(self, text: str) -> None:
        try:
            await self.ws.send(text)
        except ConnectionClosed as exc:
            raise ConnectionLost(f"closed: {exc}") from None

    async def recv(self) -> str | bytes:
        try:
            return await self.ws.recv()
        except ConnectionClosed as exc:
            raise ConnectionLost(f"closed: {exc}") from None

    async def close(self) -> None:
        await self.ws.close()
