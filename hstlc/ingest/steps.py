"""The ingest steps themselves: quality, STIS conversion, lightcurve, quicklook, catalogue, move.

Each step has the signature ``step(state, config) -> state`` (see
:mod:`hstlc.ingest.dataset` for the order and for what happens to bad data).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy import select

from hstlc.catalogue.engine import session_scope
from hstlc.catalogue.models import Metadata
from hstlc.errors import MissingKeywordError
from hstlc.extraction.quality import check_dataset
from hstlc.fs import sha256_file
from hstlc.ingest import dataset as pipeline
from hstlc.ingest.dataset import DatasetJob, DatasetState, PipelineConfig
from hstlc.io.headers import ObservationInfo, catalogue_record, read_observation_info
from hstlc.io.products import Product, detect_product, open_fits
from hstlc.targets import normalize_targname

logger = logging.getLogger(__name__)

GroupKey = tuple[str, str, str, str, str, str]


@dataclass(frozen=True)
class IngestPlan:
    """The datasets to process and what was left aside, with why."""

    todo: tuple[DatasetState, ...]
    skipped: tuple[DatasetState, ...]
    unrecognised: tuple[Path, ...]
    orphan_x1d: tuple[Path, ...]


def plan_ingest(config: PipelineConfig, *, force: bool = False) -> IngestPlan:
    """Datasets waiting in ``ingest/`` that the catalogue does not already hold.

    With ``force`` (the 2016 ``-corrtag_extract``), every dataset already in
    ``filesystem/`` is processed again too, re-extracting its lightcurve.
    """
    found = pipeline.discover(config.layout.ingest)
    jobs = list(found.jobs)
    if force:
        jobs += filesystem_jobs(config)
    todo, skipped = pipeline.plan(jobs, config, force=force)
    for path in found.unrecognised:
        logger.info("%s: not an hstlc input; left where it is", path)
    return IngestPlan(tuple(todo), tuple(skipped), found.unrecognised, found.orphan_x1d)


def filesystem_jobs(config: PipelineConfig, targname: str | None = None) -> list[DatasetJob]:
    """Datasets already ingested (all, or one target's), found through the catalogue."""
    with session_scope(pipeline.engine_for(config.database_url)) as session:
        rows = session.execute(select(Metadata.path, Metadata.targname).distinct()).all()
    wanted = None if targname is None else normalize_targname(targname)
    folders = sorted({Path(path) for path, name in rows
                      if wanted is None or normalize_targname(name) == wanted})
    jobs: list[DatasetJob] = []
    for folder in folders:
        jobs.extend(pipeline.discover(folder).jobs)
    return jobs


def plan_target(config: PipelineConfig, target: str) -> IngestPlan:
    """Every dataset of one target, to be processed again."""
    jobs = filesystem_jobs(config, target)
    if not jobs:
        logger.warning("no ingested dataset of target %r (normalised %r) in the catalogue",
                       target, normalize_targname(target))
    todo, _ = pipeline.plan(jobs, config, force=True)
    return IngestPlan(tuple(todo), (), (), ())


def read_info(path: Path) -> ObservationInfo:
    """Header values of one input file."""
    with open_fits(path) as hdulist:
        product = detect_product(hdulist, path.name)
        return read_observation_info(hdulist, path.name, product)


def group_key(info: ObservationInfo) -> GroupKey:
    """The composite group of a dataset (the 2016 key, target name normalised)."""
    return (info.instrume, info.detector, normalize_targname(info.targname),
            info.opt_elem, str(info.cenwave), info.aperture)


# -- the steps --------------------------------------------------------------------------------


def check(state: DatasetState, config: PipelineConfig) -> DatasetState:
    """Quality checks of every file of the dataset; learn its target and group."""
    verdict = check_dataset(state.job.files, bad_proposals=config.bad_proposals)
    verdict.raise_for_reason()
    info = read_info(state.job.event_files[0])
    if not info.targname.strip():
        raise MissingKeywordError(f"{info.filename}: TARGNAME is empty", filename=info.filename)
    return replace(state, targname=info.targname, group_key=group_key(info),
                   extract_files=state.job.event_files)


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
        checksums=dict(state.hashes) or True,
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
        info = read_info(path)
        values = catalogue_record(info)
        values.update(filename=path.name, path=str(destination),
                      sha256=state.hashes.get(path.name) or sha256_file(path))
        values["telescop"] = values.get("telescop") or "HST"
        records[path.name] = values
    pipeline.record_rows(state, config, records)
    return state


def move(state: DatasetState, config: PipelineConfig) -> DatasetState:
    """Move the inputs into ``filesystem/<TARGNAME>/`` (after :func:`record`)."""
    return pipeline.move_inputs(state, config)


INGEST_STEPS = (check, convert, lightcurve, quicklook, record, move)


def process(state: DatasetState, config: PipelineConfig) -> DatasetState:
    """Every step, in order, for one dataset (batch mode)."""
    return pipeline.run_all(state, config, INGEST_STEPS)


__all__ = ["INGEST_STEPS", "GroupKey", "IngestPlan", "Product", "check", "convert",
           "lightcurve", "move", "plan_ingest", "plan_target", "process", "quicklook", "record"]
