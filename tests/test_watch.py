"""``transport-lab watch`` against a server in a child process: SIGSTOP makes every
transport go silent — alerts by exec, webhook and exit code within the bound — and SIGCONT
brings recovery, reported the same ways."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_executable
from tests.ops_helpers import serve_split
from transports.live import free_port

ALL = ["ws", "sse", "poll", "webrtc", "mqtt"]
SILENT_AFTER = 1.5
SLACK = 2.5  # the watch checks 4x per silent_after; the rest is a loaded 2-core machine


@contextlib.contextmanager
def webhook_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            assert self.headers.get("content-type") == "application/json"
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/alert", received
    finally:
        server.shutdown()
        server.server_close()


def watch_cmd(url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "transports", "watch", url, *args]


def read_events(process: subprocess.Popen[str], until: Any, timeout: float) -> list[dict[str, Any]]:
    """Read the watch's JSON lines until ``until(events)`` holds (or it exits)."""
    assert process.stdout is not None
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    for line in process.stdout:
        events.append(json.loads(line))
        if until(events):
            return events
        if time.monotonic() > deadline:
            break
    raise AssertionError(f"condition not reached: {events}")


def of(events: list[dict[str, Any]], kind: str, condition: str | None = None) -> dict[str, float]:
    return {
        e["transport"]: e["at"]
        for e in events
        if e["event"] == kind and (condition is None or e.get("condition") == condition)
    }


@pytest.mark.slow
def test_watch_alerts_on_sigstop_and_recovers_on_sigcont(tmp_path: Path) -> None:
    require_executable("mosquitto")
    hook_file = tmp_path / "exec.jsonl"
    args = ["--rate", "20", "--transports", ",".join(ALL)]
    with (
        serve_split(tmp_path, *args) as (url, server, _out, _log),
        webhook_server() as (hook, got),
        (tmp_path / "watch.err").open("wb") as err,
    ):
        watch = subprocess.Popen(
            watch_cmd(
                url,
                "--silent-after", str(SILENT_AFTER),
                "--exec", f"cat >> {hook_file}",
                "--webhook", hook,
                "--duration", "20",
            ),
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )  # fmt: skip
        try:
            events = read_events(watch, lambda ev: set(of(ev, "connected")) >= set(ALL), 20)
            # Let each transport deliver a little first.
            time.sleep(1.0)
            stopped_at = time.time()
            os.kill(server.pid, signal.SIGSTOP)
            try:
                events += read_events(
                    watch, lambda ev: set(of(events + ev, "alert", "silent")) >= set(ALL), 15
                )
            finally:
                continued_at = time.time()
                os.kill(server.pid, signal.SIGCONT)
            alerts = of(events, "alert", "silent")
            for name in ALL:
                assert alerts[name] - stopped_at <= SILENT_AFTER + SLACK, (name, alerts)
                assert alerts[name] - stopped_at >= SILENT_AFTER * 0.9, (name, alerts)
            events += read_events(
                watch,
                lambda ev: set(of([*events, *ev], "recovered", "silent")) >= set(ALL),
                20,
            )
            recovered = of(events, "recovered", "silent")
            assert all(recovered[n] > continued_at for n in ALL)
            code = watch.wait(40)
        finally:
            if watch.poll() is None:
                watch.kill()
                watch.wait(5)
                if watch.stdout is not None:
                    watch.stdout.close()
        assert code == 1, "alerts were raised and all recovered"
        assert watch.stdout is not None
        with watch.stdout:
            rest = [json.loads(line) for line in watch.stdout if line.strip()]
        summary = [e for e in events + rest if e["event"] == "summary"]
        assert summary
        assert summary[-1]["active"] == {}
        # The same alerts and recoveries went to --exec and --webhook.
        for sink in (got, [json.loads(line) for line in hook_file.read_text().splitlines()]):
            assert set(of(sink, "alert", "silent")) >= set(ALL)
            assert set(of(sink, "recovered", "silent")) >= set(ALL)

        # Exit code 2: an alert still active when the run ends (the server stays stopped).
        os.kill(server.pid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            done = subprocess.run(
                watch_cmd(url, "--silent-after", "1", "--max-alerts", "1", "--duration", "20"),
                capture_output=True,
                text=True,
                timeout=40,
            )
            elapsed = time.monotonic() - t0
        finally:
            os.kill(server.pid, signal.SIGCONT)
        assert done.returncode == 2, done.stdout + done.stderr
        assert elapsed < 15
        lines = [json.loads(line) for line in done.stdout.splitlines()]
        assert any(e["event"] == "alert" for e in lines)


def test_watch_alerts_when_nothing_accepts_connections(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = subprocess.run(
        watch_cmd(url, "--transports", "ws", "--max-alerts", "1", "--duration", "10"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    alert = next(json.loads(x) for x in done.stdout.splitlines() if '"alert"' in x)
    assert alert["condition"] == "refused"
    assert alert["transport"] == "ws"


def test_watch_alerts_on_latency(tmp_path: Path) -> None:
    with serve_split(tmp_path, "--rate", "20", "--transports", "ws,sse") as (url, *_):
        done = subprocess.run(
            watch_cmd(url, "--max-latency", "0.000001", "--max-alerts", "2", "--duration", "20"),
            capture_output=True,
            text=True,
            timeout=40,
        )
    assert done.returncode == 2, done.stdout + done.stderr
    alerts = [json.loads(x) for x in done.stdout.splitlines() if '"alert"' in x]
    assert {a["transport"] for a in alerts} == {"ws", "sse"}
    assert {a["condition"] for a in alerts} == {"latency"}
