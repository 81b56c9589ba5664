"""The catalogue database on SQLite and on a throwaway PostgreSQL cluster."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError, StatementError

from hstlc.catalogue.engine import create_catalogue_engine, session_scope
from hstlc.catalogue.migrate import check, current_revision, head_revision, upgrade
from hstlc.catalogue.models import BadData, Metadata, Outputs, Stats
from hstlc.catalogue.store import (
    known_hashes,
    record_bad_data,
    upsert_metadata,
    upsert_output,
    upsert_stats,
)
from hstlc.errors import BAD_DATA_REASONS

LEGACY_COLUMNS = {
    "metadata": {"id", "filename", "path", "ingest_date", "telescop", "instrume", "targname",
                 "cal_ver", "obstype", "cenwave", "aperture", "detector", "opt_elem", "fppos"},
    "outputs": {"id", "metadata_id", "individual_path", "individual_filename",
                "composite_path", "composite_filename"},
    "bad_data": {"id", "filename", "ingest_date", "reason"},
    "stats": {"id", "lightcurve_path", "lightcurve_filename", "total", "mean", "mu", "stdev",
              "poisson_factor", "pearson_r", "pearson_p", "periodogram", "deliver"},
}


def metadata_record(filename: str = "ld9m10ujq_corrtag_a.fits", **changes):
    record = {
        "filename": filename, "path": "/data/filesystem/GJ-436", "telescop": "HST",
        "instrume": "COS", "targname": "GJ-436", "cal_ver": "3.3.4", "obstype": "SPECTROSCOPIC",
        "cenwave": 1291, "aperture": "PSA", "detector": "FUV", "opt_elem": "G130M", "fppos": 3,
        "rootname": filename[:9], "proposid": 14767, "expstart": 58108.51215764,
        "exptime": 1881.152, "sha256": "a" * 64,
    }
    record.update(changes)
    return record


def test_upgrade_creates_the_four_tables_with_every_2016_column(database_url):
    engine = create_catalogue_engine(database_url)
    try:
        assert current_revision(engine) is None
        before, after = upgrade(engine)
        assert (before, after) == (None, head_revision())
        inspector = inspect(engine)
        tables = set(inspector.get_table_names())
        assert {"metadata", "outputs", "bad_data", "stats", "alembic_version"} <= tables
        for table, legacy in LEGACY_COLUMNS.items():
            columns = {column["name"] for column in inspector.get_columns(table)}
            assert legacy <= columns, f"{table} lacks {legacy - columns}"
            assert {"created_at", "updated_at"} <= columns
        assert "sha256" in {c["name"] for c in inspector.get_columns("metadata")}
        # Upgrading again is harmless.
        assert upgrade(engine) == (head_revision(), head_revision())
    finally:
        engine.dispose()


def test_migrations_match_the_models(engine):
    """Alembic's drift check finds nothing between migrations and models."""
    check(engine)


def test_metadata_upsert_is_idempotent_and_updates(engine):
    with session_scope(engine) as session:
        first = upsert_metadata(session, metadata_record())
    with session_scope(engine) as session:
        again = upsert_metadata(session, metadata_record(sha256="b" * 64, path="/elsewhere"))
    assert first == again
    with session_scope(engine) as session:
        rows = session.scalars(select(Metadata)).all()
        assert len(rows) == 1
        assert rows[0].sha256 == "b" * 64 and rows[0].path == "/elsewhere"
        assert rows[0].updated_at >= rows[0].created_at


def test_outputs_one_row_per_input_and_cascade(engine):
    with session_scope(engine) as session:
        metadata_id = upsert_metadata(session, metadata_record())
        upsert_output(session, metadata_id, individual_path="/o", individual_filename="x_curve.fits")
        upsert_output(session, metadata_id, composite_path="/c", composite_filename="hlsp.fits")
    with session_scope(engine) as session:
        output = session.scalars(select(Outputs)).one()
        assert (output.individual_filename, output.composite_filename) == ("x_curve.fits", "hlsp.fits")
        session.delete(session.get(Metadata, metadata_id))
    with session_scope(engine) as session:
        assert session.scalars(select(Outputs)).all() == []


def test_stats_unique_per_lightcurve(engine):
    record = {"lightcurve_path": "/o/GJ-436", "lightcurve_filename": "x_curve.fits", "total": 10,
              "mean": 1.0, "mu": 1.0, "stdev": 1.0, "poisson_factor": 1.0, "pearson_r": 0.1,
              "pearson_p": 0.5, "periodogram": False, "deliver": True}
    with session_scope(engine) as session:
        upsert_stats(session, record)
        upsert_stats(session, {**record, "total": 12})
    with session_scope(engine) as session:
        rows = session.scalars(select(Stats)).all()
        assert [row.total for row in rows] == [12]
    with pytest.raises(IntegrityError), session_scope(engine) as session:
        session.add(Stats(**{**record, "total": 1}))


@pytest.mark.parametrize("reason", BAD_DATA_REASONS)
def test_bad_data_accepts_every_reason(engine, reason):
    with session_scope(engine) as session:
        record_bad_data(session, "x.fits", reason, detail="x.fits: detail", sha256="c" * 64)
    with session_scope(engine) as session:
        row = session.scalars(select(BadData)).one()
        assert row.reason == reason
        assert known_hashes(session) == {"c" * 64: "x.fits"}


def test_bad_data_refuses_unknown_reason(engine):
    with pytest.raises((StatementError, IntegrityError)), session_scope(engine) as session:
        record_bad_data(session, "x.fits", "Looked odd")
    # The database itself refuses it too (CHECK constraint), not only the ORM.
    with pytest.raises(IntegrityError), session_scope(engine) as session:
        session.execute(text(
            "INSERT INTO bad_data (filename, ingest_date, reason) "
            "VALUES ('y.fits', '2026-01-01', 'Looked odd')"))


def test_failed_transaction_leaves_nothing(engine):
    with pytest.raises(RuntimeError), session_scope(engine) as session:
        upsert_metadata(session, metadata_record())
        raise RuntimeError("interrupted")
    with session_scope(engine) as session:
        assert session.scalars(select(Metadata)).all() == []
