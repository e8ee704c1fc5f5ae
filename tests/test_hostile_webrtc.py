"""WebRTC lock-out: one client flooding offers it never completes cannot take the peer slots
of others. Two clients told apart by source address (127.0.0.1 and 127.0.0.2, both loopback)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable

import httpx

from tests.conftest import UNIT
from tests.helpers import collect, offer_sdp
from transports.client import ConnectionLost
from transports.errors import from_status
from transports.live import LiveServer
from transports.webrtc.client import WebRTCSubscriber

MakeServer = Callable[..., LiveServer]


class FromAddress(WebRTCSubscriber):
    """The Python client, signalling from another loopback source address."""

    source = "127.0.0.2"

    async def _signal(self, sdp: str) -> str:
        transport = httpx.AsyncHTTPTransport(local_address=self.source)
        async with httpx.AsyncClient(transport=transport, timeout=self.open_timeout) as http:
            try:
                r = await http.post(self.url, json={"sdp": sdp, "type": "offer"})
            except httpx.TransportError as exc:
                raise ConnectionLost(repr(exc)) from exc
        if r.status_code != 200:
            raise from_status(r.status_code, r.json().get("error"), r.json().get("detail", ""))
        return str(r.json()["sdp"])


async def test_offer_flood_from_one_client_does_not_lock_out_another(
    make_server: MakeServer,
) -> None:
    server = make_server(("webrtc",))
    server.publish("before")
    body = json.dumps({"sdp": await offer_sdp(), "type": "offer"})
    statuses: Counter[tuple[int, str]] = Counter()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:

        async def flood_one() -> None:
            r = await http.post("/webrtc/offer", content=body)
            statuses[
                (r.status_code, r.json().get("error", "") if r.status_code != 200 else "")
            ] += 1

        # 110 offers in about a second, never completed (no ICE, no channel).
        await asyncio.gather(*(flood_one() for _ in range(110)))
    limit = server.config.webrtc_max_pending_per_ip
    assert statuses[(200, "")] <= limit
    assert statuses[(503, "too_many_connections")] == 110 - statuses[(200, "")]
    # Another client gets its slot at once and its feed.
    legit = FromAddress(server.url + "/webrtc/offer")
    follower = asyncio.ensure_future(collect(legit, 2, timeout=20 * UNIT))
    await asyncio.sleep(2 * UNIT)
    server.publish("after")
    got = await follower
    assert got.seqs == [1, 2]
    assert got.stats.disconnects == {}  # connected on the first attempt
    # The flood's pending peers are closed after webrtc_open_timeout; nothing is left over.
    transport = server.ctx.transports["webrtc"]
    for _ in range(int(200 * UNIT)):
        if len(transport.peers) == 0:
            break
        await asyncio.sleep(0.05)
    assert len(transport.peers) == 0
