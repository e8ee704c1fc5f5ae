"""The browser dashboard in real Chromium: every panel is the browser's own client of its
transport (WebSocket, EventSource, fetch long polling, RTCPeerConnection, MQTT.js over the
/mqtt bridge), and must deliver the feed in order with no gap and no duplicate, and resume
after its connection is cut."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from tests.browser import EVENTS_JS, Netns, artifacts_dir, chromium, netns, panels, wait_panels
from tests.conftest import UNIT, require, require_executable
from transports.app import build_app
from transports.config import ServerConfig
from transports.live import LiveServer
from transports.netutil import free_port

pytestmark = pytest.mark.browser

N = 40  # messages each panel must receive
RATE = 20.0  # msg/s published by the demo ticker while the page is open
# "dups" counts repeats the panel dropped by seq. Cursor-based transports never send one; MQTT
# QoS 1 is at-least-once (MQTT 5 §4.3.2): a message the browser got but had not acknowledged
# when its connection broke is sent again from the session — dropped, counted, never shown twice.
NO_DUPS = "(p.dups === '0' || p.transport === 'mqtt')"
CLEAN = "+p.received >= {n} && p.gaps === '0' && " + NO_DUPS + " && p.missing === '0'"


def no_dups(name: str, p: dict[str, str]) -> bool:
    return p["dups"] == "0" or name == "mqtt"


def _mqtt_ready() -> bool:
    return importlib.util.find_spec("transports.mqtt.server") is not None


def http_transports() -> list[str]:
    names = ["ws", "sse", "poll"]
    if _mqtt_ready():
        require_executable("mosquitto")
        names.append("mqtt")
    return names


def dashboard_server(
    make_server: Callable[..., LiveServer], names: list[str], **config: object
) -> LiveServer:
    host = str(config.pop("host", "127.0.0.1"))
    cfg = ServerConfig(rate=RATE, **config)  # type: ignore[arg-type]
    return make_server(tuple(names), config=cfg, app_factory=build_app, host=host)


def assert_clean(state: dict[str, dict[str, str]], names: list[str], at_least: int) -> None:
    for name in names:
        p = state[name]
        assert p["state"] == "open", (name, p)
        assert int(p["received"]) >= at_least, (name, p)
        assert (p["gaps"], p["missing"]) == ("0", "0"), (name, p)
        assert no_dups(name, p), (name, p)


def test_all_panels_deliver_in_order(make_server: Callable[..., LiveServer]) -> None:
    require_executable("chromium")
    names = http_transports()
    server = dashboard_server(make_server, names)
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1920, "height": 1080})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{server.url}/#token={server.admin_token}")
        wait_panels(page, names, CLEAN.format(n=N), 30 * UNIT)
        state = panels(page)
        page.screenshot(path=str(artifacts_dir() / "dashboard.png"))
    assert_clean(state, names, N)
    # Every panel started from the same cursor, so all carry the same seqs.
    firsts = {n: int(state[n]["lastSeq"]) - int(state[n]["received"]) for n in names if n != "mqtt"}
    assert len(set(firsts.values())) == 1, firsts
    assert state["webrtc"]["state"] == "not served"  # not in this server's transports
    assert not errors


def test_not_served_panels_and_disabled_faults(make_server: Callable[..., LiveServer]) -> None:
    require_executable("chromium")
    server = dashboard_server(make_server, ["sse"])
    with chromium() as browser:
        page = browser.new_page()
        page.goto(f"{server.url}/#token={server.admin_token}")
        wait_panels(page, ["sse"], "+p.received >= 3", 20 * UNIT)
        state = panels(page)
        disabled = page.eval_on_selector_all(
            "section.panel[data-transport] .faults button", "bs => bs.map(b => b.disabled)"
        )
    assert {n: state[n]["state"] for n in ("ws", "poll", "webrtc", "mqtt")} == dict.fromkeys(
        ("ws", "poll", "webrtc", "mqtt"), "not served"
    )
    assert disabled  # no fault lab on this server: every button is disabled
    assert all(disabled)


def test_publisher_controls_change_the_rate(make_server: Callable[..., LiveServer]) -> None:
    require_executable("chromium")
    server = dashboard_server(make_server, ["ws"])
    with chromium() as browser:
        page = browser.new_page()
        page.goto(f"{server.url}/#token={server.admin_token}")
        wait_panels(page, ["ws"], "+p.received >= 3", 20 * UNIT)
        page.fill("#publisher [name=rate]", "0")
        page.fill("#publisher [name=payload_bytes]", "300")
        page.click("#publisher button")
        page.wait_for_function(
            "() => document.querySelector('#publisher output').textContent.includes('300')",
            timeout=10_000 * UNIT,
        )
        page.fill("#publisher [name=rate]", "-5")
        page.click("#publisher button")
        page.wait_for_function(
            "() => document.querySelector('#publisher output').textContent.includes('rejected')",
            timeout=10_000 * UNIT,
        )
    assert server.ctx.ticker.settings()["payload_bytes"] == 300
    assert server.ctx.ticker.rate == 0


def test_five_panels_in_a_network_namespace(
    make_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    """All five panels with the browser in its own netns (Chromium shuns loopback WebRTC),
    through the fault lab: deliver in order, then survive a cut on each transport."""
    require_executable("chromium")
    require_executable("ip")
    require("root", os.geteuid() == 0, "creating a network namespace needs root")
    names = ["ws", "sse", "poll", "webrtc"] + (["mqtt"] if "mqtt" in http_transports() else [])
    ns: Netns
    with netns(tmp_path) as ns:
        server = lab_server(make_server, names, host=ns.host_ip, webrtc_loopback_only=False)
        with chromium(str(ns.wrapper)) as browser:
            page = browser.new_page(viewport={"width": 1920, "height": 1080})
            page.goto(f"{server.url}/#token={server.admin_token}")
            wait_panels(page, names, CLEAN.format(n=N), 40 * UNIT)
            delivered = panels(page)
            events = cut_each(page, names, 40 * UNIT)
            page.wait_for_timeout(3000)  # let the rate and latency windows refill
            state = panels(page)
            page.screenshot(path=str(artifacts_dir() / "dashboard-netns.png"))
            server.stop()  # before the namespace and its address go away
    assert_clean(delivered, names, N)
    assert_clean(state, names, N + 20)
    print(
        "netns, after a cut on each:",
        {n: (state[n]["p50"], state[n]["p99"], events[n]) for n in names},
    )


def lab_server(
    make_server: Callable[..., LiveServer],
    names: list[str],
    host: str = "127.0.0.1",
    **config: object,
) -> LiveServer:
    """A dashboard server with the fault lab: every panel connects through a fault proxy."""
    from transports.chaos.fault_api import FaultLab, install

    port = free_port(host)
    lab = FaultLab(host, port, names)
    cfg = ServerConfig(rate=RATE, **config)  # type: ignore[arg-type]
    cfg = cfg.replace(
        allowed_origins=(*cfg.allowed_origins, f"http://{host}:{port}", *lab.origins())
    )

    def factory(**kwargs: Any) -> Any:
        return install(build_app(**kwargs), lab)

    return make_server(tuple(names), config=cfg, app_factory=factory, host=host, port=port)


def cut_each(page: Page, names: list[str], name_timeout_s: float) -> dict[str, list[str]]:
    """Press "cut" on each panel in turn; it must reconnect and move on with no gap."""
    for name in names:
        before = panels(page)[name]
        page.click(f'section.panel[data-transport="{name}"] button[data-action="cut"]')
        # Long polling may not notice: Chromium retries a GET whose reused keep-alive
        # connection fails before any response byte, so the page never sees the cut.
        reconnected = "true" if name == "poll" else f"+p.reconnects > {before['reconnects']}"
        wait_panels(
            page,
            [name],
            f"{reconnected} && p.state === 'open' && "
            + CLEAN.format(n=int(before["received"]) + 20),
            name_timeout_s,
        )
    events: dict[str, list[str]] = page.evaluate(EVENTS_JS)
    return events


def test_cut_each_transport_resumes_without_gap(make_server: Callable[..., LiveServer]) -> None:
    require_executable("chromium")
    names = http_transports()
    server = lab_server(make_server, names)
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1920, "height": 1080})
        page.goto(f"{server.url}/#token={server.admin_token}")
        wait_panels(page, names, CLEAN.format(n=N), 30 * UNIT)
        enabled = page.eval_on_selector_all(
            "section.panel[data-transport]:not(.off) .faults button",
            "bs => bs.map(b => !b.disabled)",
        )
        assert enabled
        assert all(enabled), page.evaluate("() => window.transportLab.faults")
        events = cut_each(page, names, 30 * UNIT)
        state = panels(page)
        page.screenshot(path=str(artifacts_dir() / "dashboard-after-cuts.png"))
    print("after a cut on each:", {n: (state[n]["p50"], state[n]["p99"], events[n]) for n in names})
    for name in names:
        if name != "poll":
            assert int(state[name]["reconnects"]) >= 1, (name, events[name])
        assert any("fault cut" in e for e in events[name]), events[name]
    assert_clean(state, names, N + 20)
