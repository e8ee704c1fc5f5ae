"""Named reconnect policies: the textbook schedules and the published defaults of peers.

Each preset is a :class:`~transports.backoff.Backoff` factory, usable as
``follow(sub, backoff=PRESETS["socketio"]())``. The reconnect-storm lab
(:mod:`transports.chaos.storm`) runs them side by side. Defaults as their projects document
them (client libraries, current major versions):

- ``socketio``: socket.io-client ``reconnectionDelay`` 1000 ms, ``reconnectionDelayMax``
  5000 ms, ``randomizationFactor`` 0.5 — doubling from 1 s to 5 s, each ±50 %;
- ``signalr``: ASP.NET Core SignalR ``withAutomaticReconnect()`` retry delays 0, 2, 10,
  30 s (SignalR then gives up; here the last delay repeats);
- ``paho``: paho-mqtt ``reconnect_delay_set(min_delay=1, max_delay=120)``: 1 s doubling
  to 120 s, no jitter;
- ``eventsource``: the browser waits the stream's ``retry:`` time (HTML Living Standard
  §9.2, "reconnection time"), fixed; our server sends ``retry: 1000``.
"""

from __future__ import annotations

from collections.abc import Callable

from transports.backoff import Backoff


def immediate() -> Backoff:
    """Reconnect at once, every time."""
    return Backoff(initial=0.0, maximum=0.0, jitter="none")


def fixed(delay: float = 1.0) -> Backoff:
    """The same delay before every attempt."""
    return Backoff(initial=delay, maximum=delay, factor=1.0, jitter="none")


def exponential() -> Backoff:
    """0.5 s doubling to 30 s, no jitter: every client retries at the same instants."""
    return Backoff(initial=0.5, maximum=30.0, jitter="none")


def full_jitter() -> Backoff:
    """Ours (``follow()``'s default): uniform in [0, 0.5 s × 2**n], capped at 30 s."""
    return Backoff(initial=0.5, maximum=30.0, jitter="full")


def socketio() -> Backoff:
    return Backoff(initial=1.0, maximum=5.0, jitter="proportional", randomization=0.5)


def signalr() -> Backoff:
    return Backoff(initial=0.0, maximum=30.0, jitter="none", steps=(0.0, 2.0, 10.0, 30.0))


def paho() -> Backoff:
    return Backoff(initial=1.0, maximum=120.0, jitter="none")


def eventsource(retry_ms: int = 1000) -> Backoff:
    return fixed(retry_ms / 1000)


PRESETS: dict[str, Callable[[], Backoff]] = {
    "immediate": immediate,
    "fixed": fixed,
    "exponential": exponential,
    "full_jitter": full_jitter,
    "socketio": socketio,
    "signalr": signalr,
    "paho": paho,
    "eventsource": eventsource,
}


def preset(name: str) -> Backoff:
    """The named policy; ``ValueError`` names the choices."""
    if name not in PRESETS:
        raise ValueError(f"unknown policy {name!r}; choose from {', '.join(PRESETS)}")
    return PRESETS[name]()
