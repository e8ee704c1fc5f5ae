"""Where the feed keeps what it published, so clients can resume from a cursor.

Two stores, chosen by URL (:func:`open_history`):

- ``memory://?capacity=N`` (default): a ring of the last N messages. A new random epoch per
  process, so a client that reconnects after a restart is told that seq started over.
- ``sqlite:///path/to/file.db?capacity=N``: a SQLite file (stdlib ``sqlite3``, WAL mode).
  The epoch and seq survive a restart, so resume across a restart loses nothing that is
  still within capacity.

Both stamp ``seq`` themselves, so the seq a message gets and the seq it is stored under can
never disagree.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections import deque
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from transports.message import Message

DEFAULT_CAPACITY = 10_000


class History(Protocol):
    """A bounded, seq-stamping store of recent messages."""

    @property
    def epoch(self) -> str: ...
    @property
    def last_seq(self) -> int: ...
    @property
    def first_seq(self) -> int:
        """The oldest seq still held (``last_seq + 1`` when empty)."""
        ...

    def append(self, topic: str, sent_at: float, data: Any) -> Message: ...
    def since(self, after: int, limit: int) -> list[Message]:
        """Messages with ``seq > after`` in order, at most ``limit``."""
        ...

    def close(self) -> None: ...


class _Stamping:
    """What both stores share: the epoch and the seq counter they stamp from."""

    _epoch: str
    _last: int

    @property
    def epoch(self) -> str:
        return self._epoch

    @property
    def last_seq(self) -> int:
        return self._last


class MemoryHistory(_Stamping):
    """A ring buffer of the last ``capacity`` messages; epoch is new per instance."""

    def __init__(
        self, capacity: int = DEFAULT_CAPACITY, epoch: str | None = None, channel: str = ""
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self._ring: deque[Message] = deque(maxlen=capacity)
        self._epoch = epoch or secrets.token_hex(4)
        self._last = 0
        self.channel = channel

    @property
    def first_seq(self) -> int:
        return self._ring[0].seq if self._ring else self._last + 1

    def append(self, topic: str, sent_at: float, data: Any) -> Message:
        self._last += 1
        message = Message(self._last, topic, sent_at, data, self.channel)
        self._ring.append(message)
        return message

    def since(self, after: int, limit: int) -> list[Message]:
        if not self._ring or after >= self._last:
            return []
        start = max(0, after - self._ring[0].seq + 1)
        # deque indexing is O(n) from the nearer end; slicing via islice keeps it linear once.
        end = min(len(self._ring), start + limit)
        return [self._ring[i] for i in range(start, end)]

    def close(self) -> None:
        self._ring.clear()


class SqliteHistory(_Stamping):
    """Durable history in one SQLite file; keeps the newest ``capacity`` rows."""

    def __init__(
        self, path: str | Path, capacity: int = DEFAULT_CAPACITY, channel: str = ""
    ) -> None:
        self._capacity = capacity
        self.channel = channel
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        # WAL + synchronous=NORMAL: a committed append survives a process crash (the case a
        # restart test exercises) without an fsync per message; see sqlite.org/wal.html.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS messages ("
            "seq INTEGER PRIMARY KEY, topic TEXT NOT NULL, sent_at REAL NOT NULL, data TEXT)"
        )
        row = self._db.execute("SELECT value FROM meta WHERE key='epoch'").fetchone()
        if row is None:
            self._epoch = secrets.token_hex(4)
            self._db.execute("INSERT INTO meta VALUES ('epoch', ?)", (self._epoch,))
        else:
            self._epoch = str(row[0])
        self._last = int(
            self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM messages").fetchone()[0]
        )
        first = self._db.execute("SELECT MIN(seq) FROM messages").fetchone()[0]
        self._first = int(first) if first is not None else self._last + 1

    @property
    def first_seq(self) -> int:
        return self._first

    def append(self, topic: str, sent_at: float, data: Any) -> Message:
        self._last += 1
        message = Message(self._last, topic, sent_at, data, self.channel)
        self._db.execute(
            "INSERT INTO messages VALUES (?, ?, ?, ?)",
            (message.seq, topic, sent_at, json.dumps(data, separators=(",", ":"))),
        )
        if self._first > self._last:
            self._first = self._last
        # Trim in batches so the DELETE cost is amortised over many appends.
        if self._last - self._first + 1 > self._capacity + max(1, self._capacity // 10):
            self._first = self._last - self._capacity + 1
            self._db.execute("DELETE FROM messages WHERE seq < ?", (self._first,))
        return message

    def since(self, after: int, limit: int) -> list[Message]:
        rows = self._db.execute(
            "SELECT seq, topic, sent_at, data FROM messages WHERE seq > ? ORDER BY seq LIMIT ?",
            (after, limit),
        ).fetchall()
        return [
            Message(int(s), str(t), float(a), json.loads(d), self.channel) for s, t, a, d in rows
        ]

    def close(self) -> None:
        self._db.close()


def open_history(url: str | None) -> History:
    """Open a history store from a URL: ``memory://?capacity=N`` or ``sqlite:///path?capacity=N``."""
    if not url:
        return MemoryHistory()
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    capacity = int(query.get("capacity", [str(DEFAULT_CAPACITY)])[0])
    if parts.scheme == "memory":
        return MemoryHistory(capacity)
    if parts.scheme == "sqlite":
        # sqlite:///relative.db -> "relative.db"; sqlite:////abs/path.db -> "/abs/path.db"
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        if not path:
            raise ValueError("sqlite history needs a path: sqlite:///file.db")
        return SqliteHistory(path, capacity)
    raise ValueError(f"unknown history scheme {parts.scheme!r} (use memory:// or sqlite:///)")
