"""Named reads of the catalogue: what is ingested, what was refused, which groups exist.

Every function takes a session and never commits (the transaction is opened at the
boundary, :func:`hstlc.catalogue.engine.session_scope`).  The writes are in
:mod:`hstlc.catalogue.store`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from hstlc.catalogue.models import BadData, Metadata, Outputs
from hstlc.io.headers import GroupKey
from hstlc.targets import normalize_targname

#: Catalogue files that are event lists a composite is made from (STIS: the corrtag).
EVENT_SUFFIXES = ("_corrtag_a.fits", "_corrtag_b.fits", "_corrtag.fits")


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
