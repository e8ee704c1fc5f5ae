"""``/ws`` sessions are dispatched in front of the router (shortcuts.py); nothing else is."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from websockets.asyncio.client import connect

from transports.live import LiveServer
from transports.shortcuts import Shortcuts


def _call(app: Shortcuts, scope: dict[str, Any]) -> str:
    async def receive() -> dict[str, Any]:
        return {}

    async def send(message: Any) -> None:
        return None

    return asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]


def test_shortcuts_pick_by_scope_type_and_path() -> None:
    def named(name: str) -> Any:
        async def app(scope: Any, receive: Any, send: Any) -> str:
            return name

        return app

    app = Shortcuts(named("router"), paths={"/poll": named("poll")},
                    websockets={"/ws": named("ws")})  # fmt: skip
    assert _call(app, {"type": "websocket", "path": "/ws"}) == "ws"
    assert _call(app, {"type": "http", "method": "GET", "path": "/ws"}) == "router"
    assert _call(app, {"type": "websocket", "path": "/poll"}) == "router"
    assert _call(app, {"type": "websocket", "path": "/ws", "root_path": "/x"}) == "router"
    assert _call(app, {"type": "http", "method": "GET", "path": "/poll"}) == "poll"


def test_ws_through_the_shortcut_and_plain_http_on_ws_still_404() -> None:
    with LiveServer(("ws",)) as srv:
        assert httpx.get(f"{srv.url}/ws", timeout=5).status_code == 404

        async def first_frames() -> list[dict[str, Any]]:
            async with connect(f"{srv.ws_url}/ws?after=0", compression=None) as ws:
                hello = json.loads(await asyncio.wait_for(ws.recv(), 5))
                srv.call(srv.ctx.feed.publish, {"n": 1}, "ticker")
                return [hello, json.loads(await asyncio.wait_for(ws.recv(), 5))]

        hello, message = asyncio.run(first_frames())
        assert hello["type"] == "hello"
        assert message["seq"] == 1
        assert message["data"] == {"n": 1}
        assert srv.ctx.stats["ws"].frames_out >= 2  # hello and the message, counted
