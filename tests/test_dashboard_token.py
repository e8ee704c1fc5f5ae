"""The dashboard and the admin token in Chromium: taken from the URL fragment, kept for the
tab, gone from the address bar, sent on the publisher form; without it the form is refused."""

from __future__ import annotations

from collections.abc import Callable

from tests.browser import chromium
from tests.conftest import UNIT, require_executable
from transports.app import build_app
from transports.config import ServerConfig
from transports.live import LiveServer

OUTPUT = "() => document.querySelector('#publisher output').textContent"


def test_token_from_the_fragment_authorizes_the_page(
    make_server: Callable[..., LiveServer],
) -> None:
    require_executable("chromium")
    server = make_server(("ws",), config=ServerConfig(rate=2), app_factory=build_app)
    with chromium() as browser:
        page = browser.new_page()
        page.goto(f"{server.url}/#token={server.admin_token}")
        page.wait_for_function("() => window.transportLab !== undefined", timeout=20_000 * UNIT)
        assert page.evaluate("() => location.href") == server.url + "/"  # out of the bar
        stored = page.evaluate("() => sessionStorage.getItem('transport-lab-admin-token')")
        assert stored == server.admin_token
        page.fill("#publisher [name=rate]", "3")
        page.click("#publisher button")
        page.wait_for_function(
            f"() => ({OUTPUT})().includes('publishing 3 ')", timeout=10_000 * UNIT
        )
        assert server.ctx.ticker.settings()["rate"] == 3
        # A reload keeps it (same tab); a fresh page without it is refused.
        page.reload()
        page.wait_for_function("() => window.transportLab !== undefined", timeout=20_000 * UNIT)
        page.fill("#publisher [name=rate]", "4")
        page.click("#publisher button")
        page.wait_for_function(
            f"() => ({OUTPUT})().includes('publishing 4 ')", timeout=10_000 * UNIT
        )
        other = browser.new_page()
        other.goto(server.url + "/")
        other.wait_for_function("() => window.transportLab !== undefined", timeout=20_000 * UNIT)
        other.fill("#publisher [name=rate]", "9")
        other.click("#publisher button")
        other.wait_for_function(f"() => ({OUTPUT})().includes('rejected')", timeout=10_000 * UNIT)
        assert "admin token" in other.evaluate(OUTPUT)
    assert server.ctx.ticker.settings()["rate"] == 4
