"""The lab's wire byte counts agree with a packet capture (tshark on ``lo``) within 1 %.

The proxy counts TCP payload bytes per direction; tshark sums ``tcp.len`` of every segment
to and from the proxy's port over the same run. Both must see the same bytes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_executable
from transports.lab import wire


class Capture:
    def __init__(self, tshark: str, workdir: Path) -> None:
        self.tshark = tshark
        self.path = workdir / "run.pcapng"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.udp = False

    def start(self, port: int) -> None:
        self.port = port
        bpf = f"tcp port {port} or udp" if self.udp else f"tcp port {port}"
        self.path.touch()
        os.chmod(self.path, 0o666)  # dumpcap may drop privileges before writing
        with (self.path.parent / "tshark.log").open("wb") as log:
            self.proc = subprocess.Popen(
                [self.tshark, "-i", "lo", "-f", bpf, "-w", str(self.path)],
                stdout=log, stderr=log,
            )  # fmt: skip
        deadline = time.monotonic() + 20
        while b"Capturing on" not in (self.path.parent / "tshark.log").read_bytes():
            assert self.proc.poll() is None, (self.path.parent / "tshark.log").read_text()
            assert time.monotonic() < deadline, "tshark did not start"
            time.sleep(0.05)
        # "Capturing on" is printed just before dumpcap's capture loop really runs; a run that
        # starts at once can lose its first segments (seen on a loaded 2-core machine).
        time.sleep(1.0)

    def stop(self, udp_ports: tuple[int, ...] = ()) -> tuple[int, int]:
        """Stop by PID (SIGINT flushes the file); return (to, from) payload bytes of the port
        (TCP) and of ``udp_ports`` (UDP: the relay's client-facing sockets)."""
        assert self.proc is not None
        time.sleep(0.5)  # the kernel hands the last segments to the capture asynchronously
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(20)
        out = subprocess.run(
            [self.tshark, "-r", str(self.path), "-T", "fields",
             "-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "tcp.len",
             "-e", "udp.srcport", "-e", "udp.dstport", "-e", "udp.length"],
            capture_output=True, text=True, check=True, timeout=60,
        ).stdout  # fmt: skip
        up = down = 0
        for line in out.splitlines():
            tsrc, tdst, tlen, usrc, udst, ulen = (line.split("\t") + [""] * 6)[:6]
            if tlen:
                if int(tdst) == self.port:
                    up += int(tlen)
                elif int(tsrc) == self.port:
                    down += int(tlen)
            elif ulen:
                payload = int(ulen) - 8  # UDP length includes its 8-byte header (RFC 768)
                if int(udst) in udp_ports:
                    up += payload
                elif int(usrc) in udp_ports:
                    down += payload
        return up, down

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def capture() -> Iterator[Capture]:
    tshark = require_executable("tshark")
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o777)
        cap = Capture(tshark, Path(tmp))
        yield cap
        cap.kill()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("transport", "compression"),
    [("ws", False), ("ws", True), ("sse", False), ("poll", False), ("mqtt", False)],
)
def test_counts_match_capture(capture: Capture, transport: str, compression: bool) -> None:
    if transport == "mqtt":
        require_executable("mosquitto")
    result = wire.measure(
        transport, payload_bytes=300, compression=compression, messages=150, rate=150,
        idle_s=0, before_connect=capture.start,
    )  # fmt: skip
    up, down = capture.stop()
    counted_up, counted_down = result.totals["up"], result.totals["down"]
    assert counted_down > 150 * 50  # the run really carried the messages
    assert up > 0
    assert abs(counted_up - up) <= 0.01 * up, (counted_up, up)
    assert abs(counted_down - down) <= 0.01 * down, (counted_down, down)
    if compression:
        assert result.per_msg_down < result.payload_per_msg  # deflate did something
    else:
        assert result.per_msg_down > result.payload_per_msg


@pytest.mark.slow
def test_webrtc_udp_counts_match_capture(capture: Capture) -> None:
    """WebRTC: signalling over the TCP proxy plus DTLS/SCTP datagrams through the UDP relay."""
    pytest.importorskip("aiortc")
    capture.udp = True
    result = wire.measure(
        "webrtc", payload_bytes=300, messages=150, rate=150, idle_s=0,
        before_connect=capture.start,
    )  # fmt: skip
    totals = result.totals
    up, down = capture.stop(tuple(totals["udp_ports"]))
    assert totals["udp_down"] > 150 * 300  # the messages really went over UDP
    assert abs(totals["up"] - up) <= 0.01 * up, (totals, up)
    assert abs(totals["down"] - down) <= 0.01 * down, (totals, down)
