"""The managed Mosquitto's access control: its dynamic-security plugin, driven by the server.

Mosquitto 2.0 ships ``mosquitto_dynamic_security.so``: clients, roles and groups read from a
JSON file at start-up and changed at run time by JSON commands published to
``$CONTROL/dynamic-security/v1`` (answers on ``.../response``). We write that file ourselves
(the password hash is the plugin's own: PBKDF2-HMAC-SHA512, 101 iterations, 12-byte salt,
base64 — what ``mosquitto_ctrl dynsec init`` writes) and send commands over one paho
connection with the bridge's credentials, whose role holds the control topic.

Rights on the broker (``defaultACLAccess`` denies everything but unsubscribing; a role's ACLs
are tried highest priority first, the first match decides):

- public topics: everything under ``<prefix>/`` except ``<prefix>/_private/#`` and
  ``<prefix>/_presence/#`` — readable by everyone (the anonymous group included), as every
  transport lets anonymous clients read public channels;
- a private channel ``ns:name`` (namespace with ``anonymous_subscribe=False``) is carried
  at ``<prefix>/_private/<ns>/<channel>`` (retained hello at ``.../<channel>/_meta``), its
  presence at ``<prefix>/_presence/<ns>/<channel>``. A namespace is one topic level, so a
  token's ``ns:*`` grant is the filter ``<prefix>/_private/<ns>/#`` and ``*`` is
  ``<prefix>/_private/#``: the broker enforces the token's ``subscribe`` / ``presence``
  grants without knowing which channels exist;
- writing: only a client's own inbound topics ``<prefix>/_in/<username>/<channel>`` — one
  literal ACL per exact channel granted ``publish``, ``.../+`` when a pattern is; the server
  then checks the full grant before publishing (``bridge.py``);
- nothing else: ``$CONTROL`` (the plugin's admin topic) and the feed topics are the bridge's.

Subscribing to a filter is allowed on ``<prefix>/#``; what a client may *receive* is what the
ACLs above allow, so a client subscribed to ``<prefix>/#`` simply gets nothing it may not read
(a subscription outside ``<prefix>/`` gets SUBACK 0x87).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import paho.mqtt.client as mqtt

from transports.mqtt.pahoutil import new_client, stop_loop

log = logging.getLogger("transports.mqtt.dynsec")

CONTROL = "$CONTROL/dynamic-security/v1"
RESPONSE = f"{CONTROL}/response"
PLUGIN = "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"
ITERATIONS = 101  # the plugin's own default (plugins/dynamic-security/clients.c)
PRIVATE = "_private"
PRESENCE = "_presence"
ANONYMOUS_GROUP = "anonymous"
PUBLIC_ROLE = "public-read"


def hashed(password: str) -> dict[str, Any]:
    salt = os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, ITERATIONS, 64)
    return {
        "password": base64.b64encode(digest).decode(),
        "salt": base64.b64encode(salt).decode(),
        "iterations": ITERATIONS,
    }


def acl(kind: str, topic: str, allow: bool = True, priority: int = 0) -> dict[str, Any]:
    return {"acltype": kind, "topic": topic, "allow": allow, "priority": priority}


def namespace_level(channel: str) -> str:
    """The topic level of a channel's namespace: its name, or ``_`` for the default one
    (a namespace name starts with ``[a-z0-9]``, so ``_`` names no other)."""
    namespace, colon, _ = channel.partition(":")
    return namespace if colon and namespace else "_"


def private_topic(prefix: str, channel: str) -> str:
    return f"{prefix}/{PRIVATE}/{namespace_level(channel)}/{channel}"


def private_meta_topic(prefix: str, channel: str) -> str:
    return f"{private_topic(prefix, channel)}/_meta"


def presence_topic(prefix: str, channel: str) -> str:
    return f"{prefix}/{PRESENCE}/{namespace_level(channel)}/{channel}"


def public_acls(prefix: str) -> list[dict[str, Any]]:
    """Everyone: read the public topics, subscribe under the prefix, write nothing."""
    return [
        acl("publishClientReceive", f"{prefix}/{PRIVATE}/#", False, 2),
        acl("publishClientReceive", f"{prefix}/{PRESENCE}/#", False, 2),
        acl("publishClientReceive", f"{prefix}/#", True, 1),
        acl("subscribePattern", f"{prefix}/#", True, 1),
    ]


def _filters(prefix: str, root: str, pattern: str) -> list[str]:
    if pattern == "*":
        return [f"{prefix}/{root}/#"]
    if pattern.endswith(":*"):
        return [f"{prefix}/{root}/{pattern[:-2]}/#"]
    base = f"{prefix}/{root}/{namespace_level(pattern)}/{pattern}"
    return [base, f"{base}/#"]


def grant_acls(
    prefix: str, username: str, grants: Mapping[str, Sequence[str]] | None, admin: bool
) -> list[dict[str, Any]]:
    """The ACLs of a token's own role (priority 3: tried before the public ones)."""
    if admin:
        grants = {"*": ["subscribe", "publish", "presence"]}
    out: list[dict[str, Any]] = []
    writes: list[str] = []
    for pattern, held in (grants or {}).items():
        if "subscribe" in held:
            out += [
                acl("publishClientReceive", t, True, 3) for t in _filters(prefix, PRIVATE, pattern)
            ]
        if "presence" in held:
            out += [
                acl("publishClientReceive", t, True, 3) for t in _filters(prefix, PRESENCE, pattern)
            ]
        if "publish" in held:
            writes.append(pattern)
    inbound = f"{prefix}/_in/{username}"
    if any(p == "*" or p.endswith(":*") for p in writes):
        out.append(acl("publishClientSend", f"{inbound}/+", True, 3))
    else:
        out += [acl("publishClientSend", f"{inbound}/{p}", True, 3) for p in writes]
    if writes:  # the server's answers to its inbound publishes (MQTT 5 Response Topic)
        out.append(acl("publishClientReceive", f"{prefix}/_ack/#", True, 3))
    return out


def initial_config(
    prefix: str, bridge: tuple[str, str], users: Iterable[tuple[str, str]]
) -> dict[str, Any]:
    """The plugin's JSON file: the bridge (admin of the plugin, writer of the feed), the
    static ``--mqtt-user`` accounts and the anonymous group (both: public reads; the users
    also write their own inbound topic of any channel, the hub deciding as over HTTP)."""
    name, password = bridge
    clients = [{"username": name, **hashed(password), "roles": [{"rolename": "bridge"}]}]
    for user, secret in users:
        clients.append(
            {"username": user, **hashed(secret), "roles": [{"rolename": f"user-{user}"}]}
        )
    roles = [
        {
            "rolename": "bridge",
            "acls": [
                acl("publishClientSend", "$CONTROL/dynamic-security/#"),
                acl("publishClientReceive", "$CONTROL/dynamic-security/#"),
                acl("subscribePattern", "$CONTROL/dynamic-security/#"),
                acl("publishClientReceive", "$SYS/#"),
                acl("subscribePattern", "$SYS/#"),
                acl("publishClientSend", f"{prefix}/#"),
                acl("publishClientReceive", f"{prefix}/#"),
                acl("subscribePattern", f"{prefix}/#"),
                acl("subscribePattern", f"$share/{prefix}-bridges/{prefix}/#"),
            ],
        },
        {"rolename": PUBLIC_ROLE, "acls": public_acls(prefix)},
        *(
            {
                "rolename": f"user-{user}",
                "acls": [
                    acl("publishClientSend", f"{prefix}/_in/{user}/+", True, 3),
                    acl("publishClientReceive", f"{prefix}/_ack/#", True, 3),
                    *public_acls(prefix),
                ],
            }
            for user, _ in users
        ),
    ]
    return {
        "clients": clients,
        "roles": roles,
        "groups": [{"groupname": ANONYMOUS_GROUP, "roles": [{"rolename": PUBLIC_ROLE}]}],
        "anonymousGroup": ANONYMOUS_GROUP,
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": False,
            "subscribe": False,
            "unsubscribe": True,
        },
    }


class DynSecError(Exception):
    pass


class DynSecControl:
    """One paho connection sending plugin commands and awaiting their answers, in order.

    The plugin answers each batch with one message on :data:`RESPONSE` holding one result
    per command, in order, with the ``correlationData`` we sent.
    """

    def __init__(self, host: str, port: int, credentials: tuple[str, str]) -> None:
        self.host, self.port, self.credentials = host, port, credentials
        self._client: mqtt.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: dict[str, asyncio.Future[list[dict[str, Any]]]] = {}
        self._ready = asyncio.Event()

    async def start(self, timeout: float = 10.0) -> None:
        self._loop = asyncio.get_running_loop()
        client = new_client(
            f"transport-lab-dynsec-{uuid.uuid4().hex[:12]}", mqtt5=True, clean=True, reconnect=True
        )
        client.username_pw_set(*self.credentials)
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.reconnect_delay_set(1, 4)
        client.connect_async(self.host, self.port, keepalive=10)
        self._client = client
        client.loop_start()
        try:
            async with asyncio.timeout(timeout):
                await self._ready.wait()
        except TimeoutError:
            await self.stop()
            raise DynSecError(f"cannot reach the broker's control topic at {self.port}") from None

    async def stop(self) -> None:
        client, self._client = self._client, None
        for fut in self._waiting.values():
            fut.cancel()
        if client is not None:
            client.disconnect()
            stop_loop(client)

    def _on_connect(self, client: mqtt.Client, u: Any, f: Any, rc: Any, p: Any = None) -> None:
        if not rc.is_failure:
            client.subscribe(RESPONSE, qos=1)
            assert self._loop is not None
            # Subscribed before any command: the SUBSCRIBE goes out first on this connection.
            self._loop.call_soon_threadsafe(self._ready.set)

    def _on_message(self, client: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._answer, bytes(msg.payload))

    def _answer(self, payload: bytes) -> None:
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            results = json.loads(payload)["responses"]
            tag = str(results[0].get("correlationData")) if results else ""
            fut = self._waiting.pop(tag, None)
            if fut is not None and not fut.done():
                fut.set_result(results)

    async def run(self, commands: list[dict[str, Any]], timeout: float = 10.0) -> list[str]:
        """Send a batch; the error text of each command ('' = done)."""
        if self._client is None:
            raise DynSecError("the control connection is closed")
        await self._ready.wait()
        assert self._loop is not None
        tag = uuid.uuid4().hex
        fut: asyncio.Future[list[dict[str, Any]]] = self._loop.create_future()
        self._waiting[tag] = fut
        batch = [{**c, "correlationData": tag} for c in commands]
        self._client.publish(CONTROL, json.dumps({"commands": batch}), qos=1)
        try:
            async with asyncio.timeout(timeout):
                results = await fut
        except TimeoutError:
            raise DynSecError("the broker did not answer a control command") from None
        finally:
            self._waiting.pop(tag, None)
        return [str(r.get("error", "")) for r in results]
