"""The package's layout: no import cycles, lower layers never import higher ones, and every
sub-package imports on its own (in a fresh interpreter, nothing imported before it).

Imports are read from the source (every ``import``, also inside functions and under
``TYPE_CHECKING``), so a cycle hidden behind a lazy import counts too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "transports"
# Layers, lowest first: a module may import its own layer and the ones before it only.
LAYERS = {
    "netem": 0,  # network emulation: nothing else of the package
    "core": 1,
    "protocols": 2,
    "app": 3,  # the dashboard: the server with its static page
    "lab": 4,  # the measurement engine
    "chaos": 5,  # experiments and the live fault lab; the demos (transports/demo/) too
    "top": 6,  # the command line
}
PROTOCOLS = {"websocket", "sse", "longpoll", "webrtc", "mqtt"}
TOP = {"transports.cli", "transports.__main__"}


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = modules()


def resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names]
        found |= {r for r in map(resolve, names) if r is not None and r != module}
    return found


GRAPH = {m: imports_of(m) for m in MODULES}


def layer(module: str) -> int:
    parts = module.split(".")
    if module in TOP:
        return LAYERS["top"]
    if module == "transports.app" or module.split(".")[1:2] == ["web"]:
        return LAYERS["app"]
    if len(parts) > 1 and parts[1] == "demo":
        return LAYERS["chaos"]
    if len(parts) > 1 and parts[1] in ("netem", "lab", "chaos"):
        return LAYERS[parts[1]]
    if len(parts) > 1 and parts[1] in PROTOCOLS:
        return LAYERS["protocols"]
    return LAYERS["core"]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_finds_a_planted_cycle() -> None:
    planted = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(planted) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    assert cycles(GRAPH) == []


def test_lower_layers_never_import_higher_ones() -> None:
    wrong = sorted(
        f"{m} -> {d}"
        for m, deps in GRAPH.items()
        for d in deps
        if layer(d) > layer(m) and d != "transports"
    )
    assert wrong == []


def test_netem_imports_nothing_else_of_the_package() -> None:
    outside = sorted(
        f"{m} -> {d}"
        for m, deps in GRAPH.items()
        if m.startswith("transports.netem")
        for d in deps
        if not d.startswith("transports.netem")
    )
    assert outside == []


@pytest.mark.parametrize("package", ["netem", "lab", "chaos"])
def test_each_package_imports_on_its_own(package: str) -> None:
    """Every module of the package, each the first thing imported by a fresh interpreter."""
    names = sorted(m for m in MODULES if m.startswith(f"transports.{package}"))
    code = (
        "import importlib, subprocess, sys\n"
        f"for name in {names!r}:\n"
        "    r = subprocess.run([sys.executable, '-c', f'import {name}'], capture_output=True,"
        " text=True)\n"
        "    if r.returncode:\n"
        "        sys.exit(f'{name}: {r.stderr.strip().splitlines()[-1]}')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
