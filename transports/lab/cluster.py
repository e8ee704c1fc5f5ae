"""A local scale-out layout: a ``redis-server`` and an ``haproxy`` on free loopback ports,
started and stopped by PID (the tests and ``notebooks/07-scale-out.ipynb`` use it; the same
layout by hand is in ``docs/scale.md``).

:class:`RedisServer` runs with RDB snapshots off and AOF on or off (``aof=True`` writes
``appendonly.aof`` with ``appendfsync always``, so an acknowledged publish is on disk), and
restarts on the same port: the case the engine's epoch rules are about.
:class:`HAProxy` writes a round-robin configuration over N backends (no stickiness, health
checked with ``GET /readyz``), the layout ``docs/scale.md`` documents.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from transports.netutil import free_port
from transports.processes import stop


def executable(name: str) -> str:
    """The path of a Debian-packaged daemon (often in /usr/sbin, off PATH), or ValueError."""
    path = shutil.which(name) or (
        f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None
    )
    if path is None:
        raise FileNotFoundError(f"{name} is not installed (apt-get install {name})")
    return path


def wait_port(
    port: int, timeout: float = 10.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {timeout} s")


class RedisServer:
    def __init__(self, folder: Path, aof: bool = False) -> None:
        self.binary = executable("redis-server")
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.aof = aof
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--dir", str(self.folder), "--protected-mode", "yes"]
        args += ["--appendonly", "yes" if self.aof else "no"]
        if self.aof:
            args += ["--appendfsync", "always"]
        with (self.folder / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        wait_port(self.port, process=self.process)
        return self

    def kill(self) -> None:
        """SIGKILL: what survives is only what AOF already wrote."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        stop(self.process)

    def restart(self, down: float = 0.0) -> None:
        self.kill()
        time.sleep(down)
        self.start()


HAPROXY_CFG = """\
global
    maxconn 8000
defaults
    mode http
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    timeout tunnel 1h
    option redispatch
    retries 2
frontend lab
    bind 127.0.0.1:{port}
    default_backend nodes
backend nodes
    balance roundrobin
    # HTTP/1.1 with a Host header: the nodes refuse requests without one (DNS-rebinding
    # defence), which HAProxy's default HTTP/1.0 check would be.
    option httpchk
    http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host localhost
    http-check expect status 200
    timeout check 2s
    default-server inter 1s fall 3 rise 2
{servers}
"""


class HAProxy:
    """``haproxy -f CFG`` in the foreground (``-db``), round robin over ``backends``."""

    def __init__(self, folder: Path, backends: list[int]) -> None:
        self.binary = executable("haproxy")
        self.port = free_port()
        servers = "\n".join(
            f"    server node{i} 127.0.0.1:{port} check" for i, port in enumerate(backends)
        )
        self.config = folder / "haproxy.cfg"
        self.config.write_text(HAPROXY_CFG.format(port=self.port, servers=servers))
        self.log = folder / "haproxy.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> HAProxy:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [self.binary, "-db", "-f", str(self.config)], stdout=out, stderr=subprocess.STDOUT
            )
        wait_port(self.port, process=self.process)
        return self

    def stop(self) -> None:
        stop(self.process)
