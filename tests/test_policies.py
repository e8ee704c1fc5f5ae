"""Reconnect policy presets: the schedules their projects document."""

from __future__ import annotations

import pytest

from transports.backoff import Backoff
from transports.policies import PRESETS, preset


def delays(b: Backoff, n: int = 6) -> list[float]:
    return [b.delay(i) for i in range(n)]


def test_textbook_schedules() -> None:
    assert delays(preset("immediate")) == [0.0] * 6
    assert delays(preset("fixed")) == [1.0] * 6
    assert delays(preset("exponential")) == [0.5, 1, 2, 4, 8, 16]
    ceilings = [0.5, 1, 2, 4, 8, 16]
    assert all(0 <= d <= c for d, c in zip(delays(preset("full_jitter")), ceilings, strict=True))


def test_peer_defaults() -> None:
    assert delays(preset("signalr")) == [0, 2, 10, 30, 30, 30]
    assert delays(preset("paho"), 9) == [1, 2, 4, 8, 16, 32, 64, 120, 120]
    assert delays(preset("eventsource")) == [1.0] * 6


def test_socketio_randomization_is_plus_minus_half_capped() -> None:
    low = Backoff(1, 5, jitter="proportional", randomization=0.5, rand=lambda: 0.0)
    high = Backoff(1, 5, jitter="proportional", randomization=0.5, rand=lambda: 1.0)
    assert delays(low, 4) == [0.5, 1.0, 2.0, 2.5]
    assert delays(high, 4) == [1.5, 3.0, 5.0, 5.0]  # never above reconnectionDelayMax
    assert all(0.5 <= preset("socketio").delay(0) <= 1.5 for _ in range(100))


def test_bad_settings_and_names() -> None:
    with pytest.raises(ValueError, match="randomization"):
        Backoff(jitter="proportional", randomization=2)
    with pytest.raises(ValueError, match="steps"):
        Backoff(steps=(1.0, -1.0))
    with pytest.raises(ValueError, match="choose from"):
        preset("nope")
    assert set(PRESETS) >= {"immediate", "fixed", "exponential", "full_jitter", "socketio"}
