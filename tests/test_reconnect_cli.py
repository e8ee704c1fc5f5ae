"""`transport-lab heartbeats` and `transport-lab storm` as real processes, bounded and small."""

from __future__ import annotations

import subprocess
import sys

import pytest


def lab(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "transports", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.slow
def test_storm_command_prints_the_table() -> None:
    done = lab("storm", "--policies", "full_jitter", "--clients", "30", "--processes", "1",
               "--down", "0.3")  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "full_jitter" in done.stdout
    assert " 30 " in done.stdout  # all 30 returned


@pytest.mark.slow
def test_heartbeats_command_prints_the_table() -> None:
    done = lab("heartbeats", "--transports", "sse", "--intervals", "0.5")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "sse" in done.stdout
    assert "yes" in done.stdout  # detected within the bound


def test_unknown_policy_is_a_usage_error() -> None:
    done = lab("storm", "--policies", "nope", timeout=30)
    assert done.returncode == 2
    assert "choose from" in done.stderr
