"""A managed Mosquitto: a child process on a free loopback port with a generated config.

Settings and why (``mosquitto.conf(5)`` of Mosquitto 2.0):

- one ``listener <port> 127.0.0.1``: loopback only. No ``protocol websockets`` listener:
  Mosquitto 2.0.11's websockets listener ignores its bind address and listens on every
  interface, so browsers reach MQTT through our own ``/mqtt`` WebSocket bridge instead.
- ``set_tcp_nodelay true``: the default (false) lets Nagle + delayed ACK stall small
  publishes by ~40 ms on loopback.
- ``persistence true`` in a directory this object owns: client sessions, subscriptions and
  queued QoS 1 messages survive a broker restart (saved on SIGTERM and every
  ``autosave_interval`` seconds; a SIGKILL loses what changed since the last save).
- ``max_queued_messages``: per-client bound on messages queued for an offline or slow
  session; beyond it Mosquitto drops messages (the client sees a seq jump and reports a gap).
- ``max_connections`` on each listener (``mqtt_max_connections``, 1000): beyond it Mosquitto
  closes a new connection before its CONNACK. Mosquitto has no per-IP bound, so one host can
  take every slot; the bound keeps its memory and file descriptors finite.
- ``allow_anonymous true`` with the dynamic-security plugin (``dynsec.py``): anonymous
  clients read the public topics and write nothing; the bridge's generated user alone writes
  the feed topics and administers the plugin; ``--mqtt-user`` accounts and token clients
  (registered by the server, ``credentials.py``) get the roles their rights give. Without
  that, any client could forge messages (a seq far ahead, a retained ``_meta`` epoch) that
  every MQTT follower would believe. A refused QoS 1 publish is acknowledged with reason
  code 0x87 "Not authorized" (MQTT 5 §3.4.2.1); QoS 0 ones are dropped.

Privileges: run as root, we start Mosquitto as user ``mosquitto`` (a network daemon need not
run as root) and ``chown`` the state directory to that user so it can write its persistence
file; the log goes to stderr, which we redirect into a file we opened before the drop. Run
as anyone else, Mosquitto stays that user and the directory is already theirs.

Lifetime: the broker must not outlive us however we die (a SIGKILLed ``serve`` used to leave
it running, holding its port and directory). The child asks the kernel for SIGTERM when its
parent dies (``prctl(PR_SET_PDEATHSIG)``, Linux; SIGTERM so Mosquitto still saves its
persistence file). The kernel clears that setting when a process changes its user ID
(``prctl(2)``), so we drop privileges ourselves *before* setting it, instead of letting
Mosquitto drop them after reading its config. The signal follows the death of the *thread*
that started the child: brokers are started from the event loop's thread, which outlives them.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

from transports.mqtt.broker import Broker, BrokerError
from transports.mqtt.dynsec import PLUGIN, initial_config
from transports.netutil import NotListening, free_port, wait_for_port

log = logging.getLogger("transports.mqtt.mosquitto")

DEFAULTS: dict[str, Any] = {
    "max_queued_messages": 10000,
    "max_inflight_messages": 100,
    "max_packet_size": 4 * 1024 * 1024,
    "autosave_interval": 10,
    "persistent_client_expiration": "1h",
    "max_connections": 1000,
}


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# Looked up before any fork: the child only calls it (no dlopen between fork and exec).
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def die_with_parent(parent: int) -> None:
    """``preexec_fn``: SIGTERM this child when its parent dies; exit if it already has."""
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the parent died between fork() and prctl()
        os._exit(1)


class MosquittoBroker(Broker):
    """Start/stop/restart Mosquitto by PID; the port stays the same across restarts."""

    kind = "mosquitto"
    dynsec = True  # the server registers token clients (credentials.py)

    def __init__(
        self,
        executable: str = "/usr/sbin/mosquitto",
        port: int | None = None,
        persistence: bool = True,
        state_dir: str | None = None,
        prefix: str = "transport-lab",
        users: tuple[tuple[str, str], ...] = (),
        tls: tuple[str, str] | None = None,
        **limits: Any,
    ) -> None:
        self.executable = executable
        self.prefix = prefix
        self.users = tuple(users)  # clients that may publish into channels (inbound topic)
        # Kept for the broker's lifetime, so a restart (same port) keeps the bridge working.
        self._bridge_user = ("transport-lab-bridge", secrets.token_urlsafe(24))
        self.credentials = self._bridge_user
        self.port = port or free_port()
        # (certfile, keyfile): a second, TLS listener (mqtts) with the server's certificate.
        self.tls = tls
        self.tls_port = free_port() if tls else None
        self.persistence = persistence
        self.limits = {**DEFAULTS, **limits}
        self._own_dir = state_dir is None
        self.state_dir = Path(state_dir or tempfile.mkdtemp(prefix="transport-lab-mosquitto-"))
        self.process: subprocess.Popen[bytes] | None = None
        self._dynsec_written = False
        self._log: IO[bytes] | None = None
        self.version = _version(executable)

    @property
    def config_path(self) -> Path:
        return self.state_dir / "mosquitto.conf"

    @property
    def dynsec_path(self) -> Path:
        return self.state_dir / "dynamic-security.json"

    @property
    def log_path(self) -> Path:
        return self.state_dir / "mosquitto.log"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def config_text(self) -> str:
        lim = self.limits
        # Mosquitto 2.0.11 refuses a connection only when its count is already *above*
        # max_connections (one more is admitted, measured in tests/test_mqtt_tokens.py), so
        # bound - 1 makes the documented bound exact (0 would mean unlimited: bound >= 2).
        most = f"max_connections {int(lim['max_connections']) - 1}"
        lines = [f"listener {self.port} 127.0.0.1", most]
        if self.tls_port is not None:
            # TLS options follow the listener they belong to (mosquitto.conf(5)); the files
            # are copies in our state dir, readable by the unprivileged broker user.
            lines += [
                f"listener {self.tls_port} 127.0.0.1",
                most,
                f"certfile {self.state_dir / 'tls-cert.pem'}",
                f"keyfile {self.state_dir / 'tls-key.pem'}",
                "tls_version tlsv1.2",
            ]
        lines += [
            "allow_anonymous true",
            f"plugin {PLUGIN}",
            f"plugin_opt_config_file {self.dynsec_path}",
            "set_tcp_nodelay true",
            f"max_queued_messages {lim['max_queued_messages']}",
            f"max_inflight_messages {lim['max_inflight_messages']}",
            f"max_packet_size {lim['max_packet_size']}",
            f"persistent_client_expiration {lim['persistent_client_expiration']}",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            # $SYS/broker/... every 2 s (default 10): the bridge reads client and delivery
            # counts from there for /metrics.
            "sys_interval 2",
        ]
        if self.persistence:
            lines += [
                "persistence true",
                f"persistence_location {self.state_dir / 'data'}/",
                f"autosave_interval {lim['autosave_interval']}",
            ]
        return "\n".join(lines) + "\n"

    def _prepare(self) -> dict[str, Any]:
        """Write the config; return the Popen arguments that drop privileges (as root)."""
        data = self.state_dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config_text())
        # Written at the first start only: the plugin saves every change to this file, so a
        # restart keeps the token clients the server registered (their expiry timers run in
        # the server).
        if not self._dynsec_written:
            self.dynsec_path.write_text(
                json.dumps(initial_config(self.prefix, self._bridge_user, self.users), indent=1)
            )
            self.dynsec_path.chmod(0o600)
            self._dynsec_written = True
        tls_files: tuple[Path, ...] = ()
        if self.tls is not None:
            tls_files = (self.state_dir / "tls-cert.pem", self.state_dir / "tls-key.pem")
            for source, copy in zip(self.tls, tls_files, strict=True):
                shutil.copyfile(source, copy)
                copy.chmod(0o600)
        if os.geteuid() != 0:
            return {}
        try:
            user = pwd.getpwnam("mosquitto")
        except KeyError:
            # No unprivileged user to drop to: say so in the config, stay root.
            with self.config_path.open("a") as f:
                f.write("user root\n")
            return {}
        owned = (self.state_dir, data, *data.iterdir(), self.dynsec_path)
        for path in (*owned, *tls_files):
            os.chown(path, user.pw_uid, user.pw_gid)
        return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}

    async def start(self, timeout: float = 10.0) -> None:
        if self.running:
            return
        drop = self._prepare()
        self._log = self.log_path.open("ab")
        parent = os.getpid()
        # Popen returns at once (fork+exec); the exit is awaited by polling in _exited().
        # Privileges are dropped (user=, group=) before preexec_fn runs (CPython's
        # _posixsubprocess order), so the death signal survives; see the module docstring.
        self.process = subprocess.Popen(  # noqa: ASYNC220
            [self.executable, "-c", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            start_new_session=True,  # a Ctrl-C in the terminal goes to us, we stop it cleanly
            preexec_fn=lambda: die_with_parent(parent),
            **drop,
        )
        try:
            await wait_for_port(self.host, self.port, timeout, alive=lambda: self.running)
        except NotListening as exc:
            await self.stop()
            raise BrokerError(f"{exc}; log: {self.log_tail()}") from None
        if self.tls_port is not None:
            try:
                await wait_for_port(self.host, self.tls_port, timeout, alive=lambda: self.running)
            except NotListening as exc:
                await self.stop()
                raise BrokerError(f"TLS listener: {exc}; log: {self.log_tail()}") from None
        log.info("mosquitto %s pid %s on %s", self.version, self.pid, self.url)

    async def stop(self, kill: bool = False, timeout: float = 5.0) -> None:
        """SIGTERM (Mosquitto saves its persistence file) or SIGKILL; wait for the exit."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            if not await _exited(proc, timeout):
                proc.kill()
                await _exited(proc, timeout)
        if self._log is not None:
            self._log.close()
            self._log = None

    async def restart(self, kill: bool = False) -> None:
        await self.stop(kill=kill)
        await self.start()

    async def close(self) -> None:
        """Stop and remove the state directory (if this object created it)."""
        await self.stop()
        if self._own_dir:
            with contextlib.suppress(OSError):
                shutil.rmtree(self.state_dir)

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    @property
    def client_url(self) -> str:
        """What clients are told: mqtts when the TLS listener is on (the bridge stays on the
        plain loopback listener, inside the server's own host)."""
        if self.tls_port is not None:
            return f"mqtts://{self.host}:{self.tls_port}"
        return self.url

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "version": self.version,
            "pid": self.pid,
            "persistence": self.persistence,
            "limits": {k: v for k, v in self.limits.items()},
            "tcp_nodelay": True,
            "listeners": [f"127.0.0.1:{self.port}"]
            + ([f"mqtts://127.0.0.1:{self.tls_port}"] if self.tls_port else []),
        }


async def _exited(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    # Polling instead of asyncio.to_thread(proc.wait): no executor thread is left behind.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while proc.poll() is None:
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def _version(executable: str) -> str:
    # `mosquitto -h` prints "mosquitto version 2.0.11" and exits 3; there is no --version.
    try:
        out = subprocess.run(
            [executable, "-h"], capture_output=True, timeout=5, check=False
        ).stdout.decode(errors="replace")
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    first = out.splitlines()[0] if out else ""
    return first.rsplit(" ", 1)[-1] if "version" in first else "unknown"
