"""Schema migrations of the catalogue (Alembic, shipped inside the package), and the
drift between the database and the models in words, with what can be repaired safely."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Connection, Engine, ForeignKeyConstraint, Index, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import ColumnCollectionConstraint

from hstlc.catalogue.models import Base

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

#: What a difference of each kind means for the database, against the models.
PREDICATES = {
    "add_table": "is missing", "remove_table": "is not in the models",
    "add_column": "is missing", "remove_column": "is not in the models",
    "add_index": "is missing", "remove_index": "is not in the models",
    "add_constraint": "is missing", "remove_constraint": "is not in the models",
    "add_fk": "is missing", "remove_fk": "is not in the models",
}
#: What the operator does about a difference that :func:`repair_schema` leaves.
NOT_OURS = "not made by hstlc: drop it unless something else needs it"
REBUILD = ("restore the catalogue from a backup, or rebuild it from the files "
           "(`hstlc fs reset`, an empty database, `hstlc run`)")


def alembic_config(engine: Engine) -> Config:
    """An Alembic configuration bound to ``engine`` (no ``alembic.ini`` needed)."""
    config = Config(stdout=sys.stdout)  # the current stream, not the one at import time
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # '%' is Alembic's interpolation character: escape it in passwords.
    url = engine.url.render_as_string(hide_password=False).replace("%", "%%")
    config.set_main_option("sqlalchemy.url", url)
    return config


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Create or migrate the schema to ``revision``; return (before, after) revisions."""
    before = current_revision(engine)
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    return before, current_revision(engine)


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at (``None`` before the first upgrade)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    """The newest revision shipped with this version of hstlc."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config).get_current_head()


# -- drift between the database and the models ------------------------------------------------


@dataclass(frozen=True)
class SchemaRepair:
    """What :func:`repair_schema` created, and the differences left for the operator, each
    with what to do about it."""

    repaired: tuple[str, ...]
    remaining: tuple[str, ...]


def _differences(connection: Connection) -> list[tuple[Any, ...]]:
    """Alembic's differences (as ``alembic check`` finds them), one tuple each.

    Alembic leaves its own ``alembic_version`` table out.
    """
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    flat: list[tuple[Any, ...]] = []
    for diff in compare_metadata(context, Base.metadata):
        flat.extend(diff if isinstance(diff, list) else [diff])  # a column's changes: a list
    # A missing (or extra) table's indexes go with it: not differences of their own.
    tables = {diff[1].name for diff in flat if diff[0] in ("add_table", "remove_table")}
    return [diff for diff in flat if not (diff[0] in ("add_index", "remove_index")
                                          and str(diff[1].table.name) in tables)]


def _columns(names: Any) -> str:
    return ", ".join(str(getattr(name, "name", name)) for name in names)


def _subject(diff: tuple[Any, ...]) -> str:
    """What a difference is about: ``table stats``, ``column metadata.fppos`` ..."""
    match diff:
        case (_, Table() as table, *_):
            return f"table {table.name}"
        case (_, Index() as index):
            unique = "unique " if index.unique else ""
            return f"{unique}index {index.name} on {index.table} ({_columns(index.columns)})"
        case (_, ForeignKeyConstraint() as key):
            targets = _columns(element.target_fullname for element in key.elements)
            return f"foreign key {key.table}.{_columns(key.columns)} -> {targets}"
        case (_, ColumnCollectionConstraint() as constraint):
            kind = constraint.__visit_name__.replace("_", " ")  # unique constraint
            named = f"{kind} {constraint.name}" if constraint.name else kind  # SQLite: may be unnamed
            return f"{named} on {constraint.table} ({_columns(constraint.columns)})"
        case (_, _, table, Column() as column):
            return f"column {table}.{column.name}"
        case (_, _, table, column, *_):
            return f"column {table}.{column}"
    return str(diff[0])


def _sentence(diff: tuple[Any, ...], dialect: Dialect) -> str:
    """One plain sentence for one difference."""
    kind, subject = diff[0], _subject(diff)
    if kind == "modify_type":
        found, expected = (sql_type.compile(dialect=dialect) for sql_type in diff[5:7])
        return f"{subject} has type {found}, expected {expected}"
    if kind == "modify_nullable":
        found = "allows NULL" if diff[5] else "is NOT NULL"
        return f"{subject} {found}, expected {'to allow NULL' if diff[6] else 'NOT NULL'}"
    return f"{subject} {PREDICATES.get(kind, f'differs from the models ({kind})')}"


def _advice(diff: tuple[Any, ...]) -> str:
    return NOT_OURS if diff[0].startswith("remove_") else REBUILD


def schema_differences(engine: Engine) -> list[str]:
    """The differences between the database and the models, one plain sentence each.

    The same comparison as ``alembic check`` (``hstlc db check``): e.g. "table stats is
    missing", "column metadata.exptime has type TEXT, expected FLOAT"; none when they match.
    """
    with engine.connect() as connection:
        return [_sentence(diff, connection.dialect) for diff in _differences(connection)]


def _model_index(index: Index) -> Index:
    """The models' own index of that name (with its dialect options)."""
    table = Base.metadata.tables[str(index.table)]
    return next(own for own in table.indexes if own.name == index.name)


def repair_schema(engine: Engine) -> SchemaRepair:
    """Create what the database lacks and can safely get: tables (with their indexes and
    constraints) and indexes.  Nothing is dropped or altered; no row changes.

    Run it on a schema at the head revision (after :func:`upgrade`).  The differences left
    come back in words with what the operator should do about each.  A unique index that
    the rows contradict fails with the database's error (what was created before it is
    kept: each creation is right on its own).
    """
    with engine.begin() as connection:
        diffs = _differences(connection)
        tables = [diff[1].name for diff in diffs if diff[0] == "add_table"]
        indexes = [_model_index(diff[1]) for diff in diffs if diff[0] == "add_index"]
        Base.metadata.create_all(connection, tables=[Base.metadata.tables[t] for t in tables])
        for index in indexes:
            index.create(connection)
    repaired = [f"created missing {_subject(diff)}" for kind in ("add_table", "add_index")
                for diff in diffs if diff[0] == kind]
    with engine.connect() as connection:
        remaining = [f"{_sentence(diff, connection.dialect)}: {_advice(diff)}"
                     for diff in _differences(connection)]
    return SchemaRepair(tuple(repaired), tuple(remaining))
