"""MQTT resume, measured: lost and duplicated messages across network cuts and broker restarts.

    .venv/bin/python demos/mqtt_resume/run.py [--messages 600] [--interval 0.005] [--log FILE]

(from the repository root, after ``./dev test`` or ``./dev serve`` created ``.venv``; needs
Mosquitto for the Mosquitto rows). Takes about a minute.

Each scenario starts its own broker and server on free loopback ports, publishes
``--messages`` messages at a steady pace, breaks something in the middle, and follows the
feed with the MQTT client (``backfill=False`` shows what the broker session alone does;
``backfill=True`` adds the client's /mqtt/replay backfill). Columns:

- delivered: messages the application got; lost: published but neither delivered nor
  reported in a gap (silent loss — must be 0); gap: reported missing;
- dup@app: duplicates that reached ``follow()``; resent: repeats the broker re-sent that the
  client dropped by seq; resumed: reconnects that found their broker session.

Log lines (the proxy's cuts, the brokers' own logging) go to ``--log FILE`` if given, and are
otherwise silenced below ERROR, so the table is printed in one piece at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import shutil
import sys
from dataclasses import dataclass

from transports.backoff import Backoff
from transports.client import Delivered, FollowStats, GapDetected, follow
from transports.config import ServerConfig
from transports.live import LiveServer
from transports.mqtt.client import MQTTSubscriber
from transports.mqtt.embedded import AmqttBroker
from transports.mqtt.mosquitto import MosquittoBroker
from transports.netem.proxy import FaultProxy

FAST = Backoff(initial=0.05, maximum=0.5)


@dataclass
class Scenario:
    name: str
    broker: str  # mosquitto | amqtt
    fault: str  # cut | restart | kill
    persistence: bool = True
    backfill: bool = False


SCENARIOS = [
    Scenario("cut x3", "mosquitto", "cut"),
    Scenario("restart (SIGTERM), persistence", "mosquitto", "restart"),
    Scenario("restart (SIGKILL), persistence", "mosquitto", "kill"),
    Scenario("restart, no persistence", "mosquitto", "restart", persistence=False),
    Scenario("restart, no persistence, backfill", "mosquitto", "restart", False, True),
    Scenario("amqtt cut x3", "amqtt", "cut"),
    Scenario("amqtt cut x3, backfill", "amqtt", "cut", backfill=True),
]


async def run(s: Scenario, n: int, interval: float) -> dict[str, object]:
    broker: MosquittoBroker | AmqttBroker
    if s.broker == "mosquitto":
        broker = MosquittoBroker(executable=shutil.which("mosquitto") or "/usr/sbin/mosquitto",
                                 persistence=s.persistence)  # fmt: skip
    else:
        broker = AmqttBroker()  # runs in this process's loop, as the external broker
    await broker.start()
    url = broker.bridge_url  # with the credentials the bridge publishes with
    # Start/stop in a worker thread: an amqtt broker lives on this loop and must keep running.
    server = await asyncio.to_thread(LiveServer(("mqtt",), ServerConfig(mqtt_url=url)).start)
    proxy = await FaultProxy("127.0.0.1", broker.port).start()
    info = server.ctx.transports["mqtt"].info(server.url)
    sub = MQTTSubscriber(
        f"mqtt://127.0.0.1:{proxy.port}", mqtt5=broker.mqtt5,
        replay_url=info["replay_url"], backfill=s.backfill,
    )  # fmt: skip
    stats, seqs, gaps = FollowStats(), [], []

    async def consume() -> None:
        async for event in follow(sub, 0, backoff=FAST, stats=stats, idle_timeout=15):
            if isinstance(event, Delivered):
                seqs.append(event.message.seq)
                if event.message.seq >= n:
                    return
            elif isinstance(event, GapDetected):
                gaps.append(event)
                if event.first > n:
                    return

    async def publish() -> None:
        for i in range(n):
            await asyncio.to_thread(server.publish, {"i": i})
            await asyncio.sleep(interval)

    consumer = asyncio.ensure_future(consume())
    try:
        async with asyncio.timeout(20):
            while sub.counters["connects"] < 1:  # noqa: ASYNC110 - set by the client
                await asyncio.sleep(0.01)
        publisher = asyncio.ensure_future(publish())
        pause = n * interval / 4
        if s.fault == "cut":
            for _ in range(3):
                await asyncio.sleep(pause)
                proxy.cut()
        else:
            await asyncio.sleep(pause * 2)
            if isinstance(broker, MosquittoBroker):
                await broker.restart(kill=s.fault == "kill")
            else:
                await broker.restart()
        await publisher
        async with asyncio.timeout(30):
            await consumer
    finally:
        consumer.cancel()
        with contextlib.suppress(BaseException):
            await consumer
        await proxy.stop()
        await asyncio.to_thread(server.stop)
        await broker.close()
    reported = set(seqs)
    for gap in gaps:
        reported |= set(range(gap.after + 1, gap.first))
    return {
        "scenario": s.name,
        "delivered": len(seqs),
        "lost": len(set(range(1, n + 1)) - reported),
        "gap": stats.missing,
        "dup@app": stats.duplicates,
        "resent": sub.counters["repeats"],
        "resumed": f"{sub.counters['sessions_resumed']}/{sub.counters['connects'] - 1}",
        "backfilled": sub.counters["backfilled"],
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=600)
    parser.add_argument("--interval", type=float, default=0.005)
    parser.add_argument("--log", help="write log lines to this file (default: errors only)")
    args = parser.parse_args()
    # One handler on the root logger, before any library adds its own, so nothing is printed
    # in the middle of the table.
    logging.basicConfig(
        level=logging.INFO if args.log else logging.ERROR,
        filename=args.log,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    for name in ("amqtt", "transitions", "asyncio"):
        logging.getLogger(name).setLevel(logging.WARNING if args.log else logging.CRITICAL)
    rows = []
    for i, s in enumerate(SCENARIOS, 1):
        print(f"[{i}/{len(SCENARIOS)}] {s.name} …", file=sys.stderr, flush=True)
        rows.append(await run(s, args.messages, args.interval))
    print(f"\n{args.messages} messages, one every {args.interval * 1000:g} ms, QoS 1")
    widths = [36, 9, 4, 4, 7, 6, 7, 10]
    print("  ".join(c.ljust(w) for c, w in zip(rows[0], widths, strict=True)))
    for row in rows:
        print("  ".join(str(v).ljust(w) for v, w in zip(row.values(), widths, strict=True)))


if __name__ == "__main__":
    asyncio.run(main())
