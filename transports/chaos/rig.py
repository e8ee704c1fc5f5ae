"""The fault rig one chaos run uses: a live server, the proxies in every client path, faults.

Every byte a client exchanges goes through something the rig controls and counts:

- HTTP, SSE, long polling, WebSocket and WebRTC signalling: a :class:`FaultProxy` in front of
  the server's port (the client is given the proxy's URL);
- WebRTC media: a :class:`UdpRelay` whose sessions replace the server's ICE candidates;
- MQTT: the rig runs its own Mosquitto (persistence on) and hands the server its URL as an
  external broker, so a server restart leaves the broker and its sessions alone and a broker
  restart keeps the port. The subscriber reaches the broker through a second
  :class:`FaultProxy` (``broker_override``): ``/api/info`` names the real broker, which
  would otherwise take the client around every fault.

Heartbeat settings per transport come from one number, ``heartbeat`` (s): WS ping interval
and pong timeout, SSE comment interval, long-poll hold, WebRTC channel ping, and MQTT
keepalive (whole seconds, at least 1: MQTT 5 §3.1.2.10 carries it as a 16-bit count of
seconds). :func:`watchdog` is ``follow()``'s idle timeout: three intervals, i.e. one
interval for the next heartbeat to be due plus a timeout of two more.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Any

from transports.client import Subscriber
from transports.clients import server_info, subscriber
from transports.config import ServerConfig
from transports.live import LiveServer
from transports.netem.path import FaultPath
from transports.netem.proxy import FaultProxy
from transports.netem.udp_relay import UdpRelay


def interval(name: str, heartbeat: float) -> float:
    """The heartbeat interval transport ``name`` really runs for a requested ``heartbeat``."""
    return float(max(1, math.ceil(heartbeat))) if name == "mqtt" else heartbeat


def watchdog(name: str, heartbeat: float) -> float:
    """``follow()``'s idle timeout: the interval plus a timeout of two more intervals."""
    return 3 * interval(name, heartbeat)


def server_config(heartbeat: float, rate: float, history_url: str | None) -> ServerConfig:
    return ServerConfig(
        history_url=history_url,
        rate=rate,
        payload_bytes=32,
        ws_ping_interval=heartbeat,
        ws_ping_timeout=heartbeat,
        sse_ping_interval=heartbeat,
        poll_default_timeout=heartbeat,
        webrtc_ping_interval=heartbeat,
    )


@dataclass(slots=True)
class Rig:
    name: str
    heartbeat: float
    live: LiveServer
    proxy: FaultProxy
    relay: UdpRelay | None = None
    broker: Any = None  # MosquittoBroker, for MQTT
    broker_proxy: FaultProxy | None = None

    @classmethod
    async def open(cls, name: str, config: ServerConfig, heartbeat: float) -> Rig:
        broker = None
        if name == "mqtt":
            from transports.mqtt.mosquitto import MosquittoBroker

            broker = MosquittoBroker(persistence=True)
            await broker.start()
            config = config.replace(mqtt_url=broker.bridge_url)  # with the bridge credentials
        try:
            live = await asyncio.to_thread(LiveServer((name,), config=config).start)
        except BaseException:
            if broker is not None:
                await broker.close()
            raise
        rig = cls(name, heartbeat, live, await FaultProxy(live.host, live.port).start())
        if name == "webrtc":
            rig.relay = UdpRelay(live.host)
        if broker is not None:
            rig.broker = broker
            rig.broker_proxy = await FaultProxy(broker.host, broker.port).start()
        return rig

    @property
    def url(self) -> str:
        """The server's base URL as clients see it: through the proxy."""
        return f"http://{self.live.host}:{self.proxy.port}"

    @property
    def proxies(self) -> list[FaultProxy]:
        return [p for p in (self.proxy, self.broker_proxy) if p is not None]

    async def subscriber(self) -> Subscriber:
        h, info = self.heartbeat, await server_info(self.url)
        if self.name == "webrtc" and self.relay is not None:
            from transports.lab.relayed_webrtc import RelayedWebRTCSubscriber

            return RelayedWebRTCSubscriber.for_server(self.url, info, relay=self.relay)
        options: dict[str, Any] = {}
        if self.name == "ws":
            options = {"ping_interval": h, "ping_timeout": h}
        elif self.name == "poll":
            options = {"timeout": h}
        elif self.name == "mqtt" and self.broker_proxy is not None:
            override = f"mqtt://{self.live.host}:{self.broker_proxy.port}"
            options = {"keepalive": int(interval("mqtt", h)), "broker_override": override}
        return await subscriber(self.name, self.url, info, **options)

    def bytes(self) -> int:
        """Payload bytes the endpoints have sent so far, both directions, every path."""
        total = sum(p.counters.upstream.read + p.counters.downstream.read for p in self.proxies)
        if self.relay is not None:
            c = self.relay.counters
            total += c.upstream.bytes + c.downstream.bytes
        return total

    def connections(self) -> int:
        return sum(p.counters.connections for p in self.proxies)

    # ---- faults --------------------------------------------------------------------------
    @property
    def path(self) -> FaultPath:
        return FaultPath(self.proxies, self.relay)

    def cut(self) -> None:
        self.path.cut()

    def blackhole(self) -> None:
        self.path.blackhole()

    def latency_loss(self) -> None:
        self.path.latency(200, 50, loss=0.05, direction="both")

    def clear(self) -> None:
        self.path.restore()

    async def restart_server(self) -> None:
        await asyncio.to_thread(self.live.restart)

    async def restart_broker(self) -> None:
        """SIGTERM (Mosquitto saves its persistence file) and start again on the same port."""
        if self.broker is None:
            raise ValueError(f"{self.name} has no broker to restart")
        await self.broker.restart()

    async def close(self) -> None:
        for p in self.proxies:
            await p.stop()
        if self.relay is not None:
            self.relay.close()
        await asyncio.to_thread(self.live.stop)
        if self.broker is not None:
            await self.broker.close()
