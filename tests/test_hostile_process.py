"""``transport-lab serve`` as a real child process: numeric options are range-checked, and
its managed Mosquitto dies with it however it dies (SIGKILL included)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import UNIT, require_executable
from tests.serve_process import serve

SERVE = [sys.executable, "-m", "transports", "serve"]


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--port", "70000"], "--port"),
        (["--port", "0"], "--port"),
        (["--rate", "-1"], "--rate"),
        (["--payload-bytes", "99999999999"], "--payload-bytes"),
        (["--queue-size", "0"], "--queue-size"),
    ],
)
def test_numeric_options_out_of_range_are_one_clear_error(args: list[str], option: str) -> None:
    # The old `serve --port 70000` listened on 70000 - 65536 = 4464 while printing 70000.
    done = subprocess.run(
        [*SERVE, *args], capture_output=True, text=True, timeout=30 * UNIT, check=False
    )
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if "Invalid value" in line]
    assert len(errors) == 1, done.stderr
    assert option in errors[0]
    assert "Traceback" not in done.stderr
    assert "Transport Lab" not in done.stdout  # it never started


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie nobody reaped yet counts as dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def test_managed_mosquitto_dies_with_a_sigkilled_serve(tmp_path: Path) -> None:
    require_executable("mosquitto")
    with serve(tmp_path, "--transports", "ws,mqtt", "--rate", "0") as served:
        broker = httpx.get(served.url + "/api/info").json()["transports"]["mqtt"]["broker"]
        assert broker["kind"] == "mosquitto"
        pid = int(broker["pid"])
        assert alive(pid)
        os.kill(served.process.pid, signal.SIGKILL)  # no chance to clean up
        served.process.wait(10)
        deadline = time.monotonic() + 10 * UNIT
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        still = alive(pid)
        if still:  # do not leave it behind even when the test fails
            os.kill(pid, signal.SIGKILL)
        assert not still, "the managed broker outlived its SIGKILLed parent"


def test_serve_prints_the_dashboard_url_with_the_admin_token(tmp_path: Path) -> None:
    with serve(tmp_path, "--transports", "ws", "--rate", "0") as served:
        url = f"{served.url}/#token={served.admin_token}"
        deadline = time.monotonic() + 10 * UNIT
        while url not in served.output() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert url in served.output()
        headers = {**served.admin_headers, "content-type": "application/json"}
        ok = httpx.post(served.url + "/api/publish", json={"data": 1}, headers=headers)
        assert ok.status_code == 200
        assert httpx.post(served.url + "/api/publish", json={"data": 1}).status_code == 401
