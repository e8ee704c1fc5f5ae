"""Two socket helpers every layer needs: pick a free port, wait until something listens."""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections.abc import Callable


def _ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


_handed_out: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` now and that no outgoing connection will take.

    Binding port 0 returns a port from the kernel's *ephemeral* range — the same range every
    outgoing ``connect()`` draws its local port from. Between this call and the caller's own
    bind (a server thread, a Mosquitto or Redis child), a client connecting anywhere on the
    machine can take that port and the bind fails with EADDRINUSE; with thousands of load
    connections in a test run, it does. So the port is drawn at random *below* the ephemeral
    range (``/proc/sys/net/ipv4/ip_local_port_range``), checked by binding it, and never
    handed out twice by this process; port 0 is the fallback when that range is crowded.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    low = _ephemeral_range()[0]
    rand = random.SystemRandom()
    for _ in range(64):
        port = rand.randrange(10000, low) if low > 10000 else 0
        if port in _handed_out:
            continue
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            port = int(sock.getsockname()[1])
        _handed_out.add(port)
        return port
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class NotListening(OSError):
    """Nothing accepted connections on the port in time, or the process behind it died."""


async def wait_for_port(
    host: str, port: int, timeout: float, alive: Callable[[], bool] = lambda: True
) -> None:
    """Wait until ``host:port`` accepts TCP connections; raise :class:`NotListening` after
    ``timeout`` seconds or as soon as ``alive()`` turns false."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            if not alive():
                raise NotListening(f"process exited before listening on {port}") from None
            if time.monotonic() > deadline:
                raise NotListening(f"nothing listens on {host}:{port} after {timeout}s") from None
            await asyncio.sleep(0.02)
            continue
        writer.close()
        await writer.wait_closed()
        return
