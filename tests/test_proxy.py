"""The TCP fault proxy on real loopback sockets: every fault observably changes traffic."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tests.conftest import UNIT
from transports.netem.faults import (
    Bandwidth,
    Blackhole,
    Latency,
    LimitData,
    Reset,
    Slicer,
    SlowClose,
    from_dict,
)
from transports.netem.proxy import FaultProxy

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


class Upstream:
    """A real TCP server on 127.0.0.1 whose per-connection behaviour the test chooses."""

    def __init__(self, handler: Handler = echo) -> None:
        self.handler = handler
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> Upstream:
        self.server = await asyncio.start_server(self.handler, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


@pytest.fixture
async def proxy() -> AsyncIterator[FaultProxy]:
    async with Upstream() as up, FaultProxy("127.0.0.1", up.port) as p:
        yield p


async def connect(p: FaultProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", p.port)


async def roundtrip(p: FaultProxy, payload: bytes) -> tuple[bytes, float]:
    reader, writer = await connect(p)
    t0 = time.monotonic()
    writer.write(payload)
    data = await asyncio.wait_for(reader.readexactly(len(payload)), 10 * UNIT)
    elapsed = time.monotonic() - t0
    writer.close()
    return data, elapsed


async def settle(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout * UNIT
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_passthrough_and_exact_byte_counters(proxy: FaultProxy) -> None:
    payload = bytes(range(256)) * 400  # 102400 bytes, several chunks
    data, _ = await roundtrip(proxy, payload)
    assert data == payload
    await settle(lambda: proxy.counters.downstream.written == len(payload))
    c = proxy.counters
    assert (c.upstream.read, c.upstream.written) == (len(payload), len(payload))
    assert (c.downstream.read, c.downstream.written) == (len(payload), len(payload))
    assert c.connections == 1
    await settle(lambda: not proxy.connections)


async def test_latency_delays_each_direction(proxy: FaultProxy) -> None:
    await roundtrip(proxy, b"x" * 100)  # warm up
    proxy.add(Latency(latency_ms=150, direction="both"))
    data, slow = await roundtrip(proxy, b"x" * 100)
    assert data == b"x" * 100
    assert slow >= 0.3  # 150 ms each way
    proxy.remove("latency")
    _, again = await roundtrip(proxy, b"x" * 100)
    assert again < 0.3 <= slow


async def test_jitter_keeps_order(proxy: FaultProxy) -> None:
    proxy.add(Latency(latency_ms=20, jitter_ms=20))
    reader, writer = await connect(proxy)
    sent = b"".join(b"%05d" % i for i in range(200))
    for i in range(200):
        writer.write(b"%05d" % i)
        await writer.drain()
        await asyncio.sleep(0.001)
    got = await asyncio.wait_for(reader.readexactly(len(sent)), 10 * UNIT)
    assert got == sent
    writer.close()


async def test_bandwidth_caps_throughput(proxy: FaultProxy) -> None:
    proxy.add(Bandwidth(rate_kbps=100))  # 100 kB/s downstream
    payload = b"y" * 60_000
    data, elapsed = await roundtrip(proxy, payload)
    assert data == payload
    assert elapsed >= 0.5  # 60 kB at 100 kB/s is 0.6 s
    proxy.clear()
    _, fast = await roundtrip(proxy, payload)
    assert fast < elapsed


async def test_cut_resets_both_peers() -> None:
    closed: list[BaseException | bytes] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            closed.append(await reader.read(100))
        except ConnectionError as exc:
            closed.append(exc)
        finally:
            writer.close()

    async with Upstream(hold) as up, FaultProxy("127.0.0.1", up.port) as p:
        reader, writer = await connect(p)
        await settle(lambda: len(p.connections) == 1)
        assert p.cut() == 1
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(reader.read(100), 5 * UNIT)
        await settle(lambda: bool(closed))
        assert isinstance(closed[0], ConnectionResetError)
        writer.close()
        assert len(p.connections) == 0
        # The listener survives a cut: a new connection is proxied again.
        _, w2 = await connect(p)
        await settle(lambda: len(p.connections) == 1)
        w2.close()


async def test_reset_fault_resets_new_connections_after_delay(proxy: FaultProxy) -> None:
    proxy.add(Reset(after_ms=200))
    reader, writer = await connect(proxy)
    writer.write(b"hello")
    assert await asyncio.wait_for(reader.readexactly(5), 5 * UNIT) == b"hello"
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(reader.read(100), 5 * UNIT)
    writer.close()


async def test_blackhole_holds_silently_then_releases(proxy: FaultProxy) -> None:
    reader, writer = await connect(proxy)
    proxy.add(Blackhole(direction="both"))
    writer.write(b"ping")
    await writer.drain()
    # No byte, no FIN, no RST: the read just waits.
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.read(100), 0.5)
    assert proxy.counters.upstream.written == 0
    proxy.remove("blackhole")
    assert await asyncio.wait_for(reader.readexactly(4), 5 * UNIT) == b"ping"
    writer.close()


async def test_blackhole_drop_loses_bytes(proxy: FaultProxy) -> None:
    reader, writer = await connect(proxy)
    proxy.add(Blackhole(drop=True))
    writer.write(b"lost")
    await settle(lambda: proxy.counters.downstream.read == 4)
    proxy.clear()
    writer.write(b"kept")
    assert await asyncio.wait_for(reader.readexactly(4), 5 * UNIT) == b"kept"
    assert proxy.counters.downstream.written == 4
    writer.close()


async def test_blackhole_applies_backpressure(proxy: FaultProxy) -> None:
    proxy.add(Blackhole(direction="upstream"))
    _, writer = await connect(proxy)
    writer.write(b"z" * 20_000_000)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(writer.drain(), 1.0)
    # The proxy stopped reading: only its bounded buffers (not 20 MB) were taken in.
    assert proxy.counters.upstream.read < 1_000_000
    writer.transport.abort()


async def test_limit_data_closes_after_n_bytes(proxy: FaultProxy) -> None:
    proxy.add(LimitData(nbytes=100))
    reader, writer = await connect(proxy)
    writer.write(b"a" * 1000)
    got = await asyncio.wait_for(reader.read(-1), 5 * UNIT)  # until EOF
    assert got == b"a" * 100
    writer.close()


async def test_slicer_splits_writes() -> None:
    async def burst(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"s" * 1000)  # one write
        await writer.drain()
        writer.close()

    async with Upstream(burst) as up, FaultProxy("127.0.0.1", up.port) as p:
        p.add(Slicer(average_size=20, size_variation=5, delay_us=3000))
        reader, writer = await connect(p)
        reads = []
        while chunk := await asyncio.wait_for(reader.read(65536), 5 * UNIT):
            reads.append(len(chunk))
        assert sum(reads) == 1000
        assert len(reads) >= 10  # unsliced, this arrives in one or two reads
        assert max(reads) < 1000
        writer.close()


async def test_slow_close_delays_fin() -> None:
    async def bye(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"bye")
        await writer.drain()
        writer.close()

    async with Upstream(bye) as up, FaultProxy("127.0.0.1", up.port) as p:
        p.add(SlowClose(delay_ms=400))
        reader, writer = await connect(p)
        assert await asyncio.wait_for(reader.readexactly(3), 5 * UNIT) == b"bye"
        t0 = time.monotonic()
        assert await asyncio.wait_for(reader.read(10), 5 * UNIT) == b""
        assert time.monotonic() - t0 >= 0.3
        writer.close()


async def test_upstream_down_resets_client() -> None:
    async with Upstream() as up:
        port = up.port
    async with FaultProxy("127.0.0.1", port) as p:
        reader, writer = await connect(p)
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(reader.read(10), 5 * UNIT)
        writer.close()


def test_fault_specs_are_validated() -> None:
    assert from_dict({"kind": "latency", "latency_ms": 5}).describe()["latency_ms"] == 5
    with pytest.raises(ValueError, match="unknown fault kind"):
        from_dict({"kind": "meteor"})
    with pytest.raises(ValueError, match="unknown field"):
        from_dict({"kind": "latency", "bogus": 1})
    with pytest.raises(ValueError, match=">= 0"):
        Latency(latency_ms=-1)
    with pytest.raises(ValueError, match="direction"):
        Blackhole(direction="sideways")
