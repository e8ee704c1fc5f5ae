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


async def blind_candidates(sdp: str, relay: UdpRelay) -> str:
    """Point every UDP candidate of an offer at the relay's sink, which answers nothing.

    The relayed side's real candidates must not reach the other peer: with them, that peer's
    agent checks them directly, learns the real address back as a peer-reflexive candidate
    (RFC 8445 §7.3.1.3) and, under aggressive nomination, the direct pair can win the race —
    the data then bypasses the relay and its faults. Dropping the lines is not enough: an
    agent with no remote candidate and ``a=end-of-candidates`` fails at once (aioice), so
    each is replaced by the sink, whose checks never succeed, and the peer learns this side
    from the checks that arrive through the relay.
    """
    sink = await relay.sink()
    out = []
    for line in sdp.splitlines():
        parts = line.split()
        if line.startswith("a=candidate:") and len(parts) > 5 and parts[2].lower() == "udp":
            parts[4], parts[5] = sink[0], str(sink[1])
            line = " ".join(parts)
        out.append(line)
    return "\r\n".join(out) + "\r\n"


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
