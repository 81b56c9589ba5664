"""The ``stats`` table: which lightcurves need a row, and the row of each.

Incremental: a lightcurve's row keeps the sha256 of the file it was computed from, and
only files whose content changed since (or that have no row) are computed again, unless
every one is asked for.  A lightcurve that cannot be read, or has too few exposed bins,
gets a row with the reason and no statistics: never a failed run.

A file written before lightcurves had the ``bjd_tdb`` column gets it here (the file is
rewritten atomically, keeping every other HDU), so that each lightcurve whose statistics
are computed carries its barycentric times.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from hstlc.catalogue.engine import engine_for, session_scope
from hstlc.catalogue.queries import composite_members, lightcurve_files, stats_versions
from hstlc.catalogue.store import upsert_stats
from hstlc.errors import UnreadableFileError
from hstlc.extraction.barycentre import bjd_column
from hstlc.fs import sha256_file
from hstlc.io.fits_writer import write_fits
from hstlc.io.lightcurve_file import UNITS, Lightcurve, read_lightcurve
from hstlc.logs import record as record_traceback
from hstlc.variability.periodogram import PERIOD_RANGES
from hstlc.variability.stats import StatsConfig, compute_stats, unusable_stats

logger = logging.getLogger(__name__)

#: What ``hstlc stats`` may be asked to compute.
SCOPES = ("individual", "composite", "both")
#: The period ranges' names, as the ``stats`` columns spell them.
RANGE_NAMES = tuple(name for name, _, _ in PERIOD_RANGES)


@dataclass(frozen=True)
class StatsJob:
    """One lightcurve file whose row is (re)computed."""

    path: Path
    kind: str
    targname: str


def plan_stats(database_url: str, scope: str = "both", *, recompute: bool = False) -> list[StatsJob]:
    """The lightcurves of ``scope`` whose file changed since their row was written (or
    that have none); every one with ``recompute``."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; choose one of {', '.join(SCOPES)}")
    with session_scope(engine_for(database_url)) as session:
        files = lightcurve_files(session)
        known = stats_versions(session)
    jobs = []
    for folder, name, kind, targname in files:
        if scope != "both" and kind != scope:
            continue
        path = Path(folder) / name
        if recompute or (folder, name) not in known or _changed(path, *known[(folder, name)]):
            jobs.append(StatsJob(path, kind, targname))
    return jobs


def _changed(path: Path, sha256: str | None, written: dt.datetime) -> bool:
    """Whether ``path`` differs from the file its row was computed from."""
    return not path.exists() or content_sha256(path, sha256, written) != sha256


def content_sha256(path: Path, sha256: str | None, written: dt.datetime) -> str | None:
    """The sha256 of ``path`` now, knowing that its ``stats`` row, written at ``written``,
    holds ``sha256``: a file not modified since the row was written is not read; a newer
    one is.  None when the file cannot be read."""
    try:
        modified = path.stat().st_mtime
    except OSError:
        return None
    written = written if written.tzinfo is not None else written.replace(tzinfo=dt.UTC)
    return _digest(path) if modified >= written.timestamp() else sha256


def best_period(values: Mapping[str, Any]) -> float | None:
    """The period of the range with the smallest false-alarm probability in a ``stats``
    row's values (``period_short`` ... ``fap_long``), or None when no range was searched.

    Examples
    --------
    >>> best_period({"period_short": 60.0, "fap_short": 0.2, "period_medium": 900.0,
    ...              "fap_medium": 1e-5, "period_long": None, "fap_long": None})
    900.0
    """
    found: list[tuple[float, float]] = []
    for name in RANGE_NAMES:
        fap, period = values.get(f"fap_{name}"), values.get(f"period_{name}")
        if fap is not None and period is not None and np.isfinite(fap):
            found.append((float(fap), float(period)))
    return min(found)[1] if found else None


def unrecorded(database_url: str) -> int:
    """How many lightcurves the catalogue names have no ``stats`` row (no file is read)."""
    with session_scope(engine_for(database_url)) as session:
        known = stats_versions(session)
        return sum((folder, name) not in known for folder, name, _, _ in lightcurve_files(session))


def _digest(path: Path) -> str | None:
    try:
        return sha256_file(path)
    except OSError:
        return None


def compute_row(job: StatsJob, database_url: str, config: StatsConfig) -> dict[str, Any]:
    """The ``stats`` row of one lightcurve (with the reason when it has no statistics)."""
    row: dict[str, Any] = {"lightcurve_path": str(job.path.parent),
                           "lightcurve_filename": job.path.name, "kind": job.kind,
                           "targname": job.targname}
    try:
        lc = with_barycentric_times(job.path, read_lightcurve(job.path))
    except (UnreadableFileError, OSError) as error:
        why = f"{type(error).__name__}: {error}" if isinstance(error, OSError) else str(error)
        return {**row, **unusable_stats(f"unreadable: {why}"[:255]).row(), "sha256": _digest(job.path)}
    members_ok = True
    if job.kind == "composite":
        with session_scope(engine_for(database_url)) as session:
            recorded = composite_members(session, job.path.name)
        members_ok = len(recorded) >= len(np.unique(lc.dataset))
    stats = compute_stats(lc, config, composite=job.kind == "composite", members_ok=members_ok)
    return {**row, **stats.row(), "sha256": sha256_file(job.path)}


def with_barycentric_times(path: Path, lc: Lightcurve) -> Lightcurve:
    """``lc``, and its file, with the ``bjd_tdb`` column (added when the file lacks it and
    the target's position is known)."""
    if lc.bjd_tdb is not None:
        return lc
    bjd = bjd_column(lc.mjd, lc.meta)
    if bjd is None:
        return lc
    with fits.open(path) as hdulist:
        hdus = [hdu.copy() for hdu in hdulist]
    index = next(i for i, hdu in enumerate(hdus) if hdu.name == "LIGHTCURVE")
    table = hdus[index]
    column = fits.Column(name="bjd_tdb", format="D", unit=UNITS["bjd_tdb"], array=bjd)
    hdus[index] = fits.BinTableHDU.from_columns(table.columns + fits.ColDefs([column]),
                                                header=table.header, name="LIGHTCURVE")
    write_fits(hdus, path)
    logger.info("%s: bjd_tdb column added", path.name)
    return read_lightcurve(path)


def record_rows(database_url: str, rows: Sequence[dict[str, Any]]) -> None:
    """Write the rows in one transaction."""
    with session_scope(engine_for(database_url)) as session:
        for row in rows:
            upsert_stats(session, row)


def update_stats(jobs: Sequence[StatsJob], database_url: str, config: StatsConfig) -> dict[str, Any]:
    """Compute and record the rows of ``jobs``: how many were computed, how many hold only
    a reason, and the lightcurves whose computation failed (a defect: no row is written,
    the traceback goes to the log file, the others are recorded)."""
    rows, failed = [], {}
    for job in jobs:
        try:
            rows.append(compute_row(job, database_url, config))
        except Exception as error:  # one lightcurve's defect does not cost the batch's rows
            record_traceback("stats of %s failed", job.path, exc_info=error)
            failed[job.path.name] = f"{type(error).__name__}: {error}"
    record_rows(database_url, rows)
    unusable = sum(row["reason"] is not None for row in rows)
    return {"computed": len(rows) - unusable, "unusable": unusable, "failed": failed}
