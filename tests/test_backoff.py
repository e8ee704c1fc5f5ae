from __future__ import annotations

import pytest

from transports.backoff import Backoff


def test_no_jitter_doubles_up_to_cap() -> None:
    b = Backoff(initial=0.5, maximum=4, jitter="none")
    assert [b.delay(n) for n in range(6)] == [0.5, 1, 2, 4, 4, 4]


def test_full_jitter_is_uniform_below_ceiling() -> None:
    values = iter([0.0, 0.5, 0.999])
    b = Backoff(initial=1, maximum=10, jitter="full", rand=lambda: next(values))
    assert b.delay(3) == 0.0
    assert b.delay(3) == 4.0
    assert b.delay(3) == pytest.approx(7.992)


def test_equal_jitter_keeps_half() -> None:
    b = Backoff(initial=2, maximum=10, jitter="equal", rand=lambda: 0.0)
    assert b.delay(1) == 2.0


def test_huge_attempt_does_not_overflow() -> None:
    assert Backoff(maximum=30, jitter="none").delay(10_000) == 30


@pytest.mark.parametrize(
    "kwargs", [{"initial": -1}, {"initial": 5, "maximum": 1}, {"factor": 0.5}, {"jitter": "x"}]
)
def test_invalid_settings_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message is ours and varies
        Backoff(**kwargs)  # type: ignore[arg-type]
