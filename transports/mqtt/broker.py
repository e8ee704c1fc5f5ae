"""What every MQTT broker the feed can go through has in common (:class:`Broker`), and the
one the lab does not run itself (:class:`ExternalBroker`).

The managed kinds live in ``mosquitto.py`` and ``embedded.py``; which one a server uses is
chosen in ``choose.py``. Every broker describes itself with :meth:`Broker.describe` (kind,
URL, version, limits); the MQTT transport publishes that in ``/api/info`` so every result
says which broker produced it.

Credentials: the feed's topics may be written only by the bridge. A managed Mosquitto has a
generated bridge user (:attr:`Broker.credentials`); :attr:`Broker.bridge_url` is the URL with
them (``mqtt://user:password@host:port``) for a server that uses this broker as an external
one (``mqtt_url``), and :class:`ExternalBroker` reads them back from such a URL. The URL in
``/api/info`` never carries them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit


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
    # Whether the server can register token clients on it (Mosquitto's dynamic security).
    dynsec = False

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def client_url(self) -> str:
        """The URL clients are given (``mqtts://`` where the broker has a TLS listener)."""
        return self.url

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
        return {"kind": self.kind, "url": self.client_url, "protocols": list(self.protocols)}


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
