"""Engines: where named channels keep seq, epoch and history when one process is not enough.

The embedded default needs no engine: every channel is a :class:`~transports.feed.Feed` of
the process (memory ring or SQLite file), exactly as in ``hub.py``. ``serve --engine
redis://HOST:PORT/DB`` puts the channels in **Redis** instead (:mod:`.redis`), so several
server processes serve the same channels and a client resumes on any of them
(``docs/scale.md``). The engine sits at the history/seq/fan-out-source boundary:

- the hub still owns the channel objects, namespaces, hooks and limits;
- each node still fans out to its own connections through the channel's local ``Feed``
  (whose history is a :class:`~.mirror.MirrorHistory` the engine fills from Redis), so the
  per-connection hot path is the same code with or without an engine;
- the engine assigns seq and epoch (atomically, in Redis), stores history, remembers client
  message ids and carries every message to every node.

Engines are chosen by URL scheme and imported lazily (the ``redis`` library is an optional
extra, ``pip install 'transport-lab[redis]'``).
"""

from __future__ import annotations

# The protocol lives beside the hub that asks for it, so the hub never imports its engines.
from transports.hub import Engine


def open_engine(url: str) -> Engine:
    """The engine for ``url``: ``redis://HOST:PORT/DB`` (or ``rediss://`` for TLS)."""
    scheme = url.split("://", 1)[0].lower()
    if scheme in ("redis", "rediss", "unix"):
        from transports.engine.redis import RedisEngine

        return RedisEngine(url)
    raise ValueError(f"unknown engine {url!r} (use redis://HOST:PORT/DB)")


__all__ = ["Engine", "open_engine"]
