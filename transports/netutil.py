"""Two socket helpers every layer needs: pick a free port, wait until something listens."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port the OS says is free on ``host`` now (bind to port 0, read it, close)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
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
