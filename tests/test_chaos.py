"""The resume scoreboard on real servers: zero loss and zero duplicates after a cut and a
blackhole, an epoch change after an in-memory restart, none with sqlite history."""

from __future__ import annotations

import pytest

from tests.conftest import require_executable
from transports.chaos.chaos import Row, run_one, scoreboard_table
from transports.chaos.rig import watchdog


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["ws", "sse", "poll", "mqtt"])
@pytest.mark.parametrize("scenario", ["cut", "blackhole_long"])
async def test_resume_without_loss(transport: str, scenario: str) -> None:
    if transport == "mqtt":
        require_executable("mosquitto")
    row = await run_one(transport, scenario, rate=20, heartbeat=0.5, warmup=0.5, settle=1.0)
    assert row.error == ""
    assert row.published > 10
    assert (row.lost, row.dup) == (0, 0)
    assert row.reconnects >= 1
    # A long blackhole is noticed within the watchdog (3 intervals) plus a margin.
    assert row.detect_s is not None
    assert row.detect_s <= watchdog(transport, 0.5) + 1.0
    # Reconnecting cost bytes and at least one new connection through the proxies.
    assert row.connections >= 1
    assert row.bytes_fault > 0


@pytest.mark.slow
async def test_broker_restart_loses_nothing() -> None:
    """MQTT QoS 1, persistent session, Mosquitto with persistence: a restart loses nothing,
    and the client's path really went through the broker proxy (it reconnected)."""
    require_executable("mosquitto")
    row = await run_one("mqtt", "broker_restart", heartbeat=0.5, warmup=0.5, settle=1.0)
    assert row.error == ""
    assert row.published > 10
    assert (row.lost, row.dup, row.epoch_changed) == (0, 0, False)
    assert row.reconnects >= 1
    assert (await run_one("ws", "broker_restart")).error.startswith("n/a")


@pytest.mark.slow
async def test_restart_epochs() -> None:
    memory = await run_one("sse", "restart_memory", heartbeat=0.5, warmup=0.5, settle=1.0)
    durable = await run_one("sse", "restart_sqlite", heartbeat=0.5, warmup=0.5, settle=1.0)
    assert memory.epoch_changed
    assert not durable.epoch_changed
    assert (durable.lost, durable.dup, durable.gaps) == (0, 0, 0)
    assert scoreboard_table([memory, durable, Row("ws", "cut", error="x")]).row_count == 3
