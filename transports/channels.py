"""Channel names, namespace options and the compact cursor token (see ``docs/wire.md``).

A channel name is ``[namespace:]name``:

- ``namespace``: 1-32 of ``a-z 0-9 _ -``, starting with a letter or digit;
- ``name``: 1-64 of ``A-Z a-z 0-9 _ - .``, starting with a letter or digit.

So ``ticker``, ``chat:lobby``, ``scores:match-42`` and ``cursors:doc-1`` are channels; a name
without a colon is in the namespace ``""``. The characters ``, ~ / # + : `` (beyond the one
colon) and spaces are outside the grammar, which keeps names safe as MQTT topic levels and as
file names, and lets the cursor token separate entries with ``,``. Anything else is
``bad_channel`` (400 / 4400), as is a namespace the server does not declare.

The **default channel** (``DEFAULT``) is the single feed that ``/ws``, ``/sse``, ``/poll``,
WebRTC and MQTT serve when no channel is named; its frames carry no ``"channel"`` key.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from transports.errors import TransportError
from transports.message import Cursor

DEFAULT = "default"
_NAME = re.compile(r"(?:([a-z0-9][a-z0-9_-]{0,31}):)?([A-Za-z0-9][A-Za-z0-9_.-]{0,63})")
MAX_NAME = 97  # 32 + ":" + 64


@dataclass(frozen=True, slots=True)
class NamespaceOptions:
    """What a namespace's channels allow. Defaults are the secure ones (docs/channels.md)."""

    history: int = 1000  # messages kept per channel (memory ring)
    durable: bool = False  # SQLite file per channel under ServerConfig.channels_dir
    presence: bool = False  # join/leave frames and the member list
    publish: bool = False  # clients may publish (POST/WS/WebRTC/MQTT inbound)
    anonymous_publish: bool = False  # ...even the anonymous principal
    anonymous_subscribe: bool = True  # public: anonymous clients may subscribe (rights.py)
    max_message_bytes: int = 16 * 1024  # encoded size of a publish's data


def default_namespaces() -> dict[str, NamespaceOptions]:
    """``""`` (no colon): subscribe only. ``chat``: publish by named principals, presence."""
    return {
        "": NamespaceOptions(),
        "chat": NamespaceOptions(publish=True, presence=True),
    }


def parse_channel(raw: object) -> tuple[str, str]:
    """Check a channel name; return ``(name, namespace)`` or raise ``bad_channel``."""
    if not isinstance(raw, str) or len(raw) > MAX_NAME:
        raise TransportError("bad_channel", f"channel {str(raw)[:40]!r} is not a short string")
    match = _NAME.fullmatch(raw)
    if match is None:
        raise TransportError(
            "bad_channel", f"channel {raw[:40]!r} does not match [namespace:]name (docs/wire.md)"
        )
    return raw, match.group(1) or ""


# ---- the cursor token -------------------------------------------------------------------
# One entry per channel, in the order the request named the channels, joined by ",":
#   ""            no cursor: live only
#   "SEQ"         after SEQ, epoch not known yet
#   "SEQ.EPOCH"   after SEQ in EPOCH
# The channel names are not repeated: they are in the URL, which an EventSource keeps when it
# reconnects (WHATWG HTML §9.2.3), so the token stays a few bytes per channel.
MAX_TOKEN = 4096


def encode_token(cursors: Sequence[Cursor | None]) -> str:
    parts = []
    for cursor in cursors:
        if cursor is None:
            parts.append("")
        elif cursor.epoch:
            parts.append(f"{cursor.seq}.{cursor.epoch}")
        else:
            parts.append(str(cursor.seq))
    return ",".join(parts)


def decode_token(raw: str, count: int, source: str = "cursor") -> list[Cursor | None]:
    """Parse a token for ``count`` channels; ``bad_cursor`` if it does not fit."""
    if len(raw) > MAX_TOKEN or not raw.isascii():
        raise TransportError("bad_cursor", f"{source} is not a cursor token")
    parts = raw.split(",")
    if len(parts) != count:
        raise TransportError(
            "bad_cursor", f"{source} has {len(parts)} entries for {count} channel(s)"
        )
    out: list[Cursor | None] = []
    for part in parts:
        if part == "":
            out.append(None)
            continue
        seq, _, epoch = part.partition(".")
        if not seq.isdigit() or len(seq) > 18 or (epoch and not epoch.isalnum()):
            raise TransportError("bad_cursor", f"{source} entry {part[:40]!r} is not SEQ[.EPOCH]")
        out.append(Cursor(epoch or None, int(seq)))
    return out
