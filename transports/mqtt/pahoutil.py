"""Small shared pieces for the paho-mqtt clients on both ends: topics, client setup, NODELAY.

Topic layout (documented in ``/api/info``): every feed message goes to ``<prefix>/<topic>``;
the retained ``<prefix>/_meta`` holds ``{"type":"hello","epoch":...,"last_seq":...}`` so a
client learns the feed epoch from the broker alone. Subscribing to ``<prefix>/#`` gets both,
and ``mosquitto_sub`` prints exactly the JSON objects ``/ws`` sends.
"""

from __future__ import annotations

import socket
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from transports.errors import TransportError

META = "_meta"


def feed_topic(prefix: str, topic: str) -> str:
    """``<prefix>/<topic>``; MQTT topic names may not contain wildcards or NUL (MQTT 5 §4.7.3),
    so those characters are replaced. The JSON payload keeps the feed topic unchanged."""
    clean = "".join("_" if ch in "+#\x00" else ch for ch in topic) or "_"
    return f"{prefix}/{clean}"


def meta_topic(prefix: str, channel: str | None = None) -> str:
    """``<prefix>/_meta`` (default channel) or ``<prefix>/_meta/<channel>``."""
    return f"{prefix}/{META}" if channel is None else f"{prefix}/{META}/{channel}"


INBOUND = "_in"  # clients publish to <prefix>/_in/<user>/<channel>


def inbound_topic(prefix: str, user: str, channel: str) -> str:
    return f"{prefix}/{INBOUND}/{user}/{channel}"


def inbound_filter(prefix: str) -> str:
    return f"{prefix}/{INBOUND}/+/+"


def parse_inbound(prefix: str, topic: str) -> tuple[str, str]:
    """``(user, channel)`` of an inbound topic; the channel is checked by the hub."""
    head = f"{prefix}/{INBOUND}/"
    user, _, channel = topic.removeprefix(head).partition("/")
    if not topic.startswith(head) or not user or not channel:
        raise TransportError("bad_channel", f"inbound topic {topic[:80]!r}")
    return user, channel


def set_nodelay(client: mqtt.Client, userdata: Any, sock: Any) -> None:
    """``on_socket_open`` hook: paho leaves Nagle on, which stalls small publishes ~40 ms."""
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def new_client(
    client_id: str,
    *,
    mqtt5: bool,
    clean: bool,
    reconnect: bool,
    manual_ack: bool = False,
    transport: str = "tcp",
) -> mqtt.Client:
    """A paho 2.x client with the VERSION2 callback API and TCP_NODELAY on its socket.

    ``clean`` is MQTT 3.1.1's clean_session; for MQTT 5 pass ``clean_start`` to connect.
    """
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=None if mqtt5 else clean,
        protocol=mqtt.MQTTv5 if mqtt5 else mqtt.MQTTv311,
        transport=transport,  # type: ignore[arg-type]
        reconnect_on_failure=reconnect,
        manual_ack=manual_ack,
    )
    client.on_socket_open = set_nodelay
    return client


def connect_properties(session_expiry: int) -> Properties:
    """MQTT 5 CONNECT properties: keep the session ``session_expiry`` s after a disconnect
    (MQTT 5 §3.1.2.11.2; 0 = end it with the connection)."""
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = session_expiry
    return props


def stop_loop(client: mqtt.Client) -> None:
    """``loop_stop()``, then close the wake-up socket pair ``loop_start()`` opened.

    paho 2.x closes that pair only on some exit paths of its network loop; left open, each
    stopped client leaks two loopback sockets (a ResourceWarning under pytest's -W error).
    """
    client.loop_stop()
    for name in ("_sockpairR", "_sockpairW"):
        sock = getattr(client, name, None)
        if sock is not None:
            sock.close()
            setattr(client, name, None)


def target(client: mqtt.Client, url: str) -> tuple[str, int]:
    """Host and port of a broker URL; ``mqtts://`` turns on TLS with the verifying client
    context (``tls.client_context``: system CAs or ``TRANSPORT_LAB_CAFILE``), port 8883."""
    from urllib.parse import urlsplit

    from transports.tls import client_context

    parts = urlsplit(url)
    if parts.scheme == "mqtts":
        client.tls_set_context(client_context())
        return parts.hostname or "127.0.0.1", parts.port or 8883
    return parts.hostname or "127.0.0.1", parts.port or 1883
