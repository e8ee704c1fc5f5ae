"""One colour per transport everywhere: the dashboard's CSS, ``compare.png`` and every figure
the committed notebooks show use :mod:`transports.palette` and nothing that could be mistaken
for another transport."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

from tests.palette_check import foreign_colours, transport_colours
from transports.palette import TRANSPORTS

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("0*-*.ipynb"))


def test_dashboard_css_uses_the_palette() -> None:
    css = (ROOT / "transports/web/static/dashboard.css").read_text()
    for name, colour in TRANSPORTS.items():
        found = re.search(rf"--{name}:\s*(#[0-9A-Fa-f]{{6}})", css)
        assert found is not None, name
        assert found.group(1).upper() == colour.upper(), (name, found.group(1), colour)


def test_the_checker_catches_matplotlibs_default_colours(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.bar([0, 1], [1, 2])  # tab:blue, the default
    ax.bar([2], [2], color=TRANSPORTS["ws"])
    fig.savefig(tmp_path / "x.png")
    plt.close(fig)
    png = (tmp_path / "x.png").read_bytes()
    assert foreign_colours(png), "tab:blue must not pass for WebSocket's blue"
    assert transport_colours(png) == {"ws"}


def test_compare_png_uses_one_colour_per_transport(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    from transports.lab import report

    rows = [
        {"transport": t, "p50_ms": 1.0 + i, "p99_ms": 5.0 + i, "p99_min_ms": 4.0,
         "p99_max_ms": 9.0 + i, "p99_9_ms": 12.0 + i, "valid": i != 1,
         "per_msg_down": 300 + 20 * i, "per_msg_up": 10 * i, "framing_per_msg": 20 + 20 * i}
        for i, t in enumerate(TRANSPORTS)
    ]  # fmt: skip
    png = report.chart(pd.DataFrame(rows), tmp_path / "compare.png", "t", "c").read_bytes()
    assert foreign_colours(png) == []
    assert transport_colours(png) == set(TRANSPORTS)


def _figures(path: Path) -> list[bytes]:
    nb = json.loads(path.read_text())
    return [
        base64.b64decode(o["data"]["image/png"])
        for c in nb["cells"]
        if c["cell_type"] == "code"
        for o in c.get("outputs", [])
        if "image/png" in o.get("data", {})
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_committed_notebook_figure_uses_the_palette(path: Path) -> None:
    figures = _figures(path)
    assert figures, f"{path.name} has no figures"
    for i, png in enumerate(figures):
        assert foreign_colours(png) == [], f"{path.name} figure {i + 1}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_committed_notebook_figure_states_its_conditions(path: Path) -> None:
    """A cell that draws a figure titles it with :func:`transports.lab.plots.subtitle`, which
    carries the conditions (rate, clients, payload, machine) it was measured under."""
    nb = json.loads(path.read_text())
    for i, cell in enumerate(nb["cells"]):
        outputs = cell.get("outputs", []) if cell["cell_type"] == "code" else []
        if any("image/png" in o.get("data", {}) for o in outputs):
            assert "subtitle(" in "".join(cell["source"]), f"{path.name} cell {i} has no subtitle"
