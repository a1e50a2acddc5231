"""Imports inside fr_tui run one way: no module reaches itself through other modules.

Every import statement counts: at module level, inside functions (lazy imports), and
under `if TYPE_CHECKING:`. A lazy import only moves the cost of loading a module to the
moment it is needed; the dependency is the same, and it is what makes two modules
impossible to understand, test or move apart one without the other. (The circles the
project once had were mostly lazy ones: cli.py imported headless.py inside main().)
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "fr_tui"

# Circles another branch removes (the `scale` work on core/results, core/export,
# core/validate and core/validate_report). Delete an entry once it is gone: the test
# fails on any circle not listed here, and on a listed one that grows.
KNOWN_ELSEWHERE: list[set[str]] = []


def module_names() -> dict[str, Path]:
    names: dict[str, Path] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def import_graph() -> dict[str, set[str]]:
    """module -> the fr_tui modules it imports, resolving `from X import Y` to X.Y when
    Y is a module and to X otherwise, and relative imports against the package."""
    names = module_names()
    graph: dict[str, set[str]] = {name: set() for name in names}
    for name, path in names.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                graph[name].update(alias.name for alias in node.names if alias.name in names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    parts = parts[: len(parts) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                for alias in node.names:
                    target = f"{base}.{alias.name}"
                    if target in names:
                        graph[name].add(target)
                    elif base in names:
                        graph[name].add(base)
    return graph


def circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (or a self-import)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph[node]:
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_lazy_and_type_checking_imports() -> None:
    graph = import_graph()
    assert len(graph) > 40
    # cli.py loads the commands inside main(): a function-level import is an edge.
    assert "fr_tui.headless" in graph["fr_tui.cli"]
    # the TUI's first import of the app is inside run_tui()
    assert "fr_tui.tui.app" in graph["fr_tui.tui.run"]


def test_a_circle_is_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert sorted(map(sorted, circles(graph))) == [["a", "b", "c"], ["e"]]


def test_no_import_circles() -> None:
    unexpected = [c for c in circles(import_graph()) if c not in KNOWN_ELSEWHERE]
    assert unexpected == [], f"import circles: {[sorted(c) for c in unexpected]}"
