"""Reconnect storm on real sockets: 200 WebSocket clients in two processes lose the server at
once; with full jitter the server's busiest 100 ms sees clearly fewer reconnects than with
exponential backoff without jitter, where every client retries at the same instants."""

from __future__ import annotations

import pytest

from transports.chaos.storm import BUCKET, run_storm


@pytest.mark.slow
async def test_jitter_flattens_the_peak() -> None:
    herd = await run_storm("exponential", clients=200, processes=2, down=1.0, ramp=1.0)
    jitter = await run_storm("full_jitter", clients=200, processes=2, down=1.0, ramp=1.0)
    for storm in (herd, jitter):
        assert storm.error == ""
        assert storm.returned == 200
        assert storm.back_s is not None
        assert sum(storm.buckets().values()) >= 200
        # Nobody got in while the server was down.
        assert min(storm.accepts) >= storm.down_s
    herd_peak, jitter_peak = max(herd.buckets().values()), max(jitter.buckets().values())
    assert jitter_peak < 0.6 * herd_peak, (herd.buckets(), jitter.buckets())
    assert herd.peak_per_s == herd_peak / BUCKET
    # The price of jitter: the last client comes back later.
    assert jitter.back_s is not None
    assert herd.back_s is not None
    assert jitter.back_s > herd.back_s
