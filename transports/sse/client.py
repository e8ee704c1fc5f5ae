"""SSE subscriber on httpx streaming, parsed by :mod:`transports.sse.wire`.

Resumes with the ``Last-Event-ID`` header like a browser's EventSource, and yields a
``Control("ping")`` for every comment line so the watchdog sees the server's heartbeats.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from transports import codec
from transports.channels import encode_token
from transports.errors import from_response
from transports.message import Control, Cursor, Frame
from transports.publishing import HTTPPublisher
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

    def stream(self, after: int | None, epoch: str | None) -> AsyncIterator[Frame]:
        headers: dict[str, str] = {}
        if after is not None:
            headers["Last-Event-ID"] = str(after)
        return self._stream(headers, [("epoch", epoch)] if epoch is not None else [])

    def stream_channels(self, cursors: Mapping[str, Cursor | None]) -> AsyncIterator[Frame]:
        """``?channel=A&channel=B`` with the cursor token as ``Last-Event-ID``, as a browser
        resumes (docs/wire.md)."""
        headers: dict[str, str] = {}
        if any(c is not None for c in cursors.values()):
            headers["Last-Event-ID"] = encode_token(list(cursors.values()))
        return self._stream(headers, [("channel", n) for n in cursors])

    def publisher(self) -> HTTPPublisher:
        return HTTPPublisher(self.name, self.url.rsplit("/", 1)[0], self.headers)

    async def _stream(
        self, extra: dict[str, str], params: list[tuple[str, str]]
    ) -> AsyncIterator[Frame]:
        headers = {
            "Accept": "text/event-stream",
            "Cache-Control": "no-cache",
            **self.headers,
            **extra,
        }
        timeout = httpx.Timeout(self.connect_timeout, read=None)
        client = self._client or httpx.AsyncClient(timeout=timeout, verify=client_context())
        try:
            async with client.stream(
                "GET",
                self.url,
                headers=headers,
                params=httpx.QueryParams(tuple(params)),
                timeout=timeout,
            ) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise from_response(response)
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
