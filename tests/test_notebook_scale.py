"""Notebook 07-scale-out executes top to bottom with quick parameters (TRANSPORT_LAB_QUICK=1)
against a real redis-server and HAProxy, and every run in it keeps the wire contract."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import require_cluster_parts

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).parent.parent / "notebooks" / "07-scale-out.ipynb"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_scale_out_notebook_executes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    require_cluster_parts()
    monkeypatch.setenv("TRANSPORT_LAB_QUICK", "1")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend makes PNGs
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 3, "three plots"
    text = "".join(str(o.get("text", "")) for o in outputs)
    assert "runs with a duplicate, gap or missing seq: 0" in text
