"""Pick a transport's client by name: ``await subscriber("sse", "http://127.0.0.1:8000")``.

Client classes are imported lazily (aiortc and paho-mqtt are optional extras). Each has a
``for_server(base_url, info, **options)`` constructor that reads the endpoint URLs from the
server's ``GET /api/info``, so a client needs only the server's base URL.
"""

from __future__ import annotations

import importlib
from typing import Any

import httpx

from transports.client import Subscriber
from transports.tls import client_context

CLIENTS: dict[str, str] = {
    "ws": "transports.websocket.client:WebSocketSubscriber",
    "sse": "transports.sse.client:SSESubscriber",
    "poll": "transports.longpoll.client:LongPollSubscriber",
    "webrtc": "transports.webrtc.client:WebRTCSubscriber",
    "mqtt": "transports.mqtt.client:MQTTSubscriber",
}


async def server_info(base_url: str, timeout: float = 10.0) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=timeout, verify=client_context()) as http:
        response = await http.get(base_url.rstrip("/") + "/api/info")
        response.raise_for_status()
        info: dict[str, Any] = response.json()
        return info


def client_class(name: str) -> Any:
    if name not in CLIENTS:
        raise ValueError(f"unknown transport {name!r}; choose from {', '.join(CLIENTS)}")
    module, cls = CLIENTS[name].split(":")
    return getattr(importlib.import_module(module), cls)


async def subscriber(
    name: str, base_url: str, info: dict[str, Any] | None = None, **options: Any
) -> Subscriber:
    """A ready :class:`~transports.client.Subscriber` for transport ``name`` at ``base_url``."""
    cls = client_class(name)
    info = info if info is not None else await server_info(base_url)
    if name not in info["transports"]:
        raise ValueError(f"server at {base_url} does not serve {name!r}")
    sub: Subscriber = cls.for_server(base_url.rstrip("/"), info, **options)
    return sub
