"""The package's layering, checked from the source.

* No import cycles (deferred imports count), the pipeline free of Celery, and ``workers``
  assembled only by the entry points.
* ``evaluation`` sits on top of ``training``: a study (report, matrix, graphs, ladder, real edge)
  may call training (bootstrap, calibration, the fitted baselines, the ladder's start estimators)
  and the replay of a recorded profile, which lives in ``training`` because calibration and the
  cold-start fit replay profiles too. Nothing in ``training`` imports ``evaluation``, not even
  under ``TYPE_CHECKING`` or inside a function.
* A study (``STUDIES``) builds on the evaluation core (stats, metrics, render, worlds,
  world_replay, compare, sweeps, calibrate, live, plots) and imports no other study.
* No module (package, tests, benchmarks) imports another module's ``_private`` name: what two
  modules share is public, in the module that owns it.
* Docstrings and comments name only files that are in the repository (or that the code itself
  reads or writes, such as ``state.json``): intent belongs in the text, not a pointer to a design
  note a reader of the checkout does not have.
* Docstrings and comments carry no issue-tracker references: a reader of the checkout has no
  tracker to look them up in, and the history of a change belongs in git and docs/.
* No function in ``evaluation`` or ``training`` is longer than 80 lines.
"""

from __future__ import annotations

import ast
import io
import re
import subprocess
import tokenize
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import hera_router

PACKAGE = Path(hera_router.__file__).parent
REPO = PACKAGE.parent
FIRST_PARTY = ("hera_router", "tests", "benchmarks")
MAX_FUNCTION_LINES = 80

ENTRY_POINTS = (
    "hera_router.cli",
    "hera_router.api.app",
    "hera_router.api.state",
    "hera_router.api.health",
    "hera_router.evaluation.live",
    "hera_router.workers",
)
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


# -- private names ------------------------------------------------------------------------------


def _sources() -> list[Path]:
    return sorted(path for top in FIRST_PARTY for path in (REPO / top).rglob("*.py") if ".venv" not in path.parts)


def _first_party(module: str) -> bool:
    return module.split(".", maxsplit=1)[0] in FIRST_PARTY


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _private_uses(path: Path) -> Iterator[tuple[int, str]]:
    """``from m import _x`` and ``m._x`` on an imported first-party module, with their lines."""
    tree = ast.parse(path.read_text())
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and _first_party(node.module):
            for alias in node.names:
                if _private(alias.name):
                    yield node.lineno, f"from {node.module} import {alias.name}"
                else:
                    modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            modules.update((a.asname or a.name).split(".")[0] for a in node.names if _first_party(a.name))
    for node in ast.walk(tree):
        on_module = isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules
        if on_module and _private(node.attr):
            yield node.lineno, f"{node.value.id}.{node.attr}"


def test_no_module_uses_another_modules_private_names() -> None:
    found = [
        f"{path.relative_to(REPO)}:{line}: {use}: make the name public in the module that owns it (or move it there)"
        for path in _sources()
        for line, use in _private_uses(path)
    ]
    assert found == [], "\n".join(found)


# -- training below evaluation --------------------------------------------------------------------


def _every_import(path: Path) -> Iterator[tuple[int, str]]:
    """Every module ``path`` names in an import statement, type-checking and deferred ones included."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            yield from ((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)


def test_training_imports_nothing_of_evaluation() -> None:
    found = sorted(
        {
            f"{path.relative_to(REPO)}:{line}: imports {name}: move what training needs into training "
            "(or a lower package) and let evaluation import it from there"
            for path in (PACKAGE / "training").rglob("*.py")
            for line, name in _every_import(path)
            if name == "hera_router.evaluation" or name.startswith("hera_router.evaluation.")
        }
    )
    assert found == [], "\n".join(found)


STUDIES = tuple(f"hera_router.evaluation.{name}" for name in ("report", "matrix", "graphs", "ladder", "real_edge"))
"""The modules behind ``hera-router eval report/matrix/graphs/ladder/real-edge``."""


def test_no_study_imports_another() -> None:
    found = sorted(
        {
            f"{path.relative_to(REPO)}:{line}: imports {name}: move what both studies need into the evaluation core"
            for study in STUDIES
            for path in [PACKAGE.parent / (study.replace(".", "/") + ".py")]
            for line, name in _every_import(path)
            if any(name == other or name.startswith(other + ".") for other in STUDIES if other != study)
        }
    )
    assert found == [], "\n".join(found)


# -- files named in docstrings and comments -------------------------------------------------------

FILE_NAME = re.compile(r"(?<![\w./-])((?:[\w.-]+/)*[\w-][\w.-]*\.(?:md|py|toml|json|jsonl|ya?ml|txt|cfg|ini|sh|sql))\b")


@cache
def _repository_files() -> tuple[frozenset[str], frozenset[str]]:
    """The checkout's files as repository paths, and their base names."""
    command = ["git", "ls-files", "--cached", "--others", "--exclude-standard"]
    listed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    return frozenset(listed), frozenset(Path(name).name for name in listed)


@cache
def _names_in_code() -> frozenset[str]:
    """File names that appear in string literals of the package: files the code reads or writes."""
    names: set[str] = set()
    for path in _sources():
        tree = ast.parse(path.read_text())
        docstrings = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                names.update(Path(match).name for match in FILE_NAME.findall(node.value))
    return frozenset(names)


def _known(name: str) -> bool:
    paths, base_names = _repository_files()
    if "/" not in name:
        return name in base_names or name in _names_in_code()
    return any(path == name or path.endswith("/" + name) for path in paths) or (REPO / name).exists()


def _prose(path: Path) -> Iterator[tuple[int, str]]:
    """The docstrings and comments of ``path``, with the line each starts on."""
    text = path.read_text()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            yield node.lineno, node.value.value  # module, class, function and attribute docstrings
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string


def test_docstrings_and_comments_name_only_files_in_the_repository() -> None:
    found = sorted(
        {
            f"{path.relative_to(REPO)}:{line}: names {name!r}, which is not in the repository: state the intent "
            "in the text (explanations belong in docs/)"
            for path in _sources()
            for line, text in _prose(path)
            for name in FILE_NAME.findall(text)
            if not _known(name)
        }
    )
    assert found == [], "\n".join(found)


ISSUE_REF = re.compile(r"\bissues?\s*#?\s*\d+|\bissue\d+|(?<![\w&/#])#\d+\b", re.IGNORECASE)
REPOSITORY_PATH = re.compile(r"(?:[\w.-]+/)+[\w.-]*")
RULE_TEXTS = ("tests/unit/test_docs.py", "tests/unit/test_architecture.py")
"""Files whose docstrings quote what the rule forbids, to describe it."""


def _issue_references(text: str) -> list[str]:
    """The issue references in ``text``, once paths that exist in the checkout are set aside."""
    kept = REPOSITORY_PATH.sub(lambda m: "" if (REPO / m.group(0).rstrip(".,;:)")).exists() else m.group(0), text)
    return ISSUE_REF.findall(kept)


def test_docstrings_and_comments_carry_no_issue_numbers() -> None:
    found = sorted(
        {
            f"{path.relative_to(REPO)}:{line}: {reference!r}: say what the code does and why; the history belongs in "
            "git and docs/"
            for path in _sources()
            if str(path.relative_to(REPO)) not in RULE_TEXTS
            for line, text in _prose(path)
            for reference in _issue_references(text)
        }
    )
    assert found == [], "\n".join(found)


# -- function length ------------------------------------------------------------------------------


def test_no_function_in_evaluation_or_training_is_longer_than_80_lines() -> None:
    found = []
    for top in ("evaluation", "training"):
        for path in sorted((PACKAGE / top).rglob("*.py")):
            relative = str(path.relative_to(REPO))
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno is not None:
                    lines = node.end_lineno - node.lineno + 1
                    if lines > MAX_FUNCTION_LINES:
                        found.append(
                            f"{relative}:{node.lineno}: {node.name} is {lines} lines: split it into named steps "
                            f"of at most {MAX_FUNCTION_LINES}"
                        )
    assert found == [], "\n".join(found)
