"""Server settings in one place, with the defaults documented in ``docs/server.md``."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class ServerConfig:
    # Feed
    history_url: str | None = None  # memory:// (default) or sqlite:///file.db
    queue_size: int = 1024  # per-subscriber live queue bound before slow_consumer
    # WebSocket (RFC 6455 ping/pong is done by uvicorn; these are passed to it)
    ws_ping_interval: float | None = 20.0
    ws_ping_timeout: float | None = 20.0
    # permessage-deflate (RFC 7692) is off by default so byte counts show the protocol itself.
    ws_compression: bool = False
    # Its parameters when on (RFC 7692 §7.1; see websocket/deflate.py for the memory cost):
    ws_deflate_window_bits: int = 12  # server_max_window_bits, 8..15
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
    # Long polling
    poll_default_timeout: float = 25.0
    poll_max_timeout: float = 60.0
    poll_batch_limit: int = 500
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
    # WebRTC data channels (aiortc). Local labs: ICE host candidates on 127.0.0.1 only and no
    # STUN server (aiortc would otherwise add a public one); set both for real networks.
    webrtc_loopback_only: bool = True
    webrtc_stun: list[str] = field(default_factory=list)  # e.g. ["stun:stun.example.org:3478"]
    webrtc_max_peers: int = 100  # concurrent peers; more -> 503 too_many_connections
    webrtc_ping_interval: float = 5.0  # app-level {"type":"ping"} on the channel
    webrtc_open_timeout: float = 10.0  # answer -> subscribe message, else the peer is closed
    webrtc_high_water: int = 1024 * 1024  # bufferedAmount above which the pump stops pulling
    # Garbage collection: after start-up, collect once and move every object that exists
    # then (modules, the app, routes) to the permanent generation (gc.freeze), so a full
    # collection walks only what the feed and its connections allocate. `serve` turns it on;
    # off by default because it is process-wide (an embedding app or a test runner may not
    # want its own heap frozen).
    gc_freeze: bool = False
    # Browser access: allowed Origin values; empty = same-origin + non-browser clients only
    allowed_origins: list[str] = field(default_factory=list)
    # Host names served besides the loopback names and the address a client connected to
    # (DNS-rebinding defence, see hosts.py); "*" allows any Host.
    allowed_hosts: list[str] = field(default_factory=list)
    # Bearer token for write/admin endpoints; None = generated at start-up (see auth.py).
    admin_token: str | None = None
