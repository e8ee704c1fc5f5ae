"""The command line: `serve` as a real process, `curl -N` on SSE, `follow` printing events."""

from __future__ import annotations

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


@pytest.fixture
def served() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "transports",
            "serve",
            "--port",
            str(port),
            "--rate",
            "50",
            "--transports",
            "ws,sse,poll",
            "--log-level",
            "WARNING",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
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
    assert "Connected(transport=" in out
    assert "seq=1 topic=ticker" in out
    assert "seq=20 topic=ticker" in out
    assert "delivered=20 duplicates=0 gaps=0" in out
