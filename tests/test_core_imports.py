"""Imports inside fr_tui/core run one way: no module reaches itself again, not even
through an import inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "fr_tui" / "core"


def core_imports() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in CORE.glob("*.py"):
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fr_tui.core"):
                parts = (node.module or "").split(".")
                found.update([parts[2]] if len(parts) > 2 else [a.name for a in node.names])
            elif isinstance(node, ast.Import):
                found.update(
                    a.name.split(".")[2] for a in node.names if a.name.startswith("fr_tui.core.")
                )
        graph[path.stem] = found - {path.stem}
    return graph


def test_core_modules_import_one_way() -> None:
    graph = core_imports()
    assert {"validate", "validate_report", "results", "export"} <= graph.keys()
    state: dict[str, str] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                cycle = trail[trail.index(target) :] + [target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, [*trail, target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
