"""Tokens on MQTT, checked by the broker: ``POST /api/mqtt/credentials`` registers a token as a
dynamic-security client of the managed Mosquitto, and the broker enforces its grants — for
our own client and for a plain paho client that talks to Mosquitto directly."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx
import jwt
import pytest

from tests.conftest import UNIT, require_executable
from tests.helpers import collect, collect_channels, publish_on
from tests.test_hostile_mqtt import FULL_FLOOD, MakeServer, Paho, broker_port
from transports.channels import NamespaceOptions
from transports.clients import subscriber
from transports.config import ServerConfig
from transports.jwtauth import JWTSettings, mint
from transports.live import LiveServer

KEY = "test-secret-that-is-long-enough-for-hs256"
PREFIX = "transport-lab"
NOT_AUTHORIZED = 0x87
BAD_CREDENTIALS = (0x86, 0x87)  # MQTT 5 §3.2.2.2: bad user name or password / not authorized
ADMINISTRATIVE_ACTION = 0x98  # MQTT 5 §3.14.2.1: the broker's DISCONNECT at token expiry


def config(**kwargs: object) -> ServerConfig:
    namespaces = {
        "": NamespaceOptions(),
        "chat": NamespaceOptions(publish=True, presence=True),
        "private": NamespaceOptions(anonymous_subscribe=False, publish=True, presence=True),
        "secret": NamespaceOptions(anonymous_subscribe=False, publish=True),
    }
    return ServerConfig(
        namespaces=namespaces,  # type: ignore[arg-type]
        jwt=JWTSettings(KEY),
        broker="mosquitto",
        **kwargs,  # type: ignore[arg-type]
    )


async def register(server: LiveServer, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(timeout=10.0) as http:
        return await http.post(server.url + "/api/mqtt/credentials", headers=headers)


def wait_until(check: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def paho_refused(port: int, username: str, password: str) -> int:
    """CONNECT with these credentials; the CONNACK's reason code (0 = accepted)."""
    from transports.mqtt.pahoutil import new_client, stop_loop

    client = new_client(f"probe-{time.monotonic_ns()}", mqtt5=True, clean=True, reconnect=False)
    codes: list[int] = []
    done = threading.Event()

    def on_connect(c: object, u: object, f: object, rc: object, p: object = None) -> None:
        codes.append(int(rc.value))  # type: ignore[attr-defined]
        done.set()

    client.on_connect = on_connect
    client.username_pw_set(username, password)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        assert done.wait(10 * UNIT)
        return codes[0]
    finally:
        client.disconnect()
        stop_loop(client)


async def test_a_token_reads_its_namespace_and_not_another(make_server: MakeServer) -> None:
    require_executable("mosquitto")
    server = make_server(("mqtt",), config=config())
    for name in ("private:a", "secret:b", "chat:pub"):
        server.call(lambda name=name: server.ctx.hub.channel(name))
    token = mint(KEY, "alice", channels={"private:*": ["subscribe"]})
    answer = await register(server, token)
    assert answer.status_code == 200, answer.text
    assert answer.json()["username"] == "alice"
    port = broker_port(server)
    # A plain paho client straight at Mosquitto with the JWT as password, and an anonymous one.
    direct = await asyncio.to_thread(Paho, port, ("alice", token))
    anonymous = await asyncio.to_thread(Paho, port)
    for client in (direct, anonymous):
        client.client.subscribe(f"{PREFIX}/#", qos=1)
        assert await asyncio.to_thread(client.subscribed.wait, 10 * UNIT)
    # Our own client with the token, following the private channel.
    started = asyncio.Event()
    sub = await subscriber("mqtt", server.url, headers={"Authorization": f"Bearer {token}"})
    follower = asyncio.ensure_future(
        collect_channels(
            sub,
            ["private:a"],
            lambda c: len(c.seqs.get("private:a", [])) >= 5,
            timeout=40 * UNIT,
            started=started,
        )
    )
    await asyncio.wait_for(started.wait(), 30 * UNIT)
    for name in ("private:a", "secret:b", "chat:pub"):
        publish_on(server, name, 5)
    got = await follower
    assert got.seqs["private:a"] == [1, 2, 3, 4, 5]

    def topics(client: Paho) -> set[str]:
        return {t for t, _ in client.received}

    assert await asyncio.to_thread(
        wait_until, lambda: f"{PREFIX}/_private/private/private:a" in topics(direct), 10 * UNIT
    ), (topics(direct), topics(anonymous), server.ctx.transports["mqtt"].broker.log_tail(40))
    assert await asyncio.to_thread(
        wait_until, lambda: f"{PREFIX}/chat:pub" in topics(anonymous), 10 * UNIT
    )
    await asyncio.sleep(1.0)  # anything that should not arrive has had the time to
    assert not any("secret" in t for t in topics(direct)), topics(direct)
    assert not any("_private" in t for t in topics(anonymous)), topics(anonymous)
    # Outside the prefix: SUBACK 0x87.
    direct.subscribed.clear()
    codes: list[int] = []
    direct.client.on_subscribe = lambda c, u, mid, rcs, p=None: (
        codes.extend(int(r.value) for r in rcs),
        direct.subscribed.set(),
    )
    direct.client.subscribe("$CONTROL/dynamic-security/#", qos=1)
    assert await asyncio.to_thread(direct.subscribed.wait, 10 * UNIT)
    assert codes == [NOT_AUTHORIZED]
    for client in (direct, anonymous):
        await asyncio.to_thread(client.close)


async def test_bad_tokens_are_refused(make_server: MakeServer) -> None:
    require_executable("mosquitto")
    server = make_server(("mqtt",), config=config())
    port = broker_port(server)
    good = mint(KEY, "bob", channels={"private:*": ["subscribe"]})
    assert (await register(server, good)).status_code == 200
    forged = mint("another-secret-that-is-long-enough-too", "bob", channels={"*": ["subscribe"]})
    # No token, an expired one, a forged one: the server registers nothing.
    assert (await register(server, None)).status_code == 401
    expired = await register(server, mint(KEY, "carol", ttl=-5))
    assert (expired.status_code, expired.json()["error"]) == (401, "token_expired")
    assert (await register(server, forged)).status_code == 401
    # Straight at the broker: a forged token as bob's password, an unregistered user.
    assert await asyncio.to_thread(paho_refused, port, "bob", forged) in BAD_CREDENTIALS
    assert await asyncio.to_thread(paho_refused, port, "carol", "x") in BAD_CREDENTIALS
    assert await asyncio.to_thread(paho_refused, port, "bob", good) == 0
    # A sub that is not a usable MQTT username, or the bridge's own name.
    for sub in ("a/b", "transport-lab-bridge"):
        answer = await register(server, mint(KEY, sub))
        assert answer.status_code == 400, (sub, answer.text)


async def test_publish_without_the_right_is_refused_by_the_broker(
    make_server: MakeServer,
) -> None:
    require_executable("mosquitto")
    server = make_server(("mqtt",), config=config())
    server.call(lambda: server.ctx.hub.channel("private:a"))
    reader = mint(KEY, "erin", channels={"private:*": ["subscribe"]})
    writer = mint(KEY, "frank", channels={"private:a": ["subscribe", "publish"]})
    for token in (reader, writer):
        assert (await register(server, token)).status_code == 200
    port = broker_port(server)
    erin = await asyncio.to_thread(Paho, port, ("erin", reader))
    frank = await asyncio.to_thread(Paho, port, ("frank", writer))
    body = b'{"data": {"x": 1}, "id": "m1"}'
    assert await asyncio.to_thread(erin.publish, f"{PREFIX}/_in/erin/private:a", body) == 0x87
    assert await asyncio.to_thread(frank.publish, f"{PREFIX}/_in/erin/private:a", body) == 0x87
    assert (
        await asyncio.to_thread(frank.publish, f"{PREFIX}/_private/private/private:a", body) == 0x87
    )
    assert await asyncio.to_thread(frank.publish, f"{PREFIX}/_in/frank/secret:b", body) == 0x87
    assert await asyncio.to_thread(frank.publish, f"{PREFIX}/_in/frank/private:a", body) == 0
    feed = server.ctx.hub.channel("private:a").feed
    assert await asyncio.to_thread(wait_until, lambda: feed.last_seq == 1, 10 * UNIT)
    # Our publisher with the token publishes as its sub.
    sub = await subscriber("mqtt", server.url, headers={"Authorization": f"Bearer {writer}"})
    pub = sub.publisher()  # type: ignore[attr-defined]
    try:
        ack = await pub.publish("private:a", {"y": 2})
        assert ack["seq"] == 2
    finally:
        await pub.close()
    for client in (erin, frank):
        await asyncio.to_thread(client.close)


async def test_token_expiry_disconnects_the_client(make_server: MakeServer) -> None:
    require_executable("mosquitto")
    server = make_server(("mqtt",), config=config())
    server.publish({"i": 0})
    follower = asyncio.ensure_future(
        collect(await subscriber("mqtt", server.url), 30, timeout=60 * UNIT)
    )
    ttl = 3
    token = mint(KEY, "dave", ttl=ttl, channels={"private:*": ["subscribe"]})
    expires = float(jwt.decode(token, options={"verify_signature": False})["exp"])
    assert (await register(server, token)).status_code == 200
    dave = await asyncio.to_thread(Paho, broker_port(server), ("dave", token))
    reasons: list[int] = []
    gone = threading.Event()

    def on_disconnect(c: object, u: object, f: object, rc: object, p: object = None) -> None:
        reasons.append(int(rc.value))  # type: ignore[attr-defined]
        late.append(time.time() - expires)
        gone.set()

    late: list[float] = []
    dave.client.on_disconnect = on_disconnect
    for i in range(1, 30):
        server.publish({"i": i})
        await asyncio.sleep(0.2)
    # The documented bound: disconnected at most 2 s after exp.
    assert await asyncio.to_thread(gone.wait, max(0.0, expires - time.time()) + 2.0 * UNIT)
    assert reasons == [ADMINISTRATIVE_ACTION]
    assert -0.5 <= late[0] <= 2.0 * UNIT  # not before exp (timer jitter aside), nor long after
    print(f"\ndisconnected {late[0]:+.2f} s after exp (under load)")
    got = await follower
    assert got.seqs == list(range(1, 31))
    await asyncio.to_thread(dave.close)


def peers(port: int) -> set[str]:
    """Connections the broker has accepted on ``port`` (``/proc/net/tcp``: local port, state
    01 = ESTABLISHED), by remote address."""
    out = set()
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            local, remote, state = line.split()[1:4]
            if int(local.split(":")[1], 16) == port and state == "01":
                out.add(remote)
    return out


def established(port: int) -> int:
    return len(peers(port))


def mqtt_connect_packet(client_id: str) -> bytes:
    """A minimal MQTT 3.1.1 CONNECT (§3.1): clean session, keepalive 30 s."""
    cid = client_id.encode()
    variable = b"\x00\x04MQTT\x04\x02\x00\x1e"
    payload = len(cid).to_bytes(2, "big") + cid
    body = variable + payload
    return bytes([0x10, len(body)]) + body


async def attempt(port: int, i: int, held: list[asyncio.StreamWriter]) -> bool:
    """One connection attempt: True when the broker answered CONNACK 0 (kept open)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(mqtt_connect_packet(f"flood-{i}"))
        await writer.drain()
        ack = await asyncio.wait_for(reader.readexactly(4), 10)
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        writer.close()
        return False
    held.append(writer)
    return ack[:2] == b"\x20\x02" and ack[3] == 0


@pytest.mark.parametrize("attempts", [3000 if FULL_FLOOD else 300])
async def test_connection_flood_admits_exactly_the_bound(
    make_server: MakeServer, attempts: int
) -> None:
    require_executable("mosquitto")
    bound = 60
    server = make_server(("mqtt",), config=config(mqtt_max_connections=bound))
    server.publish({"i": 0})
    follower_sub = await subscriber("mqtt", server.url)
    follower = asyncio.ensure_future(collect(follower_sub, 20, timeout=120 * UNIT))
    await asyncio.sleep(2.0)  # the follower is connected
    port = broker_port(server)
    before = peers(port)
    existing = len(before)  # the bridge, its control connection, the follower
    held: list[asyncio.StreamWriter] = []
    started = time.monotonic()
    admitted = 0
    for start in range(0, attempts, 100):  # bounded: 100 at a time, each with a 10 s cap
        results = await asyncio.gather(
            *(attempt(port, i, held) for i in range(start, min(start + 100, attempts)))
        )
        admitted += sum(results)
        server.publish({"i": start})
    elapsed = time.monotonic() - started
    for i in range(20):
        server.publish({"i": i})
        await asyncio.sleep(0.05)
    got = await follower
    print(
        f"\n{attempts} attempts, {elapsed:.1f} s: {admitted} admitted, bound {bound} (under load)"
    )
    print(f"before the flood {existing} connections; follower {got.stats}")
    assert existing >= 3
    # Exactly the bound, or one more: in a flood of 3000, Mosquitto 2.0.11 admitted one
    # connection beyond its max_connections in our runs (its count is not exact under load).
    assert bound - existing <= admitted <= bound - existing + 1
    assert got.seqs == list(range(1, len(got.seqs) + 1))
    for writer in held:
        writer.close()


def browser_like(port: int, credentials: tuple[str, str] | None) -> tuple[Any, list[str]]:
    """paho over our ``/mqtt`` WebSocket bridge, subscribed to ``<prefix>/#``: the topics seen."""
    from transports.mqtt.pahoutil import new_client

    client = new_client(f"browser-{time.monotonic_ns()}", mqtt5=True, clean=True,
                        reconnect=False, transport="websockets")  # fmt: skip
    client.ws_set_options(path="/mqtt")
    topics: list[str] = []
    ready = threading.Event()
    client.on_connect = lambda c, u, f, rc, p=None: c.subscribe(f"{PREFIX}/#", qos=1)
    client.on_subscribe = lambda c, u, mid, rcs, p=None: ready.set()
    client.on_message = lambda c, u, msg: topics.append(msg.topic)
    if credentials is not None:
        client.username_pw_set(*credentials)
    client.connect("127.0.0.1", port, keepalive=10)
    client.loop_start()
    assert ready.wait(10 * UNIT)
    return client, topics


async def test_the_browser_bridge_is_no_bypass(make_server: MakeServer) -> None:
    """``/mqtt`` pipes bytes to the broker: anonymous there is the broker's anonymous client,
    and a JWT sent in CONNECT gets exactly the token's rights."""
    from transports.mqtt.pahoutil import stop_loop

    require_executable("mosquitto")
    server = make_server(("mqtt",), config=config())
    for name in ("private:a", "chat:pub"):
        server.call(lambda name=name: server.ctx.hub.channel(name))
    token = mint(KEY, "gina", channels={"private:a": ["subscribe"]})
    assert (await register(server, token)).status_code == 200
    anonymous, seen_anonymous = await asyncio.to_thread(browser_like, server.port, None)
    gina, seen_gina = await asyncio.to_thread(browser_like, server.port, ("gina", token))
    publish_on(server, "private:a", 3)
    publish_on(server, "chat:pub", 3)
    private = f"{PREFIX}/_private/private/private:a"
    assert await asyncio.to_thread(
        wait_until,
        lambda: seen_gina.count(private) == 3 and f"{PREFIX}/chat:pub" in seen_anonymous,
        10 * UNIT,
    )
    await asyncio.sleep(1.0)
    assert seen_anonymous.count(f"{PREFIX}/chat:pub") == 3
    assert not any("_private" in t for t in seen_anonymous), seen_anonymous
    for client in (anonymous, gina):
        client.disconnect()
        await asyncio.to_thread(stop_loop, client)


async def test_registrations_are_bounded(make_server: MakeServer) -> None:
    require_executable("mosquitto")
    server = make_server(
        ("mqtt",), config=config(mqtt_max_token_clients=5, mqtt_token_rate=0.01, mqtt_token_burst=8)
    )
    tokens = [mint(KEY, f"u{i}") for i in range(10)]
    codes = [(await register(server, token)).status_code for token in tokens]
    # 5 registered, then the count bound (503) until the burst of 8 is spent (429).
    assert codes == [200] * 5 + [503] * 3 + [429] * 2, codes
    # The same token again is no new registration: neither bound applies.
    assert (await register(server, tokens[0])).status_code == 200
    assert server.ctx.transports["mqtt"].tokens.counters["registered"] == 5
    too_long = "x" * 9000
    assert (await register(server, too_long)).status_code == 401


async def test_static_users_read_public_topics_and_write_their_inbound_only(
    make_server: MakeServer,
) -> None:
    require_executable("mosquitto")
    server = make_server(("mqtt",), config=config(mqtt_users=(("ann", "ann-secret"),)))
    for name in ("private:a", "chat:pub"):
        server.call(lambda name=name: server.ctx.hub.channel(name))
    ann = await asyncio.to_thread(Paho, broker_port(server), ("ann", "ann-secret"))
    ann.client.subscribe(f"{PREFIX}/#", qos=1)
    assert await asyncio.to_thread(ann.subscribed.wait, 10 * UNIT)
    body = b'{"data": "hi", "id": "a1"}'
    assert await asyncio.to_thread(ann.publish, f"{PREFIX}/_in/bob/chat:pub", body) == 0x87
    assert await asyncio.to_thread(ann.publish, f"{PREFIX}/chat:pub", body) == 0x87
    assert await asyncio.to_thread(ann.publish, f"{PREFIX}/_in/ann/chat:pub", body) == 0
    publish_on(server, "private:a", 2)
    feed = server.ctx.hub.channel("chat:pub").feed
    assert await asyncio.to_thread(wait_until, lambda: feed.last_seq == 1, 10 * UNIT)
    assert await asyncio.to_thread(
        wait_until, lambda: any(t == f"{PREFIX}/chat:pub" for t, _ in ann.received), 10 * UNIT
    )
    await asyncio.sleep(1.0)
    assert not any("_private" in t for t, _ in ann.received)
    await asyncio.to_thread(ann.close)


async def test_registrations_survive_a_broker_restart(make_server: MakeServer) -> None:
    """The plugin saves every change to its file, which a restart keeps (mosquitto.py)."""
    require_executable("mosquitto")
    server = make_server(("mqtt",), config=config())
    token = mint(KEY, "hana", channels={"private:*": ["subscribe"]})
    assert (await register(server, token)).status_code == 200
    broker = server.ctx.transports["mqtt"].broker
    assert server._loop is not None
    restarted = asyncio.run_coroutine_threadsafe(broker.restart(), server._loop)
    await asyncio.wrap_future(restarted)
    assert await asyncio.to_thread(paho_refused, broker.port, "hana", token) == 0
    assert await asyncio.to_thread(paho_refused, broker.port, "hana", "not-it") in BAD_CREDENTIALS
