"""The server's copy of each collaborative document: a ``pycrdt`` (Yrs) document per channel.

The browsers edit with Yjs and publish each local change as a Yjs update (v1 encoding,
base64) on the channel ``doc:NAME``. The server applies every update it accepts to its own
``pycrdt.Doc`` (Yrs is the Rust port of Yjs and reads the same encoding), which gives it:

- **validation**: an update Yrs cannot decode is refused (``bad_message``) before it is
  stored, so a hostile client cannot poison every editor's document;
- **a snapshot for newcomers**: ``GET /demos/api/doc/NAME`` answers the whole document as one
  update plus the channel's ``(epoch, seq)``; the page applies it and subscribes from that
  cursor, so joining does not depend on the channel's bounded history reaching back to the
  first keystroke. Applying an update twice is harmless (CRDT updates are idempotent), so
  the snapshot and the stream may overlap.

The merge itself is the CRDT library's, not ours.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import pycrdt

from transports.errors import TransportError

MAX_DOCS = 32  # documents the server keeps (bounded like channels)


class Docs:
    def __init__(self) -> None:
        self._docs: dict[str, pycrdt.Doc[Any]] = {}

    def doc(self, channel: str) -> pycrdt.Doc[Any]:
        found = self._docs.get(channel)
        if found is None:
            if len(self._docs) >= MAX_DOCS:
                raise TransportError("too_many_channels", f"at most {MAX_DOCS} documents")
            found = self._docs[channel] = pycrdt.Doc()
        return found

    def apply(self, channel: str, update_b64: object) -> None:
        """Apply one base64 Yjs update to the channel's document, or raise ``bad_message``."""
        if not isinstance(update_b64, str):
            raise TransportError("bad_message", '"update" must be a base64 string')
        try:
            update = base64.b64decode(update_b64, validate=True)
            self.doc(channel).apply_update(update)
        except (binascii.Error, ValueError) as exc:
            raise TransportError("bad_message", f"not a Yjs update: {str(exc)[:80]}") from None

    def snapshot(self, channel: str) -> str:
        return base64.b64encode(self.doc(channel).get_update()).decode()

    def text(self, channel: str, field: str = "text") -> str:
        return str(self.doc(channel).get(field, type=pycrdt.Text))

    def forget(self, channel: str) -> None:
        self._docs.pop(channel, None)
