"""Units: history ring/sqlite, replay without race, gap/epoch/cursor rules, bounded fan-out."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from transports.errors import TransportError
from transports.feed import Feed, SubscriptionClosed
from transports.history import MemoryHistory, SqliteHistory, open_history
from transports.message import Control, Frame, Message


def drain(sub: object) -> list[Frame]:
    out: list[Frame] = []
    while (frame := sub.get_nowait()) is not None:  # type: ignore[attr-defined]
        out.append(frame)
    return out


def seqs(frames: list[Frame]) -> list[int]:
    return [f.seq for f in frames if isinstance(f, Message)]


def controls(frames: list[Frame]) -> list[str]:
    return [f.type for f in frames if isinstance(f, Control)]


async def test_seq_is_gap_free_and_replay_then_live_has_no_seam() -> None:
    feed = Feed(MemoryHistory(100))
    for i in range(5):
        feed.publish(i)
    sub = feed.subscribe(after=2)
    feed.publish(5)  # published after subscribe, before the replay is read
    frames = drain(sub)
    assert controls(frames) == ["hello"]
    assert frames[0] == Control("hello", {"epoch": feed.epoch, "last_seq": 5})
    assert seqs(frames) == [3, 4, 5, 6]


async def test_live_only_subscription_skips_history() -> None:
    feed = Feed()
    feed.publish("old")
    sub = feed.subscribe(after=None)
    feed.publish("new")
    assert seqs(drain(sub)) == [2]


async def test_gap_reported_when_ring_no_longer_reaches_back() -> None:
    feed = Feed(MemoryHistory(3))
    for i in range(10):
        feed.publish(i)
    frames = drain(feed.subscribe(after=2))
    assert frames[1] == Control("gap", {"after": 2, "first": 8})
    assert seqs(frames) == [8, 9, 10]


async def test_other_epoch_resets_and_cursor_ahead_is_an_error() -> None:
    feed = Feed()
    for i in range(3):
        feed.publish(i)
    frames = drain(feed.subscribe(after=50, epoch="old1"))
    assert frames[1] == Control("reset", {"epoch": feed.epoch, "previous": "old1", "last_seq": 3})
    assert seqs(frames) == [1, 2, 3]
    with pytest.raises(TransportError) as err:
        feed.subscribe(after=4, epoch=feed.epoch)
    assert err.value.reason == "cursor_ahead"
    with pytest.raises(TransportError):
        feed.subscribe(after=-1)


async def test_overflow_closes_only_the_full_subscription() -> None:
    feed = Feed(queue_size=4)
    slow = feed.subscribe(after=None)
    fast = feed.subscribe(after=None)
    got: list[int] = []
    for i in range(10):
        feed.publish(i)
        frame = fast.get_nowait()
        while frame is not None:
            if isinstance(frame, Message):
                got.append(frame.seq)
            frame = fast.get_nowait()
    assert got == list(range(1, 11))
    assert slow.closed_reason == "slow_consumer"
    with pytest.raises(SubscriptionClosed):
        slow.get_nowait()
    assert feed.stats.slow_consumer_disconnects == 1
    assert feed.subscribers == 1


async def test_replay_is_paged_and_reports_rotation_during_replay() -> None:
    feed = Feed(MemoryHistory(300), queue_size=10_000)
    for i in range(300):
        feed.publish(i)
    sub = feed.subscribe(after=0)
    first_page = [sub.get_nowait() for _ in range(257)]  # hello + one page of 256
    assert seqs(first_page) == list(range(1, 257))
    for i in range(300):  # the ring rotates past seq 257 while the client is mid-replay
        feed.publish(i)
    rest = drain(sub)
    assert rest[0] == Control("gap", {"after": 256, "first": 301})
    assert seqs(rest) == list(range(301, 601))


async def test_get_waits_for_publish_and_close_wakes_waiters() -> None:
    feed = Feed()
    sub = feed.subscribe(after=None)
    assert isinstance(await sub.get(), Control)
    task = asyncio.ensure_future(sub.get())
    await asyncio.sleep(0)
    feed.publish("x")
    assert (await task).data == "x"  # type: ignore[union-attr]
    waiter = asyncio.ensure_future(sub.get())
    await asyncio.sleep(0)
    feed.close()
    with pytest.raises(SubscriptionClosed, match="shutting_down"):
        await waiter


async def test_wait_for_news_and_timeout() -> None:
    feed = Feed()
    assert await feed.wait(0, 0.01) is False
    asyncio.get_running_loop().call_later(0.01, feed.publish, "y")
    assert await feed.wait(0, 5) is True


def test_sqlite_history_survives_reopen_and_trims(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    h = SqliteHistory(path, capacity=10)
    for i in range(30):
        h.append("t", float(i), {"i": i})
    epoch, last = h.epoch, h.last_seq
    h.close()
    again = open_history(f"sqlite:///{path}?capacity=10")
    assert (again.epoch, again.last_seq) == (epoch, last) == (epoch, 30)
    assert again.first_seq >= 20
    msgs = again.since(25, 100)
    assert [m.seq for m in msgs] == [26, 27, 28, 29, 30]
    assert msgs[0].data == {"i": 25}
    again.close()


def test_memory_history_new_epoch_each_time_and_url_errors() -> None:
    assert open_history("memory://?capacity=5").epoch != open_history(None).epoch
    with pytest.raises(ValueError, match="scheme"):
        open_history("redis://x")
    with pytest.raises(ValueError, match="path"):
        open_history("sqlite://")
