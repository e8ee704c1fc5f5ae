"""The ``presence`` right hides join/leave frames as well as the member list (hub.py's
``fan_presence``), on every transport that carries presence: WebSocket and SSE against a
real server with signed tokens, frames from another node through the Redis engine, and
MQTT, whose broker readers are anonymous."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

from tests.conftest import UNIT, require_cluster_parts, require_executable
from tests.helpers import publish_on
from tests.test_auth_jwt import KEY, bearer, jwt_config
from tests.test_hostile_mqtt import PREFIX, Paho, broker_port
from transports.jwtauth import mint
from transports.lab.cluster import RedisServer
from transports.live import LiveServer

ROOM = "private:room"
WATCH = {"private:*": ["subscribe", "presence"]}
PLAIN = {"private:*": ["subscribe"]}

Frames = list[dict[str, Any]]


async def ws_frames(server: LiveServer, token: str, channel: str, out: Frames) -> None:
    async with connect(
        f"{server.ws_url}/ws?channel={channel}", additional_headers=bearer(token)
    ) as ws:
        async for text in ws:
            out.append(json.loads(text))


async def sse_frames(server: LiveServer, token: str, channel: str, out: Frames) -> None:
    headers = {**bearer(token), "Accept": "text/event-stream"}
    async with (
        httpx.AsyncClient(timeout=None) as http,
        http.stream("GET", f"{server.url}/sse?channel={channel}", headers=headers) as r,
    ):
        assert r.status_code == 200
        event = "message"
        async for line in r.aiter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                obj = json.loads(line[5:])
                if "seq" not in obj:
                    obj.setdefault("type", event)
                out.append(obj)
            elif not line:
                event = "message"


def kinds(frames: Frames) -> list[tuple[str, str]]:
    return [(f["type"], f.get("user", "")) for f in frames if f.get("type") in ("join", "leave")]


async def until(condition: Any, seconds: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds * UNIT
    while not condition():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_join_and_leave_frames_need_the_presence_right_on_ws_and_sse(
    make_server: Any,
) -> None:
    server: LiveServer = make_server(transports=("ws", "sse"), config=jwt_config())
    watch, plain = mint(KEY, "wanda", channels=WATCH), mint(KEY, "paul", channels=PLAIN)
    got: dict[str, Frames] = {name: [] for name in ("ws+", "ws-", "sse+", "sse-")}
    tasks = [
        asyncio.ensure_future(ws_frames(server, watch, ROOM, got["ws+"])),
        asyncio.ensure_future(ws_frames(server, plain, ROOM, got["ws-"])),
        asyncio.ensure_future(sse_frames(server, watch, ROOM, got["sse+"])),
        asyncio.ensure_future(sse_frames(server, plain, ROOM, got["sse-"])),
    ]
    try:
        hello = lambda f: any(x.get("type") == "hello" for x in f)  # noqa: E731
        await until(lambda: all(hello(f) for f in got.values()), 20)
        # A newcomer (subscribe right only: presence is about *seeing* others) comes and goes.
        newcomer: Frames = []
        nina = asyncio.ensure_future(
            ws_frames(server, mint(KEY, "nina", channels=PLAIN), ROOM, newcomer)
        )
        await until(lambda: hello(newcomer), 20)
        nina.cancel()
        seen = lambda f: ("leave", "nina") in kinds(f)  # noqa: E731
        await until(lambda: seen(got["ws+"]) and seen(got["sse+"]), 20)
        # A message after the leave: when the plain readers have it, any presence frame
        # meant for them would have arrived before it (one ordered stream each).
        publish_on(server, ROOM, 1)
        message = lambda f: any("seq" in x for x in f)  # noqa: E731
        await until(lambda: all(message(f) for f in got.values()), 20)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for name in ("ws+", "sse+"):
        assert {("join", "nina"), ("leave", "nina")} <= set(kinds(got[name])), got[name]
    for name in ("ws-", "sse-"):
        assert kinds(got[name]) == [], got[name]
        assert [f["seq"] for f in got[name] if "seq" in f] == [1]


async def test_mqtt_readers_hear_presence_as_the_anonymous_principal_does(
    make_server: Any,
) -> None:
    """Anyone may read the managed broker, so an MQTT reader is the anonymous principal: on
    a public channel with presence it gets join/leave (as an anonymous WebSocket client
    does, the namespace grants it), and a private channel's presence never reaches the
    broker at all (the bridge does not carry private namespaces)."""
    require_executable("mosquitto")
    server: LiveServer = make_server(
        transports=("ws", "mqtt"), config=jwt_config(broker="mosquitto")
    )
    spy = await asyncio.to_thread(Paho, broker_port(server))
    spy.client.subscribe(f"{PREFIX}/#", qos=1)
    await asyncio.to_thread(spy.subscribed.wait, 10 * UNIT)
    anonymous: Frames = []
    task = asyncio.ensure_future(ws_frames_anonymous(server, "chat:lobby", anonymous))
    try:
        await until(lambda: any(f.get("type") == "hello" for f in anonymous), 20)
        for channel in ("chat:lobby", ROOM):
            joined: Frames = []
            who = asyncio.ensure_future(
                ws_frames(server, mint(KEY, "mo", channels={"*": ["subscribe"]}), channel, joined)
            )
            await until(lambda: any(f.get("type") == "hello" for f in joined), 20)  # noqa: B023
            who.cancel()
            await asyncio.gather(who, return_exceptions=True)
        await until(lambda: ("leave", "mo") in kinds(anonymous), 20)
        await until(lambda: ("leave", "mo") in broker_kinds(spy, "chat:lobby"), 20)
        await asyncio.sleep(0.5)  # the private channel's frames, were they carried
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        spy.close()
    mo = [k for k in broker_kinds(spy, "chat:lobby") if k[1] == "mo"]
    assert mo == [("join", "mo"), ("leave", "mo")]
    assert not [t for t, _ in spy.received if "private" in t]
    assert ("join", "mo") in kinds(anonymous)


async def ws_frames_anonymous(server: LiveServer, channel: str, out: Frames) -> None:
    async with connect(f"{server.ws_url}/ws?channel={channel}") as ws:
        async for text in ws:
            out.append(json.loads(text))


def broker_kinds(spy: Paho, channel: str) -> list[tuple[str, str]]:
    frames = [json.loads(p) for t, p in list(spy.received) if t == f"{PREFIX}/{channel}"]
    return kinds(frames)


async def test_frames_from_another_node_need_the_right_too(
    make_server: Any, tmp_path: Path
) -> None:
    """With the Redis engine a join on node B reaches node A's listeners through Redis;
    the same right decides there (``Hub.fan_presence`` is the one fan-out)."""
    require_cluster_parts()
    redis = RedisServer(tmp_path / "redis").start()
    try:
        a, b = (
            make_server(transports=("ws",), config=jwt_config(engine_url=redis.url))
            for _ in range(2)
        )
        watch, plain = mint(KEY, "wanda", channels=WATCH), mint(KEY, "paul", channels=PLAIN)
        got: dict[str, Frames] = {"+": [], "-": []}
        tasks = [
            asyncio.ensure_future(ws_frames(a, watch, ROOM, got["+"])),
            asyncio.ensure_future(ws_frames(a, plain, ROOM, got["-"])),
        ]
        try:
            hello = lambda f: any(x.get("type") == "hello" for x in f)  # noqa: E731
            await until(lambda: all(hello(f) for f in got.values()), 20)
            newcomer: Frames = []
            nina = asyncio.ensure_future(
                ws_frames(b, mint(KEY, "nina", channels=PLAIN), ROOM, newcomer)
            )
            await until(lambda: hello(newcomer), 20)
            nina.cancel()
            await until(lambda: ("leave", "nina") in kinds(got["+"]), 20)
            # A message published on B (through Redis), after the presence frames.
            writer = mint(KEY, "pia", channels={"private:*": ["subscribe", "publish"]})
            async with httpx.AsyncClient(timeout=10 * UNIT) as http:
                r = await http.post(
                    f"{b.url}/api/channels/{ROOM}/messages",
                    json={"data": {"text": "after"}},
                    headers=bearer(writer),
                )
            assert r.status_code == 200, r.text
            await until(lambda: all(any("seq" in x for x in f) for f in got.values()), 20)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        redis.stop()
    assert {("join", "nina"), ("leave", "nina")} <= set(kinds(got["+"]))
    assert kinds(got["-"]) == [], got["-"]
