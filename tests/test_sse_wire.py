from __future__ import annotations

import pytest

from transports.sse.wire import Comment, Event, SSEParser


def feed_all(parser: SSEParser, chunks: list[bytes]) -> list[Event | Comment]:
    out: list[Event | Comment] = []
    for chunk in chunks:
        out.extend(parser.feed(chunk))
    return out


STREAM = b': hi\r\nretry: 1500\nid: 5\ndata: {"a":1}\n\nevent: gap\ndata: x\ndata: y\r\r\n'


@pytest.mark.parametrize("size", [1, 2, 3, 7, len(STREAM)])
def test_any_chunking_gives_same_items(size: int) -> None:
    chunks = [STREAM[i : i + size] for i in range(0, len(STREAM), size)]
    items = feed_all(SSEParser(), chunks)
    assert items == [
        Comment("hi"),
        Event('{"a":1}', "message", "5", 1500),
        Event("x\ny", "gap", None, None),
    ]


def test_last_event_id_persists_across_events_without_id() -> None:
    parser = SSEParser()
    parser.feed(b"id: 9\ndata: a\n\ndata: b\n\n")
    assert parser.last_event_id == "9"


def test_bom_blank_events_and_unknown_fields() -> None:
    parser = SSEParser()
    items = parser.feed(b"\xef\xbb\xbfdata: one\n\nfoo: bar\n\n\nevent: e\n\ndata\n\n")
    assert items == [Event("one"), Event("", "message")]


def test_crlf_split_across_chunks_is_one_line_end() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"\n\r\n") == [Event("a")]


def test_id_with_nul_is_ignored_and_bad_retry_ignored() -> None:
    parser = SSEParser()
    items = parser.feed(b"id: 1\x002\nretry: 10x\ndata: z\n\n")
    assert items == [Event("z")]
    assert parser.last_event_id == ""
    assert parser.retry is None
