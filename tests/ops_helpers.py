"""Helpers for the operations tests: the admin headers of a live server, a real Prometheus."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from transports.live import LiveServer, free_port
from transports.ops.admin import admin_token
from transports.processes import stop


def admin_headers(server: LiveServer) -> dict[str, str]:
    headers = getattr(server, "admin_headers", None)
    if headers:
        return dict(headers)
    return {"Authorization": f"Bearer {admin_token(server.ctx)}"}


class Prometheus:
    """A Prometheus server (Debian's package) scraping one target, queried over its HTTP API."""

    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, promql: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5)
        response.raise_for_status()
        body = response.json()
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def values(self, promql: str, label: str = "transport") -> dict[str, float]:
        return {r["metric"].get(label, ""): float(r["value"][1]) for r in self.query(promql)}

    def wait(
        self, promql: str, check: Any, timeout: float, label: str = "transport"
    ) -> dict[str, float]:
        deadline = time.monotonic() + timeout
        while True:
            values = self.values(promql, label)
            if check(values):
                return values
            if time.monotonic() > deadline:
                raise AssertionError(f"{promql}: {values}")
            time.sleep(0.25)


@contextlib.contextmanager
def prometheus(
    executable: str, tmp: Path, target: str, token: str, interval: str = "500ms"
) -> Iterator[Prometheus]:
    port = free_port()
    config = tmp / "prometheus.yml"
    (tmp / "token").write_text(token)
    config.write_text(
        f"""global:
  scrape_interval: {interval}
  scrape_timeout: {interval}
scrape_configs:
  - job_name: transportlab
    metrics_path: /metrics
    authorization:
      credentials_file: {tmp / "token"}
    static_configs:
      - targets: ["{target}"]
"""
    )
    log = (tmp / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            executable,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    prom = Prometheus(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(prom.url + "/-/ready", timeout=2).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((tmp / "prometheus.log").read_text())
            time.sleep(0.2)
        yield prom
    finally:
        stop(process)
        log.close()


@contextlib.contextmanager
def serve_split(
    tmp: Path, *args: str, timeout: float = 30.0
) -> Iterator[tuple[str, Any, Path, Path]]:
    """``python -m transports serve`` in a child process with stdout (the banner) and stderr
    (the log) in separate files; yields ``(url, process, stdout_path, stderr_path)``. Stops it
    with SIGINT (graceful), then SIGKILL, by PID."""
    import signal
    import sys

    port = free_port()
    out_path, err_path = tmp / f"serve-{port}.out", tmp / f"serve-{port}.log"
    cmd = [sys.executable, "-m", "transports", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with out_path.open("wb") as out, err_path.open("wb") as err:
        process = subprocess.Popen([*cmd, *args], stdout=out, stderr=err)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"serve exited: {err_path.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"serve did not answer: {err_path.read_text()}")
            time.sleep(0.1)
        yield url, process, out_path, err_path
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGCONT)  # in case a test left it stopped
            process.send_signal(signal.SIGINT)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
