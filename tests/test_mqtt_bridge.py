"""The ``/mqtt`` WebSocket bridge with a real paho MQTT-over-WebSocket client, bad input on
it, clean shutdown, and ``transport-lab serve`` managing its broker."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import UNIT, require_executable
from tests.helpers import collect
from transports.clients import subscriber
from transports.config import ServerConfig
from transports.live import LiveServer
from transports.mqtt.pahoutil import new_client
from transports.netutil import free_port

MakeServer = Callable[..., LiveServer]
# MQTT 3.1.1 CONNECT, empty client id, clean session, keepalive 60 (§3.1).
CONNECT = bytes([0x10, 12, 0, 4, *b"MQTT", 4, 0x02, 0, 60, 0, 0])


async def close_code(url: str, send: bytes | str | None, subprotocols: list[str]) -> int:
    """Open ``url``, send ``send`` and return the close code the server ends with."""
    protocols = subprotocols or None
    async with connect(url, subprotocols=protocols, compression=None) as ws:  # type: ignore[arg-type]
        if send is not None:
            await ws.send(send)
        try:
            async with asyncio.timeout(10 * UNIT):
                while True:
                    await ws.recv()
        except ConnectionClosed as closed:
            rcvd = closed.rcvd
    if rcvd is None:
        raise AssertionError("closed without a close frame")
    return rcvd.code


def ws_client(port: int, got: list[int], ready: threading.Event) -> mqtt.Client:
    """paho over WebSocket (subprotocol mqtt) through our /mqtt, subscribed to the feed."""
    client = new_client("browser-like", mqtt5=True, clean=True, reconnect=False,
                        transport="websockets")  # fmt: skip
    client.ws_set_options(path="/mqtt")

    def on_message(c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        obj = json.loads(msg.payload)
        if "seq" in obj:
            got.append(obj["seq"])
        else:
            ready.set()  # the retained hello: subscribed

    client.on_connect = lambda c, u, f, rc, p=None: c.subscribe("transport-lab/#", qos=1)
    client.on_message = on_message
    client.connect("127.0.0.1", port, keepalive=10)
    client.loop_start()
    return client


async def test_paho_over_websocket_survives_garbage_from_others(make_server: MakeServer) -> None:
    require_executable("mosquitto")
    server = make_server(transports=("mqtt",), config=ServerConfig(broker="mosquitto"))
    got: list[int] = []
    ready = threading.Event()
    client = ws_client(server.port, got, ready)
    try:
        assert await asyncio.to_thread(ready.wait, 10 * UNIT)
        url = server.ws_url + "/mqtt"
        big = CONNECT + b"\0" * (server.config.max_frame_bytes + 1)
        codes = {
            "garbage": await close_code(url, b"\x00garbage", ["mqtt"]),
            "text": await close_code(url, "hello", ["mqtt"]),
            "no subprotocol": await close_code(url, None, []),
            "oversized": await close_code(url, big, ["mqtt"]),
            "garbage after CONNECT": await close_code(url, CONNECT + b"\xff" * 8, ["mqtt"]),
        }
        assert codes == {
            "garbage": 4400,
            "text": 4400,
            "no subprotocol": 4400,
            "oversized": 1009,
            "garbage after CONNECT": 1000,
        }
        for i in range(20):
            server.publish({"i": i})
        async with asyncio.timeout(10 * UNIT):
            while len(got) < 20:  # noqa: ASYNC110 - filled by paho's thread
                await asyncio.sleep(0.01)
    finally:
        client.disconnect()
        client.loop_stop()
    assert got == list(range(1, 21)), "the well-behaved client kept receiving, in order"
    stats = server.ctx.stats["mqtt"]
    assert stats.rejected == 1  # the missing subprotocol; the rest reached the bridge
    assert stats.closed.get("bad_param") == 2


async def test_a_bridge_client_that_never_connects_is_closed_at_the_head_deadline(
    make_server: MakeServer,
) -> None:
    """A /mqtt client that opens the WebSocket and never sends CONNECT (answering pings all
    along) is closed 4408 head_timeout after header_timeout, freeing its bridge slot and its
    broker connection; a client that connects in time is unaffected."""
    require_executable("mosquitto")
    cfg = ServerConfig(broker="mosquitto", header_timeout=1.0)
    server = make_server(transports=("mqtt",), config=cfg)
    url = server.ws_url + "/mqtt"
    started = asyncio.get_running_loop().time()
    assert await close_code(url, None, ["mqtt"]) == 4408
    assert asyncio.get_running_loop().time() - started < 1.0 + 5 * UNIT
    async with connect(url, subprotocols=["mqtt"], compression=None) as ws:  # type: ignore[list-item]
        await ws.send(CONNECT)
        connack = await asyncio.wait_for(ws.recv(), 10 * UNIT)
        assert isinstance(connack, bytes)
        assert connack[0] == 0x20  # CONNACK
        await asyncio.sleep(1.5)  # past the deadline: a connected client stays
        await ws.send(bytes([0xC0, 0]))  # PINGREQ
        assert await asyncio.wait_for(ws.recv(), 10 * UNIT) == bytes([0xD0, 0])  # PINGRESP
    stats = server.ctx.stats["mqtt"]
    assert stats.closed.get("head_timeout") == 1
    async with asyncio.timeout(10 * UNIT):
        while stats.active:  # noqa: ASYNC110 - the server notices the client's close
            await asyncio.sleep(0.01)
    assert stats.closed.get("client_gone") == 1


@pytest.mark.parametrize("kind", ["mosquitto", "amqtt"])
async def test_shutdown_leaves_no_broker_thread_or_dir(kind: str) -> None:
    if kind == "mosquitto":
        require_executable("mosquitto")
    before = set(threading.enumerate())
    server = LiveServer(("mqtt",), config=ServerConfig(broker=kind)).start()
    try:
        transport = server.ctx.transports["mqtt"]
        broker = transport.broker
        pid = getattr(broker, "pid", None)
        state_dir: Path | None = getattr(broker, "state_dir", None)
        sub = await subscriber("mqtt", server.url)
        server.publish({"i": 0})
        got = await collect(sub, 1)
        assert got.seqs == [1]
    finally:
        server.stop()
    assert set(threading.enumerate()) <= before, "no paho or server thread left"
    if kind == "mosquitto":
        assert pid is not None
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        assert state_dir is not None
        assert not await asyncio.to_thread(state_dir.exists)


def test_serve_starts_and_stops_the_managed_broker() -> None:
    require_executable("mosquitto")
    port = free_port()
    exe = [sys.executable, "-m", "transports.cli"]
    admin = {"Authorization": "Bearer test-admin-token"}
    serve = subprocess.Popen(
        [*exe, "serve", "--port", str(port), "--rate", "0", "--transports", "ws,mqtt"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "TRANSPORT_LAB_ADMIN_TOKEN": "test-admin-token"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        info = _wait_info(url, serve)
        broker = info["transports"]["mqtt"]["broker"]
        assert broker["kind"] == "mosquitto"
        os.kill(broker["pid"], 0)  # alive
        for i in range(3):
            httpx.post(
                url + "/api/publish", json={"data": {"i": i}}, headers=admin
            ).raise_for_status()
        follow = subprocess.run(
            [*exe, "follow", "mqtt", url, "--after", "0", "--count", "3"],
            capture_output=True, text=True, timeout=60 * UNIT, check=True,
        )  # fmt: skip
        assert "delivered=3 duplicates=0 gaps=0" in follow.stdout
    finally:
        serve.send_signal(signal.SIGINT)
        _, err = serve.communicate(timeout=30 * UNIT)
    assert serve.returncode == 0, err[-2000:]
    with pytest.raises(ProcessLookupError):
        os.kill(broker["pid"], 0)


def _wait_info(url: str, proc: subprocess.Popen[bytes]) -> dict[str, object]:
    import time

    deadline = time.monotonic() + 30 * UNIT
    while time.monotonic() < deadline:
        assert proc.poll() is None, "serve exited"
        try:
            info: dict[str, object] = httpx.get(url + "/api/info").json()
            return info
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError("serve did not come up")
