"""Write a generated notebook: the one place that knows the kernel metadata.

Every ``make_*.py`` builds its cells and calls :func:`write`; the notebooks are then executed
(``jupyter execute --inplace``, or by the tests with ``TRANSPORT_LAB_QUICK=1``).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat import NotebookNode
from nbformat.v4 import new_notebook

HERE = Path(__file__).resolve().parent
KERNEL = {"name": "python3", "display_name": "Python 3", "language": "python"}


def write(name: str, cells: list[NotebookNode]) -> Path:
    """Write ``notebooks/<name>.ipynb`` (unexecuted) and return its path."""
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = dict(KERNEL)
    path = HERE / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path
