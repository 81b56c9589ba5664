"""What a download run fetches: MAST's answer, less what hstlc already has.

An exposure (rootname) is not fetched again when the catalogue holds it (``metadata``),
when a file of it was refused (``bad_data``), or when a file of it is already in
``ingest/`` or ``filesystem/``.  The rule is applied twice: to the search's dataset names
before any product list is asked for, then to the rootnames of the listed files (an
association's members are known by theirs).  What is left is capped at ``limit``
datasets per run, the newest releases first; the rest wait for the next run.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from hstlc.catalogue.engine import engine_for, session_scope
from hstlc.catalogue.queries import catalogued_exposures, refused_rootnames
from hstlc.errors import DiskFullError
from hstlc.fs import Layout, free_bytes
from hstlc.io.headers import rootname_from_name
from hstlc.mast.client import MastConnection, opened, product_rows, search
from hstlc.mast.query import Criteria, Product, select_datasets, select_products

logger = logging.getLogger(__name__)

IN_CATALOGUE = "in the catalogue (metadata)"
REFUSED = "refused before (bad_data)"
IN_INGEST = "waiting in ingest/"
IN_FILESYSTEM = "already in filesystem/"
NO_PRODUCTS = "no corrtag, tag or x1d file in its product list"


@dataclass(frozen=True)
class DatasetFetch:
    """One exposure to fetch: its rootname and its files."""

    rootname: str
    products: tuple[Product, ...]

    @property
    def bytes(self) -> int:
        return sum(p.size or 0 for p in self.products)


@dataclass(frozen=True)
class DownloadPlan:
    """What a run asked, what it fetches, and what it leaves aside, with why."""

    criteria: Criteria
    conditions: dict[str, str]
    #: Datasets MAST's search returned, in its order.
    asked: tuple[str, ...]
    todo: tuple[DatasetFetch, ...]
    #: Datasets the selection refused (calibration target, another mode ...).
    refused: dict[str, str]
    #: Datasets or exposures hstlc already has, or that have nothing to fetch.
    skipped: dict[str, str]
    #: Exposures beyond the per-run limit (the next run takes them).
    deferred: tuple[str, ...]

    @property
    def files(self) -> int:
        return sum(len(d.products) for d in self.todo)

    @property
    def bytes(self) -> int:
        return sum(d.bytes for d in self.todo)

    def describe(self) -> list[str]:
        """The plan in lines: each file to fetch, then the totals."""
        lines = [f"  {p.filename} ({(p.size or 0) / 1e6:.2f} MB)" for d in self.todo for p in d.products]
        lines.append(f"{self.files} files of {len(self.todo)} datasets to fetch ({self.bytes / 1e6:.1f} MB); "
                     f"{len(self.asked)} datasets found, {len(self.skipped)} already here or with "
                     f"nothing to fetch, {len(self.refused)} refused by the selection, "
                     f"{len(self.deferred)} left for the next run (limit {self.criteria.limit})")
        return lines


def on_disk(layout: Layout) -> dict[str, str]:
    """``rootname -> where`` of the input files in ``ingest/`` and ``filesystem/<TARGNAME>/``."""
    found: dict[str, str] = {}
    folders = [(layout.ingest, IN_INGEST)]
    if layout.filesystem.is_dir():
        folders += [(Path(entry.path), IN_FILESYSTEM) for entry in os.scandir(layout.filesystem)
                    if entry.is_dir()]
    for folder, where in folders:
        if not folder.is_dir():
            continue
        for entry in os.scandir(folder):
            if not entry.name.startswith(".") and (entry.is_file() or entry.is_symlink()):
                found.setdefault(rootname_from_name(entry.name), where)
    return found


def already_here(database_url: str, disk: dict[str, str], rootnames: Iterable[str]) -> dict[str, str]:
    """``rootname -> why`` of the exposures hstlc has (catalogue first, then the folders)."""
    names = sorted({name.lower() for name in rootnames})
    if not names:
        return {}
    with session_scope(engine_for(database_url)) as session:
        catalogued = set(catalogued_exposures(session, names))
        refused = refused_rootnames(session, names)
    found = {}
    for name in names:
        why = (IN_CATALOGUE if name in catalogued else REFUSED if name in refused
               else disk.get(name))
        if why is not None:
            found[name] = why
    return found


def plan_downloads(connection: MastConnection, criteria: Criteria, database_url: str,
                   layout: Layout) -> DownloadPlan:
    """Ask MAST, then keep what is new: the run's :class:`DownloadPlan`."""
    disk = on_disk(layout)
    with opened(connection) as client:
        rows = search(client, connection, criteria)
        datasets, refused = select_datasets(rows, criteria)
        skipped = already_here(database_url, disk, (d.name for d in datasets))
        candidates = [d.name for d in datasets if d.name not in skipped]
        listed = select_products(product_rows(client, connection, candidates)) if candidates else []
    by_root: dict[str, list[Product]] = {}
    for product in listed:
        by_root.setdefault(product.rootname, []).append(product)
    known = already_here(database_url, disk, by_root)
    skipped.update(known)
    with_files = {p.dataset for p in listed} | set(by_root)
    skipped.update({name: NO_PRODUCTS for name in candidates if name not in with_files})
    rank = {name: index for index, name in enumerate(candidates)}  # the search's order
    order = sorted(by_root, key=lambda root: min(rank.get(p.dataset, len(rank)) for p in by_root[root]))
    todo = [DatasetFetch(root, tuple(by_root[root])) for root in order if root not in known]
    logger.info("MAST: %d datasets found for %s; %d exposures to fetch, %d already here",
                len(datasets) + len(refused), criteria.describe(), len(todo), len(skipped))
    return DownloadPlan(
        criteria=criteria, conditions=criteria.conditions(),
        asked=tuple(str(row.get("sci_data_set_name") or "").lower() for row in rows),
        todo=tuple(todo[:criteria.limit]), refused=refused, skipped=skipped,
        deferred=tuple(d.rootname for d in todo[criteria.limit:]))


def require_room(plan: DownloadPlan, folder: Path, min_free_mb: float) -> None:
    """:class:`~hstlc.errors.DiskFullError` when the plan's files would leave ``folder``'s file
    system with less than ``min_free_mb`` free."""
    free = free_bytes(folder)
    if plan.bytes + min_free_mb * 1e6 > free:
        raise DiskFullError(
            f"download_dir {folder}: {plan.files} files ({plan.bytes / 1e6:.1f} MB) would leave less "
            f"than the {min_free_mb:g} MB a run needs ({free / 1e6:.1f} MB free; setting "
            "min_free_mb); free space there, or lower --limit; nothing was downloaded")
