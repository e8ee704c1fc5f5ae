"""``serve --log-format json``: a run with connects, rejects, a slow consumer and a bad frame
logs one parseable JSON object per line with the documented fields, no traceback, and no
token; ``logs summarize`` turns the log into per-transport tables."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import websockets

from tests.helpers import collect
from tests.ops_helpers import serve_split
from transports.clients import subscriber
from transports.config import ServerConfig
from transports.live import LiveServer
from transports.ops.logformat import formatter, redact
from transports.ops.ratelimit import LogLimiter

SECRET = "s3cr3t-T0KEN-value"
CONN_FIELDS = {"conn", "transport", "client", "principal", "channels"}


def test_redact_hides_tokens_and_credentials() -> None:
    line = (
        f'GET /ws?after=1&token={SECRET} {{"authorization": "Bearer {SECRET}"}} '
        f"Authorization: Basic {SECRET} /admin#token={SECRET} password={SECRET}&x=1"
    )
    assert SECRET not in redact(line)
    assert "after=1" in redact(line)
    assert "x=1" in redact(line)


def slow_reader(port: int) -> socket.socket:
    """A WebSocket client that completes the handshake and then never reads."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(
        b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    return sock


async def exercise(url: str, admin: str) -> None:
    port = int(url.rsplit(":", 1)[1])
    for name in ("ws", "sse", "poll"):
        options = {"timeout": 1.0} if name == "poll" else {}
        got = await collect(await subscriber(name, url, **options), 5, after=None, timeout=20)
        assert len(got.seqs) == 5
    async with httpx.AsyncClient() as http:
        # Rejects, with secrets in places a careless log would print them.
        assert (await http.get(f"{url}/sse?after=x&token={SECRET}")).status_code == 400
        r = await http.get(f"{url}/metrics", headers={"Authorization": f"Bearer {SECRET}"})
        assert r.status_code == 401
        assert (
            await http.get(f"{url}/metrics", headers={"Authorization": f"Bearer {admin}"})
        ).status_code == 200
        for _ in range(12):  # a flood: 5 logged, the rest summarised
            assert (await http.get(f"{url}/poll?after=-1&token={SECRET}")).status_code == 400
        r = await http.post(f"{url}/webrtc/offer", content=b"\xff not json")
        assert r.status_code == 400
    # A bad frame on a WebSocket: closed with 4400 bad_param.
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws?token={SECRET}&bogus=1") as ws:
        with contextlib.suppress(websockets.ConnectionClosed):
            await ws.recv()  # an unknown query parameter: closed at once
        assert ws.close_code == 4400
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as ws:
        await ws.send("this is not JSON")
        with contextlib.suppress(websockets.ConnectionClosed):
            async with asyncio.timeout(5):
                while True:
                    await ws.recv()
        assert ws.close_code == 4400
    # A slow consumer: the server drops it when its queue overflows.
    sock = slow_reader(port)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            stats = (await asyncio.to_thread(httpx.get, f"{url}/api/stats")).json()
            if stats["transports"]["ws"]["closed"].get("slow_consumer"):
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError(f"no slow_consumer: {stats}")
    finally:
        sock.close()


def test_json_log_of_a_busy_run(tmp_path: Path) -> None:
    args = ["--log-format", "json", "--traffic-log", "--transports", "ws,sse,poll,webrtc"]
    args += ["--rate", "200", "--payload-bytes", "4000", "--queue-size", "16"]
    with serve_split(tmp_path, *args) as (url, _process, out, log):
        banner = out.read_text()
        admin = re.search(r"#token=(\S+)", banner)
        assert admin, banner
        asyncio.run(exercise(url, admin.group(1)))
    text = log.read_text()
    assert "Traceback" not in text
    assert SECRET not in text
    assert admin.group(1) not in text
    records = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert all({"ts", "level", "logger", "message"} <= r.keys() for r in records)
    events: dict[str, list[dict[str, object]]] = {}
    for r in records:
        events.setdefault(str(r.get("event")), []).append(r)
    for r in events["connect"]:
        assert r.keys() >= CONN_FIELDS
    for r in events["disconnect"]:
        assert r.keys() >= CONN_FIELDS | {"reason", "duration_s", "bytes", "frames"}
    for r in events["reject"]:
        assert {"transport", "client", "reason", "status", "detail", "path"} <= r.keys()
    reasons = {r["reason"] for r in events["disconnect"]}
    assert {"slow_consumer", "bad_message", "client_gone"} <= reasons, reasons
    rejected = {(r["transport"], r["reason"]) for r in events["reject"]}
    assert {("sse", "bad_cursor"), ("admin", "unauthorized"), ("webrtc", "bad_sdp")} <= rejected
    assert ("ws", "bad_param") in rejected
    flood = [r for r in events["reject"] if r["transport"] == "poll"]
    assert len(flood) == 5
    (summary,) = [r for r in events["suppressed"] if r["transport"] == "poll"]
    assert summary["count"] == 7
    assert summary["reason"] == "bad_cursor"
    traffic = events["traffic"]
    assert {"ws", "sse", "poll"} <= {r["transport"] for r in traffic}
    for r in traffic[:50]:
        assert {"direction", "seq", "channel", "size", "sent_at", "at", "lag_s"} <= r.keys()
        assert "payload" not in r
    done = subprocess.run(
        [sys.executable, "-m", "transports", "logs", "summarize", str(log)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "slow_consumer" in done.stdout
    assert "bad_cursor" in done.stdout
    for name in ("ws", "sse", "poll"):
        assert re.search(rf"│ {name}\s", done.stdout), done.stdout


async def test_repeated_rejects_are_summarised_when_the_window_ends() -> None:
    records: list[logging.LogRecord] = []
    log = logging.getLogger("tests.ratelimit")
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    log.addHandler(handler)
    try:
        limiter = LogLimiter(log, burst=3, window=0.2)
        for _ in range(8):
            limiter.warn(("ws", "bad_param"), "rejected", extra={"event": "reject"})
        assert len(records) == 3
        await asyncio.sleep(0.4)  # the window's timer reports the rest
        summary = records[-1]
        assert summary.__dict__["event"] == "suppressed"
        assert summary.__dict__["count"] == 5
    finally:
        log.removeHandler(handler)


def test_traffic_log_has_payloads_only_when_asked(make_server: Callable[..., LiveServer]) -> None:
    lines: list[str] = []
    handler = logging.Handler()
    handler.setFormatter(formatter("json"))
    handler.emit = lambda record: lines.append(handler.format(record))  # type: ignore[method-assign]
    traffic = logging.getLogger("transports.traffic")
    traffic.addHandler(handler)
    traffic.setLevel(logging.INFO)
    try:
        for payload in (False, True):
            lines.clear()
            server = make_server(config=ServerConfig(traffic_log=True, traffic_payload=payload))
            body = {"data": {"note": f"token={SECRET}"}, "topic": "t"}
            r = httpx.post(server.url + "/api/publish", json=body, headers=server.admin_headers)
            assert r.status_code == 200
            (record,) = [json.loads(x) for x in lines]
            assert record["direction"] == "in"
            assert record["transport"] == "http"
            assert record["seq"] == 1
            assert ("payload" in record) is payload
            assert SECRET not in "".join(lines)
    finally:
        traffic.removeHandler(handler)
