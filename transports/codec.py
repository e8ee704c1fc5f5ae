"""The one JSON encoding shared by all transports.

Every transport carries the same UTF-8 JSON object per frame, so a browser, ``curl`` and
``mosquitto_sub`` all see identical bytes. Compact separators keep the framing-overhead
measurements about the protocol, not about whitespace.
"""

from __future__ import annotations

import json
import math
from typing import Any

from transports.message import Control, Frame, Message


class CodecError(ValueError):
    """A frame that is not valid JSON or not a message/control object."""


def encode(frame: Frame) -> str:
    return json.dumps(frame.to_dict(), separators=(",", ":"), ensure_ascii=False)


def wire(frame: Frame) -> tuple[str, int]:
    """``(encode(frame), its size in UTF-8 bytes)``, memoised on messages (see ``Message``)."""
    if isinstance(frame, Message):
        if frame._wire is None:
            text = encode(frame)
            object.__setattr__(frame, "_wire", (text, len(text.encode("utf-8"))))
        assert frame._wire is not None
        return frame._wire
    text = encode(frame)
    return text, len(text.encode("utf-8"))


def encode_bytes(frame: Frame) -> bytes:
    return encode(frame).encode("utf-8")


def from_obj(obj: Any) -> Frame:
    """Turn a decoded JSON object into a :class:`Message` or :class:`Control`."""
    if not isinstance(obj, dict):
        raise CodecError(f"frame must be a JSON object, got {type(obj).__name__}")
    kind = obj.get("type")
    # "type" decides first: an ack carries the "seq" it assigned but is a control frame.
    if isinstance(kind, str) and kind:
        return Control(kind, {k: v for k, v in obj.items() if k != "type"})
    if "seq" in obj:
        seq, topic, sent_at = obj.get("seq"), obj.get("topic"), obj.get("sent_at")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            raise CodecError(f"seq must be a positive integer, got {seq!r}")
        if not isinstance(topic, str):
            raise CodecError("topic must be a string")
        if not isinstance(sent_at, int | float) or isinstance(sent_at, bool):
            raise CodecError("sent_at must be a number")
        if not math.isfinite(sent_at):
            raise CodecError("sent_at must be finite")
        channel = obj.get("channel", "")
        if not isinstance(channel, str):
            raise CodecError("channel must be a string")
        return Message(seq, topic, float(sent_at), obj.get("data"), channel)
    raise CodecError("frame has neither 'seq' nor 'type'")


def decode(raw: str | bytes) -> Frame:
    try:
        obj = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CodecError(f"not JSON: {exc}") from exc
    return from_obj(obj)
