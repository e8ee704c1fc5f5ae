"""``serve --faults`` restarts its feed server behind fault proxies that stay up: a real child
process, real clients following it through the proxies with ``follow()``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from tests.conftest import UNIT, require_executable
from tests.serve_process import Served, serve
from transports.chaos.fault_api import FaultLab, install
from transports.cli import app
from transports.client import Delivered, EpochChanged, Event, GapDetected, follow
from transports.clients import subscriber
from transports.config import ServerConfig
from transports.live import LiveServer
from transports.netutil import free_port
from transports.server import create_app

RESTART = "/api/faults/server/restart"


async def follow_across_restart(
    served: Served, name: str, before: int, after: int
) -> tuple[list[Event], dict[str, Any]]:
    """Follow ``name`` through its proxy: ``before`` messages, restart, ``after`` more."""
    async with httpx.AsyncClient(timeout=10) as http:
        faults = (await http.get(served.url + "/api/faults")).json()
        events: list[Event] = []
        delivered = restart_at = 0
        sub = await subscriber(name, faults["transports"][name]["url"])
        stream = follow(sub, 0, idle_timeout=5)
        async with asyncio.timeout(30 * UNIT), contextlib.aclosing(stream):
            async for event in stream:
                events.append(event)
                if not isinstance(event, Delivered):
                    continue
                delivered += 1
                if delivered == before:
                    r = await http.post(served.url + RESTART, json={}, headers=served.admin_headers)
                    assert r.status_code == 202, r.text
                    assert r.json()["restarting"] is True
                    restart_at = delivered
                elif restart_at and delivered >= restart_at + after:
                    break
        state = (await http.get(served.url + "/api/faults")).json()
    assert state["transports"].keys() == faults["transports"].keys()
    # The proxies did not move: the same URLs served before and after.
    assert {n: t["url"] for n, t in state["transports"].items()} == {
        n: t["url"] for n, t in faults["transports"].items()
    }
    return events, state


def seqs_by_epoch(events: list[Event]) -> list[list[int]]:
    runs: list[list[int]] = [[]]
    for e in events:
        if isinstance(e, EpochChanged):
            runs.append([])
        elif isinstance(e, Delivered):
            runs[-1].append(e.message.seq)
    return runs


def test_restart_in_memory_starts_a_new_epoch(tmp_path: Path) -> None:
    require_executable("mosquitto")
    args = ("--faults", "--transports", "ws,poll,mqtt", "--rate", "20")
    with serve(tmp_path, *args) as served:
        broker = httpx.get(served.url + "/api/info").json()["transports"]["mqtt"]["url"]
        events, state = asyncio.run(follow_across_restart(served, "ws", 10, 10))
        info = httpx.get(served.url + "/api/info").json()
    assert served.process.returncode == 0, served.output()  # SIGINT: a clean stop
    server = state["server"]
    assert server["restarts"] == 1
    assert not server["restarting"]
    last = server["last_restart"]
    assert last["epoch_before"] != last["epoch_after"] == info["epoch"], last
    assert 0 < last["serving_again_s"] < 15, last
    assert info["transports"]["mqtt"]["url"] == broker  # the broker was kept
    changes = [e for e in events if isinstance(e, EpochChanged)]
    assert [(e.previous, e.epoch) for e in changes] == [(last["epoch_before"], info["epoch"])]
    old, new = seqs_by_epoch(events)
    assert old == list(range(1, len(old) + 1))
    assert new == list(range(1, len(new) + 1)), new  # seq restarts at 1
    assert not [e for e in events if isinstance(e, GapDetected)]
    log = served.output()
    assert "restart requested" in log, log
    assert "restart 1 done" in log, log


def test_restart_with_sqlite_history_loses_nothing(tmp_path: Path) -> None:
    history = f"sqlite:///{tmp_path / 'feed.db'}"
    args = ("--faults", "--transports", "ws,poll", "--rate", "20", "--history", history)
    with serve(tmp_path, *args) as served:
        events, state = asyncio.run(follow_across_restart(served, "poll", 10, 10))
        # The same from the command line: it waits until the server serves again.
        result = CliRunner().invoke(
            app, ["fault", "server", "restart", "--url", served.url, "--token", served.admin_token]
        )
        assert result.exit_code == 0, result.output
        again = httpx.get(served.url + "/api/faults").json()["server"]
        refused = CliRunner().invoke(app, ["fault", "server", "cut", "--url", served.url])
    assert again["restarts"] == 2, again
    assert again["epoch"] == state["server"]["epoch"]
    assert refused.exit_code != 0
    last = state["server"]["last_restart"]
    assert last["epoch_before"] == last["epoch_after"], last
    assert not [e for e in events if isinstance(e, EpochChanged | GapDetected)]
    (seqs,) = seqs_by_epoch(events)
    assert seqs == list(range(1, len(seqs) + 1)), seqs  # every seq once, in order
    assert len(seqs) >= 20


def test_restart_refused_where_the_server_cannot_restart(
    make_server: Callable[..., LiveServer],
) -> None:
    """The fault lab mounted in an ordinary app (no supervisor): documented 400, logged,
    the server keeps serving."""
    port = free_port()
    lab = FaultLab("127.0.0.1", port, ["ws"])

    def factory(**kwargs: Any) -> Any:
        return install(create_app(**kwargs), lab)

    server = make_server(("ws",), config=ServerConfig(), app_factory=factory, port=port)
    r = httpx.post(server.url + RESTART, json={}, headers=server.admin_headers)
    assert r.status_code == 400
    assert r.json()["error"] == "bad_param"
    assert "serve --faults" in r.json()["detail"]
    assert "server" not in httpx.get(server.url + "/api/faults").json()
    assert httpx.get(server.url + "/api/info").status_code == 200
