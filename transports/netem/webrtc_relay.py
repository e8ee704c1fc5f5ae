"""Put a :class:`~transports.netem.udp_relay.UdpRelay` in a WebRTC connection's path.

WebRTC's data travels between ICE candidates, not through the signalling endpoint's TCP
proxy. Rewriting every UDP candidate of the server's SDP answer to a relay session's address
(RFC 8839 §5.1 ``a=candidate``) before the client's ICE agent sees it leaves the client only
pairs towards the relay (see ``udp_relay.py`` for why the pair then runs through it both
ways). Used by the fault lab's relayed offer endpoint and by
:class:`transports.lab.relayed_webrtc.RelayedWebRTCSubscriber`.
"""

from __future__ import annotations

from transports.netem.udp_relay import UdpRelay


async def rewrite_candidates(sdp: str, relay: UdpRelay) -> str:
    """Point every UDP candidate of ``sdp`` at a new relay session (RFC 8839 §5.1)."""
    out = []
    for line in sdp.splitlines():
        parts = line.split()
        if line.startswith("a=candidate:") and len(parts) > 5 and parts[2].lower() == "udp":
            host, port = await relay.route((parts[4], int(parts[5])))
            parts[4], parts[5] = host, str(port)
            line = " ".join(parts)
        out.append(line)
    return "\r\n".join(out) + "\r\n"
