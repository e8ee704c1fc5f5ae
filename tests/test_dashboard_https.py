"""The dashboard over https in Chromium with the local CA really trusted (an NSS database
with the CA as a trust anchor, the way a user imports it; no ``--ignore-certificate-errors``):
the page loads, its WebSocket, SSE and long-polling panels follow the feed over wss/https,
and the same browser without the CA refuses the page."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

from tests.browser import CHROMIUM, CHROMIUM_ARGS, artifacts_dir, wait_panels
from tests.conftest import UNIT, require, require_executable
from transports.app import build_app
from transports.config import ServerConfig
from transports.live import LiveServer
from transports.tls import make_certs

NAMES = ["ws", "sse", "poll"]


def nss_home(home: Path, ca: Path | None) -> Path:
    """A HOME whose ``.pki/nssdb`` (Chromium's certificate store on Linux) trusts ``ca``."""
    db = home / ".pki" / "nssdb"
    db.mkdir(parents=True)
    subprocess.run(["certutil", "-d", f"sql:{db}", "-N", "--empty-password"], check=True)
    if ca is not None:
        # "C,," = a trusted CA for TLS servers (certutil(1) trust flags).
        cmd = ["certutil", "-d", f"sql:{db}", "-A", "-t", "C,,", "-n", "transport-lab", "-i"]
        subprocess.run([*cmd, str(ca)], check=True)
    return home


def test_dashboard_over_https_with_the_ca_trusted(
    make_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    require_executable("chromium")
    require("certutil", shutil.which("certutil") is not None, "apt-get install libnss3-tools")
    certs = tmp_path / "certs"
    make_certs(certs, ["localhost", "127.0.0.1"])
    config = ServerConfig(
        rate=5, tls_certfile=str(certs / "cert.pem"), tls_keyfile=str(certs / "key.pem")
    )
    server = make_server(tuple(NAMES), config=config, app_factory=build_app)
    assert server.url.startswith("https://")
    with sync_playwright() as p:
        for home, trusted in ((tmp_path / "trusting", True), (tmp_path / "plain", False)):
            nss_home(home, certs / "ca.pem" if trusted else None)
            browser = p.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, env={"HOME": str(home)}
            )
            try:
                page = browser.new_page()
                if not trusted:
                    with pytest.raises(PlaywrightError, match="ERR_CERT_AUTHORITY_INVALID"):
                        page.goto(f"{server.url}/", timeout=20_000 * UNIT)
                    continue
                page.goto(f"{server.url}/#token={server.admin_token}", timeout=20_000 * UNIT)
                page.wait_for_function(
                    "() => window.transportLab !== undefined", timeout=20_000 * UNIT
                )
                wait_panels(page, NAMES, "+p.received >= 5", 30 * UNIT)
                assert page.evaluate("() => location.protocol") == "https:"
                page.screenshot(path=str(artifacts_dir() / "dashboard-https.png"))
            finally:
                browser.close()
