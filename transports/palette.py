"""One colour per transport, everywhere: the dashboard, ``compare.png`` and every notebook.

The Okabe–Ito palette (Okabe & Ito, "Color Universal Design", 2002) stays distinguishable
with the common colour-vision deficiencies. The dashboard's CSS variables (``--ws`` …
``--mqtt`` in ``web/static/dashboard.css``) carry the same values; ``tests/test_palette.py``
checks that they do, and that every committed figure uses one colour per transport.

Things that are not transports (percentiles, policies, payload vs framing) get
:data:`SERIES` colours and are told apart by line style or hatching, so a transport's colour
never means anything else.
"""

from __future__ import annotations

TRANSPORTS: dict[str, str] = {
    "ws": "#0072B2",  # blue
    "sse": "#E69F00",  # orange
    "poll": "#009E73",  # bluish green
    "webrtc": "#CC79A7",  # reddish purple
    "mqtt": "#D55E00",  # vermillion
}
LABELS: dict[str, str] = {
    "ws": "WebSocket",
    "sse": "SSE",
    "poll": "long polling",
    "webrtc": "WebRTC",
    "mqtt": "MQTT",
}
# Neutral colours for series that are not transports: greys and black.
SERIES: tuple[str, ...] = ("#000000", "#555555", "#999999", "#CCCCCC")
# Line styles for percentiles drawn in a transport's colour.
PERCENTILE_STYLES: dict[str, str] = {"p50": "-", "p99": "--", "p99.9": ":"}


def color(transport: str) -> str:
    """The colour of ``transport`` (a neutral grey for anything else)."""
    return TRANSPORTS.get(transport, SERIES[1])


def conditions(**values: object) -> str:
    """A figure subtitle stating its conditions, e.g. ``conditions(rate="200 msg/s", ...)``,
    plus the machine it was measured on."""
    import os
    import platform

    parts = [f"{k.replace('_', ' ')} {v}" for k, v in values.items() if v not in (None, "")]
    machine = f"{os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}"
    return " · ".join([*parts, machine])
