"""``/metrics`` scraped by a real Prometheus: connection and delivery counters move on every
transport as clients connect, receive and disconnect; the endpoint needs the admin token."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.conftest import require_executable
from tests.helpers import FAST, publish, publish_on
from tests.ops_helpers import admin_headers, prometheus
from transports.client import Delivered, follow
from transports.clients import subscriber
from transports.config import ServerConfig
from transports.live import LiveServer, free_port
from transports.ops.admin import admin_token

ALL = ("ws", "sse", "poll", "webrtc", "mqtt")
GRAFANA = Path(__file__).parent.parent / "docs" / "grafana" / "transport-lab.json"
MakeServer = Callable[..., LiveServer]


def test_metrics_need_the_admin_token(make_server: MakeServer) -> None:
    server = make_server()
    assert httpx.get(server.url + "/metrics").status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert httpx.get(server.url + "/metrics", headers=wrong).status_code == 401
    ok = httpx.get(server.url + "/metrics", headers=admin_headers(server))
    assert ok.status_code == 200
    assert ok.headers["content-type"].startswith("text/plain")
    assert 'transportlab_admin_refusals_total{reason="unauthorized"} 2.0' in ok.text
    assert 'transportlab_connections_open{transport="ws"} 0.0' in ok.text


def test_metrics_port_serves_without_auth_on_loopback(make_server: MakeServer) -> None:
    port = free_port()
    server = make_server(config=ServerConfig(metrics_port=port))
    assert httpx.get(server.url + "/metrics").status_code == 404  # not on the main port
    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    assert "transportlab_published_messages_total 0.0" in text


def test_channel_figures_are_labelled_by_namespace_only(make_server: MakeServer) -> None:
    server = make_server()
    for room in ("lobby", "kitchen", "garden"):
        publish_on(server, f"chat:{room}", 2)
    text = httpx.get(server.url + "/metrics", headers=admin_headers(server)).text
    assert 'transportlab_channels{namespace="chat"} 3.0' in text
    assert 'transportlab_channel_published_messages_total{namespace="chat"} 6.0' in text
    assert 'transportlab_channels{namespace="default"} 1.0' in text
    # Channel names never become label values (bounded cardinality).
    assert "lobby" not in text


@pytest.mark.slow
async def test_prometheus_sees_connections_and_deliveries_on_all_transports(
    make_server: MakeServer, tmp_path: Path
) -> None:
    executable = require_executable("prometheus")
    require_executable("mosquitto")
    server = make_server(transports=ALL)
    target = f"127.0.0.1:{server.port}"
    with prometheus(executable, tmp_path, target, admin_token(server.ctx)) as prom:
        prom.wait('up{job="transportlab"}', lambda v: v and min(v.values()) == 1, 20)
        before = prom.values("transportlab_delivered_frames_total")

        stop = asyncio.Event()
        counts = dict.fromkeys(ALL, 0)

        async def follow_one(name: str) -> None:
            options = {"timeout": 2.0} if name == "poll" else {}
            events = follow(await subscriber(name, server.url, **options), None, backoff=FAST)
            async with contextlib.aclosing(events):
                async for event in events:
                    if isinstance(event, Delivered):
                        counts[name] += 1
                        if stop.is_set() and counts[name] >= 40:
                            return

        async def publisher() -> None:
            while True:
                await publish(server, 2)
                await asyncio.sleep(0.1)

        followers = [asyncio.ensure_future(follow_one(n)) for n in ALL]
        feeding = asyncio.ensure_future(publisher())
        try:
            # Connected while scraped: the open gauge is up on every transport with a server
            # side connection; MQTT clients are the broker's, its $SYS client count shows them.
            await asyncio.to_thread(
                prom.wait,
                "transportlab_connections_open",
                lambda v: all(v.get(n, 0) >= 1 for n in ("ws", "sse", "webrtc")),
                30,
            )
            await asyncio.to_thread(
                prom.wait,
                "transportlab_mqtt_broker_clients",
                lambda v: v and max(v.values()) >= 2,
                20,
            )
            await asyncio.to_thread(
                prom.wait,
                "max_over_time(transportlab_connections_open[1m])",
                lambda v: v.get("poll", 0) >= 1,
                20,
            )
            await asyncio.to_thread(
                prom.wait, "transportlab_webrtc_peers", lambda v: v and max(v.values()) >= 1, 10
            )
            await asyncio.to_thread(
                prom.wait, "transportlab_mqtt_broker_up", lambda v: v and min(v.values()) == 1, 10
            )
            stop.set()
            async with asyncio.timeout(30):
                await asyncio.gather(*followers)
        finally:
            feeding.cancel()
            for f in followers:
                f.cancel()
            await asyncio.gather(feeding, *followers, return_exceptions=True)
        after = await asyncio.to_thread(
            prom.wait,
            "transportlab_delivered_frames_total",
            lambda v: all(v.get(n, 0) >= before.get(n, 0) + 40 for n in ALL),
            15,
        )
        assert all(after[n] > before.get(n, 0) for n in ALL)
        await asyncio.to_thread(
            prom.wait,
            "transportlab_mqtt_broker_publish_sent_total",
            lambda v: v and max(v.values()) >= 40,
            15,
        )
        await asyncio.to_thread(
            prom.wait,
            "transportlab_connections_accepted_total",
            lambda v: all(v.get(n, 0) >= 1 for n in ("ws", "sse", "poll", "webrtc")),
            10,
        )
        # Disconnected: closed counters moved and nothing is left open.
        await asyncio.to_thread(
            prom.wait,
            "sum by (transport) (transportlab_connections_closed_total)",
            lambda v: all(v.get(n, 0) >= 1 for n in ("ws", "sse", "poll", "webrtc")),
            15,
        )
        await asyncio.to_thread(
            prom.wait,
            "transportlab_connections_open",
            lambda v: all(v.get(n, 1) == 0 for n in ("ws", "sse", "webrtc")),
            15,
        )
        lag = await asyncio.to_thread(
            prom.wait,
            "sum by (transport) (transportlab_delivery_lag_seconds_count)",
            lambda v: all(v.get(n, 0) >= 40 for n in ALL),
            10,
        )
        assert lag
        # Every query of the committed Grafana dashboard is valid PromQL over these series.
        dashboard = json.loads(GRAFANA.read_text())
        exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
        names = set()
        for expr in exprs:
            query = expr.replace("$job", ".*").replace("$__rate_interval", "5s")
            prom.query(query)  # raises unless Prometheus accepts it
            names |= set(re.findall(r"transportlab_\w+", expr))
        exposed = server.ctx.ops.metrics.exposition().decode()
        for name in names:
            # A labelled family with no child yet has only its HELP/TYPE lines.
            stem = re.sub(r"_(bucket|count|sum|total)$", "", name)
            assert re.search(
                rf"^(# TYPE )?{stem}(_bucket|_count|_sum|_total)?[{{ ]", exposed, re.M
            ), name


async def test_lag_histogram_counts_every_delivery(make_server: MakeServer) -> None:
    # More messages than one clock-reading run (LagHistogram.RUN) and several subscribers:
    # every message written to every client is one observation, none lost between runs.
    clients, messages = 5, 70
    server = make_server(("ws",))
    conns = [await connect(server.ws_url + "/ws") for _ in range(clients)]
    for ws in conns:
        assert '"hello"' in str(await ws.recv())
    for i in range(messages):
        server.publish({"i": i})
    async with asyncio.timeout(30):
        for ws in conns:
            seqs = [json.loads(await ws.recv())["seq"] for _ in range(messages)]
            assert seqs == list(range(1, messages + 1))
    text = await asyncio.to_thread(
        lambda: httpx.get(server.url + "/metrics", headers=admin_headers(server)).text
    )
    count = re.search(r'transportlab_delivery_lag_seconds_count\{transport="ws"\} (\S+)', text)
    inf = re.search(
        r'transportlab_delivery_lag_seconds_bucket\{le="\+Inf",transport="ws"\} (\S+)', text
    )
    assert count is not None, text
    assert inf is not None, text
    assert float(count.group(1)) == float(inf.group(1)) == clients * messages
    for ws in conns:
        await ws.close()
