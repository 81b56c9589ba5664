"""The per-dataset ingest steps, as plain functions (no Prefect), and how they are run.

Each step takes a :class:`~hstlc.ingest.dataset.DatasetState` and returns the next
one; a step does nothing to a dataset that an earlier step rejected.  The Prefect
tasks in ``tasks/`` wrap these steps one to one; a batch task runs them in sequence
(:func:`process`).  Order of the steps, chosen so that nothing is lost or half-written:

1. ``check``       quality checks (refused data -> ``bad_data`` row, file to ``bad_data/``)
2. ``convert``     STIS ``_tag`` -> ``_corrtag`` (written beside the tag, atomically)
3. ``lightcurve``  individual lightcurve in ``outputs/<TARGNAME>/`` (atomic)
4. ``quicklook``   PNG beside the lightcurve (atomic)
5. ``record``      catalogue rows: every input file with the place it is moving to
6. ``move``        inputs into ``filesystem/<TARGNAME>/``, only after ``record``

A crash between ``record`` and ``move`` leaves the file in ``ingest/`` with a
catalogue row naming its destination; the next run sees the same content hash with
the file not yet in place and finishes the job.

Refusals (:func:`reject`) follow three rules:

* A new delivery (files in ``ingest/``) that fails is recorded in ``bad_data`` and
  moved to ``bad_data/``.  Nothing refused is overwritten: the same name refused with
  other content goes beside the first, as ``<name>.<8 hex of its sha256>``, with a row
  of its own; the same content refused again stays one file and one row.
* A symbolic link is refused as a link (reason ``Symbolic link``): the link itself is
  recorded and moved to ``bad_data/`` (renaming a link never touches its target), so
  that ``ingest/`` is left clean and the refusal is recorded like any other; nothing
  it points at is read, moved or given permissions.
* Re-processing refused: a catalogued dataset (its files in ``filesystem/``, under
  ``--force`` or a target run) that fails a check now is *not* refused.  It keeps its
  files, its catalogue rows and its products, and is reported failed with the reason,
  so that the run ends failed and an operator decides.  Only a delivery is refused.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from hstlc.catalogue.engine import engine_for, is_transient, session_scope
from hstlc.catalogue.queries import catalogued_exposures
from hstlc.catalogue.store import record_bad_data, upsert_metadata, upsert_output
from hstlc.errors import (
    NAME_MISMATCH,
    SYMBOLIC_LINK,
    TRANSIENT_RETRY_DELAYS_S,
    MissingKeywordError,
    PermanentError,
)
from hstlc.extraction.quality import check_dataset
from hstlc.fs import content_digest, disk_full, move_file, refused_destination, sha256_file
from hstlc.ingest.dataset import DONE, FAILED, LEFT, PENDING, REJECTED, DatasetState, PipelineConfig
from hstlc.ingest.plan import exposure_of, is_done, refusal
from hstlc.io.headers import (
    GroupKey,
    ObservationInfo,
    catalogue_record,
    read_observation_info,
    rootname_from_name,
)
from hstlc.io.products import detect_product, open_fits
from hstlc.logs import record as record_traceback
from hstlc.processes import request_stop, stop_reason

logger = logging.getLogger(__name__)

StepFunction = Callable[[DatasetState, PipelineConfig], DatasetState]


@dataclass(frozen=True)
class Step:
    """One ingest step: ``run(state, config) -> state``, known by ``name``.

    The name labels the step's time in ``DatasetState.seconds`` and its failures
    (``"lightcurve: RuntimeError: ..."``), whatever function runs it.
    """

    name: str
    run: StepFunction


# -- the steps --------------------------------------------------------------------------------


def read_info(path: Path) -> ObservationInfo:
    """Header values of one input file."""
    with open_fits(path) as hdulist:
        product = detect_product(hdulist, path.name)
        return read_observation_info(hdulist, path.name, product)


def check(state: DatasetState, config: PipelineConfig) -> DatasetState:
    """Quality checks of every file of the dataset; learn its target and group.

    A symbolic link is refused before anything reads it; then the quality checks;
    then every file's name must give its header's ROOTNAME, and no exposure (rootname
    and product) may be catalogued already under another file name, so that one
    exposure is counted once in every product.
    """
    refuse_links(state.job.files)
    verdict = check_dataset(state.job.files, bad_proposals=config.bad_proposals,
                            max_time_span_s=config.max_time_span_s)
    verdict.raise_for_reason()
    infos = {path: read_info(path) for path in state.job.files}
    check_names(infos)
    check_exposures(state, config)
    info = infos[state.job.event_files[0]]
    if not info.targname.strip():
        raise MissingKeywordError(f"{info.filename}: TARGNAME is empty", filename=info.filename)
    return replace(state, targname=info.targname, group_key=GroupKey.of(info),
                   extract_files=state.job.event_files)


def refuse_links(paths: Iterable[Path]) -> None:
    """Raise a ``Symbolic link`` refusal for the first link among ``paths`` (never followed)."""
    for path in paths:
        if path.is_symlink():
            raise PermanentError(f"{path.name}: a symbolic link (to {os.readlink(path)!r}); "
                                 "hstlc takes files, not links", reason=SYMBOLIC_LINK,
                                 filename=path.name)


def check_names(infos: dict[Path, ObservationInfo]) -> None:
    """Raise a ``Name mismatch`` refusal when a file's name and its ROOTNAME disagree."""
    for path, info in infos.items():
        if rootname_from_name(path.name) != info.rootname:
            raise PermanentError(
                f"{path.name}: the name gives rootname {rootname_from_name(path.name)!r} but the "
                f"header's ROOTNAME is {info.rootname!r}", reason=NAME_MISMATCH, filename=path.name)


def check_exposures(state: DatasetState, config: PipelineConfig) -> None:
    """Raise a ``Name mismatch`` refusal when a file's exposure is known by another name.

    Within the dataset (``x_corrtag.fits`` beside ``x_corrtag.fits.gz``) or in the
    catalogue: one exposure's product has one catalogue row, under one file name.
    """
    names: dict[tuple[str, str], str] = {}
    for path in state.job.files:
        other = names.setdefault(exposure_of(path.name), path.name)
        if other != path.name:
            raise PermanentError(f"{path.name}: the same exposure as {other}",
                                 reason=NAME_MISMATCH, filename=path.name)
    if state.job.name and state.job.name != state.job.rootname:  # a lone file: its siblings
        path = state.job.files[0]
        for sibling in path.parent.glob(f"{path.name.split('_', 1)[0]}_*"):
            if sibling.name != path.name and exposure_of(sibling.name) == exposure_of(path.name):
                raise PermanentError(f"{path.name}: the same exposure as {sibling.name}",
                                     reason=NAME_MISMATCH, filename=path.name)
    with session_scope(engine_for(config.database_url)) as session:
        known = catalogued_exposures(session, {root for root, _ in names})
    for exposure, name in names.items():
        for other in known.get(exposure[0], ()):
            if exposure_of(other) == exposure and other != name:
                raise PermanentError(f"{name}: the same exposure as the catalogued {other}",
                                     reason=NAME_MISMATCH, filename=name)


def convert(state: DatasetState, config: PipelineConfig) -> DatasetState:
    """STIS ``_tag`` -> ``_corrtag`` beside it; other products pass unchanged."""
    tags = [p for p in state.job.event_files if p.name.lower().endswith("_tag.fits")]
    if not tags:
        return state
    from hstlc.extraction.stis_corrtag import tag_to_corrtag

    corrtag = tag_to_corrtag(tags[0], state.job.x1d, reference_dir=config.reference_dir)
    return replace(state, extract_files=(Path(corrtag),), made_files=(Path(corrtag),))


def lightcurve(state: DatasetState, config: PipelineConfig) -> DatasetState:
    """The individual lightcurve ``outputs/<TARGNAME>/<rootname>_curve.fits``."""
    from hstlc.extraction.extract import extract_lightcurve
    from hstlc.io.lightcurve_file import write_lightcurve

    assert state.targname is not None
    folder = config.layout.prepared_target_dir("outputs", state.targname, config.permissions)
    lc = extract_lightcurve(
        list(state.extract_files), x1d=state.job.x1d, step=config.step,
        reference_dir=config.reference_dir, find_partner=False,
        checksums=dict(state.hashes) or True, max_time_span_s=config.max_time_span_s,
    )
    curve = write_lightcurve(lc, folder / f"{state.job.rootname}_curve.fits")
    config.permissions.apply(curve)
    return replace(state, curve=curve)


def quicklook(state: DatasetState, config: PipelineConfig) -> DatasetState:
    """A PNG of counts and flux against time beside the lightcurve."""
    from hstlc.plots.quicklook import plot_quicklook

    assert state.curve is not None
    png = plot_quicklook(state.curve, state.curve.with_suffix(".png"))
    config.permissions.apply(png)
    return replace(state, quicklook=png)


def record(state: DatasetState, config: PipelineConfig) -> DatasetState:
    """Catalogue rows for every file, naming the folder it is moving to."""
    assert state.targname is not None
    destination = config.layout.target_input_dir(state.targname)
    records = {}
    for path in (*state.job.files, *state.made_files):
        values = catalogue_record(read_info(path))
        values.update(filename=path.name, path=str(destination),
                      sha256=state.hashes.get(path.name) or sha256_file(path))
        values["telescop"] = values.get("telescop") or "HST"
        records[path.name] = values
    record_rows(state, config, records)
    return state


def record_rows(state: DatasetState, config: PipelineConfig, records: dict[str, dict[str, Any]]) -> None:
    """Write the catalogue rows of a dataset: one ``metadata`` row per file, outputs."""
    curve = state.curve
    extracted = {p.name for p in state.extract_files}
    with session_scope(engine_for(config.database_url)) as session:
        for name, values in records.items():
            metadata_id = upsert_metadata(session, values)
            if curve is not None and name in extracted:
                upsert_output(session, metadata_id,
                              individual_path=str(curve.parent), individual_filename=curve.name)


def move(state: DatasetState, config: PipelineConfig) -> DatasetState:
    """Move every input (and made corrtag) into ``filesystem/<TARGNAME>/`` (after :func:`record`)."""
    assert state.targname is not None
    destination = config.layout.prepared_target_dir("filesystem", state.targname, config.permissions)
    for path in (*state.job.files, *state.made_files):
        target = destination / path.name
        if path != target and not (not path.exists() and _holds(target, state.hashes.get(path.name))):
            move_file(path, target, overwrite=True)
        config.permissions.apply(target)
    logger.debug("%s: %d files in %s", state.rootname,
                 len(state.job.files) + len(state.made_files), destination)
    return state


def _holds(target: Path, sha256: str | None) -> bool:
    """True when ``target`` exists with the expected content (an earlier attempt moved it)."""
    return target.is_file() and (sha256 is None or sha256_file(target) == sha256)


def ingest_steps() -> tuple[Step, ...]:
    """Every step, named, in order.

    Made on each call from this module's functions, so that a step function replaced
    here (a test injecting a fault) is the one both the tasks and :func:`process` run.
    """
    return (Step("check", check), Step("convert", convert), Step("lightcurve", lightcurve),
            Step("quicklook", quicklook), Step("record", record), Step("move", move))


def step_named(name: str) -> Step:
    """The step called ``name`` (``"check"``, ``"convert"``, ... ``"move"``)."""
    for candidate in ingest_steps():
        if candidate.name == name:
            return candidate
    raise KeyError(f"no ingest step {name!r}")


# -- running them ---------------------------------------------------------------------------


def run_step(name: str, state: DatasetState, config: PipelineConfig) -> DatasetState:
    """Run the step called ``name`` on one dataset (one Prefect task each).

    As :func:`guarded`; after the last step the dataset is marked done.
    """
    ordered = ingest_steps()
    state = guarded(step_named(name), state, config)
    return finish(state) if name == ordered[-1].name else state


def guarded(step: Step, state: DatasetState, config: PipelineConfig) -> DatasetState:
    """Run ``step`` unless the dataset is finished; turn bad data into a rejection.

    A :class:`~hstlc.errors.PermanentError` records the dataset in ``bad_data`` and
    moves its files to ``bad_data/``; any other exception propagates (transient ones
    are retried by the orchestration, the rest fail the dataset and leave its files).
    Three conditions leave the dataset in ``ingest/`` for the next run instead, with
    nothing recorded (status ``left``): the run was asked to stop before the step; a
    file of the dataset vanished from ``ingest/`` after planning (whatever error that
    caused: its intact partner is not refused); the disk filled (which stops the run).
    """
    if state.status != PENDING:
        return state
    if (why := stop_reason()) is not None:
        return replace(state, status=LEFT, detail=f"not started: {why}")
    started = time.perf_counter()
    try:
        new = step.run(state, config)
    except PermanentError as error:
        new = vanished(state, step) or reject(state, config, error.reason, error.detail)
    except Exception as error:
        full = disk_full(error)
        if full is not None:
            request_stop(str(full))
            return replace(state, status=LEFT, detail=f"{step.name}: {full}")
        left = vanished(state, step)
        if left is None:
            if not is_transient(error):  # the dataset fails: its traceback goes to the log file
                record_traceback("%s: %s failed", state.rootname, step.name, exc_info=error)
            raise
        new = left
    elapsed = time.perf_counter() - started
    return replace(new, seconds={**new.seconds, step.name: elapsed})


def vanished(state: DatasetState, step: Step) -> DatasetState | None:
    """The dataset left for the next run when one of its files vanished from ``ingest/``
    after planning (before ``move``, which moves them itself); else ``None``."""
    if step.name == "move":
        return None
    gone = [p.name for p in state.job.files if not os.path.lexists(p)]
    if not gone:
        return None
    detail = (f"{', '.join(gone)} vanished from {state.job.files[0].parent} during the run "
              f"({step.name}); the dataset is left for the next run")
    logger.warning("%s: %s", state.rootname, detail)
    return replace(state, status=LEFT, detail=detail)


def reject(state: DatasetState, config: PipelineConfig, reason: str, detail: str) -> DatasetState:
    """Record the refused delivery in ``bad_data`` and move it to ``bad_data/``.

    Only the files in ``ingest/`` are refused: a catalogued dataset of the same name,
    and the catalogued files :func:`~hstlc.ingest.plan.complete` joined to it, stay as
    they are.  A dataset with no file in ``ingest/`` is a catalogued one refused on
    re-processing: it is kept whole and reported failed (see the module's rules).
    Each file goes to :func:`~hstlc.fs.refused_destination` (never over another
    refusal); its row, keyed by name and content, says where.
    """
    layout = config.layout
    ingest = layout.ingest.resolve()
    present = [p for p in (*state.job.files, *state.made_files) if os.path.lexists(p)]
    files = [p for p in present if p.parent.resolve() == ingest]
    if not files:
        logger.error("%s: re-processing refused (%s): %s; the catalogued dataset is kept",
                     state.rootname, reason, detail)
        return replace(state, status=FAILED, reason=reason,
                       detail=f"re-processing refused ({reason}): {detail}; "
                              "the catalogued dataset is kept as it was")
    layout.ensure("bad_data", permissions=config.permissions)
    hashes = {p.name: state.hashes.get(p.name) or content_digest(p) for p in files}
    targets = {p: refused_destination(layout.bad_data, p.name, hashes[p.name]) for p in files}
    with session_scope(engine_for(config.database_url)) as session:
        for path, target in targets.items():
            record_bad_data(session, path.name, reason, detail=detail, path=str(target),
                            sha256=hashes[path.name])
    for path, target in targets.items():
        move_file(path, target, overwrite=True)  # free, or the very same content
        config.permissions.apply(target)
    logger.warning("%s rejected (%s): %s", state.rootname, reason, detail)
    return replace(state, status=REJECTED, reason=reason, detail=detail)


def run_all(state: DatasetState, config: PipelineConfig, steps: Iterable[Step]) -> DatasetState:
    """Run every step on one dataset (the batch mode); never raises.

    A step that fails for a transient reason is retried after
    :data:`~hstlc.errors.TRANSIENT_RETRY_DELAYS_S` (resuming at that step, not from the
    start); any other error ends the dataset as failed, with the step and the error in
    ``detail``, and leaves its files where they are.  A dataset an earlier attempt
    already finished is reported done, not redone.
    """
    moved_away = any(not os.path.lexists(path) for path in state.job.files)
    if state.status == PENDING and moved_away and is_done(state.job, config, state.hashes):
        return replace(state, status=DONE, detail="finished by an earlier attempt")
    earlier = (refusal(state.job, config, state.hashes)
               if state.status == PENDING and moved_away else None)
    if earlier is not None:  # refused by an earlier attempt: report its reason again
        return replace(state, status=REJECTED, reason=earlier[0], detail=earlier[1])
    for one in steps:
        for attempt in range(len(TRANSIENT_RETRY_DELAYS_S) + 1):
            try:
                state = guarded(one, state, config)
                break
            except Exception as error:  # the dataset's outcome, recorded in its state
                if is_transient(error) and attempt < len(TRANSIENT_RETRY_DELAYS_S):
                    logger.warning("%s: %s failed (%s); retrying", state.rootname, one.name, error)
                    time.sleep(TRANSIENT_RETRY_DELAYS_S[attempt])
                    continue
                logger.error("%s: %s failed: %s", state.rootname, one.name, error)
                return replace(state, status=FAILED, detail=f"{one.name}: {type(error).__name__}: {error}")
    return finish(state)


def finish(state: DatasetState) -> DatasetState:
    """Mark a dataset that went through every step as done."""
    return replace(state, status=DONE) if state.status == PENDING else state


def process(state: DatasetState, config: PipelineConfig) -> DatasetState:
    """Every step, in order, for one dataset (batch mode)."""
    return run_all(state, config, ingest_steps())
