"""Long-poll subscriber on httpx: a loop of held GETs, each answered with a batch.

Each response (even an empty one at the hold timeout) is yielded as a ``Control("ping")``
first, so ``follow()``'s watchdog hears it; set ``idle_timeout`` above the hold ``timeout``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from transports import codec
from transports.channels import encode_token
from transports.errors import from_response
from transports.message import Control, Cursor, Frame, Message
from transports.publishing import HTTPPublisher
from transports.tls import client_context


class LongPollSubscriber:
    name = "poll"

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 25.0,
        limit: int | None = None,
        headers: dict[str, str] | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.limit = limit
        self.headers = headers or {}
        self._client = client

    @classmethod
    def for_server(cls, base_url: str, info: dict[str, Any], **options: Any) -> LongPollSubscriber:
        return cls(info["transports"]["poll"]["url"], **options)

    def publisher(self) -> HTTPPublisher:
        return HTTPPublisher(self.name, self.url.rsplit("/", 1)[0], self.headers)

    async def stream_channels(self, cursors: Mapping[str, Cursor | None]) -> AsyncIterator[Frame]:
        """Polls ``?channel=A&channel=B&cursor=TOKEN``; each answer's ``cursor`` is sent back
        with the next poll, so the server does the per-channel bookkeeping (docs/wire.md)."""
        client = self._client or httpx.AsyncClient(
            timeout=httpx.Timeout(10.0, read=self.timeout + 10.0), verify=client_context()
        )
        token = encode_token(list(cursors.values()))
        first = True
        try:
            while True:
                params = [("channel", n) for n in cursors]
                params += [("timeout", str(self.timeout)), ("cursor", token)]
                if self.limit is not None:
                    params.append(("limit", str(self.limit)))
                query = httpx.QueryParams(tuple(params))
                response = await client.get(self.url, params=query, headers=self.headers)
                if response.status_code != 200:
                    raise from_response(response)
                body = response.json()
                if first:
                    first = False
                    for name, head in body["channels"].items():
                        yield Control("hello", {**head, "channel": name})
                else:
                    yield Control("ping")
                for obj in body["messages"]:
                    yield codec.from_obj(obj)
                token = str(body["cursor"])
        finally:
            if self._client is None:
                await client.aclose()

    async def stream(self, after: int | None, epoch: str | None) -> AsyncIterator[Frame]:
        client = self._client or httpx.AsyncClient(
            timeout=httpx.Timeout(10.0, read=self.timeout + 10.0), verify=client_context()
        )
        first = True
        try:
            while True:
                params: dict[str, str] = {"timeout": str(self.timeout)}
                if after is not None:
                    params["after"] = str(after)
                if epoch is not None and after is not None:
                    params["epoch"] = epoch
                if self.limit is not None:
                    params["limit"] = str(self.limit)
                response = await client.get(self.url, params=params, headers=self.headers)
                if response.status_code != 200:
                    raise from_response(response)
                body = response.json()
                if first:
                    first = False
                    # The hello says where live messages begin, as WS/SSE/WebRTC's do at
                    # connect time: a live-only first poll returns what arrived while it was
                    # held, so the body's last_seq already counts those.
                    last_seq = int(body["last_seq"])
                    seqs = [int(o["seq"]) for o in body["messages"] if "seq" in o]
                    if after is None and seqs:
                        last_seq = min(last_seq, seqs[0] - 1)
                    yield Control("hello", {"epoch": body["epoch"], "last_seq": last_seq})
                else:
                    yield Control("ping")
                for obj in body["messages"]:
                    frame = codec.from_obj(obj)
                    if isinstance(frame, Message):
                        after = frame.seq
                    elif frame.type == "reset":
                        after = 0
                    elif frame.type == "gap":
                        after = int(frame.get("first", 1)) - 1
                    yield frame
                epoch = body["epoch"]
                if after is None:
                    after = int(body["last_seq"])
        finally:
            if self._client is None:
                await client.aclose()
