"""The dashboard's fault controls in real Chromium: "Restart server" on ``serve --faults`` (a
real child process; every panel reconnects, in-memory history shows a new epoch, SQLite
history loses nothing), and blackhole / added latency on single transports, read from the
panels' data attributes (counts and orderings, not exact timings)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page

from tests.browser import EVENTS_JS, artifacts_dir, chromium, netns, panels, wait_panels
from tests.conftest import UNIT, require, require_executable
from tests.serve_process import serve
from tests.test_dashboard import (
    CLEAN,
    NO_DUPS,
    RATE,
    N,
    assert_clean,
    http_transports,
    lab_server,
    no_dups,
)
from transports.live import LiveServer

pytestmark = pytest.mark.browser


def press(page: Page, name: str, action: str) -> None:
    page.click(f'section.panel[data-transport="{name}"] button[data-action="{action}"]')


def received(page: Page, names: list[str]) -> dict[str, int]:
    """Messages each panel has taken in now (the data attributes lag by one render)."""
    counts: dict[str, int] = page.evaluate(
        "names => Object.fromEntries(names.map(n => [n, window.transportLab.panels[n].received]))",
        names,
    )
    return counts


def open_page(page: Page, url: str, names: list[str]) -> dict[str, dict[str, str]]:
    page.goto(url)
    wait_panels(page, names, CLEAN.format(n=N // 2), 30 * UNIT)
    assert page.is_enabled("#restart")
    return panels(page)


def test_restart_server_in_memory_every_panel_reports_the_new_epoch(tmp_path: Path) -> None:
    require_executable("chromium")
    names = http_transports()
    args = ("--faults", "--transports", ",".join(names), "--rate", str(RATE))
    with serve(tmp_path, *args) as served, chromium() as browser:
        page = browser.new_page(viewport={"width": 1920, "height": 1080})
        before = open_page(page, served.dashboard_url, names)
        old = before[names[0]]["epoch"]
        page.click("#restart")
        # Every panel reconnects, learns the new epoch (a reset) and carries on from seq 1.
        wait_panels(
            page,
            names,
            f"p.state === 'open' && p.epoch !== '{old}' && +p.resets === 1 && +p.lastSeq >= 20"
            " && " + NO_DUPS,
            30 * UNIT,
        )
        page.wait_for_function(
            "() => document.querySelector('#server output').textContent.includes('serving again')",
            timeout=15_000 * UNIT,
        )
        state, events = panels(page), page.evaluate(EVENTS_JS)
        header = page.inner_text("header")
        page.screenshot(path=str(artifacts_dir() / "dashboard-after-restart.png"))
        new = httpx.get(served.url + "/api/info").json()["epoch"]
    print("after a restart (in-memory):", {n: events[n][:4] for n in names})
    assert new != old
    assert f"epoch {old} → {new}" in header, header
    for name in names:
        p = state[name]
        assert p["epoch"] == new, (name, p)
        # A new epoch is not a gap: seq restarted at 1 and every seq of it arrived once.
        assert (p["gaps"], p["missing"]) == ("0", "0"), (name, p)
        assert no_dups(name, p), (name, p)
        assert int(p["received"]) >= int(before[name]["received"]) + 20, (name, p)
        assert any("epoch changed" in e for e in events[name]), events[name]
        if name != "poll":  # Chromium may retry a failed keep-alive GET unseen (cut test)
            assert int(p["reconnects"]) >= 1, (name, events[name])


def test_restart_server_with_sqlite_history_loses_nothing(tmp_path: Path) -> None:
    require_executable("chromium")
    names = http_transports()
    history = f"sqlite:///{tmp_path / 'feed.db'}"
    args = ("--faults", "--transports", ",".join(names), "--rate", str(RATE), "--history", history)
    with serve(tmp_path, *args) as served, chromium() as browser:
        page = browser.new_page(viewport={"width": 1920, "height": 1080})
        before = open_page(page, served.dashboard_url, names)
        page.click("#restart")
        n = max(int(before[n]["received"]) for n in names) + 20
        wait_panels(page, names, "p.state === 'open' && " + CLEAN.format(n=n), 30 * UNIT)
        page.wait_for_function(
            "() => document.querySelector('#server output').textContent.includes('same epoch')",
            timeout=15_000 * UNIT,
        )
        state, events = panels(page), page.evaluate(EVENTS_JS)
    print("after a restart (sqlite):", {n: events[n][:3] for n in names})
    assert_clean(state, names, N // 2 + 20)
    for name in names:
        assert state[name]["epoch"] == before[name]["epoch"], (name, state[name])
        assert state[name]["resets"] == "0", (name, state[name])
        if name != "poll":
            assert int(state[name]["reconnects"]) >= 1, (name, events[name])


def test_blackhole_stalls_one_panel_and_latency_shows_in_p50(
    make_server: Callable[..., LiveServer],
) -> None:
    """Blackhole ws and sse: those panels stall and notice (their idle watchdogs), the others
    go on; restore: they catch up with no gap. + latency on long polling raises its p50."""
    require_executable("chromium")
    names = http_transports()
    added_ms = 300
    server = lab_server(make_server, names)
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1920, "height": 1080})
        page.goto(f"{server.url}/#token={server.admin_token}")
        wait_panels(page, names, CLEAN.format(n=N // 2), 30 * UNIT)
        assert not page.is_enabled("#restart")  # this server cannot restart itself
        page.fill('section.panel[data-transport="poll"] .faults input', str(added_ms))
        press(page, "poll", "latency")
        held = ["ws", "sse"]
        for name in held:
            press(page, name, "blackhole")
        # The page logs the fault once the server has applied it: count from there.
        page.wait_for_function(
            "names => names.every(n => window.transportLab.panels[n].events"
            ".some(e => e.text === 'fault blackhole'))",
            arg=held,
            timeout=10_000 * UNIT,
        )
        stalled = received(page, names)
        # The watchdogs: WS after 6 s without a frame, SSE after ~4 s without an event.
        wait_panels(page, held, "p.state === 'reconnecting'", 20 * UNIT)
        during = received(page, names)
        for name in held:
            press(page, name, "restore")
        wait_panels(
            page,
            held,
            "p.state === 'open' && " + CLEAN.format(n=max(during[n] for n in held) + 20),
            30 * UNIT,
        )
        # p50 is over the last 500 messages: at 20 msg/s it moves once ~250 are late.
        wait_panels(page, ["poll"], f"+p.p50 > {added_ms * 0.8}", 30 * UNIT)
        state, events = panels(page), page.evaluate(EVENTS_JS)
        page.screenshot(path=str(artifacts_dir() / "dashboard-blackhole-latency.png"))
    print(
        "blackhole/latency:", {n: (state[n]["p50"], state[n]["p99"], events[n][:3]) for n in names}
    )
    others = [n for n in names if n not in held]
    for name in held:
        # Stalled: at most what was in flight arrived while the path was black.
        assert during[name] <= stalled[name] + 2, (name, stalled, during)
        assert any("silent for" in e for e in events[name]), events[name]
    for name in others:
        assert during[name] > stalled[name] + 20, (name, stalled, during)
    assert_clean(state, names, N)
    # The latency is in poll's p50, and only there among the panels left alone.
    assert float(state["poll"]["p50"]) > added_ms * 0.8
    for name in [n for n in others if n != "poll"]:
        assert float(state[name]["p50"]) < float(state["poll"]["p50"]) / 3, state


def test_restart_server_webrtc_panel_in_a_network_namespace(tmp_path: Path) -> None:
    """All five panels, WebRTC included, across a restart (Chromium shuns loopback WebRTC:
    the browser runs in a namespace the test makes): each reconnects, shows the new epoch,
    no gap and no duplicate. Its screenshot is the one in the README."""
    require_executable("chromium")
    require_executable("ip")
    require("root", os.geteuid() == 0, "creating a network namespace needs root")
    names = ["ws", "sse", "poll", "webrtc"] + (["mqtt"] if "mqtt" in http_transports() else [])
    args = ("--faults", "--transports", ",".join(names), "--rate", str(RATE))
    with (
        netns(tmp_path) as ns,
        serve(tmp_path, *args, host=ns.host_ip) as served,
        chromium(str(ns.wrapper)) as browser,
    ):
        page = browser.new_page(viewport={"width": 1920, "height": 1080})
        before = open_page(page, served.dashboard_url, names)
        page.click("#restart")
        wait_panels(
            page,
            names,
            f"p.state === 'open' && p.epoch !== '{before['webrtc']['epoch']}' && +p.resets === 1"
            " && +p.lastSeq >= 20 && " + NO_DUPS + " && p.gaps === '0'",
            30 * UNIT,
        )
        page.wait_for_function(
            "() => document.querySelector('#server output').textContent.includes('serving again')",
            timeout=15_000 * UNIT,
        )
        page.wait_for_timeout(2000)  # let the rate windows refill for the screenshot
        state, events = panels(page), page.evaluate(EVENTS_JS)
        print(page.inner_text("#server output"))
        page.screenshot(path=str(artifacts_dir() / "dashboard-netns-restart.png"))
    print("after a restart (netns):", {n: (state[n]["p50"], events[n][:4]) for n in names})
    assert len({state[n]["epoch"] for n in names}) == 1, state
    for name in names:
        assert state[name]["missing"] == "0", (name, state[name])
        if name != "poll":
            assert int(state[name]["reconnects"]) >= 1, (name, events[name])
