"""Bytes on the wire per connection: setup, steady state per message, idle heartbeat per hour.

TCP transports are measured through :class:`~transports.netem.proxy.FaultProxy` (no faults,
just its byte counters), which counts **TCP payload** bytes in each direction — HTTP headers,
WebSocket/SSE/MQTT framing and our JSON, but not IP/TCP headers (add 52–64 bytes per segment
for those; the tshark test checks the TCP payload figure against a capture). The proxy runs
on its own event loop in a thread, so it costs the server under test nothing.

Phases of one measurement, each a fresh server and one client:

1. *setup*: from TCP connect until the client has the ``hello`` and one small priming
   message (HTTP upgrade, SSE response headers, first poll exchange, MQTT CONNECT/SUBSCRIBE,
   ICE/DTLS/SCTP for WebRTC) plus a short settle;
2. *steady*: ``messages`` published open-loop; bytes per message = delta / messages,
   split into payload (our JSON message) and framing (everything else);
3. *idle*: a second run with every heartbeat interval divided by ``HEARTBEAT_SCALE``; the
   idle bytes are scaled back to the default intervals and to one hour.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from transports import codec
from transports.config import ServerConfig
from transports.lab.schedule import PublishRun, start_publisher
from transports.live import LiveServer
from transports.netem.proxy import FaultProxy

HEARTBEAT_SCALE = 20.0
MQTT_KEEPALIVE = 10  # the MQTT client's default keep-alive (s)
TCP = ("ws", "sse", "poll", "mqtt")


class ProxyThread:
    """A counting :class:`FaultProxy` on its own loop in a daemon thread."""

    def __init__(self, host: str, port: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.proxy = FaultProxy(host, port)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="proxy")
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.proxy.start(), self.loop).result(10)

    @property
    def port(self) -> int:
        return self.proxy.port

    def counts(self) -> tuple[int, int]:
        """(client → server, server → client) TCP payload bytes so far, all connections."""

        async def read() -> tuple[int, int]:
            c = self.proxy.counters
            return c.upstream.read, c.downstream.read

        return asyncio.run_coroutine_threadsafe(read(), self.loop).result(10)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.proxy.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


def target(info: dict[str, Any], transport: str) -> tuple[str, int, str]:
    """(host, port, info key) of the TCP endpoint a client of ``transport`` connects to."""
    entry = info["transports"][transport]
    key = "url"  # the MQTT entry's "url" is its broker's
    parts = urlsplit(str(entry[key]))
    default = {"ws": 80, "http": 80, "mqtt": 1883, "wss": 443, "https": 443}
    return parts.hostname or "127.0.0.1", parts.port or default.get(parts.scheme, 80), key


def via(info: dict[str, Any], transport: str, port: int) -> dict[str, Any]:
    """A copy of ``info`` whose endpoint for ``transport`` points at the proxy's port."""
    _, _, key = target(info, transport)
    entry = dict(info["transports"][transport])
    parts = urlsplit(str(entry[key]))
    entry[key] = urlunsplit(parts._replace(netloc=f"{parts.hostname}:{port}"))
    return {**info, "transports": {**info["transports"], transport: entry}}


@dataclass(slots=True)
class WireResult:
    transport: str
    payload_bytes: int
    payload_kind: str
    compression: bool
    messages: int
    setup_up: int = 0
    setup_down: int = 0
    per_msg_up: float = 0.0
    per_msg_down: float = 0.0
    payload_per_msg: float = 0.0
    idle_up_per_hour: float = 0.0
    idle_down_per_hour: float = 0.0
    totals: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "totals"}
        out["setup_bytes"] = self.setup_up + self.setup_down
        out["framing_per_msg"] = self.per_msg_down - self.payload_per_msg
        out["idle_bytes_per_hour"] = self.idle_up_per_hour + self.idle_down_per_hour
        out["layer"] = "TCP+UDP payload" if self.transport == "webrtc" else "TCP payload"
        return out


def scaled_config(transport: str, compression: bool, scale: float) -> ServerConfig:
    cfg = ServerConfig(ws_compression=compression)
    if scale == 1.0:
        return cfg
    return cfg.replace(
        ws_ping_interval=(cfg.ws_ping_interval or 20.0) / scale,
        sse_ping_interval=cfg.sse_ping_interval / scale,
        poll_default_timeout=cfg.poll_default_timeout / scale,
        webrtc_ping_interval=cfg.webrtc_ping_interval / scale,
    )


def client_options(transport: str, compression: bool, scale: float) -> dict[str, Any]:
    if transport == "ws":
        return {"compression": compression, "ping_interval": 10.0 / scale}
    if transport == "poll":
        return {"timeout": 25.0 / scale}
    if transport == "mqtt":
        # Keep-alive is whole seconds (MQTT 5 §3.1.2.10); info_url=None stops the client
        # re-reading the broker address from /api/info, which would bypass the proxy.
        return {"keepalive": max(1, round(MQTT_KEEPALIVE / scale)), "info_url": None,
                "backfill": False}  # fmt: skip
    return {}


def heartbeat_scale(transport: str) -> float:
    """How much faster heartbeats run in the idle phase.

    MQTT's keep-alive is whole seconds (10 s → 1 s). WebRTC is not scaled: besides our
    channel ping it sends ICE consent checks (RFC 7675) and SCTP heartbeats (RFC 9260 §8.3)
    on timers we do not control, so its idle window is simply longer.
    """
    if transport == "webrtc":
        return 1.0
    return MQTT_KEEPALIVE if transport == "mqtt" else HEARTBEAT_SCALE


class Meter:
    """TCP payload through the proxy plus, for WebRTC, UDP payload through a relay."""

    def __init__(self, proxy: ProxyThread, relay: Any = None) -> None:
        self.proxy = proxy
        self.relay = relay

    def split(self) -> dict[str, Any]:
        tcp_up, tcp_down = self.proxy.counts()
        out: dict[str, Any] = {"tcp_up": tcp_up, "tcp_down": tcp_down, "up": tcp_up,
                               "down": tcp_down}  # fmt: skip
        if self.relay is not None:
            c = self.relay.counters
            out.update(udp_up=c.upstream.bytes, udp_down=c.downstream.bytes)
            out["up"] += c.upstream.bytes
            out["down"] += c.downstream.bytes
            out["udp_ports"] = [s.address[1] for s in self.relay.sessions]
        return out

    def counts(self) -> tuple[int, int]:
        split = self.split()
        return split["up"], split["down"]


async def _session(
    live: LiveServer,
    transport: str,
    options: dict[str, Any],
    body: Callable[[Any, Meter, Any], Any],
    before_connect: Callable[[int], None] | None,
) -> dict[str, Any]:
    """Connect one client through the meter, run ``body(live, meter, events)``; final counts."""
    from transports.client import Connected, Delivered, follow
    from transports.clients import server_info, subscriber

    # One priming message, and the client starts at after=0: the first long poll then
    # answers at once (it would hold until a message), and every transport pays the same.
    await asyncio.to_thread(live.publish, {"prime": True})
    info = await server_info(live.url)
    host, port, _ = target(info, transport)
    proxy = ProxyThread(host, port)
    relay: Any = None
    try:
        if before_connect is not None:
            before_connect(proxy.port)
        proxied = via(info, transport, proxy.port)
        if transport == "webrtc":
            # Signalling (HTTP) goes through the TCP proxy, the data channel through the relay.
            from transports.lab.relayed_webrtc import RelayedWebRTCSubscriber
            from transports.netem.udp_relay import UdpRelay

            relay = UdpRelay()
            sub: Any = RelayedWebRTCSubscriber.for_server(live.url, proxied, relay=relay, **options)
        else:
            sub = await subscriber(transport, live.url, proxied, **options)
        meter = Meter(proxy, relay)
        events: asyncio.Queue[Any] = asyncio.Queue()

        async def consume() -> None:
            async for event in follow(sub, 0, idle_timeout=120):
                if isinstance(event, Connected | Delivered):
                    await events.put(event)

        task = asyncio.create_task(consume())
        try:
            async with asyncio.timeout(30):
                while not isinstance(await events.get(), Connected):
                    pass
            await body(live, meter, events)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await asyncio.sleep(0.3)  # let the close handshake finish before the final count
        return meter.split()
    finally:
        if relay is not None:
            relay.close()
        proxy.close()


def measure(
    transport: str,
    payload_bytes: int = 256,
    payload_kind: str = "json",
    compression: bool = False,
    messages: int = 200,
    rate: float = 100.0,
    idle_s: float = 4.0,
    before_connect: Callable[[int], None] | None = None,
) -> WireResult:
    """Measure setup, steady-state and idle bytes of ``transport`` (TCP transports)."""
    if transport not in (*TCP, "webrtc"):
        raise ValueError(f"unknown transport {transport!r}")
    result = WireResult(transport, payload_bytes, payload_kind, compression, messages)
    settle = 0.3
    window = max(idle_s, 6.0) if transport == "webrtc" else idle_s

    async def steady(live: LiveServer, meter: Meter, events: asyncio.Queue[Any]) -> None:
        await asyncio.sleep(settle)
        result.setup_up, result.setup_down = meter.counts()
        run = PublishRun(rate, messages)
        fut = live.call(start_publisher, live, run, payload_bytes, payload_kind)
        got = 0
        async with asyncio.timeout(messages / rate + 30):
            while got < messages:
                got += 1 if _is_measured(await events.get()) else 0
        await asyncio.wrap_future(fut)
        await asyncio.sleep(settle)
        up, down = meter.counts()
        result.per_msg_up = (up - result.setup_up) / messages
        result.per_msg_down = (down - result.setup_down) / messages
        sizes = live.call(_sizes, live, messages)
        result.payload_per_msg = sum(sizes) / len(sizes)

    async def idle(live: LiveServer, meter: Meter, events: asyncio.Queue[Any]) -> None:
        await asyncio.sleep(settle)
        up0, down0 = meter.counts()
        await asyncio.sleep(window)
        up1, down1 = meter.counts()
        factor = 3600 / window / heartbeat_scale(transport)
        result.idle_up_per_hour = (up1 - up0) * factor
        result.idle_down_per_hour = (down1 - down0) * factor

    phases: list[tuple[Any, float]] = [(steady, 1.0)]
    if idle_s > 0:
        phases.append((idle, heartbeat_scale(transport)))
    for body, scale in phases:
        cfg = scaled_config(transport, compression, scale)
        with LiveServer((transport,), config=cfg) as live:
            opts = client_options(transport, compression, scale)
            hook = before_connect if body is steady else None
            totals = _run(_session(live, transport, opts, body, hook))
            if body is steady:
                result.totals = totals
    return result


def _run(coro: Any) -> Any:
    """``asyncio.run``, or in a separate thread when a loop already runs here (a notebook)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _is_measured(event: Any) -> bool:
    """A delivered message of the measured run (not the priming message, not a connect)."""
    from transports.client import Delivered

    return (
        isinstance(event, Delivered)
        and isinstance(event.message.data, dict)
        and ("i" in event.message.data)
    )


def _sizes(live: LiveServer, n: int) -> list[int]:
    """Encoded sizes of the last ``n`` messages: the application payload each one carries."""
    feed = live.ctx.feed
    return [len(codec.encode_bytes(m)) for m in feed.history.since(feed.last_seq - n, n)]
