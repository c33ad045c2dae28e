"""The package's import graph: light to import, data flowing one way, no cycle."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import smartdownsample

PACKAGE = Path(smartdownsample.__file__).parent

HEAVY = (
    "smartdownsample.synthetic",
    "smartdownsample.cache",
    "smartdownsample.plotting",
    "smartdownsample.htmlreport",
    "smartdownsample.formats",
    "smartdownsample.cli",
    "sqlite3",
    "matplotlib",
    "dask",
    "distributed",
    "pandas",
    "tqdm",
)
"""Modules that ``import smartdownsample`` must not load: each is loaded where it is used."""


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path) -> set[str]:
    """Package modules ``path`` imports, at any depth, except under ``if TYPE_CHECKING``."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".")
            base = base[: len(base) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                found.add(target if node.module else f"{target}.{alias.name}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("smartdownsample"):
            found.add(node.module or "")
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("smartdownsample"))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    modules = {_module_name(p) for p in PACKAGE.rglob("*.py")}
    resolved = set()
    for name in found:
        while name and name not in modules:
            name = name.rsplit(".", 1)[0] if "." in name else ""
        if name and name != module:
            resolved.add(name)
    return resolved


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in PACKAGE.rglob("*.py")}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle found by depth-first search (each reported once, from a start)."""
    found: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt.startswith(f"{node}.") or node.startswith(f"{nxt}."):
                continue  # a package and its own modules
            if state.get(nxt) == 1:
                found.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_import_is_light() -> None:
    code = (
        "import json, sys, smartdownsample; "
        f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({HEAVY!r}))))"
    )
    loaded = json.loads(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
    )
    assert loaded == []


def test_lazy_names_still_work() -> None:
    assert callable(smartdownsample.make_dataset)
    assert smartdownsample.SyntheticDataset.__name__ == "SyntheticDataset"


def test_no_import_cycle() -> None:
    graph = _graph()
    assert len(graph) > 20, "the package was not found"
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
