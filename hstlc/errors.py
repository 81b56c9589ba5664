"""Exceptions raised by hstlc.

Two families matter to the pipeline:

* :class:`PermanentError` -- the input itself is bad (unreadable, unsupported,
  missing keyword, failed quality check).  The file is recorded in ``bad_data``
  with :attr:`PermanentError.reason` and moved to ``bad_data/``; it is never retried.
* :class:`TransientError` -- the environment failed (database connection, busy
  file system).  The orchestration layer retries these with backoff.

Messages name the file, the keyword or column, and the value found, e.g.
``ld9m10ujq_corrtag_a.fits: ext 1 has no SP_LOC_A``.
"""

from __future__ import annotations

# The bad_data reasons.  The first six are the 2016 names, kept verbatim.
BAD_EXPFLAG = "Bad EXPFLAG"
NON_LINEAR_TIME = "Non-linear time"
NO_EVENTS = "No events"
SINGULAR_EVENT = "Singular event"
BAD_PROPOSAL = "Bad Proposal"
SHORT_EXPOSURE = "Short Exposure"
UNREADABLE_FILE = "Unreadable file"
UNSUPPORTED_PRODUCT = "Unsupported product"
MISSING_KEYWORD = "Missing keyword"
CORRUPT_EVENTS = "Corrupt events"
NAME_MISMATCH = "Name mismatch"
SYMBOLIC_LINK = "Symbolic link"
LONG_TIME_SPAN = "Time span too long"
NO_SOURCE_EVENTS = "No source events"

BAD_DATA_REASONS: tuple[str, ...] = (
    BAD_EXPFLAG,
    NON_LINEAR_TIME,
    NO_EVENTS,
    SINGULAR_EVENT,
    BAD_PROPOSAL,
    SHORT_EXPOSURE,
    UNREADABLE_FILE,
    UNSUPPORTED_PRODUCT,
    MISSING_KEYWORD,
    CORRUPT_EVENTS,
    NAME_MISMATCH,
    SYMBOLIC_LINK,
    LONG_TIME_SPAN,
    NO_SOURCE_EVENTS,
)


#: Waits (s) before the retries of a step that failed for a transient reason: the
#: Prefect tasks' ``retry_delay_seconds`` and the batch mode's own loop both use these.
TRANSIENT_RETRY_DELAYS_S: tuple[float, ...] = (1.0, 4.0, 16.0)


class HstlcError(Exception):
    """Base class of every error hstlc raises on purpose."""


class ConfigurationError(HstlcError):
    """A setting is missing or invalid."""


class PermanentError(HstlcError):
    """Bad input: record it in ``bad_data`` and do not retry.

    Parameters
    ----------
    reason : str
        One of :data:`BAD_DATA_REASONS`.
    detail : str
        Human-readable detail naming the file, keyword or column and the value found.
    filename : str, optional
        Base name of the offending file.
    """

    default_reason = UNREADABLE_FILE

    def __init__(self, detail: str, *, reason: str | None = None, filename: str | None = None):
        self.reason = reason or self.default_reason
        if self.reason not in BAD_DATA_REASONS:
            raise ValueError(f"unknown bad_data reason {self.reason!r}")
        self.detail = detail
        self.filename = filename
        super().__init__(detail)


class UnreadableFileError(PermanentError):
    """The file cannot be opened or parsed as FITS."""

    default_reason = UNREADABLE_FILE


class UnsupportedProductError(PermanentError):
    """A readable file that is not a TIME-TAG product hstlc processes."""

    default_reason = UNSUPPORTED_PRODUCT


class MissingKeywordError(PermanentError):
    """A header keyword or table column the pipeline needs is absent."""

    default_reason = MISSING_KEYWORD


class QualityError(PermanentError):
    """The data failed one of the quality checks (reason says which)."""


class TransientError(HstlcError):
    """The environment failed (database, file system); retrying may succeed."""


class DiskFullError(HstlcError):
    """A file system hstlc writes to is full (or below the free-space minimum).

    Not a property of any input: the dataset being written is left in ``ingest/`` for
    the next run and the run stops.
    """
