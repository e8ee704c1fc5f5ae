"""The demo pages in real Chromium, on one demo server with the fault lab in front: two
browser contexts on two different transports interact, and after a fault-lab cut each
recovers with nothing lost or duplicated (docs/demos.md)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page

from tests.browser import chromium
from tests.conftest import require_executable
from tests.demo_rig import Rig, assert_clean, demo_rig, open_demo, screenshot, stats, wait_js

pytestmark = pytest.mark.browser
ALL_TRANSPORTS = ("ws", "sse", "poll", "webrtc", "mqtt")
SENT = "(t) => [...document.querySelectorAll('#log li.sent')].some(e => e.textContent.includes(t))"


@pytest.fixture(scope="module")
def rig() -> Iterator[Rig]:
    with demo_rig(ticker_rate=40.0, match_tick=0.25, bot_hz=30.0) as r:
        yield r


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require_executable("chromium")
    with chromium() as b:
        yield b


def log_of(page: Page) -> list[dict[str, str]]:
    out: list[dict[str, str]] = page.evaluate(
        "() => [...document.querySelectorAll('#log li')].map(e => ({cls: e.className,"
        " text: e.querySelector('.text').textContent, from: e.querySelector('.from').textContent}))"
    )
    return out


def say(page: Page, text: str) -> None:
    page.fill("#text", text)
    page.click("#say button")


def test_chat_across_transports_survives_a_cut_and_an_observer_reads_only(
    rig: Rig, browser: Browser
) -> None:
    alice = open_demo(browser, rig, "chat", "ws", "alice", query="&room=workshop")
    bob = open_demo(browser, rig, "chat", "sse", "bob", query="&room=workshop")
    say(alice, "hello from a WebSocket")
    say(bob, "hello from SSE")
    for page in (alice, bob):
        wait_js(page, "() => document.querySelectorAll('#log li.msg').length >= 2", 10)
    # Presence: bob's page lists alice (join frames / the channel's member list).
    wait_js(bob, "() => document.querySelector('#presence').textContent.includes('alice')", 10)

    # A message sent while alice's transport is blackholed stays "unsent"...
    rig.fault("ws", "blackhole")
    say(alice, "sent during the cut")
    alice.wait_for_timeout(800)
    pending = [e for e in log_of(alice) if e["text"] == "sent during the cut"]
    assert [e["cls"] for e in pending] == ["msg unsent"], pending
    # ...then the connection is reset and the path restored: the page reconnects and sends
    # the same message id again; the server stores it once.
    rig.fault("ws", "cut")
    rig.fault("ws", "restore")
    sent = "[...document.querySelectorAll('#log li.sent')].some(e => e.textContent.includes('cut'))"
    wait_js(alice, f"() => {sent}", 25)
    wait_js(bob, "() => document.querySelector('#log').textContent.includes('during the cut')", 10)
    bob.wait_for_timeout(500)
    for page in (alice, bob):
        texts = [e["text"] for e in log_of(page)]
        assert texts.count("sent during the cut") == 1, texts
        assert texts.count("hello from SSE") == 1, texts
        assert_clean(page)
    assert stats(alice)["reconnects"] >= 1

    # A read-only observer sees the room and cannot write: the input is off, the server says 403.
    observer = open_demo(
        browser, rig, "chat", "poll", "watcher", role="observer", query="&room=workshop"
    )
    wait_js(
        observer, "() => document.querySelector('#log').textContent.includes('during the cut')", 10
    )
    assert observer.is_disabled("#text")
    token = observer.evaluate("() => demo.token")
    r = httpx.post(
        f"{rig.url}/api/channels/chat:workshop/messages",
        json={"data": {"text": "sneaky"}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert (r.status_code, r.json()["error"]) == (403, "forbidden")
    r = httpx.post(f"{rig.url}/api/channels/chat:workshop/messages", json={"data": {"text": "x"}})
    assert r.status_code == 401
    screenshot(alice, "chat")
    for page in (alice, bob, observer):
        page.context.close()


def test_ticker_subscribe_unsubscribe_high_rate_compression_and_a_cut(
    rig: Rig, browser: Browser
) -> None:
    a = open_demo(browser, rig, "ticker", "sse", "ann", query="&symbols=ACME,GLOBX")
    b = open_demo(browser, rig, "ticker", "webrtc", "ben", query="&symbols=ACME,GLOBX")
    for page in (a, b):
        wait_js(page, "() => ticker.quotes.has('ACME') && ticker.sizes.big[0] >= 1", 20)
    # The same channel seq on both transports.
    seq = {p: p.evaluate("() => demo.client.cursors.get('ticker:ACME').seq") for p in (a, b)}
    assert abs(seq[a] - seq[b]) <= 2, seq
    # Compression made visible: the big (order book) messages shrink, the small ones are left.
    raw, packed = a.evaluate("() => ticker.sizes.big.slice(1)")
    assert 0 < packed < raw / 2, (raw, packed)

    # Unsubscribe ACME, subscribe STARK, at run time.
    a.uncheck('input[data-symbol="ACME"]')
    a.check('input[data-symbol="STARK"]')
    wait_js(a, "() => ticker.quotes.has('STARK')", 10)
    acme = a.evaluate("() => ticker.quotes.get('ACME').n")
    a.wait_for_timeout(1000)
    assert a.evaluate("() => ticker.quotes.get('ACME').n") == acme

    # High rate: hundreds of messages per second, then back.
    a.click("#rate")
    wait_js(a, "() => +document.querySelector('#mps').textContent > 60", 10)
    rig.fault("sse", "cut")
    wait_js(a, "() => demo.client.stats.reconnects >= 1 && demo.client.state === 'open'", 15)
    a.wait_for_timeout(1000)
    a.click("#rate")
    wait_js(a, "() => document.querySelector('#rate-now').textContent.includes(' 4 msg/s')", 5)
    for page in (a, b):
        assert_clean(page)
    screenshot(a, "ticker")
    for page in (a, b):
        page.context.close()


def test_scores_train_tunnel_replays_exactly_what_was_missed_or_says_how_many(
    rig: Rig, browser: Browser
) -> None:
    a = open_demo(browser, rig, "scores", "poll", "commuter")
    b = open_demo(browser, rig, "scores", "mqtt", "fan")
    for page in (a, b):
        wait_js(page, "() => scores.seen['match-1'].length >= 3", 15)
    a.click("#tunnel")
    a.wait_for_timeout(1500)
    a.click("#tunnel")
    wait_js(a, "() => document.querySelector('#caught').textContent.includes('replayed')", 10)
    a.wait_for_timeout(1500)
    seen = a.evaluate("() => scores.seen['match-1']")
    assert seen == list(range(seen[0], seen[0] + len(seen))), seen  # nothing lost or twice
    replayed = a.evaluate("() => scores.state().catchUp.replayed['match-1']")
    assert replayed >= 4, replayed  # 1.5 s at 4 updates/s

    # Longer than history reaches: the server publishes 60 updates while the page is away.
    a.click("#tunnel")
    before = a.evaluate("() => scores.seen['match-1'].at(-1)")
    last = rig.publish(
        "scores:match-1",
        {
            "match": "match-1",
            "teams": ["Rovers", "United"],
            "minute": 45,
            "score": [1, 1],
            "event": "minute",
            "text": "45'",
        },
        count=60,
    )
    a.click("#tunnel")
    wait_js(a, "() => document.querySelector('#caught').textContent.includes('you missed')", 10)
    missed = a.evaluate("() => scores.state().catchUp.missed['match-1']")
    first = last - 30 + 1  # history keeps 30 per match; more may have been published since
    assert missed >= first - before - 1, (missed, first, before)
    assert f"you missed {missed} update" in a.inner_text("#caught")
    screenshot(a, "scores")

    rig.fault("mqtt", "cut")
    b.wait_for_timeout(3000)
    wait_js(b, "() => demo.client.state === 'open'", 15)
    seen_b = b.evaluate("() => scores.seen['match-1']")
    assert seen_b == list(range(seen_b[0], seen_b[0] + len(seen_b))), seen_b
    assert_clean(b)
    for page in (a, b):
        page.context.close()


def test_collab_editors_converge_across_transports_and_a_cut(rig: Rig, browser: Browser) -> None:
    a = open_demo(browser, rig, "collab", "ws", "ada", query="&doc=test")
    b = open_demo(browser, rig, "collab", "mqtt", "bo", query="&doc=test")
    a.click("#editor")
    a.keyboard.type("Hello ")
    b.click("#editor")
    b.keyboard.press("End")
    b.keyboard.type("world")
    for page in (a, b):
        wait_js(
            page, "() => collab.text().includes('Hello') && collab.text().includes('world')", 10
        )
    # Edits during a blackhole wait in the outbox, then merge.
    rig.fault("ws", "blackhole")
    a.evaluate("() => collab.type(' [typed in the tunnel]')")
    b.evaluate("() => collab.type(' [typed outside]')")
    a.wait_for_timeout(500)
    assert "[typed outside]" not in a.evaluate("() => collab.text()")
    rig.fault("ws", "cut")
    rig.fault("ws", "restore")
    wait_js(a, "() => collab.text().includes('[typed outside]')", 25)
    wait_js(b, "() => collab.text().includes('[typed in the tunnel]')", 25)
    texts = {p.evaluate("() => collab.text()") for p in (a, b)}
    assert len(texts) == 1, texts
    text = texts.pop()
    assert text.count("[typed in the tunnel]") == 1, text
    assert text.count("[typed outside]") == 1, text
    # The server's pycrdt copy converged too.
    assert rig.server.call(lambda: rig.demo.docs.text("doc:test")) == text
    # A newcomer gets the whole document from the snapshot.
    c = open_demo(browser, rig, "collab", "poll", "cy", query="&doc=test")
    wait_js(c, "(t) => collab.text() === t", 10, arg=text)
    assert_clean(a)
    screenshot(a, "collab")
    for page in (a, b, c):
        page.context.close()


def bot_figures(page: Page, seconds: float) -> dict[str, float]:
    """The bot cursor's updates over the last ``seconds``: count and the longest pause."""
    out: dict[str, float] = page.evaluate(
        "(ms) => { const f = cursors.figures(ms); return {count: f.count, stall: f.stall}; }",
        seconds * 1000,
    )
    return out


def test_cursors_move_and_unordered_webrtc_keeps_moving_under_loss(
    rig: Rig, browser: Browser
) -> None:
    ordered = open_demo(browser, rig, "cursors", "webrtc", "ord")
    unordered = open_demo(browser, rig, "cursors", "webrtc-u", "unord")
    ws = open_demo(browser, rig, "cursors", "ws", "wsy")
    # A cursor moved in one page is seen moving in the others.
    ws.check("#auto")
    positions = []
    for _ in range(3):
        unordered.wait_for_timeout(400)
        positions.append(
            unordered.evaluate(
                "() => { const e = [...document.querySelectorAll('.cursor')]"
                ".find(d => d.textContent === 'wsy');"
                " return e ? e.style.left + ',' + e.style.top : null; }"
            )
        )
    ws.uncheck("#auto")
    assert None not in positions
    assert len(set(positions)) == 3, positions

    clean = {
        name: bot_figures(p, 2) for name, p in (("ordered", ordered), ("unordered", unordered))
    }
    # 10 % loss on the WebRTC (UDP) path, both pages behind the same relay.
    rig.fault("webrtc", "latency", latency_ms=20, jitter_ms=0, loss_pct=10)
    try:
        ordered.wait_for_timeout(8000)
        lossy = {
            name: bot_figures(p, 8) for name, p in (("ordered", ordered), ("unordered", unordered))
        }
    finally:
        rig.fault("webrtc", "restore")
    screenshot(unordered, "cursors")
    print("bot cursor at 30 Hz, clean (2 s):", clean, "| 10 % loss (8 s):", lossy)
    # Unordered, unreliable: about 90 % of the updates arrive, none is waited for.
    assert lossy["unordered"]["count"] >= 0.6 * 30 * 8, lossy
    assert lossy["unordered"]["stall"] < 600, lossy
    # Ordered, reliable: a lost packet holds back every later one until it is retransmitted.
    assert lossy["ordered"]["stall"] > 1.5 * lossy["unordered"]["stall"], lossy
    assert unordered.evaluate("() => demo.client.stats.dups") == 0
    for page in (ordered, unordered, ws):
        page.context.close()


def test_teacher_mode_shows_large_fonts_the_fault_buttons_and_a_qr_code(
    rig: Rig, browser: Browser
) -> None:
    page = browser.new_context(viewport={"width": 1600, "height": 1000}).new_page()
    page.goto(f"{rig.url}/?teacher=1#token={rig.server.admin_token}")
    wait_js(page, "() => document.querySelector('#teacher .qr svg') !== null", 15)
    url = page.inner_text("#teacher .url")
    assert url.startswith(f"{rig.url}/demos/chat/#token=class.w."), url
    assert "loopback" in page.inner_text("#teacher .warn")  # opened at 127.0.0.1
    size = page.evaluate("() => parseFloat(getComputedStyle(document.body).fontSize)")
    assert size >= 22
    assert page.locator("button[data-action='cut']").count() >= 1  # the fault lab is on
    # The invite in the QR code works: a page opened with it can write.
    token = url.split("#token=")[1]
    r = httpx.post(
        f"{rig.url}/demos/api/token",
        json={"user": "pupil", "role": "writer"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200, r.text
    screenshot(page, "teacher")
    page.context.close()


def test_no_request_a_page_makes_carries_a_token_in_its_url(rig: Rig, browser: Browser) -> None:
    """Playwright's log of every request and WebSocket the chat page opens on each of the
    five transports (sending a message on each), and of the dashboard in teacher mode: the
    invite, the personal token and the admin token appear in no URL (they travel in the
    fragment, headers, the WebSocket subprotocol; an EventSource uses a single-use ticket)."""
    urls: list[str] = []

    def record(page: Page) -> Page:
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.errors = errors  # type: ignore[attr-defined]
        page.on("request", lambda r: urls.append(r.url))
        page.on("websocket", lambda ws: urls.append(ws.url))
        return page

    context = browser.new_context(viewport={"width": 1280, "height": 760})
    page = record(context.new_page())
    invite = rig.invite("writer")
    page.goto(f"{rig.url}/demos/chat/?transport=ws&user=nourl&room=nourl#token={invite}")
    wait_js(page, "() => window.demo && demo.client && demo.client.state === 'open'", 20)
    token = page.evaluate("() => demo.token")
    assert token
    assert token.startswith("nourl.w.")
    for transport in ALL_TRANSPORTS:
        page.evaluate("(t) => demo.use(t)", transport)
        wait_js(
            page,
            "(t) => demo.client.transport === t && demo.client.state === 'open'",
            20,
            transport,
        )
        say(page, f"over {transport}")
        wait_js(page, SENT, 20, f"over {transport}")
    assert_clean(page)
    dashboard = record(context.new_page())
    dashboard.goto(f"{rig.url}/?teacher=1#token={rig.server.admin_token}")
    wait_js(dashboard, "() => document.querySelector('#teacher .qr svg') !== null", 15)
    dashboard.wait_for_timeout(2000)
    context.close()
    secrets = (invite, token, rig.server.admin_token)
    # The fragment is never sent; Playwright logs the navigation's URL without it.
    leaks = [u for u in urls if any(s in u.split("#")[0] for s in secrets) or "access_token" in u]
    assert not leaks, leaks
    assert any("/sse?" in u and "ticket=" in u for u in urls), urls
    assert any("/ws?" in u for u in urls), urls
    assert any(u.endswith("/mqtt") for u in urls), urls
    assert any("/webrtc/offer" in u for u in urls), urls
