"""The hub without sockets: channel grammar, the cursor token, the channel bound, the
idempotency window (count and time), the hooks, presence bookkeeping."""

from __future__ import annotations

from typing import Any

import pytest

from transports.auth import ANONYMOUS, Principal
from transports.channels import NamespaceOptions, decode_token, encode_token, parse_channel
from transports.config import ServerConfig
from transports.errors import TransportError
from transports.feed import Feed
from transports.hub import Hub
from transports.message import Control, Cursor
from transports.streams import MultiSubscription

ALICE = Principal("alice")


def hub(**config: Any) -> Hub:
    namespaces = {"": NamespaceOptions(), "chat": NamespaceOptions(publish=True, presence=True)}
    return Hub(Feed(), ServerConfig(namespaces=namespaces, **config))


@pytest.mark.parametrize(
    "name", ["ticker", "chat:lobby", "scores:match-42", "cursors:doc-1", "a.b_c-D"]
)
def test_good_names(name: str) -> None:
    assert parse_channel(name)[0] == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "chat:",
        ":x",
        "Chat:x",
        "a:b:c",
        "x y",
        "a,b",
        "a~b",
        "a/b",
        "a#",
        "é",
        "-x",
        "x" * 65,
        7,
    ],
)
def test_bad_names(name: object) -> None:
    with pytest.raises(TransportError) as refused:
        parse_channel(name)
    assert refused.value.reason == "bad_channel"


def test_cursor_token_round_trip() -> None:
    cursors = [Cursor("ab12", 17), None, Cursor(None, 3)]
    token = encode_token(cursors)
    assert token == "17.ab12,,3"
    assert decode_token(token, 3) == cursors
    for bad in ("17.ab12,,3,4", "x", "1.e-f,,", "9" * 19 + ",,"):
        with pytest.raises(TransportError):
            decode_token(bad, 3)


async def test_channel_count_is_bounded_and_idle_channels_make_room() -> None:
    h = hub(max_channels=3)  # the default channel plus two
    a, b = h.channel("chat:a"), h.channel("chat:b")
    stream = MultiSubscription(h, ALICE, 4)
    stream.add(a, None)
    stream.add(b, None)
    with pytest.raises(TransportError) as refused:
        h.channel("chat:c")
    assert refused.value.reason == "too_many_channels"
    stream.remove("chat:a")
    assert h.channel("chat:c").name == "chat:c"  # chat:a, idle, was evicted
    assert h.find("chat:a") is None
    assert h.evicted == 1


async def test_idempotency_window_by_count_and_time(monkeypatch: pytest.MonkeyPatch) -> None:
    h = hub(idempotency_size=2, idempotency_ttl=60)
    first = await h.publish(ALICE, "chat:x", 1, "m1")
    assert await h.publish(ALICE, "chat:x", 1, "m1") == first
    assert (await h.publish(Principal("bob"), "chat:x", 1, "m1"))["seq"] == 2  # per principal
    await h.publish(ALICE, "chat:x", 2, "m2")
    await h.publish(ALICE, "chat:x", 3, "m3")  # m1 leaves the window (2 ids)
    assert (await h.publish(ALICE, "chat:x", 1, "m1"))["seq"] == 5
    import transports.hub as hub_module

    now = hub_module.time.monotonic()
    monkeypatch.setattr(hub_module.time, "monotonic", lambda: now + 61)
    assert (await h.publish(ALICE, "chat:x", 3, "m3"))["seq"] == 6  # expired by time


async def test_hooks_refuse_and_transform() -> None:
    async def on_subscribe(principal: Principal, channel: str) -> None:
        if channel.endswith("secret"):
            raise TransportError("forbidden", "not for you")

    async def on_publish(principal: Principal, channel: str, data: Any) -> Any:
        if data == "spam":
            raise TransportError("forbidden", "spam")
        return {"by": principal.id, "text": data}

    h = hub(on_subscribe=on_subscribe, on_publish=on_publish)
    with pytest.raises(TransportError, match="not for you"):
        await h.admit(ALICE, "chat:secret")
    assert (await h.admit(ALICE, "chat:open")).name == "chat:open"
    with pytest.raises(TransportError, match="spam"):
        await h.publish(ALICE, "chat:open", "spam")
    ack = await h.publish(ALICE, "chat:open", "hi")
    stored = h.channel("chat:open").feed.history.since(0, 10)
    assert [m.data for m in stored] == [{"by": "alice", "text": "hi"}]
    assert ack["seq"] == 1
    with pytest.raises(TransportError) as refused:
        await h.publish(ANONYMOUS, "chat:open", "hi")
    assert refused.value.reason == "unauthorized"


async def test_presence_members_and_frames() -> None:
    h = hub()
    room = h.channel("chat:room")
    one, two = MultiSubscription(h, ALICE, 4), MultiSubscription(h, Principal("bob"), 4)
    one.add(room, None)
    two.add(room, None)
    assert sorted(room.members.values()) == ["alice", "bob"]
    two.close()
    frames = []
    while (frame := one.get_nowait()) is not None:
        frames.append(frame)
    presence = [(f.type, f.get("user")) for f in frames if isinstance(f, Control)]
    assert ("join", "bob") in presence
    assert ("leave", "bob") in presence
    assert list(room.members.values()) == ["alice"]
