"""What a projector shows: all five panels at 1280×720 and at 1920×1080, a fresh page whose p99
is not inflated by replayed history, a readable event log, and the same after a cut.

One page in a network namespace (Chromium pairs WebRTC only off loopback), resized between
the two projector sizes, so the whole story costs one server and one browser. Screenshots go
to the artifacts folder (``docs/dashboard-*.png`` are copies from a run of this test).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.browser import EVENTS_JS, artifacts_dir, chromium, netns, panels, wait_panels
from tests.conftest import UNIT, require, require_executable
from tests.serve_process import serve
from tests.test_dashboard import CLEAN, RATE, http_transports

pytestmark = pytest.mark.browser
SIZES = {"1280x720": (1280, 720), "1920x1080": (1920, 1080)}

LAYOUT_JS = """() => {
  const vw = innerWidth, vh = innerHeight;
  const inside = (r) => r.left >= 0 && r.top >= 0 && r.right <= vw + 1 && r.bottom <= vh + 1;
  const panels = [...document.querySelectorAll('section.panel[data-transport]')];
  const log = document.querySelector('section.panel[data-transport] .events');
  const lr = log.getBoundingClientRect();
  return {
    visible: panels.filter(p => inside(p.getBoundingClientRect())).map(p => p.dataset.transport),
    scrollX: document.documentElement.scrollWidth > vw,
    scrollY: document.documentElement.scrollHeight > vh + 1,
    logFontPx: parseFloat(getComputedStyle(log).fontSize),
    logLines: lr.height / parseFloat(getComputedStyle(log).lineHeight),
    logScrolls: getComputedStyle(log).overflowY,
  };
}"""


def check_layout(page: Page, size: str, names: list[str]) -> dict[str, object]:
    layout: dict[str, object] = page.evaluate(LAYOUT_JS)
    assert sorted(layout["visible"]) == sorted(names), (size, layout)  # type: ignore[arg-type]
    assert not layout["scrollX"], (size, layout)
    assert not layout["scrollY"], (size, layout)
    # Readable: the log's type is the page's body size scaled for the screen, at least 3
    # lines tall, and older entries scroll instead of being cut off.
    assert float(layout["logFontPx"]) >= 10, (size, layout)  # type: ignore[arg-type]
    assert float(layout["logLines"]) >= 3, (size, layout)  # type: ignore[arg-type]
    assert layout["logScrolls"] == "auto", (size, layout)
    return layout


def shoot(page: Page, size: str, moment: str) -> None:
    w, h = SIZES[size]
    page.set_viewport_size({"width": w, "height": h})
    page.wait_for_timeout(400)  # two renders at the new size
    page.screenshot(path=str(artifacts_dir() / f"dashboard-{size}-{moment}.png"))


def test_five_panels_fit_both_projectors_fresh_and_after_a_cut(tmp_path: Path) -> None:
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
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.goto(served.dashboard_url)
        wait_panels(page, names, "p.state === 'open'", 30 * UNIT)
        page.wait_for_timeout(10_000)  # "fresh": ten seconds after the page opened
        fresh = panels(page)
        layouts = {}
        for size in SIZES:
            shoot(page, size, "fresh")
            layouts[size] = check_layout(page, size, names)
        # Steady state: the 500-sample window holds only messages from well after the start.
        wait_panels(page, names, CLEAN.format(n=int(RATE * 10 + 520)), 60 * UNIT)
        steady = panels(page)
        for name in names:
            page.click(f'section.panel[data-transport="{name}"] button[data-action="cut"]')
        wait_panels(
            page,
            names,
            "p.state === 'open' && (+p.reconnects >= 1 || p.transport === 'poll')",
            40 * UNIT,
        )
        page.wait_for_timeout(3000)
        after = panels(page)
        events = page.evaluate(EVENTS_JS)
        for size in reversed(SIZES):
            shoot(page, size, "after-cut")
            check_layout(page, size, names)
    print("layout:", layouts)
    print("p99 ms fresh / steady / after cut:", {
        n: (fresh[n]["p99"], steady[n]["p99"], after[n]["p99"], after[n]["replayed"])
        for n in names
    })  # fmt: skip
    for name in names:
        # A fresh page's p99 is the transport's own: replayed history stays out of latency
        # (replays made it 250-640 ms), and the page connects only after its start-up work
        # (which had the first live messages wait 40-140 ms in the page's task queue). The
        # 25 ms of slack: a p99 of a few hundred samples moves that much on a busy 2-core
        # machine (a poll panel read 28.4 vs 14.2 ms), far below what either fault added.
        f, s = float(fresh[name]["p99"]), float(steady[name]["p99"])
        assert f <= 2 * s + 25, (name, fresh[name], steady[name])
        assert after[name]["gaps"] == "0", (name, after[name], events[name])
        assert any("fault cut" in e for e in events[name]), events[name]
