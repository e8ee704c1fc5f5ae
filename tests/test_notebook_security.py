"""Notebook 08-security executes top to bottom with quick parameters (TRANSPORT_LAB_QUICK=1)
and shows its TLS cost figures."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

PATH = Path(__file__).parent.parent / "notebooks" / "08-security.ipynb"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_security_notebook_executes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRANSPORT_LAB_QUICK", "1")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend makes PNGs
    nb = nbformat.read(PATH, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 2
    text = "".join(str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "resumed" in text  # the server resumed a session
    assert "tls_extra_ms" in text
