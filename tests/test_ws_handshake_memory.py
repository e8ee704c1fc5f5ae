"""An open WebSocket keeps no handshake objects in its uvicorn protocol (protocols.py).

``BoundedWebSocket.start_keepalive`` drops uvicorn's ``request``/``response`` once the 101 is
written. This fails if uvicorn stops calling it there (the objects would stay), and a
uvicorn that read them after the handshake would break every WebSocket test.
"""

from __future__ import annotations

import asyncio
import json

from websockets.asyncio.client import connect

from transports.live import LiveServer
from transports.protocols import BoundedWebSocket


def test_open_websockets_hold_no_handshake_request_or_response() -> None:
    with LiveServer(("ws",)) as srv:

        def held() -> list[tuple[object, object]]:
            assert srv._server is not None
            return [
                (p.request, p.response)
                for p in srv._server.server_state.connections
                if isinstance(p, BoundedWebSocket)
            ]

        async def run() -> list[tuple[object, object]]:
            async with connect(f"{srv.ws_url}/ws", compression=None) as ws:
                assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "hello"
                srv.call(srv.ctx.feed.publish, {"n": 1}, "ticker")
                assert json.loads(await asyncio.wait_for(ws.recv(), 5))["seq"] == 1
                return srv.call(held)

        assert asyncio.run(run()) == [(None, None)]
