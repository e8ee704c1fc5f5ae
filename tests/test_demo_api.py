"""The demo server's HTTP surface over real sockets: tokens, roles, refusals (documented
errors, nothing stored), the document snapshot and the teacher invite."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator

import httpx
import pycrdt
import pytest

from transports.config import ServerConfig
from transports.demo.app import Demo
from transports.demo.scripts import Settings
from transports.live import LiveServer
from transports.ops.logformat import redact


@pytest.fixture(scope="module")
def demo_server() -> Iterator[tuple[LiveServer, Demo]]:
    cfg = ServerConfig(rate=0.0, admin_token="demo-api-admin")
    demo, cfg = Demo.configure(cfg, Settings(running=set()))
    server = LiveServer(("ws", "sse", "poll"), config=cfg, app_factory=demo.factory())
    server.start()
    yield server, demo
    server.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def post(server: LiveServer, channel: str, data: object, token: str | None) -> httpx.Response:
    return httpx.post(
        f"{server.url}/api/channels/{channel}/messages",
        json={"data": data},
        headers=bearer(token) if token else {},
    )


def test_tokens_roles_and_refusals(demo_server: tuple[LiveServer, Demo]) -> None:
    server, demo = demo_server
    writer, observer = demo.signer.mint("ann", "writer"), demo.signer.mint("obs", "observer")
    mint = f"{server.url}/demos/api/token"
    assert httpx.post(mint, json={"user": "x"}).status_code == 401
    forged = writer[:-1] + ("0" if writer[-1] != "0" else "1")
    assert httpx.post(mint, json={"user": "x"}, headers=bearer(forged)).status_code == 401
    r = httpx.post(mint, json={"user": "x", "role": "writer"}, headers=bearer(observer))
    assert (r.status_code, r.json()["error"]) == (403, "forbidden")
    r = httpx.post(mint, json={"user": "bad name!"}, headers=bearer(writer))
    assert (r.status_code, r.json()["error"]) == (400, "bad_param")
    r = httpx.post(
        mint, content=b"user=x", headers={**bearer(writer), "content-type": "text/plain"}
    )
    assert r.status_code == 415
    r = httpx.post(mint, json={"user": "bo", "role": "writer"}, headers=bearer(writer))
    assert r.status_code == 200
    bo = r.json()["token"]

    ack = post(server, "chat:t", {"text": "hi"}, bo).json()
    assert ack["type"] == "ack"
    # Refused: no token, observer, server-published namespace, wrong shapes, forged "from".
    cases = [
        ("chat:t", {"text": "x"}, None, 401, "unauthorized"),
        ("chat:t", {"text": "x"}, observer, 403, "forbidden"),
        ("ticker:ACME", {"price": 1}, bo, 403, "forbidden"),
        ("chat:t", {"text": ""}, bo, 400, "bad_message"),
        ("chat:t", {"text": "x", "from": "ann"}, bo, 400, "bad_message"),
        ("cursors:arena", {"x": 2, "y": 0}, bo, 400, "bad_message"),
        ("doc:t", {"update": "not base64!"}, bo, 400, "bad_message"),
        ("doc:t", {"update": base64.b64encode(b"\xff\xff\xff").decode()}, bo, 400, "bad_message"),
    ]
    for channel, data, token, status, reason in cases:
        r = post(server, channel, data, token)
        assert (r.status_code, r.json().get("error")) == (status, reason), (channel, data, r.text)
    # Nothing of that was stored: chat:t holds the one good message, stamped with its sender.
    info = httpx.get(f"{server.url}/api/channels/chat:t").json()
    assert info["last_seq"] == ack["seq"] == 1
    r = httpx.get(f"{server.url}/poll?channel=chat:t&cursor=0&timeout=0", headers=bearer(bo))
    assert [m["data"] for m in r.json()["messages"]] == [{"text": "hi", "from": "bo"}]
    # Reading a token-only namespace anonymously is refused too.
    assert httpx.get(f"{server.url}/poll?channel=chat:t&cursor=0&timeout=0").status_code == 401


def test_document_snapshot_is_the_server_pycrdt_copy(demo_server: tuple[LiveServer, Demo]) -> None:
    server, demo = demo_server
    token = demo.signer.mint("ed", "writer")
    doc: pycrdt.Doc[pycrdt.Text] = pycrdt.Doc()
    text = doc.get("text", type=pycrdt.Text)
    text += "shared"
    ack = post(server, "doc:snap", {"update": base64.b64encode(doc.get_update()).decode()}, token)
    assert ack.status_code == 200
    snap = httpx.get(f"{server.url}/demos/api/doc/doc:snap", headers=bearer(token)).json()
    copy: pycrdt.Doc[pycrdt.Text] = pycrdt.Doc()
    copy.apply_update(base64.b64decode(snap["update"]))
    assert str(copy.get("text", type=pycrdt.Text)) == "shared"
    assert snap["seq"] == ack.json()["seq"]
    assert httpx.get(f"{server.url}/demos/api/doc/doc:snap").status_code == 401
    assert httpx.get(f"{server.url}/demos/api/doc/chat:x", headers=bearer(token)).status_code == 400


def test_invite_needs_the_admin_token(demo_server: tuple[LiveServer, Demo]) -> None:
    server, demo = demo_server
    url = f"{server.url}/demos/api/invite?demo=cursors"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers=bearer(demo.signer.mint("w", "writer"))).status_code == 403
    body = httpx.get(url, headers=server.admin_headers).json()
    assert body["url"].startswith(f"{server.url}/demos/cursors/#token=class.w.")
    assert body["svg"].startswith("<svg")
    assert body["loopback"] is True
    bad = httpx.get(f"{server.url}/demos/api/invite?demo=nope", headers=server.admin_headers)
    assert bad.status_code == 400
    # Only page files are served from demos/.
    assert httpx.get(f"{server.url}/demos/chat/client.py").status_code == 400
    assert httpx.get(f"{server.url}/demos/chat/").status_code == 200


def test_a_token_in_the_url_is_refused_with_where_it_goes(
    demo_server: tuple[LiveServer, Demo], caplog: pytest.LogCaptureFixture
) -> None:
    """``?access_token=`` (RFC 6750 §2.3) is refused ``400 bad_param`` on every stream and
    HTTP endpoint — even with a valid token, whose holder is told where it goes — and never
    logged; the same token works in the places the detail names."""
    import asyncio

    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    server, demo = demo_server
    token = demo.signer.mint("ann", "writer")
    caplog.set_level(logging.INFO)
    for path in (
        "/sse?channel=chat:u",
        "/poll?channel=chat:u&timeout=0",
        "/poll?after=0&timeout=0",
        "/api/channels/chat:u",
        "/demos/api/mqtt",
    ):
        sep = "&" if "?" in path else "?"
        r = httpx.get(f"{server.url}{path}{sep}access_token={token}", timeout=10)
        assert (r.status_code, r.json()["error"]) == (400, "bad_param"), (path, r.text)
        assert "Authorization: Bearer" in r.json()["detail"]
        assert "/api/tickets" in r.json()["detail"]
    r = httpx.post(
        f"{server.url}/api/channels/chat:u/messages?access_token={token}", json={"data": 1}
    )
    assert (r.status_code, r.json()["error"]) == (400, "bad_param")

    async def ws(url: str, **kwargs: object) -> tuple[int | None, str]:
        async with connect(url, **kwargs) as sock:  # type: ignore[arg-type]
            try:
                await asyncio.wait_for(sock.recv(), 10)
            except ConnectionClosed:
                pass
            else:
                return 1000, sock.subprotocol or ""
        assert sock.close_code is not None
        return sock.close_code, sock.close_reason or ""

    code, reason = asyncio.run(ws(f"{server.ws_url}/ws?channel=chat:u&access_token={token}"))
    assert (code, reason) == (4400, "bad_param")
    # Where it goes: the WebSocket subprotocol, a bearer header, a single-use ticket.
    code, chosen = asyncio.run(
        ws(f"{server.ws_url}/ws?channel=chat:u", subprotocols=["transport-lab", f"bearer.{token}"])
    )
    assert (code, chosen) == (1000, "transport-lab")
    assert httpx.get(f"{server.url}/demos/api/mqtt", headers=bearer(token)).status_code == 200
    ticket = httpx.post(f"{server.url}/api/tickets", headers=bearer(token)).json()["ticket"]
    with httpx.stream("GET", f"{server.url}/sse?channel=chat:u&ticket={ticket}") as r:
        assert r.status_code == 200
    again = httpx.get(f"{server.url}/sse?channel=chat:u&ticket={ticket}")
    assert (again.status_code, again.json()["error"]) == (401, "unauthorized")  # single use
    # Every line that names the token (uvicorn's access log, the client's) loses it to the
    # redacting formatter `serve` logs with (transports/ops/logformat.py).
    lines = [record.getMessage() for record in caplog.records]
    assert any("rejected bad_param" in line for line in lines)
    assert sum(token in line for line in lines) >= 6
    assert not [line for line in map(redact, lines) if token in line]
    header = f"sec-websocket-protocol: transport-lab, bearer.{token}"
    assert redact(header) == "sec-websocket-protocol: transport-lab, bearer.[REDACTED]"
