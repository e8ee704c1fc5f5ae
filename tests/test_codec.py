from __future__ import annotations

import pytest

from transports import codec
from transports.message import Control, Message


def test_message_roundtrip_is_compact_json() -> None:
    m = Message(7, "ticker", 1700000000.5, {"price": 1.5, "name": "é"})
    text = codec.encode(m)
    assert (
        text == '{"seq":7,"topic":"ticker","sent_at":1700000000.5,"data":{"price":1.5,"name":"é"}}'
    )
    assert codec.decode(text) == m
    assert codec.decode(text.encode()) == m


def test_control_roundtrip() -> None:
    c = Control("gap", {"after": 3, "first": 10})
    assert codec.decode(codec.encode(c)) == c
    assert codec.encode(c) == '{"type":"gap","after":3,"first":10}'


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\xfe",
        "not json",
        "[1,2]",
        '{"seq":0,"topic":"t","sent_at":1}',
        '{"seq":true,"topic":"t","sent_at":1}',
        '{"seq":"1","topic":"t","sent_at":1}',
        '{"seq":1,"topic":5,"sent_at":1}',
        '{"seq":1,"topic":"t","sent_at":"now"}',
        '{"seq":1,"topic":"t","sent_at":NaN}',
        '{"type":""}',
        "{}",
    ],
)
def test_bad_frames_raise_codec_error(raw: str | bytes) -> None:
    with pytest.raises(codec.CodecError):
        codec.decode(raw)
