"""The package's layering, checked from the source: no import cycles (deferred imports count), the
pipeline free of Celery, and ``workers`` assembled only by the entry points."""

from __future__ import annotations

import ast
from pathlib import Path

import hera_router

PACKAGE = Path(hera_router.__file__).parent

ENTRY_POINTS = ("hera_router.cli", "hera_router.api.app", "hera_router.api.state", "hera_router.api.health",
                "hera_router.evaluation.live", "hera_router.workers")  # fmt: skip
"""Modules that may import ``hera_router.workers``: the processes' entry points (the CLI, the API
application that publishes through a Celery app, the live evaluation runner) and workers itself."""


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path, modules: set[str]) -> set[str]:
    """Every hera_router module ``path`` imports at run time (top level or inside a function)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in modules else node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return {name for name in found if name in modules}


def _graph() -> dict[str, set[str]]:
    paths = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    modules = set(paths)
    graph = {name: _imports(path, modules) for name, path in paths.items()}
    # Importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__`` first: a package depends on
    # what its __init__ imports, and a module on its parent packages.
    for name in list(graph):
        parts = name.split(".")
        for depth in range(2, len(parts)):
            parent = ".".join(parts[:depth])
            if parent in graph and parent != name:
                graph[name].add(parent)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return components


def _without_package_edges(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """A package's __init__ that imports its own submodules (to re-export them) is not a cycle
    of design; drop the edges from a package to its own children and back."""
    pruned: dict[str, set[str]] = {}
    for name, targets in graph.items():
        pruned[name] = {t for t in targets if not (t.startswith(name + ".") or name.startswith(t + "."))}
    return pruned


def test_no_import_cycles() -> None:
    assert _cycles(_without_package_edges(_graph())) == []


def test_the_pipeline_knows_nothing_of_celery() -> None:
    for path in (PACKAGE / "pipeline").rglob("*.py"):
        tree = ast.parse(path.read_text())
        names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        names |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not {n for n in names if n.split(".")[0] in {"celery", "kombu", "billiard"}}, path


def test_only_entry_points_import_workers() -> None:
    graph = _graph()
    offenders = {
        name: sorted(t for t in targets if t == "hera_router.workers" or t.startswith("hera_router.workers."))
        for name, targets in graph.items()
        if not name.startswith(ENTRY_POINTS)
    }
    assert {name: targets for name, targets in offenders.items() if targets} == {}


def test_the_api_write_path_loads_no_celery() -> None:
    graph = _graph()
    seen: set[str] = set()
    todo = ["hera_router.api.service", "hera_router.api.openai.service"]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph[name])
    assert not any(name.startswith("hera_router.workers") for name in seen), sorted(seen)
