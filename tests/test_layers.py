"""The layers point one way: hstlc/ <- tasks/ <- flows/ (checked on the source)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def sources(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("path", sources("hstlc"), ids=lambda p: str(p.relative_to(ROOT)))
def test_library_never_imports_the_orchestration(path):
    forbidden = {"prefect", "prefect_dask", "tasks", "flows", "deployments"}
    assert not imported_modules(path) & forbidden


@pytest.mark.parametrize("path", [p for p in sources("flows") if p.name != "commands.py"],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_flows_only_compose(path):
    assert not imported_modules(path) & {"numpy", "sqlalchemy", "astropy", "scipy"}
    tree = ast.parse(path.read_text())
    assert not any(isinstance(node, ast.Try) for node in ast.walk(tree)), "no try/except in flows"


@pytest.mark.parametrize("path", sources("tasks"), ids=lambda p: str(p.relative_to(ROOT)))
def test_tasks_do_no_science(path):
    assert not imported_modules(path) & {"numpy", "astropy", "scipy", "sqlalchemy", "flows"}
