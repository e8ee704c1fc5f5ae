"""Which MQTT broker the feed goes through: a managed Mosquitto, embedded amqtt, or external.

:func:`open_broker` picks by :class:`~transports.config.ServerConfig`:

- ``mqtt_url="mqtt://host:port"`` → :class:`ExternalBroker` (we only connect to it);
- ``broker="mosquitto"`` → :class:`~transports.mqtt.mosquitto.MosquittoBroker`, a child
  process on a free loopback port with a generated config;
- ``broker="amqtt"`` → :class:`~transports.mqtt.embedded.AmqttBroker`, in-process, pure Python;
- ``broker="auto"`` (default) → Mosquitto when the executable is installed, else amqtt, so
  ``transport-lab serve`` works on a fresh machine.

Every broker describes itself with :meth:`Broker.describe` (kind, URL, version, limits); the
MQTT transport publishes that in ``/api/info`` so every result says which broker produced it.

Credentials: the feed's topics may be written only by the bridge. A managed Mosquitto has a
generated bridge user (:attr:`Broker.credentials`); :attr:`Broker.bridge_url` is the URL with
them (``mqtt://user:password@host:port``) for a server that uses this broker as an external
one (``mqtt_url``), and :class:`ExternalBroker` reads them back from such a URL. The URL in
``/api/info`` never carries them.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import time
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from transports.config import ServerConfig


class BrokerError(RuntimeError):
    """A broker could not be started, reached or configured."""


class Broker:
    """Common surface of every broker kind: where it listens and what it is."""

    kind = "broker"
    host = "127.0.0.1"
    port = 0
    # MQTT protocol versions the broker speaks; the clients pick the newest.
    protocols: tuple[str, ...] = ("5", "3.1.1")
    # (username, password) the bridge connects with; None = anonymous.
    credentials: tuple[str, str] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def bridge_url(self) -> str:
        """:attr:`url` with the bridge's credentials and protocol, for ``mqtt_url``."""
        auth = ""
        if self.credentials is not None:
            user, password = self.credentials
            auth = f"{quote(user, safe='')}:{quote(password, safe='')}@"
        query = "" if self.mqtt5 else "?protocol=3.1.1"
        return f"mqtt://{auth}{self.host}:{self.port}{query}"

    @property
    def mqtt5(self) -> bool:
        return "5" in self.protocols

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def close(self) -> None:
        """Stop and release whatever :meth:`start` created."""
        await self.stop()

    @property
    def running(self) -> bool:
        return True

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "url": self.url, "protocols": list(self.protocols)}


class ExternalBroker(Broker):
    """A broker someone else runs (``--mqtt-url mqtt://host:port``). Never started or stopped.

    MQTT 5 is assumed; add ``?protocol=3.1.1`` for a broker that speaks only 3.1.1 (amqtt).
    """

    kind = "external"

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
            raise BrokerError(f"mqtt_url must look like mqtt://host:port, got {url!r}")
        self.host = parts.hostname
        self.port = parts.port or 1883
        query = dict(parse_qsl(parts.query))
        if query.get("protocol", "5") not in ("5", "3.1.1") or set(query) - {"protocol"}:
            raise BrokerError(f"mqtt_url accepts only ?protocol=5 or ?protocol=3.1.1: {url!r}")
        if query.get("protocol") == "3.1.1":
            self.protocols = ("3.1.1",)
        if parts.username is not None:
            self.credentials = (unquote(parts.username), unquote(parts.password or ""))

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "version": "unknown",
            "limits": "set by the external broker's own configuration",
        }


def mosquitto_path() -> str | None:
    """The Mosquitto executable (Debian installs it in /usr/sbin, often not on PATH)."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None


def open_broker(config: ServerConfig) -> Broker:
    """The broker ``config`` asks for (not started yet: call ``await broker.start()``)."""
    if config.mqtt_url:
        return ExternalBroker(config.mqtt_url)
    choice = config.broker
    if choice not in ("auto", "mosquitto", "amqtt"):
        raise BrokerError(f"broker must be auto, mosquitto or amqtt, got {choice!r}")
    if choice in ("auto", "mosquitto"):
        path = mosquitto_path()
        if path is not None:
            from transports.mqtt.mosquitto import MosquittoBroker

            return MosquittoBroker(executable=path, prefix=config.mqtt_prefix)
        if choice == "mosquitto":
            raise BrokerError("broker='mosquitto' but the mosquitto executable is not installed")
    from transports.mqtt.embedded import AmqttBroker

    return AmqttBroker()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


async def wait_for_port(host: str, port: int, timeout: float, alive: Any = lambda: True) -> None:
    """Wait until ``host:port`` accepts TCP connections (or ``alive()`` turns false)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            if not alive():
                raise BrokerError(f"broker process exited before listening on {port}") from None
            if time.monotonic() > deadline:
                raise BrokerError(f"nothing listens on {host}:{port} after {timeout}s") from None
            await asyncio.sleep(0.02)
            continue
        writer.close()
        await writer.wait_closed()
        return
