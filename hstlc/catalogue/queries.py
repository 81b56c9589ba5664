"""Named reads of the catalogue: what is ingested, what was refused, which groups exist.

Every function takes a session and never commits (the transaction is opened at the
boundary, :func:`hstlc.catalogue.engine.session_scope`).  The writes are in
:mod:`hstlc.catalogue.store`.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from hstlc.catalogue.models import BadData, Download, Metadata, Outputs, Stats
from hstlc.io.headers import GroupKey
from hstlc.targets import normalize_targname

#: Catalogue files that are event lists a composite is made from (STIS: the corrtag).
EVENT_SUFFIXES = ("_corrtag_a.fits", "_corrtag_b.fits", "_corrtag.fits")
#: Longest list of names a query sends as one ``IN`` (SQLite allows 32766 parameters).
_MAX_IN = 5000


def is_event_filename(filename: str) -> bool:
    """True for the name of an event list a composite is made from."""
    return filename.lower().endswith(EVENT_SUFFIXES)


def catalogued(session: Session, filenames: Iterable[str]) -> dict[str, tuple[str, str]]:
    """``filename -> (sha256, folder)`` of the named files the catalogue holds as ingested."""
    names = list(filenames)
    if not names:
        return {}
    rows = session.execute(
        select(Metadata.filename, Metadata.sha256, Metadata.path).where(Metadata.filename.in_(names))
    ).all()
    return {name: (sha, folder) for name, sha, folder in rows}


def refusals(session: Session, filenames: Iterable[str]) -> dict[str, BadData]:
    """``filename -> bad_data row`` of the named files the catalogue holds as refused.

    A name refused several times (with different content) gives its newest row.
    """
    names = list(filenames)
    if not names:
        return {}
    rows = session.scalars(select(BadData).where(BadData.filename.in_(names))
                           .order_by(BadData.id)).all()
    return {row.filename: row for row in rows}


def refusals_of(session: Session, hashes: Mapping[str, str]) -> dict[str, BadData]:
    """``filename -> bad_data row`` of the files refused with this very content.

    ``hashes`` maps each file name to its sha256; a name refused only with other
    content is absent from the result.
    """
    if not hashes:
        return {}
    rows = session.scalars(select(BadData).where(BadData.filename.in_(list(hashes)))).all()
    return {row.filename: row for row in rows if row.sha256 == hashes[row.filename]}


def catalogued_exposures(session: Session, rootnames: Iterable[str]) -> dict[str, list[str]]:
    """``rootname -> file names`` the catalogue holds for the named rootnames."""
    names = list(rootnames)
    if not names:
        return {}
    found: dict[str, list[str]] = {}
    rows = session.execute(select(Metadata.rootname, Metadata.filename)
                           .where(Metadata.rootname.in_(names))).all()
    for rootname, filename in rows:
        found.setdefault(rootname, []).append(filename)
    return found


def files_of_rootname(session: Session, rootname: str) -> dict[str, Path]:
    """``filename -> recorded place`` of every ingested file of one dataset."""
    rows = session.execute(
        select(Metadata.filename, Metadata.path).where(Metadata.rootname == rootname)
    ).all()
    return {name: Path(folder, name) for name, folder in rows}


def ingested_folders(session: Session, targname: str | None = None) -> list[Path]:
    """The ``filesystem/`` folders holding ingested files: all, or one target's.

    ``targname`` is compared normalised (:func:`~hstlc.targets.normalize_targname`), so
    an alias or another spelling of the target finds the same folders.
    """
    rows = session.execute(select(Metadata.path, Metadata.targname).distinct()).all()
    wanted = None if targname is None else normalize_targname(targname)
    return sorted({Path(folder) for folder, name in rows
                   if wanted is None or normalize_targname(name) == wanted})


def _is_event_file() -> ColumnElement[bool]:
    """The ``metadata`` rows of event lists (by file name, as :data:`EVENT_SUFFIXES`)."""
    name = func.lower(Metadata.filename)
    return or_(*(name.endswith(suffix, autoescape=True) for suffix in EVENT_SUFFIXES))


def group_keys(session: Session) -> list[GroupKey]:
    """Every composite group of the catalogue's event files, sorted.

    One ``SELECT DISTINCT`` of the key columns; the target names are normalised here
    (normalisation is Python), so two spellings of a target make one group.
    """
    rows: Sequence[Any] = session.execute(
        select(Metadata.instrume, Metadata.detector, Metadata.targname, Metadata.opt_elem,
               Metadata.cenwave, Metadata.aperture).where(_is_event_file()).distinct()
    ).all()
    return sorted({GroupKey.of(row) for row in rows})


def group_rows(session: Session, key: GroupKey) -> list[Metadata]:
    """The ``metadata`` rows of one group (event files, x1d and others), by file name.

    Selected by the key's columns; the target names written in the catalogue that
    normalise to ``key.targname`` are found first.
    """
    setup = (Metadata.instrume == key.instrume, Metadata.detector == key.detector,
             Metadata.opt_elem == key.opt_elem, Metadata.cenwave == key.cenwave,
             Metadata.aperture == key.aperture)
    written = session.scalars(select(Metadata.targname).where(*setup).distinct()).all()
    names = [name for name in written if normalize_targname(name) == key.targname]
    if not names:
        return []
    return list(session.scalars(
        select(Metadata).where(*setup, Metadata.targname.in_(names)).order_by(Metadata.filename)
    ).all())


def composite_output_count(session: Session, composite_filename: str) -> int:
    """How many ``outputs`` rows point at the composite ``composite_filename``."""
    count = session.scalar(
        select(func.count()).select_from(Outputs).where(Outputs.composite_filename == composite_filename)
    )
    return int(count or 0)


def refused_rootnames(session: Session, rootnames: Iterable[str]) -> set[str]:
    """The rootnames (lower case) with a file refused into ``bad_data``.

    A refused file's name starts with its rootname and ``_`` (``ld9m10ujq_corrtag_a.fits``);
    the names are compared in lower case, one ``IN`` per rootname length.
    """
    wanted = {name.lower() for name in rootnames}
    found: set[str] = set()
    for length in sorted({len(name) for name in wanted}):
        prefix = func.lower(func.substr(BadData.filename, 1, length))
        rows = session.scalars(select(prefix).distinct().where(
            prefix.in_(sorted(n for n in wanted if len(n) == length)),
            func.substr(BadData.filename, length + 1, 1) == "_")).all()
        found.update(rows)
    return found


def download_rows(session: Session, run: str | None = None) -> list[Download]:
    """The ``download`` rows of one run (all runs when ``None``), by run and file name."""
    query = select(Download).order_by(Download.run, Download.filename)
    if run is not None:
        query = query.where(Download.run == run)
    return list(session.scalars(query).all())


#: The lightcurve files the catalogue knows: (folder, file name, kind, TARGNAME).
LightcurveFile = tuple[str, str, str, str]


def lightcurve_files(session: Session) -> list[LightcurveFile]:
    """Every individual and composite lightcurve the ``outputs`` rows name, once each,
    with the TARGNAME of a member (sorted by kind, then folder and name)."""
    found: dict[tuple[str, str], LightcurveFile] = {}
    for kind, folder, name in (("individual", Outputs.individual_path, Outputs.individual_filename),
                               ("composite", Outputs.composite_path, Outputs.composite_filename)):
        rows = session.execute(
            select(folder, name, func.min(Metadata.targname))
            .join(Metadata, Metadata.id == Outputs.metadata_id)
            .where(folder.is_not(None), name.is_not(None)).group_by(folder, name)).all()
        for path, filename, targname in rows:
            found.setdefault((str(path), str(filename)), (str(path), str(filename), kind, targname or ""))
    return sorted(found.values(), key=lambda item: (item[2] != "individual", item[0], item[1]))


def stats_versions(session: Session) -> dict[tuple[str, str], tuple[str | None, dt.datetime]]:
    """``(folder, file name) -> (sha256, updated_at)``: the lightcurve each ``stats`` row
    was computed from, and when the row was written."""
    rows = session.execute(select(Stats.lightcurve_path, Stats.lightcurve_filename, Stats.sha256,
                                  Stats.updated_at))
    return {(path, name): (sha, written) for path, name, sha, written in rows}


def composite_members(session: Session, composite_filename: str) -> set[str]:
    """Rootnames of the datasets whose ``outputs`` rows point at the composite."""
    rows = session.scalars(
        select(Metadata.rootname).join(Outputs, Outputs.metadata_id == Metadata.id)
        .where(Outputs.composite_filename == composite_filename).distinct())
    return set(rows)


def stats_table(session: Session, *, sort: str = "poisson_factor", limit: int | None = None,
                target: str | None = None, filenames: Iterable[str] | None = None) -> list[Stats]:
    """``stats`` rows, most variable first by ``sort`` (ascending for a false-alarm
    probability or a p-value, descending otherwise; rows without it last), of one target
    (its aliases allowed) or all, and only of the lightcurves named ``filenames`` if given."""
    if sort not in Stats.__table__.c:
        raise ValueError(f"unknown stats column {sort!r}; choose one of "
                         f"{', '.join(c.name for c in Stats.__table__.c)}")
    column = Stats.__table__.c[sort]
    ascending = sort.startswith("fap") or sort == "pearson_p"
    query = select(Stats).order_by(column.is_(None), column.asc() if ascending else column.desc(),
                                   Stats.lightcurve_filename)
    if target is not None:
        wanted = normalize_targname(target)
        written = session.scalars(select(Stats.targname).distinct()).all()
        query = query.where(Stats.targname.in_([n for n in written if normalize_targname(n or "") == wanted]))
    names = None if filenames is None else set(filenames)
    if names is not None and len(names) <= _MAX_IN:
        query = query.where(Stats.lightcurve_filename.in_(sorted(names)))
    elif names is not None:  # too many for one IN list: filtered as they come
        rows = (row for row in session.scalars(query) if row.lightcurve_filename in names)
        return list(rows if limit is None else itertools.islice(rows, limit))
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


#: The setup and exposure of every lightcurve, from its members' event files.
SETUP_COLUMNS = ("instrume", "detector", "opt_elem", "cenwave", "aperture")


def lightcurve_setups(session: Session) -> dict[tuple[str, str], dict[str, Any]]:
    """``(folder, file name) -> setup`` of every individual and composite lightcurve the
    ``outputs`` rows name: its kind, TARGNAME (as written; the first in sort order when its
    members spell it differently), instrument, detector, grating,
    cenwave, aperture, exposure time (s: the members' EXPTIME, each dataset once; an FUV
    segment pair is one dataset) and member rootnames (sorted).

    One query over the event files' rows; the aggregation is done here, as the target
    names are normalised in Python.
    """
    rows = session.execute(
        select(Outputs.individual_path, Outputs.individual_filename, Outputs.composite_path,
               Outputs.composite_filename, Metadata.rootname, Metadata.targname, Metadata.exptime,
               *(getattr(Metadata, column) for column in SETUP_COLUMNS))
        .join(Metadata, Metadata.id == Outputs.metadata_id).where(_is_event_file())).all()
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        setup = dict(zip(SETUP_COLUMNS, row[7:], strict=True))
        for kind, folder, name in (("individual", row[0], row[1]), ("composite", row[2], row[3])):
            if folder is None or name is None:
                continue
            entry = found.setdefault((str(folder), str(name)), {
                "kind": kind, "targname": row[5], **setup, "exposures": {}})
            entry["targname"] = min(entry["targname"], row[5])  # one name, whatever the order
            exposures = entry["exposures"]
            exposures[row[4]] = max(exposures.get(row[4], 0.0), float(row[6] or 0.0))
    for entry in found.values():
        exposures = entry.pop("exposures")
        entry["exptime"] = float(sum(exposures.values()))
        entry["members"] = sorted(exposures)
    return found


def stats_rows(session: Session) -> dict[tuple[str, str], Stats]:
    """``(folder, file name) -> stats row`` of every lightcurve that has one."""
    return {(row.lightcurve_path, row.lightcurve_filename): row for row in session.scalars(select(Stats))}


def refusal_counts(session: Session) -> dict[str, int]:
    """``bad_data`` reason -> refused files (each name and content once)."""
    rows = session.execute(select(BadData.reason, func.count()).group_by(BadData.reason)).all()
    return {str(reason): int(count) for reason, count in rows}


def catalogue_updated(session: Session) -> dt.datetime | None:
    """When the catalogue last changed (the latest ``updated_at`` of its rows), or None
    when it is empty."""
    latest = [session.scalar(select(func.max(model.updated_at)))
              for model in (Metadata, Outputs, BadData, Stats)]
    known = [value.replace(tzinfo=value.tzinfo or dt.UTC) for value in latest if value is not None]
    return max(known) if known else None

