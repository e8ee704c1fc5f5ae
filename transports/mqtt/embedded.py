"""The fallback broker: amqtt, pure Python, running in the server's own event loop.

Used when Mosquitto is not installed, so ``transport-lab serve`` works on a fresh machine.
Its limits are real and reported in ``/api/info``: MQTT 3.1.1 only (no MQTT 5 session
expiry or reason codes), sessions kept only for clients that connect with a client id and
``clean_session=False``, nothing persisted across a restart, and roughly 8x Mosquitto's CPU
per message — so measurements taken with it say more about amqtt than about MQTT.
"""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from transports.mqtt.broker import Broker, BrokerError
from transports.netutil import free_port

log = logging.getLogger("transports.mqtt.embedded")


class AmqttBroker(Broker):
    kind = "amqtt"
    protocols = ("3.1.1",)

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._broker: Any = None
        try:
            self.version = version("amqtt")
        except PackageNotFoundError:
            self.version = "not installed"

    @property
    def running(self) -> bool:
        return self._broker is not None

    def _config(self) -> dict[str, Any]:
        return {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            # Only anonymous auth: amqtt's default plugin set also runs a $SYS publisher
            # and packet loggers that cost CPU for nothing here.
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }

    async def start(self) -> None:
        if self._broker is not None:
            return
        try:
            from amqtt.broker import Broker as _Amqtt
        except ImportError as exc:
            raise BrokerError(
                "neither mosquitto nor amqtt is installed (pip install 'transport-lab[mqtt]')"
            ) from exc
        broker = _Amqtt(self._config())
        # start() returns once asyncio.start_server listens. No TCP probe: amqtt leaks the
        # transport of a connection that closes before sending CONNECT (a ResourceWarning).
        await broker.start()
        self._broker = broker
        log.info("embedded amqtt %s on %s", self.version, self.url)

    async def stop(self) -> None:
        broker, self._broker = self._broker, None
        if broker is not None:
            await broker.shutdown()

    async def close(self) -> None:
        await self.stop()

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "version": self.version,
            "persistence": False,
            "limits": {
                "protocols": "MQTT 3.1.1 only",
                "sessions": "only for named clients with clean_session=False; lost on restart",
                "cpu": "about 8x Mosquitto per message (pure Python, shares the server's loop)",
            },
            "listeners": [f"{self.host}:{self.port}"],
        }
