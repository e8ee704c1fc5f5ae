"""MQTT transport: the feed bridged onto an MQTT broker, plus browser and backfill endpoints.

At startup the transport opens the broker :func:`~transports.mqtt.choose.open_broker` picks
(managed Mosquitto, embedded amqtt, or external ``mqtt_url``) and starts the
:class:`~transports.mqtt.bridge.FeedBridge`. Routes:

- ``/mqtt`` (WebSocket, subprotocol ``mqtt``): MQTT over WebSocket for browsers, bridged to
  the broker's loopback TCP listener (:mod:`transports.mqtt.wsbridge`);
- ``GET /mqtt/replay?after=SEQ&epoch=E&limit=N`` → ``{"epoch", "messages": [...]}``, the
  feed's history after a cursor. A broker session only holds what was published while the
  session existed; a client whose session is new or lost backfills the rest from here
  (same frames as long polling: ``reset``/``gap`` controls, then messages).

Shutdown stops everything it started: bridge connections, the bridge, the paho thread and
a managed broker process.
"""

from __future__ import annotations

from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from transports.errors import TransportError
from transports.message import Control
from transports.mqtt.bridge import FeedBridge
from transports.mqtt.broker import Broker
from transports.mqtt.choose import open_broker
from transports.mqtt.credentials import TokenClients, credentials_endpoint
from transports.mqtt.dynsec import PRESENCE, PRIVATE, DynSecControl
from transports.mqtt.pahoutil import META
from transports.mqtt.wsbridge import WebSocketBridge
from transports.params import check_known, parse_after, parse_epoch, parse_int
from transports.server import ServerTransport, error_response

SESSION_EXPIRY = 3600  # what the Python client asks for (MQTT 5 Session Expiry Interval)


class MQTTTransport(ServerTransport):
    name = "mqtt"
    capabilities: ClassVar[dict[str, Any]] = {
        "bidirectional": True,
        "heartbeat": "MQTT keepalive PINGREQ/PINGRESP",
        "resume": "persistent broker session (QoS 1) + /mqtt/replay backfill",
        "framing": "one PUBLISH per message",
    }

    broker: Broker | None = None
    bridge: FeedBridge | None = None
    tokens: TokenClients | None = None
    control: DynSecControl | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ws = WebSocketBridge(lambda: self.ctx, lambda: self.broker)

    def routes(self) -> list[BaseRoute]:
        return [
            WebSocketRoute("/mqtt", self.ws.endpoint),
            Route("/mqtt/replay", self.replay),
            Route("/api/mqtt/credentials", self.credentials, methods=["POST"]),
        ]

    async def credentials(self, request: Request) -> Response:
        url = self.broker.client_url if self.broker else ""
        return await credentials_endpoint(request, self.tokens, self.ctx.admit, url)

    async def startup(self) -> None:
        cfg = self.ctx.config
        broker = open_broker(cfg)
        await broker.start()
        self.broker = broker
        bridge = FeedBridge(
            self.ctx.feed,
            broker,
            self.ctx.stats[self.name],
            prefix=cfg.mqtt_prefix,
            qos=cfg.mqtt_qos,
            retain=cfg.mqtt_retain,
            queue_size=max(cfg.queue_size, 65536),
            hub=self.ctx.hub,
            max_frame_bytes=cfg.max_frame_bytes,
        )
        engine = self.ctx.hub.engine
        if engine is not None:  # several nodes: one bridge publishes (engine/leader.py)
            from transports.engine.leader import LeaderGate
            from transports.engine.redis import RedisEngine

            assert isinstance(engine, RedisEngine)
            bridge.gate = LeaderGate(engine)
            bridge.gate.on_elected.append(bridge.publish_meta)
            bridge.gate.on_elected.append(bridge.publish_channel_meta)
            bridge.gate.start()
        try:
            await bridge.start()
            if broker.dynsec and broker.credentials is not None:
                self.control = DynSecControl(broker.host, broker.port, broker.credentials)
                await self.control.start()
                self.tokens = TokenClients(
                    self.control,
                    cfg.mqtt_prefix,
                    {broker.credentials[0], *(u for u, _ in cfg.mqtt_users)},
                    max_clients=cfg.mqtt_max_token_clients,
                    rate=cfg.mqtt_token_rate,
                    burst=cfg.mqtt_token_burst,
                    max_ttl=cfg.mqtt_token_max_ttl,
                )
                bridge.principal_of = self.tokens.principal
        except BaseException:
            await bridge.stop()
            if self.control is not None:
                await self.control.stop()
                self.control = None
            if bridge.gate is not None:
                await bridge.gate.stop()
            await broker.close()
            self.broker = None
            raise
        self.bridge = bridge

    async def drain(self) -> None:
        # Browser /mqtt connections are bridged to the broker, not fed by a subscription.
        self.ws.closing.set()

    async def shutdown(self) -> None:
        self.ws.closing.set()
        bridge, self.bridge = self.bridge, None
        if bridge is not None:
            await bridge.stop()
            if bridge.gate is not None:
                await bridge.gate.stop()
        tokens, self.tokens = self.tokens, None
        if tokens is not None:
            tokens.close()
        control, self.control = self.control, None
        if control is not None:
            await control.stop()
        broker, self.broker = self.broker, None
        if broker is not None:
            await broker.close()

    def info(self, base_url: str) -> dict[str, Any]:
        cfg = self.ctx.config
        prefix = cfg.mqtt_prefix
        broker = self.broker.describe() if self.broker else None
        bridge = self.bridge
        return {
            "url": broker["url"] if broker else None,
            "broker": broker,
            "prefix": prefix,
            "topic_filter": f"{prefix}/#",
            "topic": f"{prefix}/<feed topic>",
            "channel_topic": f"{prefix}/<channel>",
            "channel_meta_topic": f"{prefix}/{META}/<channel>",
            "inbound_topic": f"{prefix}/_in/<user>/<channel>",
            "private_topic": f"{prefix}/{PRIVATE}/<namespace>/<channel>",
            "presence_topic": f"{prefix}/{PRESENCE}/<namespace>/<channel>",
            "credentials_url": base_url + "/api/mqtt/credentials" if self.tokens else None,
            "token_clients": (
                {**self.tokens.counters, "active": len(self.tokens.principals)}
                if self.tokens
                else None
            ),
            "meta_topic": f"{prefix}/{META}",
            "qos": cfg.mqtt_qos,
            "retain": cfg.mqtt_retain,
            "session": {
                "mqtt5": "clean_start=False, Session Expiry Interval "
                f"{SESSION_EXPIRY} s, stable client id per subscriber",
                "mqtt3.1.1": "clean_session=False, stable client id per subscriber",
                "session_expiry": SESSION_EXPIRY,
            },
            "bridge_url": base_url.replace("http", "ws", 1) + "/mqtt",
            "replay_url": base_url + "/mqtt/replay",
            "bridge": {**bridge.counters, "connected": bridge.connected} if bridge else None,
            "leader": bridge.gate.describe() if bridge and bridge.gate else None,
        }

    async def replay(self, request: Request) -> Response:
        """History after a cursor, for clients whose broker session does not reach back."""
        q = request.query_params
        try:
            check_known(q, ("limit", "channel"))
            after = parse_after(q.get("after"))
            epoch = parse_epoch(q.get("epoch"))
            limit = parse_int(q.get("limit"), "limit", 500, 1, 5000)
            principal = await self.ctx.admit(self.name, request)
            name = q.get("channel")
            feed = self.ctx.feed
            if name is not None:  # a named channel (on_subscribe decides)
                channel = await self.ctx.hub.admit(principal, name)
                if self.bridge is not None and not self.bridge.carries(channel):
                    raise TransportError(
                        "forbidden", f"this broker does not carry private channel {name!r}"
                    )
                feed = channel.feed
            frames = feed.read(after if after is not None else 0, epoch, limit)
        except TransportError as error:
            self.ctx.reject(self.name, request, error)
            return error_response(error)
        tag = {"channel": name} if name is not None else {}
        return JSONResponse(
            {
                "epoch": feed.epoch,
                "last_seq": feed.last_seq,
                **tag,
                "messages": [
                    {**f.to_dict(), **tag} if isinstance(f, Control) else f.to_dict()
                    for f in frames
                ],
            }
        )
