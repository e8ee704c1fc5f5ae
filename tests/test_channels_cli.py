"""The channel commands as real processes: ``follow --channel a --channel b`` prints what
``publish --channel`` sends, with the seq its ack printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable

from transports.config import ServerConfig
from transports.live import LiveServer

TOKEN = "cli-test-token"


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "transports", *args]


def test_follow_two_channels_and_publish(make_server: Callable[..., LiveServer]) -> None:
    server = make_server(("ws", "sse", "poll"), config=ServerConfig(admin_token=TOKEN))
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    follower = subprocess.Popen(
        cli(
            "follow",
            "ws",
            server.url,
            "--channel",
            "chat:a",
            "--channel",
            "chat:b",
            "--after",
            "0",
            "--count",
            "2",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        for _ in range(100):  # until the follower is subscribed to both
            subs = server.call(lambda: sum(len(c.listeners) for c in server.ctx.hub.all()))
            if subs == 2:
                break
            time.sleep(0.1)
        acks = []
        for transport, channel in (("sse", "chat:a"), ("poll", "chat:b")):
            out = subprocess.run(
                cli(
                    "publish",
                    transport,
                    server.url,
                    json.dumps({"hello": channel}),
                    "--channel",
                    channel,
                    "--id",
                    f"m-{channel}",
                    "--token",
                    TOKEN,
                ),
                capture_output=True,
                timeout=60,
                env=env,
                check=True,
            ).stdout.decode()
            acks.append(json.loads(out))
        refused = subprocess.run(
            cli("publish", "ws", server.url, "1", "--channel", "chat:a"),
            capture_output=True,
            timeout=60,
            env=env,
        )
        printed = follower.communicate(timeout=60)[0].decode()
    finally:
        follower.kill()
    assert [(a["channel"], a["seq"]) for a in acks] == [("chat:a", 1), ("chat:b", 1)]
    assert refused.returncode == 1
    assert "unauthorized" in refused.stdout.decode()
    assert "channel=chat:a seq=1" in printed
    assert "channel=chat:b seq=1" in printed
    assert "delivered=2 duplicates=0 gaps=0" in printed
