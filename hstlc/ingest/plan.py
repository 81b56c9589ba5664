"""What to ingest: find the datasets in a folder and leave aside what the catalogue has.

A dataset is done when every file is catalogued with the same content (sha256) and
sits where its row says; it was refused when every file is in ``bad_data`` with the
same content.  Neither is processed again unless forced: re-runs are idempotent, and
a changed file (same name, new content) is processed again.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from hstlc.catalogue.engine import engine_for, session_scope
from hstlc.catalogue.queries import (
    catalogued,
    files_of_rootname,
    ingested_folders,
    refusals,
    refusals_of,
)
from hstlc.fs import content_digest
from hstlc.ingest.dataset import SKIPPED, DatasetJob, DatasetState, PipelineConfig
from hstlc.io.headers import group_dataset_files, rootname_from_name
from hstlc.targets import normalize_targname

logger = logging.getLogger(__name__)

FITS_SUFFIXES = (".fits", ".fits.gz", ".fit", ".fts")
FUV_SEGMENT_SUFFIXES = ("_corrtag_a.fits", "_corrtag_b.fits")


# -- discovery ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Discovery:
    """What a folder holds.

    ``jobs`` are the datasets plus every other FITS file, each alone: its header decides
    (a product hstlc does not process is refused with a recorded reason and moved to
    ``bad_data/``).  Every symbolic link is a job alone too, whatever its name and
    wherever it points (a file, a folder, nothing): the check refuses it without
    following it.  ``unrecognised`` files are not FITS: they are reported and left.
    """

    jobs: tuple[DatasetJob, ...]
    unrecognised: tuple[Path, ...]
    orphan_x1d: tuple[Path, ...]


def discover(folder: Path) -> Discovery:
    """Group the input files of ``folder`` (not recursive) into datasets by rootname.

    Files of other kinds (``_rawtag``, ``_lampflash``, notes ...) are listed as
    unrecognised and left where they are; an x1d without event files is an orphan.
    A folder that does not exist yet holds nothing; a file in its place raises
    ``NotADirectoryError`` and an unreadable folder ``PermissionError`` (both name it).
    """
    folder = Path(folder)
    if not os.path.lexists(folder):
        return Discovery((), (), ())
    if not folder.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "not a folder (setting ingest_dir)", str(folder))
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    links = [p for p in entries if p.is_symlink()]
    paths = [p for p in entries if not p.is_symlink() and p.is_file()]
    jobs = [DatasetJob(rootname=rootname_from_name(p.name), event_files=(p,), name=p.name)
            for p in links]
    unrecognised, orphans = [], []
    for rootname, group in group_dataset_files(paths).items():
        for other in group.unrecognised:
            if other.name.lower().endswith(FITS_SUFFIXES):
                jobs.append(DatasetJob(rootname=rootname, event_files=(other,), name=other.name))
            else:
                unrecognised.append(other)
        events = group.event_files
        if group.tag is not None:
            # A STIS corrtag beside its tag is an earlier run's: conversion remakes it.
            events = (group.tag,)
        if not events:
            if group.x1d is not None:
                orphans.append(group.x1d)
            continue
        jobs.append(DatasetJob(rootname=rootname, event_files=events, x1d=group.x1d))
    return Discovery(tuple(jobs), tuple(sorted(unrecognised)), tuple(orphans))


def exposure_of(filename: str) -> tuple[str, str]:
    """``(rootname, kind)`` of a file from its name: one exposure's one product.

    ``kind`` is what follows the rootname, without ``.gz`` and ``.fits``, so that
    ``x_corrtag_a.fits`` and ``x_corrtag_a.fits.gz`` name the same segment.

    >>> exposure_of("ld9m10ujq_corrtag_a.fits.gz")
    ('ld9m10ujq', 'corrtag_a')
    """
    name = filename.lower().removesuffix(".gz")
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return rootname_from_name(filename), stem.partition("_")[2]


# -- idempotency -------------------------------------------------------------------------------


def is_done(job: DatasetJob, config: PipelineConfig, hashes: dict[str, str]) -> bool:
    """True when every file of ``job`` is catalogued with this content and in place."""
    with session_scope(engine_for(config.database_url)) as session:
        known = catalogued(session, hashes)
    for path in job.files:
        entry = known.get(path.name)
        if entry is None or entry[0] != hashes[path.name]:
            return False
        if Path(entry[1], path.name) != path and not Path(entry[1], path.name).is_file():
            return False  # recorded, but its move did not finish
    return True


def is_refused(job: DatasetJob, config: PipelineConfig, hashes: dict[str, str]) -> bool:
    """True when every file of ``job`` was refused before with this very content."""
    with session_scope(engine_for(config.database_url)) as session:
        known = refusals_of(session, hashes)
    return all(path.name in known for path in job.files)


def refusal(job: DatasetJob, config: PipelineConfig, hashes: dict[str, str]
            ) -> tuple[str, str] | None:
    """``(reason, detail)`` when the files ``job`` lacks were refused, with this content,
    into ``bad_data/`` (by an earlier attempt at the same run)."""
    missing = [path.name for path in job.files if not os.path.lexists(path)]
    wanted = {name: hashes[name] for name in missing if name in hashes}
    with session_scope(engine_for(config.database_url)) as session:
        found = {name: (row.reason, row.detail or "")
                 for name, row in refusals_of(session, wanted).items()
                 if row.path and os.path.lexists(row.path)}
    if not missing or set(missing) - set(found):
        return None
    return found[missing[0]]


def unseen(config: PipelineConfig, filenames: Iterable[str]) -> set[str]:
    """The names the catalogue has neither ingested nor refused (new files, surely work)."""
    names = set(filenames)
    with session_scope(engine_for(config.database_url)) as session:
        return names - set(catalogued(session, names)) - set(refusals(session, names))


def complete(job: DatasetJob, config: PipelineConfig) -> DatasetJob:
    """Add the dataset's files already ingested that ``job`` lacks.

    A COS FUV segment whose partner arrived in an earlier run (or whose move was cut
    short) is extracted with that partner again, and a dataset without its x1d gets the
    catalogued one, so a lightcurve is never rebuilt from part of its exposure.
    """
    if (job.name and job.name != job.rootname) or any(p.is_symlink() for p in job.files):
        return job  # a lone file of another kind, or a link (refused by the check)
    present = {path.name for path in job.files}
    with session_scope(engine_for(config.database_url)) as session:
        recorded = files_of_rootname(session, job.rootname)
    extra = {name: path for name, path in recorded.items() if name not in present and path.is_file()}
    events = list(job.event_files)
    if all(p.name.lower().endswith(FUV_SEGMENT_SUFFIXES) for p in events):
        events += [p for n, p in extra.items() if n.lower().endswith(FUV_SEGMENT_SUFFIXES)]
    x1d = job.x1d or next((p for n, p in extra.items() if n.lower().endswith("_x1d.fits")), None)
    if len(events) == len(job.event_files) and x1d == job.x1d:
        return job
    logger.info("%s: joined with its catalogued files %s", job.rootname,
                sorted(p.name for p in [*events, x1d] if p is not None and p.name not in present))
    return replace(job, event_files=tuple(sorted(events, key=lambda p: p.name)), x1d=x1d)


# -- plans ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class IngestPlan:
    """The datasets to process and what was left aside, with why."""

    todo: tuple[DatasetState, ...]
    skipped: tuple[DatasetState, ...]
    unrecognised: tuple[Path, ...]
    orphan_x1d: tuple[Path, ...]


def plan_jobs(
    jobs: Iterable[DatasetJob], config: PipelineConfig, *, force: bool = False
) -> tuple[list[DatasetState], list[DatasetState]]:
    """Split jobs into (to do, already done); hash every file once.

    A dataset met twice (``ingest/`` and ``filesystem/`` under ``--force``) is done
    once, from the first place given (``ingest/``: the newer copy).
    """
    todo, done = [], []
    seen: set[str] = set()
    for job in jobs:
        key = job.name or job.rootname
        if key in seen:
            continue
        seen.add(key)
        job = complete(job, config)
        hashes = {path.name: content_digest(path) for path in job.files}
        state = DatasetState(job=job, hashes=hashes)
        if not force and is_done(job, config, hashes):
            done.append(replace(state, status=SKIPPED, detail="already in the catalogue"))
        elif not force and is_refused(job, config, hashes):
            done.append(replace(state, status=SKIPPED, detail="refused before (bad_data)"))
        else:
            todo.append(state)
    return todo, done


def plan_ingest(config: PipelineConfig, *, force: bool = False) -> IngestPlan:
    """Datasets waiting in ``ingest/`` that the catalogue does not already hold.

    With ``force`` (the 2016 ``-corrtag_extract``), every dataset already in
    ``filesystem/`` is processed again too, re-extracting its lightcurve.
    """
    found = discover(config.layout.ingest)
    jobs = list(found.jobs)
    if force:
        jobs += filesystem_jobs(config)
    todo, skipped = plan_jobs(jobs, config, force=force)
    for path in found.unrecognised:
        logger.info("%s: not an hstlc input; left where it is", path)
    return IngestPlan(tuple(todo), tuple(skipped), found.unrecognised, found.orphan_x1d)


def filesystem_jobs(config: PipelineConfig, targname: str | None = None) -> list[DatasetJob]:
    """Datasets already ingested (all, or one target's), found through the catalogue."""
    with session_scope(engine_for(config.database_url)) as session:
        folders = ingested_folders(session, targname)
    return [job for folder in folders for job in discover(folder).jobs]


def count_datasets(config: PipelineConfig, *, force: bool = False, target: str | None = None) -> int:
    """How many datasets a run would process at most, counted by file name (nothing read):
    those waiting in ``ingest/`` (with ``force`` also every ingested one), or the ingested
    datasets of ``target``.  It sizes the run (threads or a cluster)."""
    if target is not None:
        return len(filesystem_jobs(config, target))
    return len(discover(config.layout.ingest).jobs) + (len(filesystem_jobs(config)) if force else 0)


def plan_target(config: PipelineConfig, target: str) -> IngestPlan:
    """Every dataset of one target, to be processed again."""
    jobs = filesystem_jobs(config, target)
    if not jobs:
        logger.warning("no ingested dataset of target %r (normalised %r) in the catalogue",
                       target, normalize_targname(target))
    todo, _ = plan_jobs(jobs, config, force=True)
    return IngestPlan(tuple(todo), (), (), ())
