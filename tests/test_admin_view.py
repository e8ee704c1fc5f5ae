"""The admin view in real Chromium: it lists the dashboard's own connections, disconnects
one — whose panel then resumes by itself with no gap — and publishes a message. The admin
JSON endpoints refuse requests without the admin token or with a non-JSON body."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
import websockets

from tests.browser import artifacts_dir, chromium, panels, wait_panels
from tests.conftest import UNIT, require_executable
from tests.ops_helpers import admin_headers
from transports.app import build_app
from transports.config import ServerConfig
from transports.live import LiveServer
from transports.ops.admin import admin_token

MakeServer = Callable[..., LiveServer]
NAMES = ["ws", "sse"]


def test_admin_endpoints_need_the_token_and_json(make_server: MakeServer) -> None:
    server = make_server()
    url = server.url + "/api/admin/disconnect"
    assert httpx.get(server.url + "/api/admin/connections").status_code == 401
    assert httpx.post(url, json={"conn": "ws-1"}).status_code == 401
    headers = admin_headers(server)
    form = httpx.post(url, content=b"conn=ws-1", headers={**headers, "content-type": "text/plain"})
    assert form.status_code == 415
    missing = httpx.post(url, json={"conn": "ws-999"}, headers=headers)
    assert missing.status_code == 400
    assert missing.json()["error"] == "bad_param"
    view = httpx.get(server.url + "/api/admin/connections", headers=headers).json()
    assert set(view["transports"]) == {"ws", "sse", "poll"}
    assert view["connections"] == []


@pytest.mark.browser
def test_disconnect_from_the_admin_page_and_the_panel_resumes(make_server: MakeServer) -> None:
    require_executable("chromium")
    server = make_server(tuple(NAMES), config=ServerConfig(rate=20.0), app_factory=build_app)
    with chromium() as browser:
        dashboard = browser.new_page(viewport={"width": 1600, "height": 1000})
        errors: list[str] = []
        dashboard.on("pageerror", lambda e: errors.append(str(e)))
        dashboard.goto(server.url + "/")
        wait_panels(dashboard, NAMES, "+p.received >= 10 && p.state === 'open'", 30 * UNIT)
        admin = browser.new_page(viewport={"width": 1400, "height": 900})
        admin.on("pageerror", lambda e: errors.append(str(e)))
        admin.goto(f"{server.url}/admin#token={admin_token(server.ctx)}")
        assert "token=" not in admin.url, "the token is taken out of the address bar"
        for name in NAMES:
            admin.wait_for_selector(f'#transports tr[data-transport="{name}"][data-open="1"]')
            row = admin.wait_for_selector(f'#connections tr[data-transport="{name}"]')
            assert row is not None
            conn = row.get_attribute("data-conn")
            before = panels(dashboard)[name]
            row.query_selector("button.disconnect").click()  # type: ignore[union-attr]
            admin.wait_for_selector(
                f'#disconnects tr[data-conn="{conn}"][data-reason="admin_disconnect"]',
                timeout=10_000 * UNIT,
            )
            # The panel notices, reconnects on its own, resumes from its cursor: no gap.
            wait_panels(
                dashboard,
                [name],
                f"+p.reconnects > {before['reconnects']} && "
                f"+p.received >= {int(before['received']) + 20} && p.state === 'open' && "
                "p.gaps === '0' && p.missing === '0' && p.dups === '0'",
                30 * UNIT,
            )
        admin.fill("#publish textarea", '{"from": "admin page"}')
        admin.click("#publish button")
        admin.wait_for_function(
            "() => document.querySelector('#publish output').textContent.startsWith('published')"
        )
        admin.wait_for_timeout(1200)  # one refresh, so the screenshot shows the new rows
        admin.screenshot(path=str(artifacts_dir() / "admin.png"), full_page=True)
    assert errors == []
    kicked = [
        d["transport"] for d in server.ctx.ops.disconnects if d["reason"] == "admin_disconnect"
    ]
    assert sorted(kicked) == sorted(NAMES)


def test_connection_counters_see_the_fast_path_writes(make_server: MakeServer) -> None:
    """A caught-up /ws or /sse client is written by the publisher's own call (the fast
    paths), outside the connection's task: its row must still count those frames."""
    server = make_server(("ws", "sse"), config=ServerConfig(rate=0.0))
    headers = admin_headers(server)

    async def run() -> dict[str, dict[str, object]]:
        ws_url = server.url.replace("http://", "ws://") + "/ws?after=0"
        async with (
            websockets.connect(ws_url, compression=None) as ws,
            httpx.AsyncClient(timeout=10) as http,
            http.stream("GET", server.url + "/sse?after=0") as sse,
        ):
            lines = sse.aiter_lines()

            async def sse_messages(n: int) -> None:
                seen = 0
                while seen < n:
                    if (await lines.__anext__()).startswith("id:"):
                        seen += 1

            await ws.recv()  # hello: both are caught up from here on
            for i in range(COUNT):
                response = await http.post(
                    server.url + "/api/publish", json={"data": {"i": i}}, headers=headers
                )
                assert response.status_code == 200
            for _ in range(COUNT):
                await ws.recv()
            await asyncio.wait_for(sse_messages(COUNT), 10 * UNIT)
            view = await http.get(server.url + "/api/admin/connections", headers=headers)
            return {c["transport"]: c for c in view.json()["connections"]}

    rows = asyncio.run(run())
    for name in ("ws", "sse"):
        assert int(rows[name]["frames"]) >= COUNT, rows[name]  # type: ignore[call-overload]
        assert int(rows[name]["bytes"]) >= COUNT * 20, rows[name]  # type: ignore[call-overload]


COUNT = 25
