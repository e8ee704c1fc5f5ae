"""What the demo server publishes by itself: ticker prices, a scripted match, a bot cursor.

Each is a task started with the demo app (:func:`start`) and cancelled at shutdown, and
each publishes straight into its channels' feeds (server-side: no principal, no hook), so
every transport delivers the same ``(channel, seq)`` to every client.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from transports.server import ServerContext

SYMBOLS = ("ACME", "GLOBX", "INITECH", "UMBRL", "STARK", "WAYNE", "TYRELL", "CYBRD")
MATCHES = {
    "match-1": ("Rovers", "United"),
    "match-2": ("Athletic", "Wanderers"),
}
MAX_RATE = 1000.0


@dataclass
class Settings:
    """What the page (``POST /demos/api/ticker``) and the CLI may change at run time."""

    ticker_rate: float = 4.0  # messages/s over all symbols
    book_every: int = 8  # every Nth message of a symbol carries its order book (a big one)
    match_tick: float = 1.0  # seconds per match minute
    bot_hz: float = 30.0  # the bot cursor's positions per second
    running: set[str] = field(default_factory=lambda: {"ticker", "scores", "cursors"})

    def describe(self) -> dict[str, Any]:
        return {
            "ticker_rate": self.ticker_rate,
            "book_every": self.book_every,
            "match_tick": self.match_tick,
            "bot_hz": self.bot_hz,
        }


class Stopped(Exception):
    """The server is shutting down: the scripts end quietly."""


def publish(ctx: ServerContext, channel: str, data: Any) -> None:
    ch = ctx.hub.channel(channel)
    if ch.feed.draining or ctx.feed.draining:
        raise Stopped
    ch.feed.publish(data, ch.namespace or ch.name)


async def ticker(ctx: ServerContext, settings: Settings, rng: random.Random) -> None:
    prices = {s: 50.0 + 10 * i for i, s in enumerate(SYMBOLS)}
    counts = dict.fromkeys(SYMBOLS, 0)
    i = 0
    due = 0.0  # messages owed at the current rate (the fraction carries over)
    loop = asyncio.get_running_loop()
    last = loop.time()
    while True:
        # Wake every 20 ms at most and publish what the rate owes since the last wake-up:
        # hundreds of messages per second without one timer per message.
        await asyncio.sleep(min(0.02, 1 / settings.ticker_rate) if settings.ticker_rate else 0.2)
        now = loop.time()
        due = min(due + (now - last) * min(settings.ticker_rate, MAX_RATE), MAX_RATE)
        last = now
        while due >= 1:
            due -= 1
            symbol = SYMBOLS[i % len(SYMBOLS)]
            i += 1
            counts[symbol] += 1
            publish(ctx, f"ticker:{symbol}", quote(prices, symbol, counts[symbol], settings, rng))


def quote(
    prices: dict[str, float], symbol: str, n: int, settings: Settings, rng: random.Random
) -> dict[str, Any]:
    old = prices[symbol]
    prices[symbol] = new = max(1.0, old * (1 + rng.gauss(0, 0.002)))
    data: dict[str, Any] = {
        "symbol": symbol,
        "price": round(new, 2),
        "change": round(new - old, 3),
        "bid": round(new - 0.01, 2),
        "ask": round(new + 0.01, 2),
        "volume": rng.randrange(100, 10_000),
    }
    if settings.book_every and n % settings.book_every == 0:
        # A full order book: repetitive JSON, the kind of message compression pays for.
        data["book"] = [
            {"bid": round(new - 0.01 * k, 2), "ask": round(new + 0.01 * k, 2), "size": 100 * k}
            for k in range(1, 21)
        ]
    return data


def match_events(rng: random.Random, home: str, away: str) -> list[dict[str, Any]]:
    """One scripted match: an update per minute, with goals and cards drawn from ``rng``."""
    score = [0, 0]
    out: list[dict[str, Any]] = [
        {"minute": 0, "score": [0, 0], "event": "kickoff", "text": f"{home} v {away} kicks off"}
    ]
    for minute in range(1, 91):
        roll = rng.random()
        event, text = "minute", f"{minute}'"
        if roll < 0.05:
            side = rng.randrange(2)
            score[side] += 1
            event, text = "goal", f"GOAL {(home, away)[side]}! {score[0]}-{score[1]}"
        elif roll < 0.09:
            event, text = "card", f"yellow card for {(home, away)[rng.randrange(2)]}"
        out.append({"minute": minute, "score": list(score), "event": event, "text": text})
    out.append({"minute": 90, "score": list(score), "event": "full_time", "text": "full time"})
    return out


async def matches(ctx: ServerContext, settings: Settings, rng: random.Random) -> None:
    while True:
        scripts = {name: iter(match_events(rng, *teams)) for name, teams in MATCHES.items()}
        while scripts:
            for name, events in list(scripts.items()):
                event = next(events, None)
                if event is None:
                    del scripts[name]
                    continue
                publish(ctx, f"scores:{name}", {"match": name, "teams": MATCHES[name], **event})
            await asyncio.sleep(settings.match_tick)
        await asyncio.sleep(5 * settings.match_tick)


async def bot_cursor(ctx: ServerContext, settings: Settings) -> None:
    """A cursor tracing a Lissajous curve, so a lone page (or a test) sees motion."""
    n = 0
    while True:
        hz = settings.bot_hz
        if hz <= 0:
            await asyncio.sleep(0.2)
            continue
        t = n / 60
        x, y = 0.5 + 0.4 * math.sin(1.3 * t), 0.5 + 0.4 * math.sin(2.1 * t)
        publish(ctx, "cursors:arena", {"x": round(x, 4), "y": round(y, 4), "from": "bot", "n": n})
        n += 1
        await asyncio.sleep(1 / min(hz, 60.0))


async def _quietly(script: Coroutine[Any, Any, None]) -> None:
    with contextlib.suppress(Stopped):
        await script


def start(ctx: ServerContext, settings: Settings, seed: int = 7) -> None:
    rng = random.Random(seed)
    if "ticker" in settings.running:
        ctx.spawn(_quietly(ticker(ctx, settings, rng)), "demo-ticker")
    if "scores" in settings.running:
        ctx.spawn(_quietly(matches(ctx, settings, rng)), "demo-scores")
    if "cursors" in settings.running:
        ctx.spawn(_quietly(bot_cursor(ctx, settings)), "demo-bot-cursor")
