"""Helpers for the browser tests: Debian's Chromium driven by Playwright, and a network
namespace for WebRTC.

Chromium never pairs WebRTC over loopback, so the WebRTC test puts the browser in a network
namespace the test creates itself: a veth pair with private addresses, one end inside the
namespace (the browser), the other in the test's namespace (the server binds to it). The
namespace has no other interface and no default route, so the browser can reach nothing but
the server.
"""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # Offer the real host address instead of an mDNS .local name (the server drops those).
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]

PANELS_JS = (
    "() => [...document.querySelectorAll('section.panel[data-transport]')]"
    ".map(e => ({...e.dataset}))"
)


EVENTS_JS = (
    "() => Object.fromEntries(Object.entries(window.transportLab?.panels ?? {})"
    ".map(([n, p]) => [n, p.events.map(e => e.text)]))"
)


def artifacts_dir() -> Path:
    """Where screenshots go: $TRANSPORT_LAB_ARTIFACTS or a temp dir (kept for inspection)."""
    path = Path(
        os.environ.get("TRANSPORT_LAB_ARTIFACTS")
        or Path(tempfile.gettempdir()) / "transport-lab-artifacts"
    )
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def chromium(executable: str = CHROMIUM) -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def panels(page: Page) -> dict[str, dict[str, str]]:
    """Every panel's data attributes, by transport name."""
    return {p["transport"]: p for p in page.evaluate(PANELS_JS)}


def wait_panels(page: Page, names: list[str], js_condition: str, timeout_s: float) -> None:
    """Wait until ``js_condition`` (over ``p``, a panel's dataset) holds for every panel."""
    try:
        _wait(page, names, js_condition, timeout_s)
    except PlaywrightTimeout:
        events = page.evaluate(EVENTS_JS)
        raise AssertionError(f"panels not ready: {panels(page)}\nevents: {events}") from None


def _wait(page: Page, names: list[str], js_condition: str, timeout_s: float) -> None:
    page.wait_for_function(
        f"names => names.every(n => {{ const e = document.querySelector("
        f'`section.panel[data-transport="${{n}}"]`); if (!e) return false; '
        f"const p = e.dataset; return {js_condition}; }})",
        arg=names,
        timeout=timeout_s * 1000,
        polling=200,
    )


@dataclass
class Netns:
    name: str
    host_if: str
    host_ip: str
    ns_ip: str
    wrapper: Path


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=20)


@contextlib.contextmanager
def netns(tmp: Path) -> Iterator[Netns]:
    """A namespace joined to ours by a veth pair on 10.231.N.0/24; removed on exit."""
    tag = f"tl{os.getpid() % 10000}{random.randrange(100)}"
    n = random.randrange(1, 250)
    ns = Netns(tag, f"{tag}h", f"10.231.{n}.1", f"10.231.{n}.2", tmp / "chromium-in-netns")
    try:
        _ip("netns", "add", ns.name)
        _ip("link", "add", ns.host_if, "type", "veth", "peer", "name", f"{tag}n")
        _ip("link", "set", f"{tag}n", "netns", ns.name)
        _ip("addr", "add", f"{ns.host_ip}/24", "dev", ns.host_if)
        _ip("link", "set", ns.host_if, "up")
        for args in (
            ("addr", "add", f"{ns.ns_ip}/24", "dev", f"{tag}n"),
            ("link", "set", f"{tag}n", "up"),
            ("link", "set", "lo", "up"),
        ):
            _ip("netns", "exec", ns.name, "ip", *args)
        # Playwright talks to the browser over pipes, so a wrapper can start it in the netns.
        ns.wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {ns.name} {CHROMIUM} "$@"\n')
        ns.wrapper.chmod(0o755)
        yield ns
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            _ip("link", "del", ns.host_if)
        with contextlib.suppress(subprocess.SubprocessError):
            _ip("netns", "del", ns.name)
