"""A WebRTC offer naming hundreds of ICE candidates: the server would send connectivity checks
to each (addresses the client chose). Refused ``bad_sdp`` before any check is sent, while an
offer with a few candidates is still answered."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

import httpx

from tests.conftest import UNIT
from tests.helpers import offer_sdp
from transports.live import LiveServer

MakeServer = Callable[..., LiveServer]


def with_candidates(sdp: str, ports: list[int]) -> str:
    lines = sdp.split("\r\n")
    first = next(i for i, line in enumerate(lines) if line.startswith("a=candidate:"))
    extra = [
        f"a=candidate:x{i} 1 udp 2130706431 127.0.0.1 {p} typ host" for i, p in enumerate(ports)
    ]
    return "\r\n".join(lines[: first + 1] + extra + lines[first + 1 :])


async def test_an_offer_with_hundreds_of_candidates_is_refused(make_server: MakeServer) -> None:
    server = make_server(("webrtc",))
    sinks = []
    for _ in range(200):
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sink.bind(("127.0.0.1", 0))
        sink.setblocking(False)
        sinks.append(sink)
    try:
        sdp = with_candidates(await offer_sdp(), [s.getsockname()[1] for s in sinks])
        async with httpx.AsyncClient(timeout=30 * UNIT) as client:
            refused = await client.post(
                f"{server.url}/webrtc/offer", json={"sdp": sdp, "type": "offer"}
            )
            # The old server answered 200 and sent ~650 STUN checks to these 200 sinks.
            packets, started = 0, time.monotonic()
            while time.monotonic() - started < 2.0:
                for sink in sinks:
                    while True:
                        try:
                            sink.recvfrom(2048)
                        except BlockingIOError:
                            break
                        packets += 1
                await asyncio.sleep(0.05)
            few = with_candidates(await offer_sdp(), [s.getsockname()[1] for s in sinks[:3]])
            answered = await client.post(
                f"{server.url}/webrtc/offer", json={"sdp": few, "type": "offer"}
            )
    finally:
        for sink in sinks:
            sink.close()
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == "bad_sdp"
    assert packets == 0
    assert answered.status_code == 200, answered.text
