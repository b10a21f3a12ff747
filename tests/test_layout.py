"""DESIGN.md's layout as a test: data flows one way between the flat top-level modules. Every import (at module level
or inside a function) between our modules is read from the source; the module graph has no cycle, the op modules
never reach up into the dispatcher or the interfaces, and the sandbox never imports the product."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OURS = {path.stem for path in ROOT.glob("*.py")}
OP_MODULES = {name for name in OURS if name.startswith("fb_")}


def imports_of(path: Path) -> set[str]:
    """The top-level modules (ours or the sandbox package) a file imports anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & (OURS | {"fb_sandbox"})


def module_graph() -> dict[str, set[str]]:
    return {name: imports_of(ROOT / f"{name}.py") - {name} for name in sorted(OURS)}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle found by a depth-first walk (each reported once, from where the walk met it)."""
    found, state = [], {}

    def walk(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(path[path.index(nxt) :] + [nxt])
            elif nxt not in state:
                walk(nxt, path + [nxt])
        state[node] = "done"

    for start in graph:
        if start not in state:
            walk(start, [start])
    return found


def test_the_modules_import_each_other_without_a_cycle():
    graph = module_graph()
    assert len(graph) >= 25 and graph["admonster_bot"] >= {"admonster_chat", "admonster_server"}
    assert cycles(graph) == []


def test_the_cycle_finder_finds_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]


def test_op_modules_never_reach_up():
    upward = {
        name: sorted(imports - OP_MODULES)
        for name, imports in module_graph().items()
        if name in OP_MODULES and imports - OP_MODULES
    }
    assert upward == {}, "op modules import only fb_* modules (fb_utils below them)"


def test_the_sandbox_never_imports_the_product():
    product = {path: sorted(imports_of(path) - {"fb_sandbox"}) for path in (ROOT / "fb_sandbox").rglob("*.py")}
    assert {str(path.relative_to(ROOT)): found for path, found in product.items() if found} == {}


def test_every_module_is_installed():
    import tomllib

    declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["py-modules"])
    assert declared == OURS, (
        f"pyproject.toml py-modules: missing {sorted(OURS - declared)}, stale {sorted(declared - OURS)}"
    )
