"""The catalogue tables: ``metadata``, ``outputs``, ``bad_data``, ``stats``, ``download``.

Every 2016 column is kept with its name; what a real catalogue needs is added:
created/updated timestamps, the sha256 of each ingested file, a unique stats row per
lightcurve, a ``bad_data.reason`` that covers the 2016 reasons plus the newer ones of
:data:`hstlc.errors.BAD_DATA_REASONS`, and a ``bad_data`` row per refused name and
content (revision 0002); and the history of the MAST downloads, a row per file and run
(``download``, revision 0003).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from hstlc.errors import BAD_DATA_REASONS
from hstlc.io.headers import TEXT_WIDTHS

# Deterministic constraint names, so that migrations are the same on every dialect.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SHA256_LENGTH = 64


def utcnow() -> dt.datetime:
    """The current time in UTC (timezone-aware)."""
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    """Declarative base of the catalogue."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class TimestampMixin:
    """``created_at`` / ``updated_at`` columns, set by the database and the ORM."""

    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now(), default=utcnow
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True),
        nullable=False,
        server_default=func.now(),
        default=utcnow,
        onupdate=utcnow,
    )


class Metadata(TimestampMixin, Base):
    """One row per ingested input file (2016 ``metadata`` columns first)."""

    __tablename__ = "metadata"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    filename: Mapped[str] = mapped_column(String(255), unique=True, index=True)
    path: Mapped[str] = mapped_column(String(1024))
    ingest_date: Mapped[dt.date] = mapped_column(Date)
    telescop: Mapped[str] = mapped_column(String(TEXT_WIDTHS["telescop"]))
    instrume: Mapped[str] = mapped_column(String(TEXT_WIDTHS["instrume"]))
    targname: Mapped[str] = mapped_column(String(TEXT_WIDTHS["targname"]), index=True)
    cal_ver: Mapped[str | None] = mapped_column(String(TEXT_WIDTHS["cal_ver"]))
    obstype: Mapped[str] = mapped_column(String(TEXT_WIDTHS["obstype"]))
    cenwave: Mapped[int] = mapped_column(Integer)
    aperture: Mapped[str] = mapped_column(String(TEXT_WIDTHS["aperture"]))
    detector: Mapped[str] = mapped_column(String(TEXT_WIDTHS["detector"]))
    opt_elem: Mapped[str] = mapped_column(String(TEXT_WIDTHS["opt_elem"]))
    # FPPOS exists for COS only: NULL for STIS.
    fppos: Mapped[int | None] = mapped_column(Integer)
    # Added: what a catalogue needs to find, order and verify its inputs.
    rootname: Mapped[str] = mapped_column(String(TEXT_WIDTHS["rootname"]), index=True)
    proposid: Mapped[int | None] = mapped_column(Integer)
    expstart: Mapped[float | None] = mapped_column(Float(53))
    exptime: Mapped[float | None] = mapped_column(Float(53))
    sha256: Mapped[str] = mapped_column(String(SHA256_LENGTH), index=True)

    output: Mapped[Outputs | None] = relationship(
        back_populates="source", cascade="all, delete-orphan", passive_deletes=True
    )


class Outputs(TimestampMixin, Base):
    """The products made from one input file: its lightcurve and its composite."""

    __tablename__ = "outputs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    metadata_id: Mapped[int] = mapped_column(
        ForeignKey("metadata.id", ondelete="CASCADE"), unique=True
    )
    individual_path: Mapped[str | None] = mapped_column(String(1024))
    individual_filename: Mapped[str | None] = mapped_column(String(255))
    composite_path: Mapped[str | None] = mapped_column(String(1024))
    composite_filename: Mapped[str | None] = mapped_column(String(255))

    source: Mapped[Metadata] = relationship(back_populates="output")


class BadData(TimestampMixin, Base):
    """One row per refused input file, with the reason and where the file went."""

    __tablename__ = "bad_data"
    # A name may be refused several times with different content: one row (and one
    # file in ``bad_data/``) per name and content; ``path`` says where that file is.
    __table_args__ = (UniqueConstraint("filename", "sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    filename: Mapped[str] = mapped_column(String(255), index=True)
    ingest_date: Mapped[dt.date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(
        Enum(
            *BAD_DATA_REASONS,
            name="bad_data_reason",
            native_enum=False,
            create_constraint=True,
            length=32,
            validate_strings=True,
        )
    )
    # Added: the detail of the refusal, where the file now is, and its content hash.
    detail: Mapped[str | None] = mapped_column(Text)
    path: Mapped[str | None] = mapped_column(String(1024))
    sha256: Mapped[str | None] = mapped_column(String(SHA256_LENGTH), index=True)


#: What a ``stats`` row describes (``stats.kind``).
STATS_KINDS: tuple[str, ...] = ("individual", "composite")


class Stats(TimestampMixin, Base):
    """Variability statistics, one row per lightcurve file (individual or composite).

    The 2016 columns first (``total`` ... ``deliver``), then those of revision 0004: the
    period search per range (``_short`` 5 s-10 min, ``_medium`` 10 min-1 h, ``_long``
    1-10 h), flares, excess variance, chi-square, ``reason`` (why a row holds no
    statistics) and the file's ``sha256`` when the row was computed (rows are recomputed
    only for files that changed).  Definitions: :mod:`hstlc.variability`.
    """

    __tablename__ = "stats"
    __table_args__ = (
        UniqueConstraint("lightcurve_path", "lightcurve_filename"),
        CheckConstraint("stdev IS NULL OR stdev >= 0", name="stdev_not_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lightcurve_path: Mapped[str] = mapped_column(String(1024))
    lightcurve_filename: Mapped[str] = mapped_column(String(255))
    total: Mapped[float | None] = mapped_column(Float(53))
    mean: Mapped[float | None] = mapped_column(Float(53))
    mu: Mapped[float | None] = mapped_column(Float(53))
    stdev: Mapped[float | None] = mapped_column(Float(53))
    poisson_factor: Mapped[float | None] = mapped_column(Float(53))
    pearson_r: Mapped[float | None] = mapped_column(Float(53))
    pearson_p: Mapped[float | None] = mapped_column(Float(53))
    periodogram: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    deliver: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    kind: Mapped[str | None] = mapped_column(
        Enum(*STATS_KINDS, name="stats_kind", native_enum=False, create_constraint=True, length=16))
    targname: Mapped[str | None] = mapped_column(String(64), index=True)
    sha256: Mapped[str | None] = mapped_column(String(64))
    n_bins: Mapped[int | None] = mapped_column(Integer)
    n_visits: Mapped[int | None] = mapped_column(Integer)
    period_short: Mapped[float | None] = mapped_column(Float(53))
    power_short: Mapped[float | None] = mapped_column(Float(53))
    fap_short: Mapped[float | None] = mapped_column(Float(53))
    period_medium: Mapped[float | None] = mapped_column(Float(53))
    power_medium: Mapped[float | None] = mapped_column(Float(53))
    fap_medium: Mapped[float | None] = mapped_column(Float(53))
    period_long: Mapped[float | None] = mapped_column(Float(53))
    power_long: Mapped[float | None] = mapped_column(Float(53))
    fap_long: Mapped[float | None] = mapped_column(Float(53))
    fap: Mapped[float | None] = mapped_column(Float(53))
    periodic: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    n_flares: Mapped[int | None] = mapped_column(Integer)
    flare_peak_ratio: Mapped[float | None] = mapped_column(Float(53))
    flare_start_mjd: Mapped[float | None] = mapped_column(Float(53))
    excess_variance: Mapped[float | None] = mapped_column(Float(53))
    excess_variance_error: Mapped[float | None] = mapped_column(Float(53))
    chi2_dof: Mapped[float | None] = mapped_column(Float(53))
    reason: Mapped[str | None] = mapped_column(String(255))


#: What became of a file a download run asked MAST for (``download.status``).
DOWNLOAD_STATUSES: tuple[str, ...] = ("fetched", "present", "failed")


class Download(TimestampMixin, Base):
    """One row per file a download run fetched or tried to fetch (revision 0003).

    The history of the MAST downloads: which run asked for which product, what came of it
    (``fetched``; ``present``: complete in ``download/`` from an earlier run; ``failed``,
    with the reason and the HTTP status), its size and sha256, how many attempts and how
    long it took, and where the file went.
    """

    __tablename__ = "download"
    __table_args__ = (UniqueConstraint("run", "filename"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The run's name (its manifest is ``download/manifest-<run>.json``).
    run: Mapped[str] = mapped_column(String(32), index=True)
    filename: Mapped[str] = mapped_column(String(255), index=True)
    rootname: Mapped[str] = mapped_column(String(TEXT_WIDTHS["rootname"]), index=True)
    uri: Mapped[str] = mapped_column(String(1024))
    status: Mapped[str] = mapped_column(
        Enum(*DOWNLOAD_STATUSES, name="download_status", native_enum=False,
             create_constraint=True, length=16, validate_strings=True)
    )
    reason: Mapped[str | None] = mapped_column(Text)
    http_status: Mapped[int | None] = mapped_column(Integer)
    size: Mapped[int | None] = mapped_column(BigInteger)
    expected_size: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(SHA256_LENGTH))
    #: The checksum MAST listed, as ``<kind>:<hex>`` (``md5:...``, ``sha256:...``).
    expected_checksum: Mapped[str | None] = mapped_column(String(80))
    attempts: Mapped[int] = mapped_column(Integer)
    seconds: Mapped[float] = mapped_column(Float(53))
    path: Mapped[str | None] = mapped_column(String(1024))


TABLES: dict[str, type[Base]] = {
    "metadata": Metadata,
    "outputs": Outputs,
    "bad_data": BadData,
    "stats": Stats,
    "download": Download,
}
