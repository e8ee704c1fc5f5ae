"""SSE on two channels in real Chromium: the page's own ``EventSource`` survives server-side
cuts and resumes both channels using only the browser's automatic reconnect, whose
``Last-Event-ID`` is the cursor token the server put in ``id:`` (docs/wire.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.browser import chromium
from tests.conftest import UNIT, require_executable
from tests.helpers import publish_on
from tests.test_channels import by_header, channel_config
from transports.app import build_app
from transports.auth import ConnectionRequest, Principal
from transports.jwtauth import token_from
from transports.live import LiveServer

pytestmark = pytest.mark.browser

OPEN_JS = """() => {
  window.got = {"chat:a": [], "chat:b": []};
  window.opens = 0;
  window.ids = [];
  const es = new EventSource("/sse?channel=chat:a&channel=chat:b");
  es.onopen = () => { window.opens += 1; };
  es.onmessage = (e) => {
    const m = JSON.parse(e.data);
    window.got[m.channel].push(m.seq);
    window.ids.push(e.lastEventId);
  };
  window.es = es;
}"""
STATE_JS = "() => ({got: window.got, opens: window.opens, last: window.ids.at(-1)})"


def cut_streams(server: LiveServer) -> int:
    """End every multi-channel stream on the server, as a crash of the stream would."""

    def cut() -> int:
        streams = {id(s): s for c in server.ctx.hub.all() for s in c.listeners}
        for stream in streams.values():
            stream.close("closed")  # type: ignore[attr-defined]
        return len(streams)

    return int(server.call(cut))


def wait_until(page: Any, condition: str, timeout_s: float) -> None:
    page.wait_for_function(condition, timeout=timeout_s * 1000, polling=100)


def test_event_source_resumes_two_channels_by_last_event_id(
    make_server: Callable[..., LiveServer],
) -> None:
    require_executable("chromium")
    server = make_server(
        ("sse",), config=channel_config(sse_retry_ms=200), auth=by_header, app_factory=build_app
    )
    with chromium() as browser:
        page = browser.new_page()
        page.goto(server.url + "/api/info")  # any page of the server's origin
        page.evaluate(OPEN_JS)
        wait_until(page, "() => window.opens === 1", 10 * UNIT)
        publish_on(server, "chat:a", 10)
        publish_on(server, "chat:b", 7)
        for round_ in range(1, 4):
            publish_on(server, "chat:c", 5)  # not subscribed: never shown
            wait_until(
                page,
                f"() => window.got['chat:a'].length >= {10 * round_}"
                f" && window.got['chat:b'].length >= {7 * round_}",
                10 * UNIT,
            )
            if round_ == 3:
                break
            assert cut_streams(server) == 1
            # Published while the page is away: only a resume from the cursor brings it.
            publish_on(server, "chat:a", 10, start=10 * round_)
            publish_on(server, "chat:b", 7, start=7 * round_)
            wait_until(page, f"() => window.opens === {round_ + 1}", 10 * UNIT)
        state = page.evaluate(STATE_JS)
        page.evaluate("() => window.es.close()")
    assert state["got"]["chat:a"] == list(range(1, 31)), "chat:a: no loss, no duplicate"
    assert state["got"]["chat:b"] == list(range(1, 22)), "chat:b: no loss, no duplicate"
    assert state["opens"] == 3, "the browser reconnected by itself after each cut"
    epochs = {
        c: server.call(lambda c=c: server.ctx.hub.channel(c).feed.epoch)
        for c in ("chat:a", "chat:b")
    }
    assert state["last"] == f"30.{epochs['chat:a']},21.{epochs['chat:b']}"


async def by_query(request: ConnectionRequest) -> Principal:
    """Browsers cannot set ``Authorization`` on a WebSocket: the page names itself in
    ``Sec-WebSocket-Protocol: transport-lab, bearer.NAME`` (or the header, for its POSTs)."""
    return Principal(token_from(request.headers) or "anonymous")


MODULE_JS = """async ([transport]) => {
  const { Channels } = await import("/js/channels.js");
  window.seen = {"chat:a": [], "chat:b": []};
  window.hub = new Channels({ transport, token: "carol", onEvent: (e) => {
    if (e.type === "message") window.seen[e.channel].push(e.message.seq);
  }});
  window.hub.subscribe("chat:a");
  window.hub.subscribe("chat:b");
}"""


@pytest.mark.parametrize("transport", ["ws", "sse"])
def test_browser_module_follows_publishes_and_resumes(
    transport: str, make_server: Callable[..., LiveServer]
) -> None:
    require_executable("chromium")
    server = make_server(
        ("ws", "sse"), config=channel_config(sse_retry_ms=200), auth=by_query, app_factory=build_app
    )
    with chromium() as browser:
        page = browser.new_page()
        page.goto(server.url + "/api/info")
        page.evaluate(MODULE_JS, [transport])
        wait_until(page, "() => window.hub.stats.connects === 1", 10 * UNIT)
        wait_until(
            page,
            "() => [...window.hub.cursors.values()].every(c => c !== null)",  # both hellos
            10 * UNIT,
        )
        acks = page.evaluate(
            "async () => [await window.hub.publish('chat:a', {n: 1}, 'p1'),"
            " await window.hub.publish('chat:b', {n: 2}, 'p2')]"
        )
        assert [(a["channel"], a["seq"], a["id"]) for a in acks] == [
            ("chat:a", 1, "p1"),
            ("chat:b", 1, "p2"),
        ]
        wait_until(page, "() => window.seen['chat:b'].length === 1", 10 * UNIT)
        assert cut_streams(server) == 1
        publish_on(server, "chat:a", 4)  # while the page is away
        publish_on(server, "chat:b", 4)
        wait_until(page, "() => window.hub.stats.connects === 2", 10 * UNIT)
        again = page.evaluate("async () => await window.hub.publish('chat:a', {n: 1}, 'p1')")
        wait_until(
            page,
            "() => window.seen['chat:a'].length >= 5 && window.seen['chat:b'].length >= 5",
            10 * UNIT,
        )
        seen = page.evaluate("() => window.seen")
        stats = page.evaluate("() => window.hub.stats")
        page.evaluate("() => window.hub.close()")
    assert again == acks[0], "the same id again: the first ack, not a second message"
    assert seen == {"chat:a": [1, 2, 3, 4, 5], "chat:b": [1, 2, 3, 4, 5]}
    assert (stats["duplicates"], stats["gaps"]) == (0, 0)
