"""``/healthz`` and ``/readyz``: documented JSON; not ready (503) while the MQTT broker is
down, ready again once it is back."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.conftest import UNIT, require_executable
from transports.config import ServerConfig
from transports.live import LiveServer

MakeServer = Callable[..., LiveServer]


def wait_ready(url: str, status: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.get(url + "/readyz", timeout=5)
        if response.status_code == status:
            body: dict[str, Any] = response.json()
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"/readyz stayed {response.status_code}: {response.text}")
        time.sleep(0.1)


def test_healthz_and_readyz_without_broker(make_server: MakeServer) -> None:
    server = make_server()
    health = httpx.get(server.url + "/healthz").json()
    assert health["status"] == "ok"
    assert health["epoch"] == server.ctx.feed.epoch
    ready = httpx.get(server.url + "/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"feed", "history"}
    assert all(check["ok"] for check in body["checks"].values())


def test_readyz_follows_the_broker(make_server: MakeServer, tmp_path: object) -> None:
    require_executable("mosquitto")
    server = make_server(transports=("ws", "mqtt"), config=ServerConfig(broker="mosquitto"))
    body = wait_ready(server.url, 200, 10 * UNIT)
    assert body["checks"]["broker"]["ok"] is True
    broker = server.ctx.transports["mqtt"].broker  # type: ignore[attr-defined]
    assert broker.pid
    os.kill(broker.pid, signal.SIGKILL)  # the broker dies
    down = wait_ready(server.url, 503, 10 * UNIT)
    assert down["status"] == "not_ready"
    assert down["error"] == "not_ready"
    assert down["failed"] == ["broker"]
    assert down["checks"]["broker"]["reachable"] is False
    assert down["checks"]["feed"]["ok"] is True  # the rest still serves
    assert httpx.get(server.url + "/healthz").status_code == 200
    assert server._loop is not None
    asyncio.run_coroutine_threadsafe(broker.restart(), server._loop).result(20)
    up = wait_ready(server.url, 200, 15 * UNIT)
    assert up["checks"]["broker"]["bridge_connected"] is True
