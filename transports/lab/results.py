"""Results: tidy rows (one per transport × cell × repeat) in CSV plus a JSON sidecar.

The sidecar records what a reader needs to trust or reproduce the numbers: Python and
library versions, CPU model and count, kernel, the git commit, the broker, and the scenario.
CPU placement of each run is a column of the rows themselves (``server_cpu``,
``client_cpus``), because it differs from run to run.
"""

from __future__ import annotations

import csv
import json
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

LIBRARIES = (
    "transport-lab", "starlette", "uvicorn", "websockets", "httpx", "sse-starlette",
    "aiortc", "paho-mqtt", "amqtt", "hdrhistogram", "pandas",
)  # fmt: skip


def environment() -> dict[str, Any]:
    """What this machine and checkout are (best effort: every probe may be missing)."""
    versions: dict[str, str | None] = {}
    for lib in LIBRARIES:
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            versions[lib] = None
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "libraries": versions,
        "cpu_model": _cpu_model(),
        "cpu_count": _cpu_count(),
        "kernel": platform.release(),
        "platform": platform.platform(),
        "git_sha": _run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent),
        "mosquitto": _run(["mosquitto", "-h"], first_line=True)
        if shutil.which("mosquitto")
        else None,
    }


def _cpu_count() -> int:
    import os

    return os.cpu_count() or 0


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _run(cmd: list[str], cwd: Path | None = None, first_line: bool = False) -> str | None:
    try:
        out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    text = (out.stdout or out.stderr).strip()
    return (text.splitlines()[0] if text else None) if first_line else (text or None)


def write(
    rows: list[dict[str, Any]], outdir: str | Path, meta: dict[str, Any], name: str = "results"
) -> tuple[Path, Path]:
    """Write ``<name>.csv`` and ``<name>.json`` (environment + ``meta``) into ``outdir``."""
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out / f"{name}.csv", out / f"{name}.json"
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    with csv_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    json_path.write_text(
        json.dumps({"environment": environment(), **meta}, indent=2, default=str) + "\n"
    )
    return csv_path, json_path


def load(path: str | Path) -> Any:
    """Load a results CSV (or the folder holding ``results.csv``) as a pandas DataFrame.

    The sidecar is attached as ``df.attrs["meta"]``.
    """
    import pandas as pd

    p = Path(path)
    if p.is_dir():
        p = p / "results.csv"
    df = pd.read_csv(p)
    sidecar = p.with_suffix(".json")
    if sidecar.exists():
        df.attrs["meta"] = json.loads(sidecar.read_text())
    return df


def spread(df: Any, metric: str = "p99_ms", by: tuple[str, ...] = ("transport",)) -> Any:
    """Per group: min, median, max and (max − min) of ``metric`` across repeats."""
    grouped = df.groupby(list(by))[metric]
    out = grouped.agg(["count", "min", "median", "max"])
    out["range"] = out["max"] - out["min"]
    return out.reset_index()
