"""Server settings in one place, with the defaults documented in ``docs/server.md``.

:class:`ServerConfig` is frozen and checked once, when it is made: a bad value is a
``ValueError`` naming the setting, before any socket is opened. Derive a variant with
:meth:`ServerConfig.replace` (``dataclasses.replace``, checked again). The defaults are
written here only; the CLI reads them from :data:`DEFAULTS`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from transports.channels import NamespaceOptions, default_namespaces
from transports.jwtauth import JWTSettings

if TYPE_CHECKING:
    from transports.auth import Principal

# on_subscribe(principal, channel): raise TransportError to refuse.
SubscribeHook = Callable[["Principal", str], Awaitable[None]]
# on_publish(principal, channel, data) -> data to store (the same, or transformed).
PublishHook = Callable[["Principal", str, Any], Awaitable[Any]]


@dataclass(slots=True, frozen=True)
class ServerConfig:
    # Feed
    history_url: str | None = None  # memory:// (default) or sqlite:///file.db
    queue_size: int = 1024  # per-subscriber live queue bound before slow_consumer
    # WebSocket (RFC 6455 ping/pong is done by uvicorn; these are passed to it)
    ws_ping_interval: float | None = 20.0
    ws_ping_timeout: float | None = 20.0
    # permessage-deflate (RFC 7692) is off by default so byte counts show the protocol itself.
    ws_compression: bool = False
    # Its parameters when on (RFC 7692 §7.1; see transports/deflate.py for the memory cost):
    ws_deflate_window_bits: int = (
        12  # server_max_window_bits, 9..15 (zlib refuses 8 for raw deflate)
    )
    ws_deflate_level: int = 6  # zlib level, 1..9
    ws_deflate_client_no_context_takeover: bool = False
    ws_deflate_server_no_context_takeover: bool = False
    # Messages shorter than this (UTF-8 bytes) go out uncompressed even with the extension
    # negotiated (RSV1 is per message, RFC 7692 §6); chosen in notebooks/05-compression.
    ws_compress_min_bytes: int = 256
    max_frame_bytes: int = 64 * 1024  # largest client->server frame accepted
    # gzip for /poll responses and /sse streams, when the client accepts it (off by default,
    # like permessage-deflate, so byte counts show the protocol itself); see httpgzip.py.
    http_compression: bool = False
    http_compression_level: int = 6  # 1..9
    poll_compress_min_bytes: int = 512  # smaller poll responses go out uncompressed
    # SSE
    sse_ping_interval: float = 15.0  # comment heartbeat
    sse_retry_ms: int = 1000  # `retry:` sent to EventSource clients
    send_timeout: float = 10.0  # a reader frozen this long is disconnected
    # Every HTTP connection (see protocols.py): request head bounds and deadline (slowloris),
    # and a fixed kernel send buffer so a frozen reader is noticed after KBs, not MBs.
    max_header_bytes: int = 16 * 1024
    max_headers: int = 100
    header_timeout: float = 10.0
    body_timeout: float = 10.0  # a request body must be complete this long after its head
    send_buffer_bytes: int = 32 * 1024
    # Open connections per transport (ws, sse, poll, mqtt bridge), in all and per client IP
    # (see limits.py); beyond: too_many_connections.
    max_connections: int = 10_000
    max_connections_per_ip: int = 1000
    # Frames a client may send (pings, bridged MQTT packets): a token bucket per connection.
    client_frame_rate: float = 20.0
    client_frame_burst: int = 40
    # Long polling
    poll_default_timeout: float = 25.0
    poll_max_timeout: float = 60.0
    poll_batch_limit: int = 500
    # A held poll is answered this long after the publish that woke it, carrying what was
    # published meanwhile: fewer, larger answers (less CPU per delivery) for that much latency.
    poll_linger: float = 0.0
    # Demo publisher (0 = off)
    rate: float = 0.0
    payload_bytes: int = 64
    # MQTT: external broker URL, or which broker `serve` manages ("auto" = Mosquitto if
    # installed, else the embedded amqtt)
    mqtt_url: str | None = None
    broker: str = "auto"
    mqtt_prefix: str = "transport-lab"
    mqtt_qos: int = 1  # QoS of the bridge's publishes (0 or 1)
    mqtt_retain: bool = False  # retain the last message of each topic on the broker
    # (user, password) pairs the managed Mosquitto accepts; each may publish into channels
    # through <prefix>/_in/<its user>/<channel> only (docs/mqtt.md, "Channels").
    mqtt_users: tuple[tuple[str, str], ...] = ()
    # Connections each listener of the managed Mosquitto accepts (it has no per-IP bound).
    mqtt_max_connections: int = 1000
    # Token clients registered on the managed Mosquitto (POST /api/mqtt/credentials), how
    # often (per second, burst), and the longest a registration lives (token exp caps it).
    mqtt_max_token_clients: int = 1000
    mqtt_token_rate: float = 5.0
    mqtt_token_burst: int = 20
    mqtt_token_max_ttl: float = 86400.0
    # WebRTC data channels (aiortc). Local labs: ICE host candidates on 127.0.0.1 only and no
    # STUN server (aiortc would otherwise add a public one); set both for real networks.
    webrtc_loopback_only: bool = True
    webrtc_stun: tuple[str, ...] = ()  # e.g. ["stun:stun.example.org:3478"]
    webrtc_max_peers: int = 100  # concurrent peers; more -> 503 too_many_connections
    webrtc_ping_interval: float = 5.0  # app-level {"type":"ping"} on the channel
    webrtc_open_timeout: float = 5.0  # answer -> subscribe message, else the peer is closed
    # Offers from one IP not yet subscribed (signalling, ICE/DTLS, waiting for the cursor);
    # more -> 503 too_many_connections, so one client cannot fill every peer slot.
    webrtc_max_pending_per_ip: int = 10
    webrtc_high_water: int = 1024 * 1024  # bufferedAmount above which the pump stops pulling
    # Garbage collection: after start-up, collect once and move every object that exists
    # then (modules, the app, routes) to the permanent generation (gc.freeze), so a full
    # collection walks only what the feed and its connections allocate. `serve` turns it on;
    # off by default because it is process-wide (an embedding app or a test runner may not
    # want its own heap frozen).
    gc_freeze: bool = False
    # The first gc threshold (allocations between young collections; Python's is 700),
    # set after start-up. A burst of connections (2000 at once, a reconnect storm) creates
    # ~120 tracked objects each that all survive: at 700 every survivor is walked again by
    # each of the full collections the burst sets off (3 pauses of 90-150 ms while 2000
    # clients connect); at 10,000 the burst sets off none, and its young collections take
    # ~3 ms, the middle one ~40 ms (docs/fanout.md). Process-wide, like gc_freeze: None
    # (Python's) unless set; `serve` sets SERVE_GC_YOUNG.
    gc_young: int | None = None
    # Browser access: allowed Origin values; empty = same-origin + non-browser clients only
    allowed_origins: tuple[str, ...] = ()
    # Operations (docs/operations.md): /metrics on its own loopback port instead of the
    # admin-only /metrics route; the traffic log of every message in and out (payloads too
    # only when traffic_payload is set).
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    traffic_log: bool = False
    traffic_payload: bool = False
    # Host names served besides the loopback names and the address a client connected to
    # (DNS-rebinding defence, see hosts.py); "*" allows any Host.
    allowed_hosts: tuple[str, ...] = ()
    # Bearer token for write/admin endpoints; None = generated at start-up (see auth.py).
    admin_token: str | None = None
    # Signed tokens (jwtauth.py): when set, they are the auth hook (unless one is passed).
    jwt: JWTSettings | None = None
    # Channels (docs/channels.md): namespaces and their options, bounds, hooks.
    namespaces: dict[str, NamespaceOptions] = field(default_factory=default_namespaces)
    max_channels: int = 1000  # channels held by the hub (idle ones are evicted beyond it)
    max_channels_per_connection: int = 16
    idempotency_size: int = 1000  # client message ids remembered per channel...
    idempotency_ttl: float = 300.0  # ...for at most this many seconds
    channels_dir: str | None = None  # where durable namespaces keep one SQLite file/channel
    # Scale-out (docs/scale.md): redis://HOST:PORT/DB puts the named channels in Redis, so
    # several `serve` processes share them; None = this process only (memory/SQLite).
    engine_url: str | None = None
    on_subscribe: SubscribeHook | None = None
    on_publish: PublishHook | None = None
    # TLS (https/wss on the same port), e.g. from `transport-lab certs` (see tls.py).
    tls_certfile: str | None = None
    tls_keyfile: str | None = None

    def __post_init__(self) -> None:
        # Lists given by callers become tuples, so a frozen config cannot change under a
        # running server.
        for name in ("webrtc_stun", "allowed_origins", "allowed_hosts"):
            value = getattr(self, name)
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"{name} must be a list of strings")
            object.__setattr__(self, name, tuple(value))
        users = tuple((str(u), str(p)) for u, p in self.mqtt_users)
        if any(not u or set(u) & set("+#/:\n") or "\n" in p for u, p in users):
            raise ValueError("mqtt_users: names without + # / : and no newline in a password")
        object.__setattr__(self, "mqtt_users", users)
        for name, check, rule in CHECKS:
            value = getattr(self, name)
            if not check(value):
                raise ValueError(f"{name} {rule}, got {value!r}")
        if self.poll_default_timeout > self.poll_max_timeout:
            raise ValueError("poll_default_timeout must not exceed poll_max_timeout")

    def replace(self, **changes: Any) -> ServerConfig:
        """A copy with ``changes`` applied (and checked)."""
        return dataclasses.replace(self, **changes)


def _number(lo: float, hi: float = math.inf, *, low_open: bool = False) -> Callable[[Any], bool]:
    def check(v: Any) -> bool:
        if isinstance(v, bool) or not isinstance(v, int | float) or math.isnan(v):
            return False
        return (lo < v if low_open else lo <= v) and v <= hi

    return check


def _optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is None or check(v)


_positive = _number(0, low_open=True)
# (setting, check, rule shown in the error); settings not listed take any value of their type.
CHECKS: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    ("queue_size", _number(1, 10**7), "must be an integer in [1, 10000000]"),
    ("ws_deflate_window_bits", _number(9, 15), "must be an integer in [9, 15]"),
    ("ws_deflate_level", _number(1, 9), "must be an integer in [1, 9]"),
    ("ws_compress_min_bytes", _number(0, 64 * 1024 * 1024), "must be in [0, 64 MiB]"),
    ("http_compression_level", _number(1, 9), "must be an integer in [1, 9]"),
    ("poll_compress_min_bytes", _number(0, 64 * 1024 * 1024), "must be in [0, 64 MiB]"),
    ("ws_ping_interval", _optional(_positive), "must be > 0 s or None"),
    ("ws_ping_timeout", _optional(_positive), "must be > 0 s or None"),
    ("max_frame_bytes", _number(1, 64 * 1024 * 1024), "must be in [1, 64 MiB]"),
    ("sse_ping_interval", _positive, "must be > 0 s"),
    ("sse_retry_ms", _number(0, 3_600_000), "must be in [0, 3600000] ms"),
    ("send_timeout", _positive, "must be > 0 s"),
    ("poll_default_timeout", _positive, "must be > 0 s"),
    ("poll_max_timeout", _number(0, 3600, low_open=True), "must be in (0, 3600] s"),
    ("poll_batch_limit", _number(1, 100_000), "must be in [1, 100000]"),
    ("poll_linger", _number(0, 5), "must be in [0, 5] s"),
    ("rate", _number(0, 10_000), "must be in [0, 10000] messages/s"),
    ("payload_bytes", _number(0, 1024 * 1024), "must be in [0, 1 MiB]"),
    ("broker", lambda v: v in ("auto", "mosquitto", "amqtt"), "must be auto, mosquitto or amqtt"),
    ("mqtt_qos", lambda v: v in (0, 1), "must be 0 or 1"),
    ("mqtt_prefix", lambda v: isinstance(v, str) and 0 < len(v) <= 200, "must be 1-200 chars"),
    ("webrtc_max_peers", _number(1, 100_000), "must be in [1, 100000]"),
    ("webrtc_ping_interval", _positive, "must be > 0 s"),
    ("webrtc_open_timeout", _positive, "must be > 0 s"),
    ("webrtc_high_water", _number(1), "must be >= 1 byte"),
    ("max_channels", _number(1, 10**6), "must be in [1, 1000000]"),
    ("max_channels_per_connection", _number(1, 1000), "must be in [1, 1000]"),
    ("idempotency_size", _number(0, 10**6), "must be in [0, 1000000]"),
    ("idempotency_ttl", _number(0, 86_400), "must be in [0, 86400] s"),
    ("metrics_port", _optional(_number(1, 65535)), "must be a TCP port or None"),
    ("webrtc_max_pending_per_ip", _number(1, 100_000), "must be in [1, 100000]"),
    ("max_header_bytes", _number(1024, 1024 * 1024), "must be in [1 KiB, 1 MiB]"),
    ("max_headers", _number(1, 10_000), "must be in [1, 10000]"),
    ("header_timeout", _positive, "must be > 0 s"),
    ("body_timeout", _positive, "must be > 0 s"),
    ("send_buffer_bytes", _number(0, 64 * 1024 * 1024), "must be in [0, 64 MiB] (0 = kernel's)"),
    ("max_connections", _number(1, 10**7), "must be in [1, 10000000]"),
    ("max_connections_per_ip", _number(1, 10**7), "must be in [1, 10000000]"),
    ("mqtt_max_connections", _number(2, 10**6), "must be in [2, 1000000]"),
    ("mqtt_max_token_clients", _number(0, 10**6), "must be in [0, 1000000]"),
    ("mqtt_token_max_ttl", _positive, "must be > 0 s"),
    ("mqtt_token_rate", _number(0, 10**6), "must be in [0, 1000000] /s (0 = unlimited)"),
    ("mqtt_token_burst", _number(1, 10**6), "must be in [1, 1000000]"),
    ("client_frame_rate", _number(0, 10**6), "must be in [0, 1000000] /s (0 = unlimited)"),
    ("client_frame_burst", _number(1, 10**6), "must be in [1, 1000000]"),
    ("gc_young", _optional(_number(1, 10**7)), "must be in [1, 10000000] or None"),
)

DEFAULTS = ServerConfig()
SERVE_GC_YOUNG = 10_000  # gc_young as `serve` (and the fan-out bench's lab server) runs
