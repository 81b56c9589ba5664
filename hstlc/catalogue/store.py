"""Idempotent writes of the catalogue (the reads are in :mod:`hstlc.catalogue.queries`).

Every function takes a session and never commits: the transaction is opened at the
boundary (:func:`hstlc.catalogue.engine.session_scope`).  Upserts use the dialect's own
``INSERT ... ON CONFLICT DO UPDATE`` (SQLite and PostgreSQL), so concurrent or
repeated runs never race between a check and an insert.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Table, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from hstlc.catalogue.models import BadData, Base, Download, Metadata, Outputs, Stats, utcnow
from hstlc.errors import ConfigurationError


def upsert(
    session: Session,
    model: type[Base],
    values: Mapping[str, Any],
    conflict_columns: Sequence[str],
    *,
    update_columns: Iterable[str] | None = None,
) -> int:
    """Insert ``values`` into ``model``'s table, or update the row that conflicts.

    Parameters
    ----------
    session : Session
        Open session; not committed here.
    model : type
        Mapped class.
    values : mapping
        Column values of the row.
    conflict_columns : sequence of str
        Columns of the unique constraint that identifies the row.
    update_columns : iterable of str, optional
        Columns to overwrite on conflict (default: every given column but the keys).

    Returns
    -------
    int
        The primary key of the inserted or updated row.
    """
    table: Table = model.__table__  # type: ignore[assignment]
    insert = _dialect_insert(session)
    row = dict(values)
    if "updated_at" in table.c:
        row.setdefault("updated_at", utcnow())
    columns = list(update_columns) if update_columns is not None else list(row)
    columns = [name for name in columns if name not in conflict_columns]
    statement = insert(table).values(**row)
    upsert_statement = statement.on_conflict_do_update(
        index_elements=list(conflict_columns),
        set_={name: statement.excluded[name] for name in columns},
    ).returning(table.c.id)
    return int(session.execute(upsert_statement).scalar_one())


def _dialect_insert(session: Session) -> Callable[[Table], Any]:
    """The dialect's ``INSERT`` (it has ``ON CONFLICT DO UPDATE``): SQLite or PostgreSQL."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert
    if dialect == "sqlite":
        return sqlite.insert
    raise ConfigurationError(f"unsupported catalogue database dialect {dialect!r}")


def upsert_metadata(session: Session, record: Mapping[str, Any]) -> int:
    """Record an ingested input file (keyed by ``filename``); return its id."""
    values = dict(record)
    values.setdefault("ingest_date", dt.date.today())
    return upsert(session, Metadata, values, ["filename"])


def upsert_output(session: Session, metadata_id: int, **paths: str | None) -> int:
    """Record the products of one input file (``individual_*`` / ``composite_*``)."""
    allowed = {"individual_path", "individual_filename", "composite_path", "composite_filename"}
    unknown = set(paths) - allowed
    if unknown:
        raise TypeError(f"unknown outputs columns: {sorted(unknown)}")
    return upsert(session, Outputs, {"metadata_id": metadata_id, **paths}, ["metadata_id"])


def record_bad_data(
    session: Session,
    filename: str,
    reason: str,
    *,
    detail: str | None = None,
    path: str | None = None,
    sha256: str | None = None,
) -> int:
    """Record a refused file, keyed by its name and content; return the row's id.

    The same name refused again with the same content updates its row (reason, detail,
    place); with other content it gets a row of its own, so no refusal is ever lost.
    ``path`` is where that very file is now (``bad_data/<name>`` or a name beside it).
    A refusal of unknown content (``sha256`` None) is one row per name.
    """
    values: dict[str, Any] = {
        "filename": filename,
        "reason": reason,
        "detail": detail,
        "path": path,
        "sha256": sha256,
        "ingest_date": dt.date.today(),
    }
    if sha256 is None:  # NULLs never conflict: find the row of unknown content by hand
        known = session.scalar(select(BadData.id).where(BadData.filename == filename,
                                                        BadData.sha256.is_(None)))
        if known is not None:
            values["id"] = known
            return upsert(session, BadData, values, ["id"])
    return upsert(session, BadData, values, ["filename", "sha256"])


def record_downloads(session: Session, rows: Sequence[Mapping[str, Any]]) -> int:
    """Record what became of files of a download run, keyed by ``run`` and ``filename``, in
    one statement (the rows have the same columns); return how many.  Recording a file of
    the same run again updates its row."""
    if not rows:
        return 0
    keys = ("run", "filename")
    now = utcnow()
    table: Table = Download.__table__  # type: ignore[assignment]
    statement = _dialect_insert(session)(table).values(
        [{**row, "updated_at": now} for row in rows])
    session.execute(statement.on_conflict_do_update(
        index_elements=list(keys),
        set_={name: statement.excluded[name] for name in [*rows[0], "updated_at"] if name not in keys}))
    return len(rows)


def delete_rows(session: Session, tables: Sequence[str]) -> dict[str, int]:
    """Delete every row of the named tables, children first; return counts per table."""
    order = ["stats", "outputs", "metadata", "bad_data", "download"]
    models = {"stats": Stats, "outputs": Outputs, "metadata": Metadata, "bad_data": BadData,
              "download": Download}
    counts: dict[str, int] = {}
    for name in order:
        if name in tables:
            result = session.execute(delete(models[name]))
            counts[name] = int(getattr(result, "rowcount", 0) or 0)
    return counts


def upsert_stats(session: Session, values: Mapping[str, Any]) -> int:
    """Record the statistics of one lightcurve file (keyed by its folder and name)."""
    return upsert(session, Stats, values, ["lightcurve_path", "lightcurve_filename"])
