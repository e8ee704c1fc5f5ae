"""Setup-time benchmark: time from creating the offer to the first feed message, per peer.

    python -m transports.lab.setup_bench --peers 1,50 --repeat 3

For each peer count N, N Python clients start at once, each doing what
:class:`~transports.webrtc.client.WebRTCSubscriber` does for one connection: create the peer
connection and the offer (ICE gathering), POST it (the server gathers and answers), ICE +
DTLS + SCTP until the channel opens, send the cursor, receive the first message (seq 1,
replayed from history). Printed per N: median, p90 and max of the total and of the signalling
round trip, over all peers of all repeats.

The server runs in its own process (this module with ``--serve PORT``: the app ``serve``
builds, WebRTC only, no demo publisher) unless ``--url`` points at one,
so client and server do not share an event loop; on a 2-core machine the two still compete
for CPU, which is part of what 50 concurrent setups measure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

from transports.message import Message
from transports.netutil import free_port
from transports.processes import stop
from transports.webrtc.client import WebRTCSubscriber

TOKEN_ENV = "TRANSPORT_LAB_ADMIN_TOKEN"  # the same variable `serve --admin-token` reads


@dataclass(slots=True)
class Setup:
    signalling: float  # POST offer -> answer received (server gathers meanwhile)
    total: float  # offer creation started -> first message received


class TimedSubscriber(WebRTCSubscriber):
    """Records how long the signalling round trip took on its last connection."""

    signalling = 0.0

    async def _signal(self, sdp: str) -> str:
        start = time.perf_counter()
        try:
            return await super()._signal(sdp)
        finally:
            self.signalling = time.perf_counter() - start


async def one_setup(url: str, timeout: float) -> Setup:
    sub = TimedSubscriber(url, open_timeout=timeout)
    start = time.perf_counter()
    stream = sub.stream(0, None)
    try:
        async with asyncio.timeout(timeout):
            async for frame in stream:
                if isinstance(frame, Message):
                    return Setup(sub.signalling, time.perf_counter() - start)
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    raise RuntimeError("stream ended before the first message")


async def run_round(base_url: str, peers: int, timeout: float) -> list[Setup]:
    url = base_url + "/webrtc/offer"
    results = await asyncio.gather(*(one_setup(url, timeout) for _ in range(peers)))
    # Let the server notice the closed peers before the next round is admitted.
    async with httpx.AsyncClient() as http:
        for _ in range(100):
            stats = (await http.get(base_url + "/api/stats")).json()
            if stats["transports"]["webrtc"]["active"] == 0:
                break
            await asyncio.sleep(0.05)
    return list(results)


def summary(values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    p90 = ms[min(len(ms) - 1, round(0.9 * (len(ms) - 1)))]
    return f"median {statistics.median(ms):7.1f}  p90 {p90:7.1f}  max {ms[-1]:7.1f} ms"


@contextlib.contextmanager
def served(url: str | None) -> Iterator[str]:
    """Yield a server base URL: the given one, or a `transport-lab serve` child process."""
    if url:
        yield url.rstrip("/")
        return
    port = free_port()
    # The child server and this process share the admin token through the environment.
    os.environ.setdefault(TOKEN_ENV, secrets.token_urlsafe(32))
    cmd = [sys.executable, "-m", "transports.lab.setup_bench", "--serve", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(base + "/api/info", timeout=1).raise_for_status()
                break
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}")
            time.sleep(0.05)
        else:
            raise RuntimeError("server did not start")
        yield base
    finally:
        stop(proc)


async def bench(base_url: str, counts: list[int], repeat: int, timeout: float) -> None:
    async with httpx.AsyncClient() as http:
        info = (await http.get(base_url + "/api/info")).json()
        limit = info["transports"]["webrtc"]["max_peers"]
        if max(counts) > limit:
            raise SystemExit(f"the server admits at most {limit} peers (webrtc_max_peers)")
        token = os.environ.get(TOKEN_ENV, "")
        r = await http.post(
            base_url + "/api/publish",
            json={"data": "first"},
            headers={"Authorization": f"Bearer {token}"},
        )
        if r.status_code != 200:
            raise SystemExit(f"publish refused ({r.text}); set {TOKEN_ENV} to the admin token")
    await run_round(base_url, 1, timeout)  # warm-up: imports, first certificate
    print(f"server {base_url}; client pid {os.getpid()} on CPUs {sorted(os.sched_getaffinity(0))}")
    print(f"load average {os.getloadavg()[0]:.2f}; {repeat} repeat(s) per peer count")
    for peers in counts:
        setups: list[Setup] = []
        for _ in range(repeat):
            setups += await run_round(base_url, peers, timeout)
        total, signalling = [s.total for s in setups], [s.signalling for s in setups]
        print(f"{peers:3d} concurrent peers, offer -> first message: {summary(total)}")
        print(f"{'':3s}                  signalling round trip: {summary(signalling)}")


def serve(port: int) -> None:
    """The server child: WebRTC only on 127.0.0.1, no demo publisher."""
    import uvicorn

    from transports.config import ServerConfig
    from transports.live import uvicorn_config
    from transports.server import create_app

    # Every benchmark client comes from 127.0.0.1: lift the per-IP pending-offer bound.
    cfg = ServerConfig(rate=0, admin_token=os.environ.get(TOKEN_ENV), webrtc_max_pending_per_ip=500)
    app = create_app(transports=("webrtc",), config=cfg)
    uvicorn.Server(uvicorn_config(app, "127.0.0.1", port, cfg)).run()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", default="1,50", help="comma-separated peer counts")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per peer count")
    parser.add_argument("--url", default=None, help="existing server (default: start one)")
    parser.add_argument("--timeout", type=float, default=30.0, help="per-setup limit, seconds")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve)
        return
    counts = [int(n) for n in args.peers.split(",") if n.strip()]
    if not counts or min(counts) < 1 or max(counts) > 500:
        parser.error("--peers must be counts between 1 and 500")
    with served(args.url) as base:
        asyncio.run(bench(base, counts, max(1, args.repeat), args.timeout))


if __name__ == "__main__":
    main()
