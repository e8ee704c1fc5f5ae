"""The command line: `serve` as a real process, `curl -N` on SSE, `follow` printing events."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import require
from transports.netutil import free_port


@contextlib.contextmanager
def _serve(transports: str, rate: str = "50") -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "transports", "serve", "--port", str(port), "--rate", rate,
         "--transports", transports, "--log-level", "WARNING"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(url + "/api/info", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    output = proc.stdout.read().decode() if proc.stdout else ""
    if proc.stdout:
        proc.stdout.close()
    assert proc.returncode == 0, f"clean shutdown on SIGINT: {output}"
    assert "Traceback" not in output


@pytest.fixture
def served() -> Iterator[str]:
    with _serve("ws,sse,poll") as url:
        yield url


@pytest.fixture(scope="module")
def served_all() -> Iterator[str]:
    with _serve("ws,sse,poll,webrtc,mqtt", rate="20") as url:
        yield url


def test_curl_shows_sse_id_and_data(served: str) -> None:
    curl = shutil.which("curl")
    require("curl", curl is not None)
    assert curl is not None
    out = subprocess.run(
        [curl, "-sN", "--max-time", "2", served + "/sse?after=0"], capture_output=True, check=False
    ).stdout.decode()
    assert "event: hello\n" in out
    assert 'id: 1\ndata: {"seq":1,"topic":"ticker"' in out
    assert "id: 2\n" in out


@pytest.mark.parametrize("transport", ["ws", "sse", "poll"])
def test_follow_prints_messages_and_summary(served: str, transport: str) -> None:
    env = {**os.environ, "COLUMNS": "200"}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "transports",
            "follow",
            transport,
            served,
            "--after",
            "0",
            "--count",
            "20",
        ],
        capture_output=True,
        timeout=60,
        env=env,
        check=True,
    ).stdout.decode()
    assert "connected: transport=" in out
    # --after 0 replays history: those messages show their age, never a latency.
    assert "seq=1 topic=ticker replayed age=" in out
    assert "seq=20 topic=ticker" in out
    assert "delivered=20 duplicates=0 gaps=0" in out
    connected = next(line for line in out.splitlines() if "connected:" in line)
    last_seq = int(connected.split("last_seq=")[1].split()[0])
    summary = out.splitlines()[-1]
    assert f"replayed={min(20, last_seq)}" in summary.split()
    assert all(len(line) < 400 and "\n" not in line for line in out.splitlines())


@pytest.mark.parametrize("transport", ["ws", "sse", "poll", "webrtc", "mqtt"])
def test_follow_live_json_starts_after_the_connected_last_seq(
    served_all: str, transport: str
) -> None:
    """Every transport: the first live message is the Connected event's last_seq + 1."""
    import json

    out = subprocess.run(
        [sys.executable, "-m", "transports", "follow", transport, served_all, "--count", "2",
         "--json"],
        capture_output=True, timeout=60, check=True, text=True,
    ).stdout  # fmt: skip
    lines = [json.loads(line) for line in out.splitlines()]
    connected = next(o for o in lines if o["event"] == "connected")
    delivered = [o for o in lines if o["event"] == "delivered"]
    assert delivered[0]["seq"] == connected["last_seq"] + 1
    assert not delivered[0]["replayed"]
    assert "latency_ms" in delivered[0]
    assert lines[-1]["event"] == "summary"
    assert lines[-1]["delivered"] == 2
