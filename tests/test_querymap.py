"""QueryMap gives what Starlette's QueryParams gives for the same query string."""

from __future__ import annotations

import pytest
from starlette.datastructures import QueryParams

from transports.querymap import QueryMap

CASES = [
    b"",
    b"after=10&timeout=25",
    b"channel=a&channel=b&cursor=xyz",
    b"after=1&after=2",  # repeated: get gives the last, getlist both
    b"limit=&epoch",  # blank values kept
    b"q=a%20b+c&x=%E2%9C%93&y=%ff",  # escapes, '+', UTF-8 and an invalid byte
    b"caf\xe9=1",  # raw latin-1 byte in the name
    b"a=1;b=2&&c=3",
]


@pytest.mark.parametrize("raw", CASES)
def test_same_answers_as_starlette(raw: bytes) -> None:
    ours, theirs = QueryMap(raw), QueryParams(raw)
    assert isinstance(ours, QueryParams)
    assert ours == theirs
    assert theirs == ours
    assert list(ours) == list(theirs)
    assert len(ours) == len(theirs)
    assert ours.multi_items() == theirs.multi_items()
    assert list(ours.items()) == list(theirs.items())
    assert str(ours) == str(theirs)
    for name in {*theirs, "absent", "after", "channel"}:
        assert ours.get(name) == theirs.get(name)
        assert ours.get(name, "d") == theirs.get(name, "d")
        assert ours.getlist(name) == theirs.getlist(name)
        assert (name in ours) == (name in theirs)
        if name in theirs:
            assert ours[name] == theirs[name]
        else:
            with pytest.raises(KeyError):
                ours[name]
