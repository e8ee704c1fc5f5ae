"""The contract every transport keeps, run against a real server on 127.0.0.1.

One parametrised suite: in-order delivery of 1..N, resume after cuts with zero loss and zero
duplicates at the application, an explicit gap when history is gone, an explicit epoch
change, resume across a restart (durable history), and a healthy client served while others
send bad input. Transports join by being listed in ``TRANSPORTS``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import Cutter, collect, publish
from transports.client import EpochChanged, GapDetected
from transports.clients import subscriber
from transports.config import ServerConfig
from transports.live import LiveServer

TRANSPORTS = ["ws", "sse", "poll", "webrtc", "mqtt"]
# Transports that replay history themselves on resume (MQTT: its broker session, plus the
# /mqtt/replay backfill when the session is new or lost).
REPLAYS_HISTORY = {"ws", "sse", "poll", "webrtc", "mqtt"}

MakeServer = Callable[..., LiveServer]


def options(name: str) -> dict[str, object]:
    # Short poll holds keep the tests quick; the watchdog must exceed the hold.
    return {"timeout": 2.0} if name == "poll" else {}


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_delivers_history_then_live_in_order(transport: str, make_server: MakeServer) -> None:
    server = make_server(transports=(transport,))
    await publish(server, 50)
    sub = await subscriber(transport, server.url, **options(transport))
    task = asyncio.ensure_future(collect(sub, 100))
    await asyncio.sleep(0.3)
    await publish(server, 50)
    got = await task
    assert got.seqs == list(range(1, 101))
    assert got.stats.duplicates == 0
    assert got.stats.gaps == 0


async def test_resume_after_cuts_loses_and_duplicates_nothing(
    transport: str, make_server: MakeServer
) -> None:
    server = make_server(transports=(transport,), config=ServerConfig(rate=300))
    sub = Cutter(await subscriber(transport, server.url, **options(transport)), every=60, cuts=3)
    got = await collect(sub, 400)
    assert got.seqs == list(range(1, 401)), "every seq exactly once, in order"
    assert got.stats.duplicates == 0
    assert got.stats.disconnects.get("ConnectionLost: cut by test") == 3
    assert got.stats.connects == 4


async def test_gap_is_reported_when_history_no_longer_reaches_back(
    transport: str, make_server: MakeServer
) -> None:
    if transport not in REPLAYS_HISTORY:
        pytest.skip(f"{transport} resumes from its broker session, not from server history")
    server = make_server(
        transports=(transport,), config=ServerConfig(history_url="memory://?capacity=10")
    )
    await publish(server, 40)
    sub = await subscriber(transport, server.url, **options(transport))
    got = await collect(sub, 10, after=5, epoch=server.ctx.feed.epoch)
    gaps = got.of(GapDetected)
    assert gaps == [GapDetected(after=5, first=31, signalled=True)]
    assert got.seqs == list(range(31, 41))
    assert got.stats.missing == 25


async def test_epoch_change_is_reported_and_seq_restarts(
    transport: str, make_server: MakeServer
) -> None:
    server = make_server(transports=(transport,))
    await publish(server, 5)
    sub = await subscriber(transport, server.url, **options(transport))
    got = await collect(sub, 5, after=900, epoch="abc123")
    assert got.of(EpochChanged) == [EpochChanged("abc123", server.ctx.feed.epoch)]
    assert got.seqs == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("durable", [True, False], ids=["sqlite", "memory"])
async def test_server_restart(
    transport: str, durable: bool, make_server: MakeServer, tmp_path: Path
) -> None:
    history = f"sqlite:///{tmp_path}/feed.db" if durable else None
    server = make_server(transports=(transport,), config=ServerConfig(history_url=history))
    await publish(server, 30)
    sub = await subscriber(transport, server.url, **options(transport))

    async def restart_then_publish() -> None:
        await asyncio.sleep(0.5)
        await asyncio.to_thread(server.restart)
        await publish(server, 20)

    restarter = asyncio.ensure_future(restart_then_publish())
    got = await collect(sub, 50, idle_timeout=3.0, timeout=40)
    await restarter
    if durable:
        assert got.seqs == list(range(1, 51)), "durable history: zero loss across restart"
        assert got.of(EpochChanged) == []
    else:
        changes = got.of(EpochChanged)
        assert len(changes) == 1, "in-memory history: the epoch change is reported"
        assert got.seqs == list(range(1, 31)) + list(range(1, 21))
