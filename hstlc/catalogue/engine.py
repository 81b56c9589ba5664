"""Engines and sessions for the catalogue.

No engine exists at import time: callers create one from a URL (usually the
``db_connection_string`` setting) in the process that uses it, so forked or
distributed workers never share a connection pool.  :func:`engine_for` keeps one
such engine per URL and process, its schema brought to the current revision.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from hstlc.errors import TransientError

SQLITE_BUSY_TIMEOUT_S = 60


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
    cursor.close()


def create_catalogue_engine(url: str, *, echo: bool = False) -> Engine:
    """Create an engine for the catalogue at ``url``.

    SQLite databases get their parent folder created, foreign keys switched on,
    write-ahead logging (readers never block the writer) and a busy timeout so
    that parallel tasks wait for the lock instead of failing.
    """
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo, "future": True}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
    else:
        kwargs["pool_pre_ping"] = True
    engine = create_engine(parsed, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _configure_sqlite)
    return engine


_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def engine_for(url: str) -> Engine:
    """One engine per database URL and process (never shared across processes).

    The first use in a process brings the schema to the current revision (a no-op when
    it is current), so that a run started by a deployment or a worker finds its tables.
    """
    engine = _ENGINES.get(url)
    if engine is None:
        from hstlc.catalogue.migrate import current_revision, head_revision, upgrade  # Alembic: 0.35 s

        with _ENGINES_LOCK:  # task threads of one process share the engine and the upgrade
            engine = _ENGINES.get(url)
            if engine is None:
                engine = create_catalogue_engine(url)
                if current_revision(engine) != head_revision():
                    upgrade(engine)
                _ENGINES[url] = engine
    return engine


#: OS errors worth retrying: busy or temporarily unavailable file systems.
TRANSIENT_ERRNOS = frozenset({errno.EBUSY, errno.EAGAIN, errno.ETIMEDOUT, errno.ESTALE, errno.EINTR})


def is_transient(error: BaseException) -> bool:
    """True for failures worth retrying: lost or locked database, busy file system."""
    if isinstance(error, TransientError):
        return True
    if isinstance(error, OSError) and error.errno in TRANSIENT_ERRNOS:
        return True
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, OperationalError):
        text = str(error.orig).lower() if error.orig is not None else str(error).lower()
        markers = ("database is locked", "could not connect", "connection", "timeout", "busy")
        return any(marker in text for marker in markers)
    return False


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session whose transaction commits on success and rolls back on error.

    Transient database failures are re-raised as :class:`~hstlc.errors.TransientError`
    so that the orchestration layer retries them.
    """
    factory = sessionmaker(engine, expire_on_commit=False)
    try:
        with factory() as session, session.begin():
            yield session
    except (OperationalError, DBAPIError) as error:
        if is_transient(error):
            raise TransientError(f"catalogue database unavailable: {error.orig or error}") from error
        raise
