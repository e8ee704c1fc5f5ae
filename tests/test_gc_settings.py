"""The process-wide GC settings a server applies at start-up (``gc_young``, ``gc_freeze``)."""

from __future__ import annotations

import gc

import pytest

from transports.config import SERVE_GC_YOUNG, ServerConfig
from transports.lab.fanout import lab_server
from transports.live import LiveServer


def test_gc_young_sets_the_first_threshold_and_keeps_the_others() -> None:
    before = gc.get_threshold()
    try:
        with LiveServer(("ws",), config=ServerConfig(gc_young=12_345)):
            assert gc.get_threshold() == (12_345, *before[1:])
    finally:
        gc.set_threshold(*before)


def test_gc_young_unset_leaves_pythons_thresholds() -> None:
    before = gc.get_threshold()
    with LiveServer(("ws",)):
        assert gc.get_threshold() == before


@pytest.mark.parametrize("bad", [0, -1, 1.5e7, True])
def test_gc_young_out_of_range_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="gc_young"):
        ServerConfig(gc_young=bad)  # type: ignore[arg-type]


def test_the_bench_runs_the_lab_with_serves_gc_settings() -> None:
    cfg = lab_server.config()
    assert cfg.gc_freeze
    assert cfg.gc_young == SERVE_GC_YOUNG
