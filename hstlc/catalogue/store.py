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

from hstlc.catalogue.models import BadData, Base, Metadata, Outputs, Stats, utcnow
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
    dialect = session.get_bind().dialect.name
    insert: Callable[[Table], Any]
    if dialect == "postgresql":
        insert = postgresql.insert
    elif dialect == "sqlite":
        insert = sqlite.insert
    else:
        raise ConfigurationError(f"unsupported catalogue database dialect {dialect!r}")
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


def delete_rows(session: Session, tables: Sequence[str]) -> dict[str, int]:
    """Delete every row of the named tables, children first; return counts per table."""
    order = ["stats", "outputs", "metadata", "bad_data"]
    models = {"stats": Stats, "outputs": Outputs, "metadata": Metadata, "bad_data": BadData}
    counts: dict[str, int] = {}
    for name in order:
        if name in tables:
            result = session.execute(delete(models[name]))
            counts[name] = int(getattr(result, "rowcount", 0) or 0)
    return counts
