"""A WebRTC subscriber whose UDP traffic goes through a
:class:`~transports.netem.udp_relay.UdpRelay`.

The only change to :class:`~transports.webrtc.client.WebRTCSubscriber` is in signalling: the
server's answer has its candidates rewritten to relay sessions before the client's ICE agent
sees it (:func:`transports.netem.webrtc_relay.rewrite_candidates`), and the offer's own
candidates are pointed at the relay's sink (:func:`~transports.netem.webrtc_relay.blind_candidates`
says why).
"""

from __future__ import annotations

from typing import Any

from transports.netem.udp_relay import UdpRelay
from transports.netem.webrtc_relay import blind_candidates, rewrite_candidates
from transports.webrtc.client import WebRTCSubscriber


class RelayedWebRTCSubscriber(WebRTCSubscriber):
    def __init__(self, url: str, *, relay: UdpRelay, **options: Any) -> None:
        super().__init__(url, **options)
        self.relay = relay

    @classmethod
    def for_server(
        cls, base_url: str, info: dict[str, Any], **options: Any
    ) -> RelayedWebRTCSubscriber:
        entry = info["transports"]["webrtc"]
        options.setdefault("loopback_only", entry.get("loopback_only", True))
        options.setdefault("stun", entry.get("stun", ()))
        return cls(entry["url"], **options)

    async def _signal(self, sdp: str) -> str:
        answer = await super()._signal(await blind_candidates(sdp, self.relay))
        return await rewrite_candidates(answer, self.relay)
