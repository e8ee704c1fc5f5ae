"""WebRTC data-channel endpoint: signalling ``POST /webrtc/offer``, then the feed on a channel.

Signalling is one HTTP round trip without trickle ICE (RFC 8838 is optional): the client
POSTs ``{"sdp": <offer>, "type": "offer"}``, the server answers ``{"sdp": <answer>, "type":
"answer"}`` once its ICE gathering is complete (aiortc gathers inside
``setLocalDescription``), so the answer carries every candidate.

The client creates the data channel (label ``feed``) and so chooses its reliability
(RFC 8831 §6.1): ``ordered`` or not, and for partial reliability at most one of
``maxRetransmits`` or ``maxPacketLifeTime`` (ms). The server takes what the client chose; the
defaults the Python client uses are published in ``/api/info``. The client's first channel
message carries its cursor, ``{"type":"subscribe","after":N|null,"epoch":E|null}``; everything
after that is the wire contract's JSON, one channel message per frame (see ``peer.py``).

Errors: a bad offer body is ``400 bad_sdp``, too many peers (``webrtc_max_peers``) or too many
not-yet-subscribed peers from one IP (``webrtc_max_pending_per_ip``) ``503
too_many_connections``, an
oversized body ``413 too_large`` (JSON ``{"error","detail"}`` as everywhere); a bad subscribe
message is answered on the channel with ``{"type":"close","reason":...}`` before the peer is
closed.

ICE is restricted to loopback host candidates with no STUN server by default
(``webrtc_loopback_only``, ``webrtc_stun``); see ``ice.py``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar

from aiortc import RTCPeerConnection, RTCSessionDescription
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from transports import strictjson
from transports.errors import TransportError
from transports.server import ServerTransport, error_response, read_body
from transports.webrtc import LABEL, ice
from transports.webrtc.peer import Peer

log = logging.getLogger("transports.webrtc")

MAX_CANDIDATES = 32  # ICE candidates an offer may name (RFC 8445 §6.1.2.5 bounds pairs too)
SIGNALLING_TIMEOUT = 10.0  # seconds for setRemoteDescription + answer + gathering


class WebRTCTransport(ServerTransport):
    name = "webrtc"
    capabilities: ClassVar[dict[str, Any]] = {
        "bidirectional": True,
        "heartbeat": 'channel message {"type":"ping"}',
        "resume": "first channel message {type: subscribe, after, epoch}",
        "framing": "data channel message per frame",
        "partial_reliability": True,
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.peers: set[Peer] = set()

    def routes(self) -> list[BaseRoute]:
        return [Route("/webrtc/offer", self.offer, methods=["POST"])]

    def info(self, base_url: str) -> dict[str, Any]:
        cfg = self.ctx.config
        return {
            "url": base_url + "/webrtc/offer",
            "label": LABEL,
            # Channel defaults (the client chooses; these are what the Python client uses).
            "ordered": True,
            "max_retransmits": None,
            "max_packet_life_time": None,
            "ping_interval": cfg.webrtc_ping_interval,
            "loopback_only": cfg.webrtc_loopback_only,
            "stun": list(cfg.webrtc_stun),
            "max_peers": cfg.webrtc_max_peers,
        }

    async def offer(self, request: Request) -> Response:
        ctx = self.ctx
        try:
            principal = await ctx.admit(self.name, request)
            sdp = parse_offer(await read_body(request, ctx.config.max_frame_bytes))
            # The limits are checked with no await between the check and peers.add below,
            # so concurrent offers cannot all pass them.
            if len(self.peers) >= ctx.config.webrtc_max_peers:
                raise TransportError(
                    "too_many_connections", f"{ctx.config.webrtc_max_peers} peers connected"
                )
            self.check_pending(request.client.host if request.client else "?")
        except TransportError as error:
            ctx.reject(self.name, request, error)
            return error_response(error)
        client = f"{request.client.host}:{request.client.port}" if request.client else "?"
        pc = RTCPeerConnection(ice.configuration(ctx.config.webrtc_stun))
        peer = Peer(self, pc, client, request.client.host if request.client else "?", principal)
        self.peers.add(peer)
        try:
            async with asyncio.timeout(SIGNALLING_TIMEOUT):
                answer = await self._answer(pc, sdp)
        except Exception as exc:  # untrusted SDP: any failure to use it is the client's
            self.peers.discard(peer)
            await pc.close()
            refused = TransportError("bad_sdp", f"{type(exc).__name__}: {str(exc)[:200]}")
            ctx.reject(self.name, request, refused)
            return error_response(refused)
        peer.task = ctx.spawn(peer.run(), f"webrtc-peer-{client}")
        return JSONResponse({"sdp": answer, "type": "answer"})

    def check_pending(self, ip: str) -> None:
        """Refuse a client IP whose offers hold ``webrtc_max_pending_per_ip`` peers that have
        not subscribed yet: 110 offers in a second from one client used to fill all 100 peer
        slots for ``webrtc_open_timeout``, locking everyone else out."""
        limit = self.ctx.config.webrtc_max_pending_per_ip
        pending = sum(1 for p in self.peers if p.ip == ip and not p.subscribed)
        if pending >= limit:
            raise TransportError(
                "too_many_connections", f"{pending} offers from {ip} not yet subscribed"
            )

    async def _answer(self, pc: RTCPeerConnection, sdp: str) -> str:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        answer = await pc.createAnswer()
        with ice.loopback_only(self.ctx.config.webrtc_loopback_only):
            await pc.setLocalDescription(answer)
        local = pc.localDescription
        assert local is not None
        return str(local.sdp)

    async def shutdown(self) -> None:
        """Close every peer (the feed is already closed, so pumps end as shutting_down)."""
        peers = list(self.peers)
        for peer in peers:
            peer.stop("shutting_down")
        tasks = [p.task for p in peers if p.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)
        for peer in list(self.peers):  # signalling in progress, or a run that did not finish
            await peer.pc.close()
            self.peers.discard(peer)


def parse_offer(body: bytes) -> str:
    """Check the offer JSON and return its SDP with mDNS candidates removed."""
    try:
        obj = strictjson.loads(body)
    except TransportError as error:
        raise TransportError("bad_sdp", f"body is not strict JSON: {error.detail}") from None
    if not isinstance(obj, dict) or obj.get("type") != "offer":
        raise TransportError("bad_sdp", 'body must be {"sdp": ..., "type": "offer"}')
    sdp = obj.get("sdp")
    if not isinstance(sdp, str) or not sdp.startswith("v=0"):
        raise TransportError("bad_sdp", "sdp must be an SDP string (RFC 8866 starts with v=0)")
    if "m=application" not in sdp:
        raise TransportError("bad_sdp", "the offer has no data channel (m=application) section")
    sdp = ice.drop_mdns_candidates(sdp)
    # The server sends connectivity checks to every candidate the offer names: 800 of them
    # in one 64 KiB offer made ~2600 STUN packets in 5 s, to addresses the client chose
    # (a reflector once the server is bound beyond loopback). A browser offers a handful.
    candidates = sum(1 for line in sdp.splitlines() if line.startswith("a=candidate:"))
    if candidates > MAX_CANDIDATES:
        raise TransportError("bad_sdp", f"{candidates} ICE candidates > {MAX_CANDIDATES}")
    return sdp
