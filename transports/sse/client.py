"""SSE subscriber on httpx streaming, parsed by :mod:`transports.sse.wire`.

Resumes with the ``Last-Event-ID`` header like a browser's EventSource, and yields a
``Control("ping")`` for every comment line so the watchdog sees the server's heartbeats.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx

from transports import codec
from transports.errors import TransportError, from_status
from transports.message import Control, Frame
from transports.sse.wire import Comment, SSEParser
from transports.tls import client_context


class SSESubscriber:
    name = "sse"

    def __init__(
        self,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        connect_timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.url = url
        self.headers = headers or {}
        self.connect_timeout = connect_timeout
        self._client = client
        self.retry_ms: int | None = None

    @classmethod
    def for_server(cls, base_url: str, info: dict[str, Any], **options: Any) -> SSESubscriber:
        return cls(info["transports"]["sse"]["url"], **options)

    async def stream(self, after: int | None, epoch: str | None) -> AsyncIterator[Frame]:
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache", **self.headers}
        params: dict[str, str] = {}
        if after is not None:
            headers["Last-Event-ID"] = str(after)
        if epoch is not None:
            params["epoch"] = epoch
        timeout = httpx.Timeout(self.connect_timeout, read=None)
        client = self._client or httpx.AsyncClient(timeout=timeout, verify=client_context())
        try:
            async with client.stream(
                "GET", self.url, headers=headers, params=params, timeout=timeout
            ) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise _error(response)
                parser = SSEParser()
                async for chunk in response.aiter_raw():
                    for item in parser.feed(chunk):
                        if isinstance(item, Comment):
                            yield Control("ping")
                        else:
                            self.retry_ms = parser.retry or self.retry_ms
                            yield codec.decode(item.data)
        finally:
            if self._client is None:
                await client.aclose()


def _error(response: httpx.Response) -> TransportError:
    try:
        body = response.json()
        return from_status(response.status_code, body.get("error"), str(body.get("detail", "")))
    except (ValueError, AttributeError):
        return from_status(response.status_code, None, response.text[:200])
