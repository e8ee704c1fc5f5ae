"""``serve --tls`` with ``--faults``: the fault proxies relay TLS untouched (TCP level), so
every client verifies the server's own certificate through them, and a cut through a
proxy is recovered over TLS with nothing lost (transports/chaos/fault_api.py)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import UNIT, require_executable
from tests.helpers import collect, publish
from transports.chaos.fault_api import FaultLab, install, server_context
from transports.clients import subscriber
from transports.config import ServerConfig
from transports.live import LiveServer
from transports.mqtt.pahoutil import new_client, stop_loop, target
from transports.server import create_app
from transports.tls import CAFILE_ENV, client_context, make_certs

NAMES = ("ws", "sse", "poll", "mqtt")


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Path]]:
    require_executable("mosquitto")
    certs = tmp_path_factory.mktemp("certs")
    make_certs(certs, ["localhost", "127.0.0.1"])
    cfg = ServerConfig(
        tls_certfile=str(certs / "cert.pem"),
        tls_keyfile=str(certs / "key.pem"),
        broker="mosquitto",
        admin_token="tls-faults-admin",
    )
    live = LiveServer(NAMES, config=cfg)
    lab = FaultLab(live.host, live.port, list(NAMES), tls=server_context(cfg))

    def factory(**kwargs: Any) -> Any:
        return install(create_app(**kwargs), lab)

    live.app_factory = factory
    live.start()
    yield live, certs
    live.stop()


async def test_every_proxy_carries_tls_and_a_cut_is_recovered(
    lab_server: tuple[LiveServer, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, certs = lab_server
    monkeypatch.setenv(CAFILE_ENV, str(certs / "ca.pem"))
    ca = client_context()
    async with httpx.AsyncClient(verify=ca, timeout=10 * UNIT) as http:
        lab = (await http.get(f"{server.url}/api/faults")).json()["transports"]
    assert {n: e["url"].split(":")[0] for n, e in lab.items()} == dict.fromkeys(NAMES, "https")
    assert lab["mqtt"]["broker_url"].startswith("mqtts://127.0.0.1:")
    await publish(server, 5)
    for name in ("ws", "sse", "poll"):
        got = await collect(await subscriber(name, lab[name]["url"]), 5, timeout=30 * UNIT)
        assert got.seqs == [1, 2, 3, 4, 5], name

    # A cut on the WebSocket proxy: the follower reconnects through it, over TLS again.
    sub = await subscriber("ws", lab["ws"]["url"])
    task = asyncio.ensure_future(collect(sub, 10, timeout=60 * UNIT))
    await asyncio.sleep(1.0)
    async with httpx.AsyncClient(verify=ca, timeout=10 * UNIT) as http:
        r = await http.post(
            f"{server.url}/api/faults/ws", json={"action": "cut"}, headers=server.admin_headers
        )
        assert r.status_code == 200, r.text
    await publish(server, 5)
    got = await task
    assert got.seqs == list(range(1, 11))
    assert got.stats.connects >= 2, got.stats  # the cut, then a new TLS connection
    assert got.stats.gaps == 0

    # The broker's proxy relays its TLS listener: a paho client verifying the CA gets the feed.
    delivered = threading.Event()
    client = new_client("tls-faults", mqtt5=True, clean=True, reconnect=False)
    client.on_connect = lambda c, u, f, rc, p=None: c.subscribe("transport-lab/#", qos=1)
    client.on_message = lambda c, u, m: delivered.set()
    host, port = target(client, lab["mqtt"]["broker_url"])
    client.connect(host, port)
    client.loop_start()
    try:
        assert await asyncio.to_thread(delivered.wait, 15 * UNIT)  # the retained hello
    finally:
        client.disconnect()
        stop_loop(client)
