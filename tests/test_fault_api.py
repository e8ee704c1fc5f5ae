"""``/api/faults`` on a real server: proxies per transport, actions, documented 400s."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import UNIT
from transports.backoff import Backoff
from transports.chaos.fault_api import FaultLab, install
from transports.client import Delivered, FollowStats, follow
from transports.clients import subscriber
from transports.config import ServerConfig
from transports.live import LiveServer
from transports.server import create_app


def json_admin(live: LiveServer) -> dict[str, str]:
    return {**live.admin_headers, "content-type": "application/json"}


@pytest.fixture
def lab_server() -> Iterator[tuple[LiveServer, FaultLab]]:
    live = LiveServer(("ws", "sse", "poll"), config=ServerConfig())
    lab = FaultLab(live.host, live.port, list(live.transports))

    def factory(**kwargs: Any) -> Any:
        return install(create_app(**kwargs), lab)

    live.app_factory = factory
    live.start()
    yield live, lab
    live.stop()


def test_lists_a_proxy_per_transport(lab_server: tuple[LiveServer, FaultLab]) -> None:
    live, lab = lab_server
    state = httpx.get(live.url + "/api/faults").json()
    assert set(state["transports"]) == {"ws", "sse", "poll"}
    urls = {entry["url"] for entry in state["transports"].values()}
    assert len(urls) == 3
    assert live.url not in urls
    # The proxied base URL serves the same API; its info points clients at the proxy.
    info = httpx.get(state["transports"]["ws"]["url"] + "/api/info").json()
    assert str(lab.proxies["ws"].port) in info["transports"]["ws"]["url"]


def test_bad_input_is_a_documented_400(lab_server: tuple[LiveServer, FaultLab]) -> None:
    live, _ = lab_server
    for path, body in [
        ("ws", b"not json"),
        ("ws", b'{"action": "explode"}'),
        ("ws", b'{"action": "latency", "latency_ms": -5}'),
        ("ws", b'{"action": "latency", "loss_pct": 5}'),
        ("nope", b'{"action": "cut"}'),
        ("ws", b'{"action": "add", "fault": {"kind": "meteor"}}'),
        ("ws", b'{"action": "remove", "name": "missing"}'),
    ]:
        r = httpx.post(f"{live.url}/api/faults/{path}", content=body, headers=json_admin(live))
        assert r.status_code == 400, (path, body)
        assert r.json()["error"] == "bad_param"
    # Still serving.
    assert httpx.get(live.url + "/api/faults").status_code == 200


def test_actions_change_the_proxy(lab_server: tuple[LiveServer, FaultLab]) -> None:
    live, _ = lab_server
    r = httpx.post(
        live.url + "/api/faults/sse",
        headers=live.admin_headers,
        json={"action": "latency", "latency_ms": 50, "jitter_ms": 5},
    )
    assert r.status_code == 200
    assert r.json()["active"][0]["kind"] == "latency"
    assert r.json()["active"][0]["latency_ms"] == 50
    r = httpx.post(
        live.url + "/api/faults/sse", headers=live.admin_headers, json={"action": "blackhole"}
    )
    assert {f["kind"] for f in r.json()["active"]} == {"latency", "blackhole"}
    r = httpx.post(
        live.url + "/api/faults/sse", headers=live.admin_headers, json={"action": "restore"}
    )
    assert r.json()["active"] == []
    r = httpx.post(
        live.url + "/api/faults/sse",
        headers=live.admin_headers,
        json={"action": "add", "fault": {"kind": "slicer"}},
    )
    assert r.json()["active"][0]["kind"] == "slicer"


@pytest.mark.parametrize("transport", ["ws", "sse", "poll"])
async def test_cut_through_the_api_resumes_without_loss(
    lab_server: tuple[LiveServer, FaultLab], transport: str
) -> None:
    live, lab = lab_server
    proxy = lab.proxies[transport]
    assert proxy.counters.connections == 0
    async with httpx.AsyncClient() as http:
        state = (await http.get(live.url + "/api/faults")).json()
        sub = await subscriber(transport, state["transports"][transport]["url"])
        stats = FollowStats()
        seqs: list[int] = []
        quick = Backoff(initial=0.05, maximum=0.2)
        events = follow(sub, 0, stats=stats, idle_timeout=5, backoff=quick)

        first = asyncio.Event()

        async def publisher() -> None:
            await asyncio.to_thread(live.publish, {"i": 1})
            await first.wait()
            cut = await http.post(
                f"{live.url}/api/faults/{transport}",
                json={"action": "cut"},
                headers=live.admin_headers,
            )
            assert cut.status_code == 200
            for i in range(2, 6):  # published while the client is away
                await asyncio.to_thread(live.publish, {"i": i})

        async with asyncio.timeout(30 * UNIT), asyncio.TaskGroup() as tg:
            tg.create_task(publisher())
            async for ev in events:
                if isinstance(ev, Delivered):
                    seqs.append(ev.message.seq)
                    first.set()
                    if len(seqs) == 5:
                        break
        await events.aclose()
    assert seqs == [1, 2, 3, 4, 5]
    assert stats.duplicates == 0
    assert stats.missing == 0
    assert sum(stats.disconnects.values()) >= 1
    assert proxy.counters.connections >= 2
