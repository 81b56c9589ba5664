"""Quality checks: decide whether a file or dataset is fit for a lightcurve.

The six 2016 ``bad_data`` reasons are kept with their exact names
(:mod:`hstlc.errors`), plus three for files that cannot be used at all.  A check
never raises for bad data: every :class:`~hstlc.errors.PermanentError` met on
the way becomes a failed :class:`QualityVerdict` (callers that prefer
exceptions call :meth:`QualityVerdict.raise_for_reason`).

Precedence (the first failing check decides the reason):

1. ``Unreadable file``      -- not FITS, empty, truncated, corrupt;
2. ``Unsupported product``  -- readable, but not a TIME-TAG product hstlc processes;
3. ``Missing keyword``      -- a header keyword or event column the pipeline needs is absent
                               or unusable;
4. ``Bad EXPFLAG``          -- ext-1 EXPFLAG is not NORMAL;
5. ``Short Exposure``       -- EXPTIME < 1 s;
6. ``Bad Proposal``         -- PROPOSID is on the configured list;
7. ``Time span too long``   -- EXPTIME or the GTIs span more than ``max_time_span_s``;
8. ``No events``            -- the event table is empty;
9. ``Corrupt events``       -- a column the extraction uses is not numeric (DQ: not an
                               integer), or holds NaN or infinite values;
10. ``Singular event``      -- every event has the same TIME;
11. ``Non-linear time``     -- TIME decreases somewhere;
12. ``Time span too long``  -- the events' TIME range spans more than ``max_time_span_s``.

Why this order: a verdict should name the most fundamental fault, and the cheap
header checks come before the event scan.  What a file *is* comes before what
its keywords say, because keywords such as EXPFLAG only mean "a TIME-TAG
exposure went wrong" for a product hstlc processes: the STIS CCD acquisition
``o4er06llq_raw.fits`` (EXPFLAG INTERRUPTED, EXPTIME 0.74 s) is refused as
``Unsupported product`` -- it is no TIME-TAG exposure at all, and recording it as
"Bad EXPFLAG" would suggest a retake could make it usable.  Header reasons come
before event reasons so that a file whose events need not be read is not read.
Singular and non-linear times cannot both hold, so their order only matters for
documentation.

x1d files (and hstlc lightcurves) are checked only for readability and product:
they carry no events.  For an event file only the columns its extraction uses
(:data:`USED_COLUMNS`) are read, in blocks of rows
(:func:`hstlc.io.events.iter_event_blocks`), so a 10^7-event file never needs them
whole in memory.  The time span limit keeps a file whose times run over years (a GTI to
1e9 s) from making the extraction allocate a time grid of that length.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hstlc.config import DEFAULT_MAX_TIME_SPAN_S
from hstlc.errors import (
    BAD_EXPFLAG,
    BAD_PROPOSAL,
    CORRUPT_EVENTS,
    LONG_TIME_SPAN,
    MISSING_KEYWORD,
    NO_EVENTS,
    NO_SOURCE_EVENTS,
    NON_LINEAR_TIME,
    SHORT_EXPOSURE,
    SINGULAR_EVENT,
    UNREADABLE_FILE,
    UNSUPPORTED_PRODUCT,
    MissingKeywordError,
    PermanentError,
    QualityError,
    UnreadableFileError,
    UnsupportedProductError,
)
from hstlc.io.events import (
    DEFAULT_BLOCK_ROWS,
    TIME_COLUMN,
    EventTable,
    iter_event_blocks,
    open_event_table,
)
from hstlc.io.headers import (
    DatasetFiles,
    ObservationInfo,
    extension_for,
    keyword_for,
    read_observation_info,
)
from hstlc.io.products import Product, detect_product, open_fits

logger = logging.getLogger(__name__)

__all__ = [
    "MIN_EXPTIME",
    "USED_COLUMNS",
    "QualityVerdict",
    "TimeSummary",
    "check_dataset",
    "check_file",
    "check_column_types",
    "check_finite",
    "check_header",
    "check_source_events",
    "check_span",
    "check_time",
    "first_decrease",
    "summarize_time",
]

#: Exposures shorter than this (s) are refused as ``Short Exposure``.
MIN_EXPTIME = 1.0
_GOOD_EXPFLAG = "NORMAL"
_COS_COLUMNS = (TIME_COLUMN, "XCORR", "YCORR", "WAVELENGTH", "EPSILON", "DQ")
#: The event columns each product's extraction (or conversion) reads; DQ must be integer.
USED_COLUMNS: Mapping[Product, tuple[str, ...]] = {
    Product.COS_FUV_CORRTAG_A: _COS_COLUMNS,
    Product.COS_FUV_CORRTAG_B: _COS_COLUMNS,
    Product.COS_NUV_CORRTAG: _COS_COLUMNS,
    Product.STIS_CORRTAG: (TIME_COLUMN, "XCORR", "YCORR", "EPSILON", "DQ"),
    Product.STIS_TAG: (TIME_COLUMN, "AXIS1", "AXIS2"),
}
_INTEGER_COLUMNS = frozenset({"DQ"})
_ERRORS: dict[str, type[PermanentError]] = {
    UNREADABLE_FILE: UnreadableFileError,
    UNSUPPORTED_PRODUCT: UnsupportedProductError,
    MISSING_KEYWORD: MissingKeywordError,
}


@dataclass(frozen=True)
class QualityVerdict:
    """The outcome of a quality check.

    Attributes
    ----------
    ok : bool
        True when the data passed every check.
    reason : str or None
        One of :data:`hstlc.errors.BAD_DATA_REASONS` when failed, else None.
    detail : str
        The file, the keyword or column, and the value found.
    product : Product or None
        The product, when it could be decided.
    filename : str or None
        Base name of the file the verdict is about (the failing file of a dataset).
    """

    ok: bool
    reason: str | None
    detail: str
    product: Product | None
    filename: str | None = None

    @classmethod
    def passed(cls, filename: str, product: Product | None, detail: str = "") -> QualityVerdict:
        """A verdict for data that passed."""
        return cls(ok=True, reason=None, detail=detail or f"{filename}: passed",
                   product=product, filename=filename)

    @classmethod
    def failed(cls, reason: str, detail: str, *, filename: str | None,
               product: Product | None = None) -> QualityVerdict:
        """A verdict for data that failed with ``reason``."""
        return cls(ok=False, reason=reason, detail=detail, product=product, filename=filename)

    @classmethod
    def from_error(cls, error: PermanentError, *, filename: str | None = None,
                   product: Product | None = None) -> QualityVerdict:
        """Turn a permanent error into a failed verdict."""
        return cls.failed(error.reason, error.detail, filename=error.filename or filename,
                          product=product)

    def raise_for_reason(self) -> None:
        """Raise the matching :class:`~hstlc.errors.PermanentError` when the verdict failed.

        ``Unreadable file``, ``Unsupported product`` and ``Missing keyword`` raise
        their own error classes; the quality reasons raise
        :class:`~hstlc.errors.QualityError`.  A passed verdict does nothing.
        """
        if self.ok:
            return
        assert self.reason is not None
        error_class = _ERRORS.get(self.reason, QualityError)
        raise error_class(self.detail, reason=self.reason, filename=self.filename)


@dataclass(frozen=True)
class TimeSummary:
    """What the quality checks need to know about a TIME column.

    ``decrease_at`` is the first row ``i`` with ``time[i] < time[i - 1]`` (None when
    TIME never decreases); ``decrease_values`` are ``(time[i - 1], time[i])``.
    """

    n: int
    tmin: float
    tmax: float
    decrease_at: int | None = None
    decrease_values: tuple[float, float] | None = None


def first_decrease(time: np.ndarray) -> int | None:
    """Index of the first element smaller than its predecessor, or None.

    Examples
    --------
    >>> first_decrease(np.array([0.0, 1.0, 1.0, 0.5, 2.0]))
    3
    >>> first_decrease(np.array([0.0, 1.0, 1.0])) is None
    True
    """
    drops = time[1:] < time[:-1]  # no subtraction: inf and NaN give no warning
    if not drops.any():
        return None
    return int(np.argmax(drops)) + 1


def summarize_time(chunks: Iterable[np.ndarray]) -> TimeSummary:
    """Count, extremes and first decrease of a TIME column given as consecutive chunks.

    Vectorised within each chunk; the last value of a chunk is carried over so a
    decrease across a chunk boundary is found.
    """
    n, tmin, tmax = 0, np.inf, -np.inf
    previous: float | None = None
    decrease_at: int | None = None
    values: tuple[float, float] | None = None
    for chunk in chunks:
        if len(chunk) == 0:
            continue
        tmin, tmax = min(tmin, float(chunk.min())), max(tmax, float(chunk.max()))
        if decrease_at is None:
            joined = chunk if previous is None else np.concatenate(([previous], chunk))
            offset = n if previous is None else n - 1
            local = first_decrease(joined)
            if local is not None:
                decrease_at = offset + local
                values = (float(joined[local - 1]), float(joined[local]))
        previous = float(chunk[-1])
        n += len(chunk)
    if n == 0:
        return TimeSummary(n=0, tmin=np.nan, tmax=np.nan)
    return TimeSummary(n=n, tmin=tmin, tmax=tmax, decrease_at=decrease_at, decrease_values=values)


def _where(field: str) -> str:
    return f"ext {extension_for(field)} {keyword_for(field)}"


def check_header(info: ObservationInfo, bad_proposals: Iterable[int] = ()) -> QualityVerdict:
    """The header checks, in order: Bad EXPFLAG, Short Exposure, Bad Proposal."""
    name, product = info.filename, info.product
    if info.expflag.strip().upper() != _GOOD_EXPFLAG:
        return QualityVerdict.failed(
            BAD_EXPFLAG, f"{name}: {_where('expflag')}={info.expflag!r}, not {_GOOD_EXPFLAG!r}",
            filename=name, product=product)
    if info.exptime < MIN_EXPTIME:
        return QualityVerdict.failed(
            SHORT_EXPOSURE, f"{name}: {_where('exptime')}={info.exptime!r} s < {MIN_EXPTIME} s",
            filename=name, product=product)
    if info.proposid in {int(p) for p in bad_proposals}:
        return QualityVerdict.failed(
            BAD_PROPOSAL,
            f"{name}: {_where('proposid')}={info.proposid} is on the bad-proposal list",
            filename=name, product=product)
    return QualityVerdict.passed(name, product)


def check_time(summary: TimeSummary, filename: str,
               product: Product | None = None) -> QualityVerdict:
    """The event checks, in order: No events, Singular event, Non-linear time."""
    if summary.n == 0:
        return QualityVerdict.failed(
            NO_EVENTS, f"{filename}: ext 1 column {TIME_COLUMN} has 0 rows",
            filename=filename, product=product)
    if summary.tmin == summary.tmax:
        return QualityVerdict.failed(
            SINGULAR_EVENT,
            f"{filename}: all {summary.n} event(s) at {TIME_COLUMN}={summary.tmin!r}",
            filename=filename, product=product)
    if summary.decrease_at is not None:
        before, after = summary.decrease_values or (np.nan, np.nan)
        return QualityVerdict.failed(
            NON_LINEAR_TIME,
            f"{filename}: column {TIME_COLUMN} decreases at row {summary.decrease_at} "
            f"({before!r} -> {after!r})",
            filename=filename, product=product)
    return QualityVerdict.passed(filename, product)


def _corrupt(filename: str, detail: str) -> QualityError:
    return QualityError(f"{filename}: {detail}", reason=CORRUPT_EVENTS, filename=filename)


def check_column_types(table: EventTable, columns: Iterable[str]) -> None:
    """Refuse event columns the extraction cannot use: not one real number per row.

    Raises
    ------
    MissingKeywordError
        A column is absent (the detail names it).
    QualityError
        ``Corrupt events``: a column holds text, complex numbers or vectors, or DQ is not
        an integer column.
    """
    name = table.path.name
    for column in columns:
        dtype = table.dtype[table.column(column)]
        kinds = "iu" if column in _INTEGER_COLUMNS else "iuf"
        if dtype.shape != () or dtype.kind not in kinds:
            tform = _tform(table, column)
            wanted = "an integer" if column in _INTEGER_COLUMNS else "a real number"
            raise _corrupt(name, f"ext {table.extension} column {column} has TFORM={tform!r}, "
                                 f"not {wanted} per row")


def _tform(table: EventTable, column: str) -> str:
    index = table.columns.index(table.column(column)) + 1
    return str(table.header.get(f"TFORM{index}", "")).strip()


def _scan_blocks(blocks: Iterable[dict[str, np.ndarray]],
                 bad: dict[str, tuple[int, int]]) -> Iterator[np.ndarray]:
    """Yield each block's TIME; count into ``bad`` each column's non-finite rows and first row.

    ``bad`` maps a column to ``(rows, first row)``; integer columns cannot hold NaN.
    """
    offset = 0
    for block in blocks:
        for column, values in block.items():
            if values.dtype.kind != "f":
                continue
            wrong = ~np.isfinite(values)
            count = int(np.count_nonzero(wrong))
            if count:
                rows, first = bad.get(column, (0, offset + int(np.argmax(wrong))))
                bad[column] = (rows + count, first)
        time = block[TIME_COLUMN]
        offset += len(time)
        yield time


def check_finite(bad: Mapping[str, tuple[int, int]], filename: str,
                 product: Product | None = None) -> QualityVerdict:
    """``Corrupt events`` when a used column has NaN or infinite rows (first column by name)."""
    for column in sorted(bad):
        rows, first = bad[column]
        return QualityVerdict.failed(
            CORRUPT_EVENTS,
            f"{filename}: column {column} has {rows} non-finite (NaN or infinite) value(s), "
            f"first at row {first}", filename=filename, product=product)
    return QualityVerdict.passed(filename, product)


def check_span(filename: str, spans: Mapping[str, float], max_time_span_s: float,
               product: Product | None = None) -> QualityVerdict:
    """``Time span too long`` when a span (EXPTIME, the GTIs, the TIME range) exceeds the limit.

    Examples
    --------
    >>> check_span("x.fits", {"GTI": 1e9}, 259200.0).detail
    'x.fits: GTI spans 1000000000.0 s, more than the 259200.0 s any exposure lasts'
    """
    for what, span in spans.items():
        if not np.isfinite(span) or span > max_time_span_s:
            return QualityVerdict.failed(
                LONG_TIME_SPAN, f"{filename}: {what} spans {span!r} s, more than the "
                                f"{max_time_span_s!r} s any exposure lasts",
                filename=filename, product=product)
    return QualityVerdict.passed(filename, product)


def check_source_events(gross: np.ndarray, filename: str) -> QualityVerdict:
    """``No source events`` when no bin of a lightcurve counted a source event;
    ``Corrupt events`` when a bin's sum is not finite.

    Examples
    --------
    >>> check_source_events(np.zeros(3), "x.fits").reason
    'No source events'
    """
    if not np.all(np.isfinite(gross)):
        return QualityVerdict.failed(
            CORRUPT_EVENTS, f"{filename}: the source sums of {np.count_nonzero(~np.isfinite(gross))}"
                            " bin(s) are not finite (NaN or infinite EPSILON)", filename=filename)
    if not np.any(gross != 0):
        return QualityVerdict.failed(
            NO_SOURCE_EVENTS, f"{filename}: no source event selected in any of the {gross.size} "
                              "bin(s) (source boxes, band, DQ and GTIs)", filename=filename)
    return QualityVerdict.passed(filename, None)


def _header_spans(info: ObservationInfo, table: EventTable) -> dict[str, float]:
    spans = {_where("exptime"): float(info.exptime)}
    if table.gti is not None and len(table.gti):
        spans["GTI"] = float(table.gti[-1, 1] - table.gti[0, 0])
    return spans


def _check_events(path: Path, info: ObservationInfo, limits: _Limits) -> QualityVerdict:
    """The event checks of one file: span of the headers, columns, then the streamed rows."""
    name, product = path.name, info.product
    table = open_event_table(path)
    verdict = check_span(name, _header_spans(info, table), limits.max_time_span_s, product)
    if not verdict.ok or table.nrows == 0:
        return verdict if not verdict.ok else check_time(TimeSummary(0, np.nan, np.nan), name,
                                                         product)
    columns = USED_COLUMNS[product]
    check_column_types(table, columns)
    bad: dict[str, tuple[int, int]] = {}
    blocks = iter_event_blocks(table, columns, block_rows=limits.block_rows)
    summary = summarize_time(_scan_blocks(blocks, bad))
    for verdict in (check_finite(bad, name, product), check_time(summary, name, product)):
        if not verdict.ok:
            return verdict
    return check_span(name, {f"column {TIME_COLUMN}": summary.tmax - summary.tmin},
                      limits.max_time_span_s, product)


@dataclass(frozen=True)
class _Limits:
    """The plain values a check takes besides the file."""

    bad_proposals: frozenset[int]
    max_time_span_s: float
    block_rows: int

    @classmethod
    def of(cls, bad_proposals: Iterable[int], max_time_span_s: float,
           block_rows: int) -> _Limits:
        if not max_time_span_s > 0:
            raise ValueError(f"max_time_span_s must be positive, got {max_time_span_s!r}")
        return cls(frozenset(int(p) for p in bad_proposals), float(max_time_span_s),
                   int(block_rows))


def _check_open_file(path: Path, limits: _Limits) -> QualityVerdict:
    name = path.name
    with open_fits(path) as hdulist:
        product = detect_product(hdulist, name)
        if not product.has_events:
            return QualityVerdict.passed(name, product, f"{name}: readable {product.value}")
        try:
            info = read_observation_info(hdulist, name, product)
            verdict = check_header(info, limits.bad_proposals)
            if not verdict.ok:
                return verdict
            return _check_events(path, info, limits)
        except PermanentError as error:
            return QualityVerdict.from_error(error, filename=name, product=product)


def check_file(path: str | os.PathLike[str], *, bad_proposals: Iterable[int] = (),
               max_time_span_s: float = DEFAULT_MAX_TIME_SPAN_S,
               block_rows: int = DEFAULT_BLOCK_ROWS) -> QualityVerdict:
    """Check one file; never raises for bad data.

    Parameters
    ----------
    path : str or os.PathLike
        A corrtag, tag, x1d (or hstlc lightcurve) file, ``.fits`` or ``.fits.gz``.
    bad_proposals : iterable of int
        Proposal IDs to refuse (``Bad Proposal``).
    max_time_span_s : float
        Longest EXPTIME, GTI span or TIME range accepted (``Time span too long``).
    block_rows : int
        Rows per streamed block of the event table.

    Returns
    -------
    QualityVerdict
        See the module docstring for the order in which reasons are decided.

    Raises
    ------
    ValueError
        ``max_time_span_s`` is not positive (a caller error, not bad data).
    """
    path = Path(path)
    limits = _Limits.of(bad_proposals, max_time_span_s, block_rows)
    try:
        verdict = _check_open_file(path, limits)
    except PermanentError as error:
        verdict = QualityVerdict.from_error(error, filename=path.name)
    if not verdict.ok:
        logger.info("%s: %s (%s)", path.name, verdict.reason, verdict.detail)
    return verdict


def _dataset_conflict(verdicts: list[QualityVerdict]) -> QualityVerdict | None:
    """A verdict when the passed files do not make one dataset, else None."""
    events = [v for v in verdicts if v.product is not None and v.product.has_events]
    if not events:
        names = ", ".join(str(v.filename) for v in verdicts)
        return QualityVerdict.failed(NO_EVENTS, f"{names}: no event list in the dataset",
                                     filename=verdicts[0].filename if verdicts else None)
    seen: dict[Product, str] = {}
    for verdict in events:
        assert verdict.product is not None
        if verdict.product in seen:
            return QualityVerdict.failed(
                UNSUPPORTED_PRODUCT,
                f"{verdict.filename}: a second {verdict.product.value} "
                f"after {seen[verdict.product]}",
                filename=verdict.filename, product=verdict.product)
        seen[verdict.product] = str(verdict.filename)
    kinds = set(seen)
    stis = {Product.STIS_TAG, Product.STIS_CORRTAG}
    if len(kinds) > 1 and not (all(p.is_cos_fuv for p in kinds) or kinds <= stis):
        last = events[-1]
        return QualityVerdict.failed(
            UNSUPPORTED_PRODUCT,
            f"{last.filename}: {sorted(p.value for p in kinds)} mixed in one dataset",
            filename=last.filename, product=last.product)
    return None


def check_dataset(paths: Iterable[str | os.PathLike[str]] | DatasetFiles,
                  bad_proposals: Iterable[int] = (), *,
                  max_time_span_s: float = DEFAULT_MAX_TIME_SPAN_S) -> QualityVerdict:
    """Check every file of one dataset; the first failure (by file name) decides.

    For a COS FUV pair both segment files are checked and a failed verdict names
    the failing segment file; a missing partner is allowed.  The x1d is checked
    for readability and product, and fails the dataset when it is bad (it travels
    with the dataset).  Two files of one segment, event lists of different
    products, or no event list at all also fail the dataset (``Unsupported
    product``, ``No events``).

    ``bad_proposals`` and ``max_time_span_s`` as :func:`check_file`.

    Raises
    ------
    ValueError
        When no path is given, or ``max_time_span_s`` is not positive (caller errors,
        not bad data).
    """
    if isinstance(paths, DatasetFiles):
        paths = paths.files
    ordered = sorted((Path(p) for p in paths), key=lambda p: p.name)
    if not ordered:
        raise ValueError("check_dataset needs at least one file")
    proposals = frozenset(int(p) for p in bad_proposals)
    verdicts = [check_file(path, bad_proposals=proposals, max_time_span_s=max_time_span_s)
                for path in ordered]
    for verdict in verdicts:
        if not verdict.ok:
            return verdict
    conflict = _dataset_conflict(verdicts)
    if conflict is not None:
        logger.info("%s: %s (%s)", conflict.filename, conflict.reason, conflict.detail)
        return conflict
    first = next(v for v in verdicts if v.product is not None and v.product.has_events)
    names = ", ".join(p.name for p in ordered)
    return QualityVerdict.passed(str(first.filename), first.product, f"{names}: passed")
