"""Shared fixtures: live servers on 127.0.0.1, a time unit for slow machines, and the rule
that a test skipped for a missing system component fails under ``CI=true``."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator

import pytest

from transports.config import ServerConfig
from transports.live import LiveServer

CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Multiply every wait in the tests by this (websockets' habit): a loaded 2-core CI box is slow.
UNIT = float(os.environ.get("TRANSPORT_LAB_TIME_UNIT", "1.0"))


def require(component: str, available: bool, why: str = "") -> None:
    """Skip when a system component is missing — but fail under CI, where it must be there."""
    if available:
        return
    message = f"{component} is not available{': ' + why if why else ''}"
    if CI:
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


def require_executable(name: str) -> str:
    path = shutil.which(name) or (
        f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None
    )
    require(name, path is not None, "install it (the test command does, with apt-get)")
    assert path is not None
    return path


@pytest.fixture
def make_server() -> Iterator[Callable[..., LiveServer]]:
    """Start live servers (``make_server(transports=..., config=...)``); all stopped at the end."""
    servers: list[LiveServer] = []

    def make(
        transports: tuple[str, ...] = ("ws", "sse", "poll"),
        config: ServerConfig | None = None,
        **kwargs: object,
    ) -> LiveServer:
        server = LiveServer(transports, config=config, **kwargs)  # type: ignore[arg-type]
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def server(make_server: Callable[..., LiveServer]) -> LiveServer:
    return make_server()


def require_cluster_parts() -> None:
    """redis-server and haproxy (``./dev`` installs both) for the scale-out tests."""
    require_executable("redis-server")
    require_executable("haproxy")
