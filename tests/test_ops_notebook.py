"""Notebook 06-operations executes top to bottom with quick parameters (TRANSPORT_LAB_QUICK=1)
and is what ``notebooks/make_operations.py`` generates."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).parent.parent / "notebooks"
PATH = NOTEBOOKS / "06-operations.ipynb"


def test_committed_notebook_matches_its_generator() -> None:
    sys.path.insert(0, str(NOTEBOOKS))
    try:
        import make_operations
    finally:
        sys.path.remove(str(NOTEBOOKS))
    committed = nbformat.read(PATH, as_version=4)
    assert [c.source for c in committed.cells] == [c.source for c in make_operations.cells()]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_operations_notebook_executes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRANSPORT_LAB_QUICK", "1")
    monkeypatch.delenv("MPLBACKEND", raising=False)
    nb = nbformat.read(PATH, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "no plot produced"
    text = "".join(o.get("text", "") for o in outputs)
    assert "scrapes" in text
