"""Signed tokens and per-channel rights (jwtauth.py, rights.py, tickets.py), on real servers.

Every transport refuses the same things with the same documented reason: no token for a
private channel (``unauthorized``), a token for another channel (``forbidden``), an expired
token (``token_expired``), a publish without the right (``forbidden``); a connection whose
token expires is closed with ``token_expired``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from websockets.asyncio.client import connect

from transports import rights
from transports.channels import NamespaceOptions
from transports.clients import subscriber
from transports.config import ServerConfig
from transports.errors import TransportError
from transports.jwtauth import JWTSettings, mint, token_from, verify
from transports.live import LiveServer
from transports.message import Control, Message

MakeServer = Callable[..., LiveServer]
KEY = "test-secret-that-is-long-enough-for-hs256"
HTTP_TRANSPORTS = ("ws", "sse", "poll", "webrtc")


def jwt_config(**kwargs: object) -> ServerConfig:
    namespaces = {
        "": NamespaceOptions(),
        "chat": NamespaceOptions(publish=True, presence=True),
        "private": NamespaceOptions(anonymous_subscribe=False, publish=True, presence=True),
    }
    return ServerConfig(namespaces=namespaces, jwt=JWTSettings(KEY), **kwargs)  # type: ignore[arg-type]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def options(name: str) -> dict[str, object]:
    return {"timeout": 2.0} if name == "poll" else {}


# ---- units ----------------------------------------------------------------------------
def test_verify_hs256_and_es256_and_refusals() -> None:
    principal = verify(mint(KEY, "alice", channels={"chat:*": ["publish"]}), JWTSettings(KEY))
    assert principal.id == "alice"
    assert principal.claims["channels"] == {"chat:*": ["publish"]}
    with pytest.raises(TransportError) as err:
        verify(mint(KEY, "alice", ttl=-30), JWTSettings(KEY))
    assert err.value.reason == "token_expired"
    for bad in (
        mint("another-secret-that-is-long-enough-too", "alice"),  # wrong key
        jwt.encode({"sub": "a", "exp": time.time() + 60}, None, algorithm="none"),
        jwt.encode({"sub": "a"}, KEY, algorithm="HS256"),  # no exp
        mint(KEY, "anonymous"),  # may not pose as the anonymous principal
        "not.a.token",
    ):
        with pytest.raises(TransportError) as err:
            verify(bad, JWTSettings(KEY))
        assert err.value.reason == "unauthorized"
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    es = JWTSettings(public, "ES256")
    assert verify(mint(pem, "bob", algorithm="ES256", roles=["admin"]), es).is_admin

    # Algorithm confusion: an HS256 token "signed" with the public key as the secret.
    # PyJWT will not even sign that, so it is forged by hand (RFC 7515 §3.1 compact form).
    def b64(raw: bytes) -> bytes:
        return base64.urlsafe_b64encode(raw).rstrip(b"=")

    signed = b64(b'{"alg":"HS256","typ":"JWT"}') + b"." + b64(b'{"sub":"eve","exp":9999999999}')
    mac = hmac.new(public.encode(), signed, hashlib.sha256).digest()
    forged = (signed + b"." + b64(mac)).decode()
    with pytest.raises(TransportError):
        verify(forged, es)
    with pytest.raises(ValueError, match="32 bytes"):
        JWTSettings("short")


def test_rights_patterns_and_where_tokens_travel() -> None:
    assert rights.matches("*", "chat:a")
    assert rights.matches("chat:*", "chat:a")
    assert not rights.matches("chat:*", "chats:a")
    assert not rights.matches("chat:a", "chat:b")
    assert rights.matches("news", "news")
    assert not rights.matches("news", "news:x")
    assert token_from({"authorization": "Bearer T1"}) == "T1"
    assert token_from({"sec-websocket-protocol": "transport-lab, bearer.T2"}) == "T2"
    assert token_from({"cookie": "a=b; transport_lab_token=T3"}) == "T3"
    assert token_from({}) is None
    with pytest.raises(TransportError):
        rights.check_grants({"chat:*": ["write"]})


# ---- live, every HTTP-signalled transport ---------------------------------------------
async def refusal(name: str, server: LiveServer, headers: dict[str, str], channel: str) -> str:
    """The reason the first frame of a subscription to ``channel`` is refused with."""
    sub = await subscriber(name, server.url, headers=headers, **options(name))
    frames = sub.stream_channels({channel: None})
    try:
        async with asyncio.timeout(15):
            frame = await anext(frames)
    except TransportError as error:
        return error.reason
    finally:
        await frames.aclose()
    # Multi-channel data-channel connections answer a refused subscribe with an error frame
    # and stay open (inbound.py); the reason is the same.
    assert isinstance(frame, Control), frame
    assert frame.type == "error", frame
    return str(frame.get("reason"))


@pytest.mark.parametrize("name", HTTP_TRANSPORTS)
async def test_refusals_are_the_same_on_every_transport(name: str, make_server: MakeServer) -> None:
    server = make_server(transports=(name,), config=jwt_config())
    other = mint(KEY, "bob", channels={"chat:*": ["subscribe"]})
    expired = mint(KEY, "carol", ttl=-5, channels={"*": ["subscribe"]})
    assert await refusal(name, server, {}, "private:x") == "unauthorized"
    assert await refusal(name, server, bearer(other), "private:x") == "forbidden"
    assert await refusal(name, server, bearer(expired), "chat:a") == "token_expired"
    assert await refusal(name, server, bearer("garbage"), "chat:a") == "unauthorized"


async def follow_frames(name: str, server: LiveServer, token: str, channel: str) -> list[object]:
    poll = {"timeout": 0.5} if name == "poll" else {}
    sub = await subscriber(name, server.url, headers=bearer(token), **poll)
    out: list[object] = []
    frames = sub.stream_channels({channel: None})
    try:
        async with asyncio.timeout(20):
            async for frame in frames:
                out.append(frame)
                if isinstance(frame, Control) and frame.type == "hello":
                    for i in range(3):
                        await asyncio.to_thread(
                            server.call,
                            lambda i=i: server.ctx.hub.channel(channel).feed.publish({"i": i}),
                        )
    except TransportError as error:
        out.append(error.reason)
    finally:
        await frames.aclose()
    return out


@pytest.mark.parametrize("name", HTTP_TRANSPORTS)
async def test_a_connection_is_closed_when_its_token_expires(
    name: str, make_server: MakeServer
) -> None:
    server = make_server(transports=(name,), config=jwt_config())
    token = mint(KEY, "dave", ttl=3, channels={"private:*": ["subscribe"]})
    started = time.monotonic()
    got = await follow_frames(name, server, token, "private:room")
    assert [f.seq for f in got if isinstance(f, Message)] == [1, 2, 3]
    end = got[-1]
    reason = end if isinstance(end, str) else getattr(end, "fields", {}).get("reason")
    assert reason == "token_expired", got[-3:]
    assert time.monotonic() - started < 10


async def test_publish_needs_the_right_on_http_and_ws(make_server: MakeServer) -> None:
    server = make_server(transports=("ws",), config=jwt_config())
    reader = mint(KEY, "erin", channels={"chat:*": ["subscribe"]})
    writer = mint(KEY, "frank", channels={"chat:*": ["subscribe", "publish"]})
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        url = "/api/channels/chat:a/messages"
        r = await http.post(url, json={"data": 1}, headers=bearer(reader))
        assert r.status_code == 403
        assert r.json()["error"] == "forbidden"
        r = await http.post(url, json={"data": 1})
        assert r.status_code == 401
        r = await http.post(url, json={"data": 2}, headers=bearer(writer))
        assert r.status_code == 200
        assert r.json()["seq"] == 1
    for token, expect in ((reader, "forbidden"), (writer, None)):
        async with connect(
            f"{server.ws_url}/ws?channel=chat:a", additional_headers=bearer(token)
        ) as ws:
            await ws.send('{"type":"publish","channel":"chat:a","data":3,"id":"m1"}')
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if frame.get("type") in ("error", "ack"):
                    break
            assert frame.get("reason") == expect, frame


async def test_ws_subprotocol_carries_the_token(make_server: MakeServer) -> None:
    server = make_server(transports=("ws",), config=jwt_config())
    token = mint(KEY, "gina", channels={"private:*": ["subscribe"]})
    url = f"{server.ws_url}/ws?channel=private:a"
    async with connect(url, subprotocols=["transport-lab", f"bearer.{token}"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "transport-lab"
        hello = await asyncio.wait_for(ws.recv(), 10)
        assert '"hello"' in str(hello)


async def test_tickets_are_single_use_and_need_a_token(make_server: MakeServer) -> None:
    server = make_server(transports=("sse",), config=jwt_config())
    token = mint(KEY, "hal", channels={"private:*": ["subscribe"]})
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        assert (await http.post("/api/tickets")).status_code == 401
        evil = {"Origin": "http://evil.example", **bearer(token)}
        assert (await http.post("/api/tickets", headers=evil)).status_code == 403
        r = await http.post("/api/tickets", headers=bearer(token))
        assert r.status_code == 200
        assert r.json()["expires_in"] == 30
        ticket = r.json()["ticket"]
        url = f"/sse?channel=private:a&ticket={ticket}"
        async with http.stream("GET", url) as first:
            assert first.status_code == 200
            async for line in first.aiter_lines():
                if line.startswith("event: hello") or '"hello"' in line:
                    break
        again = await http.get(url)
        assert again.status_code == 401
        assert again.json()["error"] == "unauthorized"


async def test_admin_role_from_a_token(make_server: MakeServer) -> None:
    server = make_server(transports=("sse",), config=jwt_config())
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        for token, status in ((mint(KEY, "ivy", roles=["admin"]), 200), (mint(KEY, "jo"), 403)):
            r = await http.post("/api/publish", json={"data": 1}, headers=bearer(token))
            assert r.status_code == status, r.text
        # The generated admin token keeps working next to signed tokens.
        r = await http.post("/api/publish", json={"data": 2}, headers=server.admin_headers)
        assert r.status_code == 200


async def test_presence_members_need_the_presence_right(make_server: MakeServer) -> None:
    server = make_server(transports=("ws",), config=jwt_config())
    watcher = mint(KEY, "kim", channels={"private:*": ["subscribe", "presence"]})
    plain = mint(KEY, "lou", channels={"private:*": ["subscribe"]})
    async with connect(
        f"{server.ws_url}/ws?channel=private:p", additional_headers=bearer(plain)
    ) as ws:
        await asyncio.wait_for(ws.recv(), 10)
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            seen = (await http.get("/api/channels/private:p", headers=bearer(watcher))).json()
            hidden = (await http.get("/api/channels/private:p", headers=bearer(plain))).json()
    assert [m["user"] for m in seen["members"]] == ["lou"]
    assert "members" not in hidden


def test_token_command_mints_what_serve_accepts() -> None:
    from typer.testing import CliRunner

    from transports.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["token", "mo", "--key", KEY, "--channel", "chat:*=publish"])
    assert result.exit_code == 0, result.output
    principal = verify(result.output.strip(), JWTSettings(KEY))
    assert principal.claims["channels"] == {"chat:*": ["publish"]}
    bad = runner.invoke(app, ["token", "mo", "--key", "short"])
    assert "32 bytes" in str(bad.exception)  # shown as one usage-error line by cli_errors.run


async def test_in_band_refresh_keeps_the_connection(make_server: MakeServer) -> None:
    """On a bidirectional connection ``{"type":"auth","token":T}`` replaces a token before it
    expires (same sub, still granting the channels); a token for someone else is refused
    with an error frame and changes nothing. (WebRTC data channels share inbound.py.)"""
    server = make_server(transports=("ws",), config=jwt_config())
    short = mint(KEY, "nia", ttl=2, channels={"private:*": ["subscribe"]})
    longer = mint(KEY, "nia", ttl=600, channels={"private:*": ["subscribe"]})
    other = mint(KEY, "oz", ttl=600, channels={"*": ["subscribe"]})
    url = f"{server.ws_url}/ws?channel=private:r"
    async with connect(url, additional_headers=bearer(short)) as ws:
        await asyncio.wait_for(ws.recv(), 10)  # hello
        await ws.send(json.dumps({"type": "auth", "token": other}))
        await ws.send(json.dumps({"type": "auth", "token": longer}))
        answers = [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(2)]
        assert answers[0]["reason"] == "forbidden"
        assert answers[1]["type"] == "authed"
        await asyncio.sleep(2.5)  # past the first token's exp: still open
        await asyncio.to_thread(
            server.call, lambda: server.ctx.hub.channel("private:r").feed.publish({"late": 1})
        )
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert message["seq"] == 1
