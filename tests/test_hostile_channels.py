"""A hub full of channels in use, over raw sockets: a connection naming several new channels is
refused with the documented, non-retryable ``too_many_channels``, not a retryable
``shutting_down`` its clients would retry for ever."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import UNIT, require_executable
from transports.channels import NamespaceOptions
from transports.config import ServerConfig
from transports.live import LiveServer

MakeServer = Callable[..., LiveServer]
ADMIN = "admin-token-for-the-channel-tests"


async def open_sse(port: int, query: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /sse?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    return reader, writer


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage()[:200] for r in caplog.records if r.exc_info or r.exc_text]


@pytest.mark.parametrize("with_mqtt", [False, True], ids=["sse", "sse+mqtt"])
async def test_new_channels_in_a_full_hub_are_too_many_channels(
    make_server: MakeServer, caplog: pytest.LogCaptureFixture, with_mqtt: bool
) -> None:
    # The default channel plus a, b, c in use fill a hub of 5. Admitting d takes the last
    # slot; admitting e then evicted d (new, hence idle), whose closed feed refused the
    # subscription as 503 shutting_down (retryable).
    # With MQTT, the bridge's task for d found d's feed closed when it first ran: one
    # "Task exception was never retrieved" traceback per evicted channel.
    if with_mqtt:
        require_executable("mosquitto")
    server = make_server(
        ("sse", "mqtt") if with_mqtt else ("sse",),
        config=ServerConfig(max_channels=5, broker="mosquitto"),
    )
    holder = await open_sse(server.port, "channel=a&channel=b&channel=c")
    head = await asyncio.wait_for(holder[0].readuntil(b"\r\n\r\n"), 10 * UNIT)
    assert head.startswith(b"HTTP/1.1 200 ")
    reader, writer = await open_sse(server.port, "channel=d&channel=e")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10 * UNIT)
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    body = json.loads(await reader.readexactly(length))
    writer.close()
    assert head.startswith(b"HTTP/1.1 400 "), head[:40]
    assert body["error"] == "too_many_channels", body
    # The holder's channels are untouched, and a channel that fits is still served.
    assert {c.name for c in server.app.state.ctx.hub.all()} >= {"a", "b", "c"}
    holder[1].close()
    await asyncio.sleep(0.2)
    reader, writer = await open_sse(server.port, "channel=d&channel=e")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10 * UNIT)
    writer.close()
    assert head.startswith(b"HTTP/1.1 200 "), head[:40]
    await asyncio.sleep(0.2)
    assert not tracebacks(caplog)


async def test_refused_requests_create_no_channel(make_server: MakeServer) -> None:
    # A publish or subscribe refused for want of rights used to create its channel first,
    # and creating one in a full hub evicts the least recently used idle channel with its
    # history: 1100 anonymous 401 publishes to new names wiped every idle channel.
    namespaces = {
        "": NamespaceOptions(),
        "chat": NamespaceOptions(publish=True, presence=True),
        "private": NamespaceOptions(anonymous_subscribe=False),
    }
    server = make_server(
        ("poll",),
        config=ServerConfig(max_channels=20, namespaces=namespaces, admin_token=ADMIN),
    )
    base = server.url
    async with httpx.AsyncClient(timeout=10 * UNIT) as client:
        epoch = await _store_in_lobby(client, base)
        answers: dict[int, int] = {}
        for i in range(60):  # three times the hub's room
            refused = [
                await client.post(f"{base}/api/channels/chat:n{i}/messages", json={"data": 1}),
                await client.post(f"{base}/api/channels/n{i}/messages", json={"data": 1}),
                await client.get(f"{base}/poll?channel=private:p{i}&timeout=0"),
            ]
            for answer in refused:
                answers[answer.status_code] = answers.get(answer.status_code, 0) + 1
        lobby = (await client.get(f"{base}/api/channels/chat:lobby")).json()
    assert answers == {401: 120, 403: 60}, answers
    assert lobby["exists"], lobby
    assert (lobby["epoch"], lobby["last_seq"]) == (epoch, 1)
    assert server.app.state.ctx.hub.count == 2  # the default channel and chat:lobby


async def test_anonymous_subscribers_cannot_evict_a_channel_holding_messages(
    make_server: MakeServer,
) -> None:
    # Anonymous clients may subscribe in public namespaces, so they create channels; each
    # new one in a full hub evicted the least recently used idle channel: 60 anonymous
    # polls of new names wiped chat:lobby, whose visitors had all left for a moment.
    server = make_server(("poll",), config=ServerConfig(max_channels=20, admin_token=ADMIN))
    async with httpx.AsyncClient(timeout=10 * UNIT) as client:
        epoch = await _store_in_lobby(client, server.url)
        for i in range(60):  # three times the hub's room, none of them holding a message
            names = f"channel=e{i}&channel=chat:r{i}"
            polled = await client.get(f"{server.url}/poll?{names}&timeout=0")
            assert polled.status_code == 200, polled.text
        lobby = (await client.get(f"{server.url}/api/channels/chat:lobby")).json()
    assert lobby["exists"], lobby
    assert (lobby["epoch"], lobby["last_seq"]) == (epoch, 1)
    assert server.app.state.ctx.hub.count == 20


async def _store_in_lobby(client: httpx.AsyncClient, base: str) -> str:
    """Publish one message to ``chat:lobby`` as the admin; its epoch."""
    stored = await client.post(
        f"{base}/api/channels/chat:lobby/messages",
        json={"data": "kept"},
        headers={"Authorization": f"Bearer {ADMIN}"},
    )
    assert stored.status_code == 200, stored.text
    return str(stored.json()["epoch"])
