"""The architecture, checked on the source.

* The layers point one way: ``hstlc/`` <- ``tasks/`` <- ``flows/``; ``hstlc/`` never imports
  Prefect.
* Inside ``hstlc/`` the parts point one way too (``docs/ARCHITECTURE.md``): io <- extraction
  <- catalogue <- (variability, plots, mast) <- ingest <- the command line; the base modules
  (errors, settings, file layout, target names, logs) import no part.
* No import circle between the modules of ``hstlc/`` (imports inside functions count too),
  no module over 600 lines, no two module names one letter apart.
"""

from __future__ import annotations

import ast
from itertools import combinations
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "hstlc"

#: The parts of the library and the parts each may import (besides itself).
BASE = "base"
ALLOWED: dict[str, set[str]] = {
    BASE: set(),
    "io": {BASE},
    "extraction": {BASE, "io"},
    "testing": {BASE, "io", "extraction"},
    "catalogue": {BASE, "io", "extraction"},
    "variability": {BASE, "io", "extraction", "catalogue"},
    "plots": {BASE, "io", "extraction", "catalogue", "variability"},
    "mast": {BASE, "io", "catalogue"},
    "ingest": {BASE, "io", "extraction", "catalogue", "variability", "plots", "mast"},
    "app": {BASE, "io", "extraction", "catalogue", "variability", "plots", "mast", "ingest",
            "testing"},
}
#: Top-level modules that are the base (used everywhere) or the application (use everything).
BASE_MODULES = {"_version", "errors", "config", "fs", "targets", "logs", "processes"}
APP_MODULES = {"cli", "admin", "demo"}
MAX_LINES = 600


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _import_nodes(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth, except under ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if _is_type_checking(node):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return found


def imported_modules(path: Path) -> set[str]:
    """Top-level names of the packages a file imports (``numpy``, ``hstlc``, ``prefect``)."""
    names: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def library_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(LIBRARY.rglob("*.py")) if "migrations" not in p.parts}


def hstlc_imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The hstlc modules a file imports (``from hstlc.io import gti`` -> ``hstlc.io.gti``)."""
    found: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif node.module and node.level == 0:
            targets = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules
                       else node.module for alias in node.names]
        else:
            targets = []
        found.update(t for t in targets if t.split(".")[0] == "hstlc")
    return found


def part_of(module: str) -> str | None:
    """The part a module belongs to; None for the package itself."""
    parts = module.split(".")
    if len(parts) == 1:
        return None
    if len(parts) == 2 and not (LIBRARY / parts[1]).is_dir():
        if parts[1] in BASE_MODULES:
            return BASE
        if parts[1] in APP_MODULES:
            return "app"
        raise AssertionError(f"{module}: a top-level module that is neither base nor app; "
                             "place it in a part or list it in tests/test_layers.py")
    return parts[1]


def sources(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("path", sources("hstlc"), ids=lambda p: str(p.relative_to(ROOT)))
def test_library_never_imports_the_orchestration(path):
    forbidden = {"prefect", "prefect_dask", "tasks", "flows", "deployments"}
    assert not imported_modules(path) & forbidden


@pytest.mark.parametrize("path", list(library_modules().values()),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_parts_import_only_the_parts_below(path):
    modules = library_modules()
    own = part_of(module_name(path))
    if own is None:
        return  # the package itself imports its entry points lazily
    assert own in ALLOWED, f"{module_name(path)}: unknown part {own!r}"
    wrong = sorted(m for m in hstlc_imports(path, modules)
                   if (other := part_of(m)) is not None and other != own
                   and other not in ALLOWED[own])
    assert not wrong, f"{module_name(path)} ({own}) imports {wrong}"


def test_no_import_circle():
    modules = library_modules()
    graph = {name: hstlc_imports(path, modules) & set(modules) - {name}
             for name, path in modules.items()}
    # A package's __init__ importing its own modules is no circle of ideas; leave it out.
    graph = {name: {m for m in targets if not name.startswith(m + ".")}
             for name, targets in graph.items()}
    circles = _cycles(graph)
    assert not circles, f"import circles: {circles}"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("path", list(library_modules().values()),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_stay_small(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)}: {lines} lines (at most {MAX_LINES})"


def _one_edit_apart(a: str, b: str) -> bool:
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    short, long = sorted((a, b), key=len)
    return any(long[:i] + long[i + 1:] == short for i in range(len(long)))


def test_no_two_module_names_one_letter_apart():
    names = {p.stem for p in LIBRARY.rglob("*.py") if "migrations" not in p.parts} - {"__init__"}
    names |= {p.stem for folder in ("tasks", "flows") for p in (ROOT / folder).glob("*.py")}
    close = [(a, b) for a, b in combinations(sorted(names), 2) if _one_edit_apart(a, b)]
    assert not close, f"module names one letter apart: {close}"
    assert _one_edit_apart("composite", "composites") and not _one_edit_apart("gti", "io")


def test_public_entry_points_import_from_the_package():
    import hstlc
    from hstlc import Lightcurve, Settings, extract_lightcurve, make_composite, read_lightcurve

    assert extract_lightcurve.__module__ == "hstlc.extraction.extract"
    assert make_composite.__module__ == "hstlc.extraction.composite"
    assert read_lightcurve.__module__ == Lightcurve.__module__ == "hstlc.io.lightcurve_file"
    assert Settings.__module__ == "hstlc.config"
    assert set(hstlc.__all__) <= set(dir(hstlc))
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        hstlc.nothing  # noqa: B018


#: The modules of flows/ that run flows from the command line (they are not flows).
COMMAND_MODULES = {"commands.py", "server.py", "stats_command.py", "plots_command.py"}


@pytest.mark.parametrize("path", [p for p in sources("flows") if p.name not in COMMAND_MODULES],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_flows_only_compose(path):
    assert not imported_modules(path) & {"numpy", "sqlalchemy", "astropy", "scipy"}
    tree = ast.parse(path.read_text())
    assert not any(isinstance(node, ast.Try) for node in ast.walk(tree)), "no try/except in flows"


@pytest.mark.parametrize("path", sources("tasks"), ids=lambda p: str(p.relative_to(ROOT)))
def test_tasks_do_no_science(path):
    assert not imported_modules(path) & {"numpy", "astropy", "scipy", "sqlalchemy", "flows"}
