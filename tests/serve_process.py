"""``transport-lab serve`` as a real child process, for tests of what only the command does
(``--faults``: the fault proxies and a server that restarts behind them)."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from transports.netutil import free_port


@dataclass
class Served:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    admin_token: str = ""

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    @property
    def dashboard_url(self) -> str:
        """The page with the admin token in the fragment, as `serve` prints it."""
        return f"{self.url}/#token={self.admin_token}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def serve(
    tmp: Path, *args: str, host: str = "127.0.0.1", timeout: float = 30.0
) -> Iterator[Served]:
    """Run ``python -m transports serve --host HOST --port P ARGS``; wait until ``/api/info``
    answers; on exit SIGINT (a graceful stop), then SIGKILL if it lingers — by PID."""
    port = free_port(host)
    log = tmp / f"serve-{port}.log"
    cmd = [sys.executable, "-m", "transports", "serve", "--host", host, "--port", str(port)]
    token = secrets.token_urlsafe(16)
    env = {**os.environ, "TRANSPORT_LAB_ADMIN_TOKEN": token}
    with log.open("wb") as out:
        process = subprocess.Popen([*cmd, *args], stdout=out, stderr=subprocess.STDOUT, env=env)
    served = Served(f"http://{host}:{port}", process, log, token)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"serve exited with {process.returncode}:\n{served.output()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(served.url + "/api/info", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"serve did not answer in {timeout} s:\n{served.output()}")
            time.sleep(0.1)
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
