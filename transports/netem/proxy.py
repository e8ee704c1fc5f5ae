"""A TCP fault proxy with byte counters, in asyncio.

Written by hand because no maintained Python library does this: Toxiproxy (Go) is a separate
server binary with its own HTTP API, and ``tc netem`` is not available in every kernel (it is
not on the machine this lab was built on). The faults are modelled on Toxiproxy's toxics
(:mod:`transports.netem.faults`).

Each accepted connection opens one upstream connection and runs two *pipes* (upstream =
client → server, downstream = server → client). A pipe is two tasks joined by a small
bounded queue: a reader that stamps each chunk with its arrival time, and a writer that
applies the faults active *now* and writes. Buffers are bounded everywhere: the queue holds
at most ``queue_chunks`` chunks, asyncio's StreamReader pauses the socket past its limit, and
the writer awaits ``drain()``; a slow side therefore slows the other side down instead of
growing memory.

Byte counters count TCP payload bytes (not IP/TCP headers): ``read`` is what the sending
peer put on its socket, ``written`` what the proxy passed on (they differ only while a fault
holds, drops or truncates data).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Any

from transports.netem.faults import (
    DIRECTIONS,
    Bandwidth,
    Blackhole,
    Fault,
    Latency,
    LimitData,
    Reset,
    Slicer,
    SlowClose,
)

log = logging.getLogger("transports.netem.proxy")
CHUNK = 16 * 1024
_EOF = b""


@dataclass(slots=True)
class ByteCount:
    read: int = 0
    written: int = 0


@dataclass(slots=True)
class Counters:
    """Bytes per direction; ``connections`` counts accepted client connections."""

    upstream: ByteCount = field(default_factory=ByteCount)
    downstream: ByteCount = field(default_factory=ByteCount)
    connections: int = 0

    def of(self, direction: str) -> ByteCount:
        return self.upstream if direction == "upstream" else self.downstream

    def as_dict(self) -> dict[str, Any]:
        return {
            "connections": self.connections,
            "upstream": {"read": self.upstream.read, "written": self.upstream.written},
            "downstream": {"read": self.downstream.read, "written": self.downstream.written},
        }


def _rst(writer: asyncio.StreamWriter) -> None:
    """Close with an RST: SO_LINGER on with a zero timeout makes close() abort (RFC 793 §3.5)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class Connection:
    """One proxied client connection and its upstream connection."""

    def __init__(
        self,
        proxy: FaultProxy,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> None:
        self.proxy = proxy
        self.client_reader, self.client_writer = client
        self.upstream_reader, self.upstream_writer = upstream
        self.counters = Counters(connections=1)
        self.peer = self.client_writer.get_extra_info("peername")
        self.closed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._reset_tasks: list[asyncio.Task[None]] = []

    async def run(self) -> None:
        for direction, src, dst in (
            ("upstream", self.client_reader, self.upstream_writer),
            ("downstream", self.upstream_reader, self.client_writer),
        ):
            queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(self.proxy.queue_chunks)
            self._tasks.append(asyncio.create_task(self._read(direction, src, queue)))
            self._tasks.append(asyncio.create_task(self._write(direction, dst, queue)))
        for fault in self.proxy.faults.values():
            if isinstance(fault, Reset):
                self.schedule_reset(fault)
        try:
            await asyncio.gather(*self._tasks)
        except (OSError, asyncio.CancelledError, RuntimeError):
            pass
        finally:
            self.close(reset=False)

    def schedule_reset(self, fault: Reset) -> None:
        async def later() -> None:
            await asyncio.sleep(fault.after_ms / 1000)
            self.close(reset=True)

        self._reset_tasks.append(asyncio.create_task(later()))

    def close(self, reset: bool) -> None:
        """Close both sides (with RST when ``reset``) and stop the pipes. Idempotent."""
        if self.closed.is_set():
            return
        self.closed.set()
        for writer in (self.client_writer, self.upstream_writer):
            if reset:
                _rst(writer)
            else:
                writer.close()
        current = asyncio.current_task()
        for task in self._tasks + self._reset_tasks:
            if task is not current:
                task.cancel()
        self.proxy._forget(self)

    def _count(self, direction: str, read: int = 0, written: int = 0) -> None:
        for counters in (self.counters, self.proxy.counters):
            c = counters.of(direction)
            c.read += read
            c.written += written

    async def _read(
        self, direction: str, src: asyncio.StreamReader, queue: asyncio.Queue[tuple[float, bytes]]
    ) -> None:
        try:
            while True:
                data = await src.read(CHUNK)
                self._count(direction, read=len(data))
                await queue.put((time.monotonic(), data))
                if not data:
                    return
        except (ConnectionError, OSError):
            # The peer reset us: pass the reset on, as a router in the path would.
            self.close(reset=True)

    async def _write(
        self, direction: str, dst: asyncio.StreamWriter, queue: asyncio.Queue[tuple[float, bytes]]
    ) -> None:
        due = 0.0  # chunks leave in order even when jitter would reorder them
        sent = 0
        try:
            while True:
                arrived, data = await queue.get()
                await self._hold(direction)  # a blackhole holds even the FIN
                faults = self.proxy.active(direction)
                if data == _EOF:
                    for f in faults:
                        if isinstance(f, SlowClose):
                            await asyncio.sleep(f.delay_ms / 1000)
                    if dst.can_write_eof():
                        dst.write_eof()
                    return
                if any(isinstance(f, Blackhole) and f.drop for f in faults):
                    continue
                for f in faults:
                    if isinstance(f, Latency):
                        due = max(due, arrived + f.delay())
                        await asyncio.sleep(max(0.0, due - time.monotonic()))
                limit = next((f for f in faults if isinstance(f, LimitData)), None)
                if limit is not None:
                    data = data[: max(0, limit.nbytes - sent)]
                slicer = next((f for f in faults if isinstance(f, Slicer)), None)
                pieces = slicer.slices(data) if slicer else [data]
                for i, piece in enumerate(pieces):
                    for f in faults:
                        if isinstance(f, Bandwidth):
                            await asyncio.sleep(len(piece) / (f.rate_kbps * 1000))
                    if slicer is not None and i:
                        await asyncio.sleep(slicer.delay_us / 1e6)
                    dst.write(piece)
                    await dst.drain()
                    sent += len(piece)
                    self._count(direction, written=len(piece))
                if limit is not None and sent >= limit.nbytes:
                    self.close(reset=False)
                    return
        except (ConnectionError, OSError):
            self.close(reset=True)

    async def _hold(self, direction: str) -> None:
        while any(isinstance(f, Blackhole) and not f.drop for f in self.proxy.active(direction)):
            await self.proxy.changed()


class FaultProxy:
    """Listen on ``listen_host:listen_port`` (0 = free port) and forward to the upstream.

    ``add(fault)``/``remove(name)``/``clear()`` change faults at runtime for current and new
    connections; ``cut()`` resets every current connection. Use as ``async with``.
    """

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        *,
        queue_chunks: int = 8,
    ) -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.listen_host = listen_host
        self.port = listen_port
        self.queue_chunks = queue_chunks
        self.faults: dict[str, Fault] = {}
        self.counters = Counters()
        self.connections: set[Connection] = set()
        self._server: asyncio.Server | None = None
        self._changed = asyncio.Event()

    @property
    def address(self) -> tuple[str, int]:
        return (self.listen_host, self.port)

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(
            self._accept, self.listen_host, self.port, limit=CHUNK * 2
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.close(reset=False)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> FaultProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- faults --------------------------------------------------------------------------
    def add(self, fault: Fault) -> None:
        self.faults[fault.name] = fault
        if isinstance(fault, Reset):
            for conn in list(self.connections):
                conn.schedule_reset(fault)
        self._notify()

    def remove(self, name: str) -> None:
        if self.faults.pop(name, None) is None:
            raise KeyError(name)
        self._notify()

    def clear(self) -> None:
        self.faults.clear()
        self._notify()

    def cut(self) -> int:
        """Reset every current connection (RST both ways); return how many."""
        conns = list(self.connections)
        for conn in conns:
            conn.close(reset=True)
        return len(conns)

    def active(self, direction: str) -> list[Fault]:
        assert direction in DIRECTIONS
        return [f for f in self.faults.values() if f.applies_to(direction)]

    def describe(self) -> list[dict[str, Any]]:
        return [f.describe() for f in self.faults.values()]

    async def changed(self) -> None:
        await self._changed.wait()

    def _notify(self) -> None:
        # Wake every waiter, then arm a fresh event for the next change.
        self._changed.set()
        self._changed = asyncio.Event()

    # ---- connections ---------------------------------------------------------------------
    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _nodelay(writer)
        try:
            up = await asyncio.open_connection(
                self.upstream_host, self.upstream_port, limit=CHUNK * 2
            )
        except OSError as exc:
            log.info("upstream %s:%s unreachable: %s", self.upstream_host, self.upstream_port, exc)
            _rst(writer)
            return
        _nodelay(up[1])
        conn = Connection(self, (reader, writer), up)
        self.connections.add(conn)
        self.counters.connections += 1
        await conn.run()

    def _forget(self, conn: Connection) -> None:
        self.connections.discard(conn)


def _nodelay(writer: asyncio.StreamWriter) -> None:
    # Pass each write on at once: Nagle would merge the slicer's pieces and add ~40 ms stalls.
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
