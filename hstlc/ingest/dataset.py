"""The per-dataset ingest steps, as plain functions (no Prefect).

A *dataset* is what one exposure left in ``ingest/``: a COS FUV ``_corrtag_a`` /
``_corrtag_b`` pair, a COS NUV ``_corrtag``, or a STIS ``_tag``, each with its
``_x1d`` when present.  Each step takes a :class:`DatasetState` and returns the next
one; a step does nothing to a dataset that an earlier step rejected.  The Prefect
tasks in ``tasks/`` wrap these steps one to one; a batch task runs them in sequence.

Order of the steps, chosen so that nothing is lost or half-written:

1. ``check``       quality checks (refused data -> ``bad_data`` row, file to ``bad_data/``)
2. ``convert``     STIS ``_tag`` -> ``_corrtag`` (written beside the tag, atomically)
3. ``lightcurve``  individual lightcurve in ``outputs/<TARGNAME>/`` (atomic)
4. ``quicklook``   PNG beside the lightcurve (atomic)
5. ``record``      catalogue rows: every input file with the place it is moving to
6. ``move``        inputs into ``filesystem/<TARGNAME>/``, only after ``record``

A crash between ``record`` and ``move`` leaves the file in ``ingest/`` with a
catalogue row naming its destination; the next run sees the same content hash with
the file not yet in place and finishes the job.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from hstlc.catalogue.engine import create_catalogue_engine, is_transient, session_scope
from hstlc.catalogue.models import BadData, Metadata
from hstlc.catalogue.store import record_bad_data, upsert_metadata, upsert_output
from hstlc.config import Settings
from hstlc.errors import PermanentError
from hstlc.fs import Layout, Permissions, move_file, sha256_file
from hstlc.io.readers import group_dataset_files
from hstlc.targets import normalize_targname

logger = logging.getLogger(__name__)

PENDING, DONE, REJECTED, SKIPPED, FAILED = "pending", "done", "rejected", "skipped", "failed"

#: Waits before retrying a step that failed for a transient reason (batch mode).
RETRY_DELAYS_S = (1.0, 4.0, 16.0)


@dataclass(frozen=True)
class PipelineConfig:
    """What the steps need from the settings, as plain values (picklable for Dask)."""

    database_url: str = field(repr=False)
    layout: Layout
    permissions: Permissions
    step: float
    bad_proposals: tuple[int, ...]
    reference_dir: Path | None
    hlsp: dict[str, str]

    @classmethod
    def from_settings(cls, settings: Settings) -> PipelineConfig:
        return cls(
            database_url=settings.database_url,
            layout=Layout.from_settings(settings),
            permissions=Permissions.from_settings(settings),
            step=settings.lightcurve_step,
            bad_proposals=tuple(settings.bad_proposals),
            reference_dir=settings.reference_dir,
            hlsp=settings.hlsp.model_dump(),
        )


@dataclass(frozen=True)
class DatasetJob:
    """The files of one dataset and where they are now."""

    rootname: str
    event_files: tuple[Path, ...]
    x1d: Path | None = None
    #: Display name: the rootname, or the file name for a lone file of another kind.
    name: str = ""

    @property
    def files(self) -> tuple[Path, ...]:
        """Every input file of the dataset (event files, then the x1d)."""
        return self.event_files + ((self.x1d,) if self.x1d is not None else ())


@dataclass(frozen=True)
class DatasetState:
    """A dataset on its way through the steps."""

    job: DatasetJob
    status: str = PENDING
    reason: str | None = None
    detail: str | None = None
    targname: str | None = None
    group_key: tuple[str, ...] | None = None
    extract_files: tuple[Path, ...] = ()
    made_files: tuple[Path, ...] = ()
    curve: Path | None = None
    quicklook: Path | None = None
    hashes: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def rootname(self) -> str:
        """The dataset's name in summaries and task names."""
        return self.job.name or self.job.rootname

    @property
    def library_seconds(self) -> float:
        return float(sum(self.seconds.values()))


# -- discovery ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Discovery:
    """What a folder holds.

    ``jobs`` are the datasets plus every other FITS file, each alone: its header decides
    (a product hstlc does not process is refused with a recorded reason and moved to
    ``bad_data/``).  ``unrecognised`` files are not FITS: they are reported and left.
    """

    jobs: tuple[DatasetJob, ...]
    unrecognised: tuple[Path, ...]
    orphan_x1d: tuple[Path, ...]


def discover(folder: Path) -> Discovery:
    """Group the input files of ``folder`` (not recursive) into datasets by rootname.

    Files of other kinds (``_rawtag``, ``_lampflash``, notes ...) are listed as
    unrecognised and left where they are; an x1d without event files is an orphan.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return Discovery((), (), ())
    paths = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
    jobs, unrecognised, orphans = [], [], []
    for rootname, group in group_dataset_files(paths).items():
        for other in group.unrecognised:
            if other.name.lower().endswith((".fits", ".fits.gz", ".fit", ".fts")):
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


# -- engine per process ---------------------------------------------------------------------

_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def engine_for(url: str) -> Engine:
    """One engine per database URL and process (never shared across processes).

    The first use in a process brings the schema to the current revision (a no-op when
    it is current), so that a run started by a deployment or a worker finds its tables.
    """
    engine = _ENGINES.get(url)
    if engine is None:
        from hstlc.catalogue.migrate import current_revision, head_revision, upgrade

        with _ENGINES_LOCK:  # task threads of one process share the engine and the upgrade
            engine = _ENGINES.get(url)
            if engine is None:
                engine = create_catalogue_engine(url)
                if current_revision(engine) != head_revision():
                    upgrade(engine)
                _ENGINES[url] = engine
    return engine


# -- step machinery ---------------------------------------------------------------------------

Step = Callable[[DatasetState, PipelineConfig], DatasetState]


def guarded(step: Step, state: DatasetState, config: PipelineConfig) -> DatasetState:
    """Run ``step`` unless the dataset is finished; turn bad data into a rejection.

    A :class:`~hstlc.errors.PermanentError` records the dataset in ``bad_data`` and
    moves its files to ``bad_data/``; any other exception propagates (transient ones
    are retried by the orchestration, the rest fail the dataset and leave its files).
    """
    if state.status != PENDING:
        return state
    started = time.perf_counter()
    try:
        new = step(state, config)
    except PermanentError as error:
        new = reject(state, config, error.reason, error.detail)
    elapsed = time.perf_counter() - started
    return replace(new, seconds={**new.seconds, step.__name__: elapsed})


def reject(state: DatasetState, config: PipelineConfig, reason: str, detail: str) -> DatasetState:
    """Record the refused files in ``bad_data`` and move them to ``bad_data/``.

    A new delivery (files in ``ingest/``) is refused alone: a catalogued dataset of the
    same name, and the catalogued files :func:`complete` joined to it, stay as they are.
    A catalogued dataset refused on re-processing (``--force``, a target run, new
    bad proposals) loses its catalogue rows and its individual products in the same
    step, so nothing points at files no longer in ``filesystem/``; its group is touched
    so that its composite is rebuilt without it.
    """
    layout = config.layout
    layout.ensure("bad_data", permissions=config.permissions)
    present = [p for p in (*state.job.files, *state.made_files) if p.exists()]
    ingest = layout.ingest.resolve()
    delivered = [p for p in present if p.resolve().parent == ingest]
    files = delivered or present
    hashes = {p.name: state.hashes.get(p.name) or sha256_file(p) for p in files}
    key = state.group_key
    with session_scope(engine_for(config.database_url)) as session:
        stale = [] if delivered else session.scalars(
            select(Metadata).where(Metadata.filename.in_([p.name for p in files]))).all()
        products = {Path(o.individual_path, o.individual_filename) for o in
                    (row.output for row in stale)
                    if o is not None and o.individual_path and o.individual_filename}
        if stale:
            key = key or catalogue_group_key(stale[0])
        for row in stale:
            session.delete(row)
        for path in files:
            record_bad_data(session, path.name, reason, detail=detail,
                            path=str(layout.bad_data / path.name), sha256=hashes[path.name])
    for product in products:
        for made in (product, product.with_suffix(".png")):
            made.unlink(missing_ok=True)
    for path in files:
        target = layout.bad_data / path.name
        move_file(path, target, overwrite=True)
        config.permissions.apply(target)
    logger.warning("%s rejected (%s): %s", state.rootname, reason, detail)
    return replace(state, status=REJECTED, reason=reason, detail=detail, group_key=key)


def catalogue_group_key(row: Metadata) -> tuple[str, ...]:
    """The composite group of a catalogued file (the 2016 key, target name normalised)."""
    return (row.instrume, row.detector, normalize_targname(row.targname), row.opt_elem,
            str(row.cenwave), row.aperture)


def run_all(state: DatasetState, config: PipelineConfig, steps: Iterable[Step]) -> DatasetState:
    """Run every step on one dataset (the batch mode); never raises.

    A step that fails for a transient reason is retried after 1, 4 and 16 s (resuming
    at that step, not from the start); any other error ends the dataset as failed, with
    the step and the error in ``detail``, and leaves its files where they are.  A
    dataset an earlier attempt already finished is reported done, not redone.
    """
    moved_away = any(not path.exists() for path in state.job.files)
    if state.status == PENDING and moved_away and is_done(state.job, config, state.hashes):
        return replace(state, status=DONE, detail="finished by an earlier attempt")
    earlier = (refusal(state.job, config, state.hashes)
               if state.status == PENDING and moved_away else None)
    if earlier is not None:  # refused by an earlier attempt: report its reason again
        return replace(state, status=REJECTED, reason=earlier[0], detail=earlier[1])
    for step in steps:
        for attempt in range(len(RETRY_DELAYS_S) + 1):
            try:
                state = guarded(step, state, config)
                break
            except Exception as error:  # the dataset's outcome, recorded in its state
                if is_transient(error) and attempt < len(RETRY_DELAYS_S):
                    logger.warning("%s: %s failed (%s); retrying", state.rootname, step.__name__, error)
                    time.sleep(RETRY_DELAYS_S[attempt])
                    continue
                logger.error("%s: %s failed: %s", state.rootname, step.__name__, error)
                return replace(state, status=FAILED,
                               detail=f"{step.__name__}: {type(error).__name__}: {error}")
    return finish(state)


def finish(state: DatasetState) -> DatasetState:
    """Mark a dataset that went through every step as done."""
    return replace(state, status=DONE) if state.status == PENDING else state


# -- idempotency -------------------------------------------------------------------------------


def catalogued(config: PipelineConfig, filenames: Iterable[str]) -> dict[str, tuple[str, str]]:
    """``filename -> (sha256, path)`` of the named files the catalogue holds as ingested."""
    names = list(filenames)
    if not names:
        return {}
    with session_scope(engine_for(config.database_url)) as session:
        rows = session.execute(
            select(Metadata.filename, Metadata.sha256, Metadata.path)
            .where(Metadata.filename.in_(names))
        ).all()
    return {name: (sha, path) for name, sha, path in rows}


def refused(config: PipelineConfig, filenames: Iterable[str]) -> dict[str, str | None]:
    """``filename -> sha256`` of the named files the catalogue holds as refused."""
    names = list(filenames)
    if not names:
        return {}
    with session_scope(engine_for(config.database_url)) as session:
        rows = session.execute(
            select(BadData.filename, BadData.sha256).where(BadData.filename.in_(names))
        ).all()
    return {name: sha for name, sha in rows}


def is_done(job: DatasetJob, config: PipelineConfig, hashes: dict[str, str]) -> bool:
    """True when every file of ``job`` is catalogued with this content and in place."""
    known = catalogued(config, hashes)
    for path in job.files:
        entry = known.get(path.name)
        if entry is None or entry[0] != hashes[path.name]:
            return False
        if Path(entry[1], path.name) != path and not Path(entry[1], path.name).is_file():
            return False  # recorded, but its move did not finish
    return True


def is_refused(job: DatasetJob, config: PipelineConfig, hashes: dict[str, str]) -> bool:
    """True when every file of ``job`` was refused before with this very content."""
    known = refused(config, hashes)
    return all(known.get(path.name) == hashes[path.name] for path in job.files)


def refusal(job: DatasetJob, config: PipelineConfig, hashes: dict[str, str]
            ) -> tuple[str, str] | None:
    """``(reason, detail)`` when the files ``job`` lacks were refused, with this content,
    into ``bad_data/`` (by an earlier attempt at the same run)."""
    missing = [path.name for path in job.files if not path.exists()]
    with session_scope(engine_for(config.database_url)) as session:
        rows = session.execute(
            select(BadData.filename, BadData.reason, BadData.detail, BadData.path,
                   BadData.sha256).where(BadData.filename.in_(missing))
        ).all()
    found = {name: (reason, detail or "") for name, reason, detail, where, sha in rows
             if where and Path(where).is_file() and sha == hashes.get(name)}
    if not missing or set(missing) - set(found):
        return None
    return found[missing[0]]


def complete(job: DatasetJob, config: PipelineConfig) -> DatasetJob:
    """Add the dataset's files already ingested that ``job`` lacks.

    A COS FUV segment whose partner arrived in an earlier run (or whose move was cut
    short) is extracted with that partner again, and a dataset without its x1d gets the
    catalogued one, so a lightcurve is never rebuilt from part of its exposure.
    """
    if job.name and job.name != job.rootname:
        return job  # a lone file of another kind
    present = {path.name for path in job.files}
    with session_scope(engine_for(config.database_url)) as session:
        rows = session.execute(
            select(Metadata.filename, Metadata.path).where(Metadata.rootname == job.rootname)
        ).all()
    extra = {name: Path(folder, name) for name, folder in rows
             if name not in present and Path(folder, name).is_file()}
    events = list(job.event_files)
    if all(p.name.lower().endswith(("_corrtag_a.fits", "_corrtag_b.fits")) for p in events):
        events += [p for n, p in extra.items() if n.lower().endswith(("_corrtag_a.fits", "_corrtag_b.fits"))]
    x1d = job.x1d or next((p for n, p in extra.items() if n.lower().endswith("_x1d.fits")), None)
    if len(events) == len(job.event_files) and x1d == job.x1d:
        return job
    logger.info("%s: joined with its catalogued files %s", job.rootname,
                sorted(p.name for p in [*events, x1d] if p is not None and p.name not in present))
    return replace(job, event_files=tuple(sorted(events, key=lambda p: p.name)), x1d=x1d)


def plan(
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
        hashes = {path.name: sha256_file(path) for path in job.files}
        state = DatasetState(job=job, hashes=hashes)
        if not force and is_done(job, config, hashes):
            done.append(replace(state, status=SKIPPED, detail="already in the catalogue"))
        elif not force and is_refused(job, config, hashes):
            done.append(replace(state, status=SKIPPED, detail="refused before (bad_data)"))
        else:
            todo.append(state)
    return todo, done


def record_rows(state: DatasetState, config: PipelineConfig, records: dict[str, dict[str, Any]]) -> None:
    """Write the catalogue rows of a dataset: one ``metadata`` row per file, outputs."""
    curve = state.curve
    with session_scope(engine_for(config.database_url)) as session:
        for name, record in records.items():
            metadata_id = upsert_metadata(session, record)
            if curve is not None and name in {p.name for p in state.extract_files}:
                upsert_output(
                    session, metadata_id,
                    individual_path=str(curve.parent), individual_filename=curve.name,
                )


def move_inputs(state: DatasetState, config: PipelineConfig) -> DatasetState:
    """Move every input (and made corrtag) into ``filesystem/<TARGNAME>/``."""
    assert state.targname is not None
    destination = config.layout.prepared_target_dir("filesystem", state.targname, config.permissions)
    moved = []
    for path in (*state.job.files, *state.made_files):
        target = destination / path.name
        if path != target and not (not path.exists() and _holds(target, state.hashes.get(path.name))):
            move_file(path, target, overwrite=True)
        config.permissions.apply(target)
        moved.append(target)
    logger.debug("%s: %d files in %s", state.rootname, len(moved), destination)
    return state


def _holds(target: Path, sha256: str | None) -> bool:
    """True when ``target`` exists with the expected content (an earlier attempt moved it)."""
    return target.is_file() and (sha256 is None or sha256_file(target) == sha256)
