"""The catalogue database on SQLite and on a throwaway PostgreSQL cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Column, Float, MetaData, Table, Text, UniqueConstraint, inspect, select, text
from sqlalchemy.exc import IntegrityError, StatementError

from hstlc.catalogue.engine import create_catalogue_engine, session_scope
from hstlc.catalogue.migrate import (
    SchemaRepair,
    current_revision,
    head_revision,
    repair_schema,
    schema_differences,
    upgrade,
)
from hstlc.catalogue.models import BadData, Base, Metadata, Outputs, Stats
from hstlc.catalogue.queries import (
    catalogued,
    files_of_rootname,
    group_keys,
    group_rows,
    ingested_folders,
    refusals,
    refusals_of,
)
from hstlc.catalogue.store import record_bad_data, upsert_metadata, upsert_output
from hstlc.errors import BAD_DATA_REASONS
from hstlc.io.headers import GroupKey

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
    """The drift check (Alembic's comparison) finds nothing between migrations and models."""
    assert schema_differences(engine) == []


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
        session.add(Stats(**record))
        session.add(Stats(**{**record, "lightcurve_filename": "y_curve.fits", "total": 12}))
    with session_scope(engine) as session:
        rows = session.scalars(select(Stats).order_by(Stats.lightcurve_filename)).all()
        assert [row.total for row in rows] == [10, 12]
        assert rows[0].updated_at >= rows[0].created_at
    with pytest.raises(IntegrityError), session_scope(engine) as session:
        session.add(Stats(**{**record, "total": 1}))
    with pytest.raises(IntegrityError), session_scope(engine) as session:  # CHECK constraint
        session.add(Stats(**{**record, "lightcurve_filename": "z_curve.fits", "stdev": -1.0}))


@pytest.mark.parametrize("reason", BAD_DATA_REASONS)
def test_bad_data_accepts_every_reason(engine, reason):
    with session_scope(engine) as session:
        record_bad_data(session, "x.fits", reason, detail="x.fits: detail", sha256="c" * 64)
    with session_scope(engine) as session:
        row = session.scalars(select(BadData)).one()
        assert row.reason == reason
        assert refusals(session, ["x.fits", "y.fits"])["x.fits"].sha256 == "c" * 64


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


def test_catalogue_reads_name_what_is_ingested_and_refused(engine):
    with session_scope(engine) as session:
        upsert_metadata(session, metadata_record())
        upsert_metadata(session, metadata_record("ld9m10ujq_x1d.fits", path="/data/filesystem/GJ436"))
        record_bad_data(session, "bad_x1d.fits", "No events", sha256="d" * 64)
    with session_scope(engine) as session:
        assert catalogued(session, ["ld9m10ujq_corrtag_a.fits", "bad_x1d.fits"]) == {
            "ld9m10ujq_corrtag_a.fits": ("a" * 64, "/data/filesystem/GJ-436")}
        assert catalogued(session, []) == {} and refusals(session, []) == {}
        assert list(refusals(session, ["bad_x1d.fits", "ld9m10ujq_x1d.fits"])) == ["bad_x1d.fits"]
        assert files_of_rootname(session, "ld9m10ujq") == {
            "ld9m10ujq_corrtag_a.fits": Path("/data/filesystem/GJ-436/ld9m10ujq_corrtag_a.fits"),
            "ld9m10ujq_x1d.fits": Path("/data/filesystem/GJ436/ld9m10ujq_x1d.fits")}
        # one target, two spellings: its folders are found by any alias of its name
        both = [Path("/data/filesystem/GJ-436"), Path("/data/filesystem/GJ436")]
        assert ingested_folders(session) == both
        assert ingested_folders(session, "gliese 436") == both
        assert ingested_folders(session, "AU-MIC") == []


def test_groups_are_distinct_keys_of_event_files_with_names_normalised(engine):
    with session_scope(engine) as session:
        upsert_metadata(session, metadata_record())
        upsert_metadata(session, metadata_record("ld9m10uyq_corrtag_a.fits", targname="GJ436"))
        upsert_metadata(session, metadata_record("ld9m10uyq_x1d.fits", targname="GJ436"))
        upsert_metadata(session, metadata_record("ld9m11aaq_corrtag_a.fits", targname="AU-MIC"))
        upsert_metadata(session, metadata_record("ld9m12aaq_corrtag_a.fits", cenwave=1327))
        upsert_metadata(session, metadata_record("ld9m13aaq_x1d.fits", aperture="BOA"))  # no events
        upsert_metadata(session, metadata_record("ld9m14aaq_corrtagxa.fits", aperture="BOA"))
    gj436 = GroupKey("COS", "FUV", "GJ436", "G130M", 1291, "PSA")
    with session_scope(engine) as session:
        assert group_keys(session) == [
            GroupKey("COS", "FUV", "AUMIC", "G130M", 1291, "PSA"), gj436,
            GroupKey("COS", "FUV", "GJ436", "G130M", 1327, "PSA")]
        assert [row.filename for row in group_rows(session, gj436)] == [
            "ld9m10ujq_corrtag_a.fits", "ld9m10uyq_corrtag_a.fits", "ld9m10uyq_x1d.fits"]
        assert group_rows(session, gj436._replace(targname="NOSUCHSTAR")) == []


def test_deleting_a_metadata_row_takes_its_outputs_row(engine):
    with session_scope(engine) as session:
        first = upsert_metadata(session, metadata_record())
        upsert_output(session, first, individual_path="/o", individual_filename="x_curve.fits")
        upsert_metadata(session, metadata_record("ld9m10ujq_x1d.fits"))
    with session_scope(engine) as session:
        row = session.scalars(select(Metadata).where(
            Metadata.filename == "ld9m10ujq_corrtag_a.fits")).one()
        assert row.output is not None and row.output.individual_filename == "x_curve.fits"
        session.delete(row)
    with session_scope(engine) as session:
        assert session.scalars(select(Outputs)).all() == []
        assert [row.filename for row in session.scalars(select(Metadata))] == ["ld9m10ujq_x1d.fits"]


def test_bad_data_keeps_one_row_per_name_and_content(engine):
    """A name refused twice with other content keeps both rows; the same content, one."""
    with session_scope(engine) as session:
        first = record_bad_data(session, "x.fits", "No events", path="/b/x.fits", sha256="1" * 64)
        second = record_bad_data(session, "x.fits", "Bad EXPFLAG", path="/b/x.fits.22222222",
                                 sha256="2" * 64)
        again = record_bad_data(session, "x.fits", "Name mismatch", path="/b/x.fits",
                                sha256="1" * 64)
    assert first == again != second
    with session_scope(engine) as session:
        rows = session.scalars(select(BadData).order_by(BadData.id)).all()
        assert [(r.reason, r.path) for r in rows] == [("Name mismatch", "/b/x.fits"),
                                                      ("Bad EXPFLAG", "/b/x.fits.22222222")]
        assert refusals(session, ["x.fits"])["x.fits"].sha256 == "2" * 64
        assert refusals_of(session, {"x.fits": "1" * 64})["x.fits"].path == "/b/x.fits"
        assert refusals_of(session, {"x.fits": "3" * 64}) == {}


def test_upgrade_from_0001_keeps_the_bad_data_rows(database_url):
    """Revision 0002 recreates bad_data (SQLite) or alters it (PostgreSQL) without loss."""
    engine = create_catalogue_engine(database_url)
    try:
        upgrade(engine, "0001")
        with engine.begin() as connection:
            for name, reason, sha in (("a.fits", "No events", "a" * 64),
                                      ("b.fits", "Missing keyword", None)):
                connection.execute(text(
                    "INSERT INTO bad_data (filename, ingest_date, reason, detail, path, sha256) "
                    "VALUES (:name, '2026-01-01', :reason, :name, :path, :sha)"),
                    {"name": name, "reason": reason, "path": f"/b/{name}", "sha": sha})
        assert upgrade(engine) == ("0001", head_revision())
        assert schema_differences(engine) == []
        with session_scope(engine) as session:
            rows = session.scalars(select(BadData).order_by(BadData.filename)).all()
            assert [(r.filename, r.reason, r.detail, r.path, r.sha256) for r in rows] == [
                ("a.fits", "No events", "a.fits", "/b/a.fits", "a" * 64),
                ("b.fits", "Missing keyword", "b.fits", "/b/b.fits", None)]
            record_bad_data(session, "a.fits", "Symbolic link", sha256="c" * 64)
        with session_scope(engine) as session:
            assert len(session.scalars(select(BadData)).all()) == 3
    finally:
        engine.dispose()


# -- schema drift in words ---------------------------------------------------------------------

REBUILD = ("restore the catalogue from a backup, or rebuild it from the files "
           "(`hstlc fs reset`, an empty database, `hstlc run`)")
NOT_OURS = "not made by hstlc: drop it unless something else needs it"


def execute(engine, *statements: str) -> None:
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))


def recreate(engine, table: Table) -> None:
    """Replace the model's table of that name with ``table`` (another definition)."""
    with engine.begin() as connection:
        Base.metadata.tables[table.name].drop(connection)
        table.create(connection)


def test_schema_at_head_has_no_difference_and_alembic_version_does_not_count(engine):
    assert "alembic_version" in inspect(engine).get_table_names()
    assert schema_differences(engine) == []
    assert repair_schema(engine) == SchemaRepair((), ())


def test_missing_and_extra_tables_columns_indexes_in_words(engine):
    execute(engine, "DROP TABLE stats", "ALTER TABLE metadata DROP COLUMN fppos",
            "DROP INDEX ix_metadata_targname", "CREATE TABLE foo (id INTEGER PRIMARY KEY)",
            "ALTER TABLE bad_data ADD COLUMN extra INTEGER",
            "CREATE INDEX ix_bad_data_extra ON bad_data (extra)")
    assert sorted(schema_differences(engine)) == [
        "column bad_data.extra is not in the models",
        "column metadata.fppos is missing",
        "index ix_bad_data_extra on bad_data (extra) is not in the models",
        "index ix_metadata_targname on metadata (targname) is missing",
        "table foo is not in the models",
        "table stats is missing",
    ]


def test_types_nullability_and_constraints_in_words(engine):
    drifted = MetaData(naming_convention=Base.metadata.naming_convention)
    stats = Base.metadata.tables["stats"].to_metadata(drifted)
    stats.c.mean.type = Text()
    stats.c.stdev.nullable = False
    stats.c.lightcurve_path.nullable = True
    for constraint in [c for c in stats.constraints if isinstance(c, UniqueConstraint)]:
        stats.constraints.discard(constraint)
    stats.append_constraint(UniqueConstraint("total", name="uq_stats_total"))
    recreate(engine, stats)
    outputs = Table("outputs", drifted, *(  # no foreign key, no unique metadata_id
        Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
        for c in Base.metadata.tables["outputs"].columns))
    recreate(engine, outputs)
    expected_float = Float(53).compile(dialect=engine.dialect)
    assert sorted(schema_differences(engine)) == [
        "column stats.lightcurve_path allows NULL, expected NOT NULL",
        f"column stats.mean has type TEXT, expected {expected_float}",
        "column stats.stdev is NOT NULL, expected to allow NULL",
        "foreign key outputs.metadata_id -> metadata.id is missing",
        "unique constraint uq_outputs_metadata_id on outputs (metadata_id) is missing",
        "unique constraint uq_stats_lightcurve_path_lightcurve_filename on stats "
        "(lightcurve_path, lightcurve_filename) is missing",
        "unique constraint uq_stats_total on stats (total) is not in the models",
    ]
    assert sorted(repair_schema(engine).remaining) == [
        f"{sentence}: {NOT_OURS if 'not in the models' in sentence else REBUILD}"
        for sentence in sorted(schema_differences(engine))]


def test_repair_creates_missing_tables_and_indexes_and_leaves_the_rest(engine):
    with session_scope(engine) as session:
        upsert_metadata(session, metadata_record())
    execute(engine, "DROP TABLE stats", "DROP INDEX ix_metadata_targname",
            "ALTER TABLE metadata DROP COLUMN fppos", "CREATE TABLE foo (id INTEGER PRIMARY KEY)")
    repair = repair_schema(engine)
    assert repair.repaired == ("created missing table stats",
                               "created missing index ix_metadata_targname on metadata (targname)")
    assert sorted(repair.remaining) == [f"column metadata.fppos is missing: {REBUILD}",
                                        f"table foo is not in the models: {NOT_OURS}"]
    assert sorted(schema_differences(engine)) == ["column metadata.fppos is missing",
                                                  "table foo is not in the models"]
    inspector = inspect(engine)
    assert "ix_metadata_targname" in {index["name"] for index in inspector.get_indexes("metadata")}
    assert {"foo", "stats"} <= set(inspector.get_table_names())  # nothing dropped
    with engine.connect() as connection:  # the rows are kept
        assert connection.execute(text("SELECT filename FROM metadata")).scalars().all() == [
            "ld9m10ujq_corrtag_a.fits"]
    again = repair_schema(engine)
    assert again.repaired == () and again.remaining == repair.remaining
