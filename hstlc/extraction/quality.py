"""Quality checks: decide whether a file or dataset is fit for a lightcurve.

The six 2016 ``bad_data`` reasons are kept with their exact names
(:mod:`hstlc.errors`), plus three for files that cannot be used at all.  A check
never raises for bad data: every :class:`~hstlc.errors.PermanentError` met on
the way becomes a failed :class:`QualityVerdict` (callers that prefer
exceptions call :meth:`QualityVerdict.raise_for_reason`).

Precedence (the first failing check decides the reason):

1. ``Unreadable file``      -- not FITS, empty, truncated, corrupt;
2. ``Unsupported product``  -- readable, but not a TIME-TAG product hstlc processes;
3. ``Missing keyword``      -- a header keyword the pipeline needs is absent or unusable;
4. ``Bad EXPFLAG``          -- ext-1 EXPFLAG is not NORMAL;
5. ``Short Exposure``       -- EXPTIME < 1 s;
6. ``Bad Proposal``         -- PROPOSID is on the configured list;
7. ``No events``            -- the event table is empty;
8. ``Singular event``       -- every event has the same TIME;
9. ``Non-linear time``      -- TIME decreases somewhere.

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
they carry no events.  For an event file only the TIME column is read, in blocks of
rows (:func:`hstlc.io.events.iter_event_blocks`), so a 10^7-event file never needs its
other columns in memory.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hstlc.errors import (
    BAD_EXPFLAG,
    BAD_PROPOSAL,
    MISSING_KEYWORD,
    NO_EVENTS,
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
from hstlc.io.events import TIME_COLUMN, iter_event_blocks, open_event_table
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
    "QualityVerdict",
    "TimeSummary",
    "check_dataset",
    "check_file",
    "check_header",
    "check_time",
    "first_decrease",
    "summarize_time",
]

#: Exposures shorter than this (s) are refused as ``Short Exposure``.
MIN_EXPTIME = 1.0
_GOOD_EXPFLAG = "NORMAL"
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
    drops = np.diff(time) < 0
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


def _check_open_file(path: Path, bad_proposals: Iterable[int]) -> QualityVerdict:
    name = path.name
    with open_fits(path) as hdulist:
        product = detect_product(hdulist, name)
        if not product.has_events:
            return QualityVerdict.passed(name, product, f"{name}: readable {product.value}")
        try:
            info = read_observation_info(hdulist, name, product)
            verdict = check_header(info, bad_proposals)
            if not verdict.ok:
                return verdict
            blocks = iter_event_blocks(open_event_table(path), [TIME_COLUMN])
            return check_time(summarize_time(block[TIME_COLUMN] for block in blocks), name, product)
        except PermanentError as error:
            return QualityVerdict.from_error(error, filename=name, product=product)


def check_file(path: str | os.PathLike[str], *,
               bad_proposals: Iterable[int] = ()) -> QualityVerdict:
    """Check one file; never raises for bad data.

    Parameters
    ----------
    path : str or os.PathLike
        A corrtag, tag, x1d (or hstlc lightcurve) file, ``.fits`` or ``.fits.gz``.
    bad_proposals : iterable of int
        Proposal IDs to refuse (``Bad Proposal``).

    Returns
    -------
    QualityVerdict
        See the module docstring for the order in which reasons are decided.
    """
    path = Path(path)
    try:
        verdict = _check_open_file(path, bad_proposals)
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
                  bad_proposals: Iterable[int] = ()) -> QualityVerdict:
    """Check every file of one dataset; the first failure (by file name) decides.

    For a COS FUV pair both segment files are checked and a failed verdict names
    the failing segment file; a missing partner is allowed.  The x1d is checked
    for readability and product, and fails the dataset when it is bad (it travels
    with the dataset).  Two files of one segment, event lists of different
    products, or no event list at all also fail the dataset (``Unsupported
    product``, ``No events``).

    Raises
    ------
    ValueError
        When no path is given (a caller error, not bad data).
    """
    if isinstance(paths, DatasetFiles):
        paths = paths.files
    ordered = sorted((Path(p) for p in paths), key=lambda p: p.name)
    if not ordered:
        raise ValueError("check_dataset needs at least one file")
    proposals = frozenset(int(p) for p in bad_proposals)
    verdicts = [check_file(path, bad_proposals=proposals) for path in ordered]
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
