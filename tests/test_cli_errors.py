"""Every user mistake on the command line: one line on stderr, no traceback, exit code 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from transports.netutil import free_port

NOBODY = f"http://127.0.0.1:{free_port()}"  # nothing listens there
BAD = {
    "follow an unknown transport": ["follow", "foo", "http://127.0.0.1:8000"],
    "follow an unreachable host": ["follow", "ws", NOBODY],
    "follow a URL without scheme": ["follow", "sse", "127.0.0.1:8000"],
    "follow --count 0": ["follow", "ws", NOBODY, "--count", "0"],
    "compare an unknown transport": ["compare", "--transports", "nope"],
    "compare --clients 0": ["compare", "--clients", "0"],
    "compare an unknown option": ["compare", "--client", "4"],
    "bench a missing scenario file": ["bench", "--scenario", "no-such-file.toml"],
    "bench a missing scenario argument": ["bench", "no-such-file.toml"],
    "bench without a scenario": ["bench"],
    "serve a bad setting": ["serve", "--queue-size", "0"],
    "serve --poll-linger 6": ["serve", "--poll-linger", "6"],
    "serve --body-timeout 0": ["serve", "--body-timeout", "0"],
    "serve an unknown transport": ["serve", "--transports", "ws,nope"],
    "chaos an unknown transport": ["chaos", "--transports", "nope"],
    "chaos an unknown scenario": ["chaos", "--scenarios", "nope"],
    "heartbeats bad intervals": ["heartbeats", "--intervals", "x"],
    "storm an unknown policy": ["storm", "--policies", "nope"],
    "fault an unknown transport": ["fault", "foo", "cut", "--url", NOBODY],
    "fault an unreachable server": ["fault", "--url", NOBODY],
}


@pytest.mark.parametrize("args", BAD.values(), ids=BAD.keys())
def test_a_mistake_is_one_line_and_exit_2(args: list[str]) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "transports", *args], capture_output=True, text=True, timeout=60
    )
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2, (r.returncode, r.stderr, r.stdout)
    assert "Traceback" not in r.stderr + r.stdout
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("transport-lab: error: ")


def test_a_network_failure_says_what_it_tried() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "transports", "follow", "ws", NOBODY],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert f"tried GET {NOBODY}/api/info" in r.stderr
