"""Which colours a PNG figure uses, checked against :mod:`transports.palette`.

A figure may use the five transport colours, blends of them with white (alpha, light
stacked segments) and neutral greys — nothing else that is saturated. matplotlib's default
cycle (tab:blue, tab:orange, …) is close in hue to the palette but not the same RGB, and not a
blend of a palette colour with white, so a plot that forgot ``color=`` is caught.
"""

from __future__ import annotations

import io
from collections import Counter

from PIL import Image

from transports.palette import TRANSPORTS

MIN_PIXELS = 150  # a colour must cover at least this much to count (anti-aliasing is not)


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    h = hex_colour.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


PALETTE = [_rgb(c) for c in TRANSPORTS.values()]


def _saturated(c: tuple[int, int, int]) -> bool:
    return max(c) - min(c) > 40


def _blend_of(c: tuple[int, int, int], p: tuple[int, int, int], tol: float = 6.0) -> bool:
    """Is ``c`` = a·p + (1 − a)·g for some a in (0, 1] and a neutral grey g (white paper,
    a grey grid line under a translucent bar)? matplotlib's defaults are not."""
    for step in range(100, 4, -1):
        a = step / 100
        if a == 1:
            if max(abs(pc - cc) for pc, cc in zip(p, c, strict=True)) <= 2 * tol:
                return True
            continue
        rest = [(cc - a * pc) / (1 - a) for pc, cc in zip(p, c, strict=True)]
        if all(-tol <= v <= 255 + tol for v in rest) and max(rest) - min(rest) <= tol / (1 - a):
            return True
    return False


def foreign_colours(png: bytes) -> list[tuple[tuple[int, int, int], int]]:
    """Saturated colours covering >= MIN_PIXELS that are neither palette colours nor their
    blends with white, with their pixel counts."""
    img = Image.open(io.BytesIO(png)).convert("RGB")
    img.thumbnail((800, 800))  # enough to see every bar and line; keeps the count fast
    counts = Counter({c: n for n, c in img.getcolors(maxcolors=1 << 24) or []})
    scale = MIN_PIXELS * (img.width * img.height) / (800 * 500)
    out = []
    for c, n in counts.items():
        if n < scale or not _saturated(c):
            continue
        if not any(_blend_of(c, p) for p in PALETTE):
            out.append((c, n))
    return sorted(out, key=lambda x: -x[1])


def transport_colours(png: bytes) -> set[str]:
    """Which transports' exact colours appear in the figure."""
    img = Image.open(io.BytesIO(png)).convert("RGB")
    img.thumbnail((800, 800))
    counts = Counter({c: n for n, c in img.getcolors(maxcolors=1 << 24) or []})
    found = set()
    for name, hex_colour in TRANSPORTS.items():
        p = _rgb(hex_colour)
        if (
            sum(
                n
                for c, n in counts.items()
                if max(abs(a - b) for a, b in zip(c, p, strict=True)) <= 3
            )
            >= 20
        ):
            found.add(name)
    return found
