"""A demo server with the fault lab in front, and helpers to drive demo pages in Chromium.

One server per test module (browser tests are slow): every transport, the demo pages, the
fault lab's proxies and UDP relay (``transports.chaos.fault_api``), the demo's scripted
publishers. Pages open with a writer or observer invite in the fragment, as the
``demo`` command prints them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, Page

from tests.browser import artifacts_dir
from tests.conftest import UNIT, require_executable
from transports.chaos.fault_api import FaultLab, install
from transports.config import ServerConfig
from transports.demo.app import Demo
from transports.demo.scripts import Settings
from transports.live import LiveServer
from transports.netutil import free_port

ALL = ("ws", "sse", "poll", "webrtc", "mqtt")
DOCS = Path(__file__).resolve().parents[1] / "docs" / "demos"


@dataclass
class Rig:
    server: LiveServer
    demo: Demo

    @property
    def url(self) -> str:
        return self.server.url

    def invite(self, role: str = "writer") -> str:
        return self.demo.signer.mint("guest" if role == "writer" else "observer", role)

    def fault(self, transport: str, action: str, **extra: Any) -> dict[str, Any]:
        r = httpx.post(
            f"{self.url}/api/faults/{transport}",
            json={"action": action, **extra},
            headers=self.server.admin_headers,
            timeout=10,
        )
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def publish(self, channel: str, data: Any, count: int = 1) -> int:
        """Publish server-side (as the demo's scripts do); the last seq."""
        from transports.demo.scripts import publish

        def run() -> int:
            for _ in range(count):
                publish(self.server.ctx, channel, data)
            return int(self.server.ctx.hub.channel(channel).feed.last_seq)

        return int(self.server.call(run))


@contextlib.contextmanager
def demo_rig(host: str = "127.0.0.1", **settings: Any) -> Iterator[Rig]:
    require_executable("mosquitto")
    port = free_port(host)
    lab = FaultLab(host, port, list(ALL))
    cfg = ServerConfig(
        rate=0.0,
        webrtc_loopback_only=host == "127.0.0.1",
        admin_token="demo-test-admin-token",
        allowed_origins=(f"http://{host}:{port}", *lab.origins()),
    )
    demo, cfg = Demo.configure(cfg, Settings(**settings))
    make = demo.factory()

    def factory(**kwargs: Any) -> Any:
        return install(make(**kwargs), lab)

    server = LiveServer(ALL, config=cfg, app_factory=factory, host=host, port=port)
    server.start()
    try:
        yield Rig(server, demo)
    finally:
        server.stop()


def open_demo(
    browser: Browser,
    rig: Rig,
    demo: str,
    transport: str,
    user: str,
    role: str = "writer",
    query: str = "",
) -> Page:
    page = browser.new_context(viewport={"width": 1280, "height": 760}).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors  # type: ignore[attr-defined]
    url = f"{rig.url}/demos/{demo}/?transport={transport}&user={user}{query}"
    page.goto(f"{url}#token={rig.invite(role)}")
    wait_js(page, "() => window.demo && demo.client && demo.client.state === 'open'", 20)
    return page


def wait_js(page: Page, condition: str, timeout_s: float, arg: Any = None) -> None:
    page.wait_for_function(condition, arg=arg, timeout=timeout_s * 1000 * UNIT, polling=100)


def stats(page: Page) -> dict[str, Any]:
    out: dict[str, Any] = page.evaluate("() => ({...demo.client.stats, lat: undefined})")
    return out


def assert_clean(page: Page) -> None:
    """Nothing missing, no page error, and no duplicate from a transport that cannot
    redeliver. MQTT can: its backfill after a reconnect overlaps the live stream by design
    (and QoS 1 may redeliver); the client drops those by seq, so they are never shown twice
    (the tests check what is shown separately)."""
    s = stats(page)
    assert (s["missed"], s["gaps"]) == (0, 0), s
    if page.evaluate("() => demo.client.transport") != "mqtt":
        assert s["dups"] == 0, s
    assert not page.errors, page.errors  # type: ignore[attr-defined]


def screenshot(page: Page, name: str) -> None:
    """Into the artifacts dir; also into docs/demos/ with TRANSPORT_LAB_DOC_SCREENSHOTS=1
    (how the committed screenshots are made)."""
    page.screenshot(path=str(artifacts_dir() / f"demo-{name}.png"))
    if os.environ.get("TRANSPORT_LAB_DOC_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS / f"{name}.png"))
