"""ICE settings for local labs, shared by the WebRTC server and client.

Two defaults of aiortc/aioice get in the way on one machine:

- aiortc adds a public STUN server when ``RTCConfiguration.iceServers`` is ``None``: a lab on
  loopback must not send packets to the internet, so :func:`configuration` always passes an
  explicit list (empty unless STUN URLs are configured).
- aioice never gathers ``127.0.0.1`` as a host candidate (``aioice.ice.get_host_addresses``
  skips it), so two peers on one host pair over whatever LAN address the host has, or fail
  without one. No aioice option changes that, so :func:`loopback_only` wraps that one
  function: inside the ``with`` block (a context variable, so only the peer connection being
  set up there is affected, not other connections in the process) host candidates are
  ``127.0.0.1`` only. aiortc gathers during ``setLocalDescription`` (no trickle ICE), in tasks
  that inherit the caller's context.

Browsers (Chromium) hide host addresses behind mDNS ``<uuid>.local`` names (RFC 8839 §5.1
allows FQDN candidates; draft-ietf-mmusic-mdns-ice-candidates). Resolving them costs aioice
a multicast query that never succeeds inside a test namespace, and the connection opens only
after that gives up; :func:`drop_mdns_candidates` removes them from the offer, so the server
learns the browser's address from its first connectivity check instead (a peer-reflexive
candidate, RFC 8445 §7.3.1.3).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer

LOOPBACK = ("127.0.0.1",)

_host_addresses: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar(
    "transport_lab_ice_host_addresses", default=None
)
_original_get_host_addresses = aioice.ice.get_host_addresses


def _get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    chosen = _host_addresses.get()
    if chosen is None:
        return _original_get_host_addresses(use_ipv4, use_ipv6)
    return list(chosen)


# Installed once at import; without the context variable set it defers to aioice unchanged.
aioice.ice.get_host_addresses = _get_host_addresses


@contextlib.contextmanager
def host_addresses(addresses: Sequence[str] | None) -> Iterator[None]:
    """Gather ICE host candidates only on ``addresses`` (``None`` = aioice's default)."""
    token = _host_addresses.set(tuple(addresses) if addresses is not None else None)
    try:
        yield
    finally:
        _host_addresses.reset(token)


def loopback_only(enabled: bool = True) -> contextlib.AbstractContextManager[None]:
    """Host candidates on 127.0.0.1 only when ``enabled`` (the local-lab default)."""
    return host_addresses(LOOPBACK if enabled else None)


def configuration(stun: Sequence[str] = ()) -> RTCConfiguration:
    """An ``RTCConfiguration`` with exactly the given STUN URLs (none by default)."""
    return RTCConfiguration(iceServers=[RTCIceServer(urls=url) for url in stun])


def drop_mdns_candidates(sdp: str) -> str:
    """Remove ``a=candidate`` lines whose address is an mDNS ``.local`` name."""
    lines = sdp.splitlines()
    kept = [line for line in lines if not _is_mdns_candidate(line)]
    return "\r\n".join(kept) + ("\r\n" if lines else "")


def _is_mdns_candidate(line: str) -> bool:
    # RFC 8839 §5.1: candidate:<foundation> <component> <transport> <priority> <address> ...
    if not line.startswith("a=candidate:"):
        return False
    parts = line.split()
    return len(parts) > 4 and parts[4].lower().endswith(".local")
