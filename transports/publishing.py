"""Client-side publishing: ``await publisher.publish(channel, data, id=...)`` → the ack.

Every transport publishes the same request and gets the same answer (``docs/wire.md``):
``{"type":"publish","channel","data","id"}`` → ``{"type":"ack","channel","epoch","seq",
"id"}`` or ``{"type":"error","reason","detail","id"}``. WebSocket and WebRTC send it as a
frame on a connection of their own (:class:`FramePublisher`), SSE and long polling POST it
(:class:`HTTPPublisher`), MQTT publishes it to the inbound topic
(:class:`transports.mqtt.publish.MQTTPublisher`).

Retrying is safe because of the message id: when the connection breaks before the ack
arrives, the publisher reconnects and sends the *same* id again, and the server answers with
the first attempt's ack instead of storing the message twice (the server remembers ids for a
bounded window, ``docs/channels.md``). Only transient errors are retried (the same allowlist
``follow()`` uses); a documented refusal is raised as its ``TransportError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from transports.backoff import Backoff
from transports.client import is_retryable, transient
from transports.errors import TransportError, from_response, from_status
from transports.tls import client_context

transient(httpx.TransportError)

ACK_TIMEOUT = 10.0


class Publisher(Protocol):
    name: str

    async def publish(self, channel: str, data: Any, id: str | None = None) -> dict[str, Any]: ...
    async def drop(self) -> None: ...
    async def close(self) -> None: ...


def new_id() -> str:
    return secrets.token_hex(8)


def answer(reply: dict[str, Any]) -> dict[str, Any]:
    """The ack, or the error it reports raised as a ``TransportError``."""
    if reply.get("type") == "error" or "error" in reply:
        reason = str(reply.get("reason") or reply.get("error"))
        raise from_status(400, reason, str(reply.get("detail", "")))
    return reply


async def with_retries(
    attempt: Callable[[], Awaitable[dict[str, Any]]], tries: int = 4
) -> dict[str, Any]:
    backoff = Backoff(initial=0.05, maximum=1.0)
    for n in range(tries):
        try:
            return await attempt()
        except Exception as exc:
            if n + 1 == tries or not is_retryable(exc):
                raise
            await asyncio.sleep(backoff.delay(n))
    raise AssertionError("unreachable")


class FrameLink(Protocol):
    """One open bidirectional connection (a WebSocket, a data channel)."""

    async def send(self, text: str) -> None: ...
    async def recv(self) -> str | bytes: ...
    async def close(self) -> None: ...


class FramePublisher:
    """Publishes as frames on a connection it opens with ``connect`` and reopens on need."""

    def __init__(self, name: str, connect: Callable[[], Awaitable[FrameLink]]) -> None:
        self.name = name
        self._connect = connect
        self._link: FrameLink | None = None
        self._lock = asyncio.Lock()
        self.connects = 0

    async def publish(self, channel: str, data: Any, id: str | None = None) -> dict[str, Any]:
        frame = {"type": "publish", "channel": channel, "data": data, "id": id or new_id()}
        text = json.dumps(frame, separators=(",", ":"), ensure_ascii=False)
        async with self._lock:
            return answer(await with_retries(lambda: self._request(text, frame["id"])))

    async def _request(self, text: str, msg_id: str) -> dict[str, Any]:
        if self._link is None:
            self._link = await self._connect()
            self.connects += 1
        link = self._link
        try:
            await link.send(text)
            async with asyncio.timeout(ACK_TIMEOUT):
                while True:
                    reply = json.loads(await link.recv())
                    if reply.get("type") in ("ack", "error") and reply.get("id") == msg_id:
                        return dict(reply)
                    if reply.get("type") == "close":
                        raise from_status(503, str(reply.get("reason")), "closed by the server")
        except BaseException:
            await self.drop()
            raise

    async def drop(self) -> None:
        """Close the connection (the next publish opens a new one); tests cut with it."""
        link, self._link = self._link, None
        if link is not None:
            with contextlib.suppress(Exception):  # already broken: nothing left to close
                await link.close()

    async def close(self) -> None:
        await self.drop()


class HTTPPublisher:
    """``POST /api/channels/{channel}/messages`` (the SSE and long-polling clients' way)."""

    def __init__(self, name: str, base_url: str, headers: dict[str, str] | None = None) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.headers = headers or {}
        self._http = httpx.AsyncClient(
            timeout=ACK_TIMEOUT, headers=self.headers, verify=client_context()
        )

    async def publish(self, channel: str, data: Any, id: str | None = None) -> dict[str, Any]:
        body = {"data": data, "id": id or new_id()}
        url = f"{self.base_url}/api/channels/{quote(channel, safe=':')}/messages"

        async def attempt() -> dict[str, Any]:
            response = await self._http.post(url, json=body)
            if response.status_code != 200:
                raise from_response(response)
            return dict(response.json())

        return answer(await with_retries(attempt))

    async def drop(self) -> None:
        """Close the pooled connections (the next publish opens a new one)."""
        await self._http.aclose()
        self._http = httpx.AsyncClient(
            timeout=ACK_TIMEOUT, headers=self.headers, verify=client_context()
        )

    async def close(self) -> None:
        await self._http.aclose()


__all__ = ["FrameLink", "FramePublisher", "HTTPPublisher", "Publisher", "TransportError"]
