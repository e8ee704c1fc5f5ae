"""What the demos' Python clients share (``demos/NAME/client.py``): a token, a subscriber and
publisher on any transport, and a bounded follow loop.

::

    async with DemoClient("http://127.0.0.1:8000", "ws", invite, user="py") as c:
        await c.publish("chat:lobby", {"text": "hi"})
        async for message in c.messages(["chat:lobby"], count=10):
            print(message.data)

The invite is the ``#token=...`` of the URL ``transport-lab demo`` prints; the client mints its
own token for ``user`` with it (``POST /demos/api/token``), as the pages do.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx

from transports.client import Delivered, GapDetected, follow
from transports.clients import subscriber
from transports.message import Cursor, Message


def invite_of(url_or_token: str) -> str:
    """Accept the printed page URL (``...#token=T``) or the token itself."""
    return url_or_token.split("#token=", 1)[-1]


class DemoClient:
    def __init__(self, base_url: str, transport: str, invite: str | None, user: str = "py"):
        self.base_url = base_url.rstrip("/")
        self.transport = transport
        self.invite = invite_of(invite) if invite else None
        self.user = user
        self.token: str | None = None
        self.sub: Any = None
        self.pub: Any = None
        self.gaps: list[GapDetected] = []

    async def __aenter__(self) -> DemoClient:
        if self.invite:
            role = "observer" if ".r." in self.invite else "writer"
            async with httpx.AsyncClient(timeout=10) as http:
                r = await http.post(
                    f"{self.base_url}/demos/api/token",
                    json={"user": self.user, "role": role},
                    headers={"Authorization": f"Bearer {self.invite}"},
                )
                r.raise_for_status()
                self.token = str(r.json()["token"])
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self.sub = await subscriber(self.transport, self.base_url, headers=headers)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.pub is not None:
            await self.pub.close()

    async def publish(self, channel: str, data: Any) -> dict[str, Any]:
        """Publish on the client's transport; the ack (or the documented error raised)."""
        if self.transport == "mqtt":
            # The shared broker user, the personal token in the data (docs/demos.md).
            if self.pub is None:
                creds = await self.get("/demos/api/mqtt")
                self.pub = self.sub.publisher(user=creds["username"], password=creds["password"])
            data = {**data, "token": self.token} if isinstance(data, dict) else data
        elif self.pub is None:
            self.pub = self.sub.publisher()
        return dict(await self.pub.publish(channel, data))

    async def get(self, path: str) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with httpx.AsyncClient(timeout=10) as http:
            r = await http.get(self.base_url + path, headers=headers)
            r.raise_for_status()
            return r.json()

    async def messages(
        self,
        channels: Sequence[str] | dict[str, Cursor | None],
        count: int | None = None,
        seconds: float | None = None,
    ) -> AsyncIterator[Message]:
        """Messages of ``channels`` (names: live only; or name → cursor), at most ``count`` or
        for ``seconds``; gaps are kept in :attr:`gaps`."""
        chosen = channels if isinstance(channels, dict) else dict.fromkeys(channels)
        events = follow(self.sub, None, channels=chosen)
        loop = asyncio.get_running_loop()
        deadline = None if seconds is None else loop.time() + seconds
        n = 0
        async with contextlib.aclosing(events):
            while count is None or n < count:
                left = None if deadline is None else deadline - loop.time()
                if left is not None and left <= 0:
                    return
                try:
                    event = await asyncio.wait_for(anext(events), left)
                except TimeoutError:
                    return
                if isinstance(event, GapDetected):
                    self.gaps.append(event)
                elif isinstance(event, Delivered):
                    n += 1
                    yield event.message
