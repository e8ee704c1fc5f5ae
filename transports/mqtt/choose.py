"""Which MQTT broker the feed goes through: a managed Mosquitto, embedded amqtt, or external.

:func:`open_broker` picks by :class:`~transports.config.ServerConfig`:

- ``mqtt_url="mqtt://host:port"`` → :class:`~transports.mqtt.broker.ExternalBroker` (we only
  connect to it);
- ``broker="mosquitto"`` → :class:`~transports.mqtt.mosquitto.MosquittoBroker`, a child
  process on a free loopback port with a generated config;
- ``broker="amqtt"`` → :class:`~transports.mqtt.embedded.AmqttBroker`, in-process, pure Python;
- ``broker="auto"`` (default) → Mosquitto when the executable is installed, else amqtt, so
  ``transport-lab serve`` works on a fresh machine.
"""

from __future__ import annotations

import os
import shutil

from transports.config import ServerConfig
from transports.mqtt.broker import Broker, BrokerError, ExternalBroker


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

            return MosquittoBroker(
                executable=path,
                prefix=config.mqtt_prefix,
                users=config.mqtt_users,
                max_connections=config.mqtt_max_connections,
                tls=(config.tls_certfile, config.tls_keyfile)
                if config.tls_certfile and config.tls_keyfile
                else None,
            )
        if choice == "mosquitto":
            raise BrokerError("broker='mosquitto' but the mosquitto executable is not installed")
    from transports.mqtt.embedded import AmqttBroker

    return AmqttBroker()
