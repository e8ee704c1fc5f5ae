"""Heartbeats on real servers: a blackhole (no FIN, no RST) is detected within the watchdog
(interval + a timeout of two intervals) plus a stated margin on every transport, and a
shorter interval costs more idle bytes."""

from __future__ import annotations

import pytest

from tests.conftest import require_executable
from transports.chaos.heartbeat import MARGIN, bound, measure
from transports.chaos.rig import watchdog


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["ws", "sse", "poll", "mqtt", "webrtc"])
async def test_blackhole_detected_within_bound(transport: str) -> None:
    if transport == "mqtt":
        require_executable("mosquitto")
    beat = await measure(transport, 0.5, window=1.0)
    assert beat.error == ""
    assert beat.bound_s == watchdog(transport, 0.5) + MARGIN == bound(transport, 0.5)
    assert beat.detect_s is not None, "the blackhole was never noticed"
    assert beat.detect_s <= beat.bound_s
    assert beat.within
    assert beat.idle_bytes_per_hour > 0  # heartbeats flowed through the proxy while idle


@pytest.mark.slow
async def test_shorter_interval_costs_more_bytes() -> None:
    fast = await measure("sse", 0.25, window=1.0)
    slow = await measure("sse", 1.0, window=2.0)
    assert fast.idle_bytes_per_hour > 2 * slow.idle_bytes_per_hour


def test_a_drop_before_the_fault_is_not_a_detection() -> None:
    from transports.chaos.heartbeat import Beat

    assert not Beat("ws", 0.5, 0.5, detect_s=-2.5, bound_s=2.5).within
    assert Beat("ws", 0.5, 0.5, detect_s=1.5, bound_s=2.5).within
    assert not Beat("ws", 0.5, 0.5, detect_s=None, bound_s=2.5).within
