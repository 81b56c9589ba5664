"""Operator actions: reset the catalogue, reset the filesystem.

Both are plans first (what would happen) and actions second, so that a dry run
prints exactly what the real run does.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from hstlc.catalogue.engine import session_scope
from hstlc.catalogue.models import TABLES
from hstlc.catalogue.store import delete_rows
from hstlc.fs import Layout, move_file, sha256_file

logger = logging.getLogger(__name__)

#: Tables whose rows go with a table's rows (foreign keys point at them).
DEPENDENTS = {"metadata": ("outputs",)}


def tables_to_reset(table: str | None, *, keep_bad_data: bool = False) -> list[str]:
    """The tables a reset of ``table`` (or of all, when ``None``) empties."""
    if table is not None and table not in TABLES:
        raise ValueError(f"unknown table {table!r}; choose one of {', '.join(TABLES)}")
    if table == "bad_data" and keep_bad_data:
        raise ValueError("--keep-bad-data contradicts resetting the bad_data table")
    chosen = list(TABLES) if table is None else [table, *DEPENDENTS.get(table, ())]
    if keep_bad_data:
        chosen = [name for name in chosen if name != "bad_data"]
    return chosen


def reset_database(engine: Engine, tables: list[str]) -> dict[str, int]:
    """Delete every row of ``tables`` in one transaction; return rows deleted per table."""
    with session_scope(engine) as session:
        counts = delete_rows(session, tables)
    for name, count in counts.items():
        logger.info("reset table %s: %d rows deleted", name, count)
    return counts


@dataclass
class FilesystemPlan:
    """What a filesystem reset does."""

    moves: list[tuple[Path, Path]] = field(default_factory=list)
    kept: list[tuple[Path, str]] = field(default_factory=list)
    removals: list[Path] = field(default_factory=list)

    def describe(self) -> list[str]:
        """One line per planned action."""
        lines = [f"move {source} -> {target}" for source, target in self.moves]
        lines += [f"keep {path} ({why})" for path, why in self.kept]
        lines += [f"remove {path}" for path in self.removals]
        return lines


def plan_filesystem_reset(layout: Layout) -> FilesystemPlan:
    """Plan to move ingested inputs back to ``ingest/`` and empty outputs and plots.

    An input whose name is already taken in ``ingest/`` is kept where it is (and said
    so), whatever its content: an input file is never deleted or overwritten.
    """
    plan = FilesystemPlan()
    taken: set[str] = set()
    if layout.ingest.is_dir():
        taken = {path.name for path in layout.ingest.iterdir()}
    if layout.filesystem.is_dir():
        for source in sorted(layout.filesystem.rglob("*")):
            if not source.is_file():
                continue
            if source.name in taken:
                same = sha256_file(source) == sha256_file(layout.ingest / source.name)
                why = "identical file already in ingest" if same else "name taken in ingest"
                plan.kept.append((source, why))
                continue
            taken.add(source.name)
            plan.moves.append((source, layout.ingest / source.name))
    folders = [f.resolve() for f in _product_folders(layout) if f.is_dir()]
    for folder in folders:  # a folder inside another (outputs/composite) goes with it
        if not any(folder != other and folder.is_relative_to(other) for other in folders):
            plan.removals.extend(sorted(folder.iterdir()))
    return plan


def _product_folders(layout: Layout) -> tuple[Path, ...]:
    """outputs/, plots/ and the composite folder (wherever it is configured)."""
    return (layout.outputs, layout.plots, layout.composite)


def apply_filesystem_reset(layout: Layout, plan: FilesystemPlan) -> None:
    """Carry out ``plan``: moves first (never overwriting), then removals of products."""
    layout.ingest.mkdir(parents=True, exist_ok=True)
    for source, target in plan.moves:
        move_file(source, target)
        logger.info("moved %s -> %s", source, target)
    for path, why in plan.kept:
        logger.warning("kept %s: %s", path, why)
    roots = tuple(folder.resolve() for folder in _product_folders(layout))
    kept = [p.resolve() for p in (layout.ingest, layout.filesystem, layout.bad_data,
                                  layout.download, layout.logs)]
    for path in plan.removals:
        if not any(path.resolve().is_relative_to(root) for root in roots):
            raise ValueError(f"refusing to remove {path}: not in a product folder")
        if any(folder.is_relative_to(path.resolve()) for folder in kept):
            raise ValueError(f"refusing to remove {path}: it holds input or log folders")
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
        logger.info("removed %s", path)
    _remove_empty_dirs(layout.filesystem)


def _remove_empty_dirs(root: Path) -> None:
    if not root.is_dir():
        return
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
