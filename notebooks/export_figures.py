"""Export every figure of the committed notebooks as a PNG file, ready for slides.

    python notebooks/export_figures.py [--out workshop/figures] [NOTEBOOK ...]

The notebooks are committed with the outputs of a full run on a stated machine, and every
figure in them already uses the one palette (``transports/palette.py``: one colour per
transport) and states its conditions in a subtitle. This script takes those figures out
as they are, one file per figure, named ``<notebook>-<n>-<title>.png`` after the notebook
and the Markdown heading above the cell that drew it, and writes ``index.md`` listing them.
Re-run the notebooks first (``./dev notebooks``) to export figures true for your machine.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _slug(text: str) -> str:
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return words[:48].rstrip("-") or "figure"


def figures(notebook: Path) -> list[tuple[str, bytes]]:
    """``(title, png bytes)`` for every image output, in notebook order."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    out: list[tuple[str, bytes]] = []
    heading = notebook.stem
    for cell in cells:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("#"):
                    heading = line.lstrip("#").strip()
                    break
            continue
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" in data:
                png = base64.b64decode("".join(data["image/png"]))
                if not png.startswith(PNG_MAGIC):
                    raise ValueError(f"{notebook.name}: an image output is not a PNG")
                out.append((heading, png))
    return out


def export(notebooks: list[Path], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    lines = ["# Figures exported from the notebooks", ""]
    for notebook in notebooks:
        for n, (title, png) in enumerate(figures(notebook), start=1):
            path = out / f"{notebook.stem}-{n}-{_slug(title)}.png"
            path.write_bytes(png)
            written.append(path)
            lines.append(f"- [{path.name}]({path.name}) — {notebook.name}: {title}")
    (out / "index.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE.parent / "workshop" / "figures")
    parser.add_argument("notebooks", nargs="*", type=Path)
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted(HERE.glob("*.ipynb"))
    missing = [str(p) for p in notebooks if not p.is_file()]
    if missing:
        print(f"export_figures: no such notebook: {', '.join(missing)}", file=sys.stderr)
        return 2
    written = export(notebooks, args.out)
    print(f"{len(written)} figures from {len(notebooks)} notebooks in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
