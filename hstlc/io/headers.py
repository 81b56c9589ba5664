"""The header values of one observation, and which files make one dataset.

:class:`ObservationInfo` is what the rest of hstlc knows about a file's headers;
the FITS keyword names live here (and in the other modules of :mod:`hstlc.io`) and
nowhere else.  :func:`keyword_for` gives the keyword
behind a field, for messages.

Where a keyword is looked for: configuration keywords (INSTRUME, OPT_ELEM,
CENWAVE, ...) in the primary header (ext 0) first, exposure keywords (EXPFLAG,
EXPTIME, EXPSTART, ...) in ext 1 first, as COS and STIS write them; the other of
the two headers is the fallback.  A missing *required* keyword raises
:class:`~hstlc.errors.MissingKeywordError` naming the preferred extension
(``ld9m10ujq_corrtag_a.fits: ext 1 has no EXPTIME``); a value of the wrong type
(``PROPOSID='abc'``) is refused the same way, since the pipeline cannot use it.

:func:`group_dataset_files` sorts files into datasets by rootname from their
names (one FUV ``_a``/``_b`` pair is one dataset; an x1d travels with it).
:class:`GroupKey` is the composite group an exposure belongs to.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from astropy.io import fits

from hstlc.errors import MissingKeywordError
from hstlc.io.products import Product
from hstlc.targets import normalize_targname

logger = logging.getLogger(__name__)

__all__ = [
    "DatasetFiles",
    "GroupKey",
    "ObservationInfo",
    "catalogue_record",
    "group_dataset_files",
    "keyword_for",
    "read_observation_info",
    "rootname_from_name",
]

_PRIMARY, _EXT1 = 0, 1

#: field -> (FITS keyword, extension searched first).
KEYWORDS: dict[str, tuple[str, int]] = {
    "rootname": ("ROOTNAME", _PRIMARY),
    "telescop": ("TELESCOP", _PRIMARY),
    "instrume": ("INSTRUME", _PRIMARY),
    "detector": ("DETECTOR", _PRIMARY),
    "obsmode": ("OBSMODE", _PRIMARY),
    "obstype": ("OBSTYPE", _PRIMARY),
    "targname": ("TARGNAME", _PRIMARY),
    "ra_targ": ("RA_TARG", _PRIMARY),
    "dec_targ": ("DEC_TARG", _PRIMARY),
    "equinox": ("EQUINOX", _PRIMARY),
    "proposid": ("PROPOSID", _PRIMARY),
    "opt_elem": ("OPT_ELEM", _PRIMARY),
    "cenwave": ("CENWAVE", _PRIMARY),
    "aperture": ("APERTURE", _PRIMARY),
    "cal_ver": ("CAL_VER", _PRIMARY),
    "fppos": ("FPPOS", _PRIMARY),
    "segment": ("SEGMENT", _PRIMARY),
    "fluxtab": ("FLUXTAB", _PRIMARY),
    "tdstab": ("TDSTAB", _PRIMARY),
    "expflag": ("EXPFLAG", _EXT1),
    "exptime": ("EXPTIME", _EXT1),
    "expstart": ("EXPSTART", _EXT1),
    "expend": ("EXPEND", _EXT1),
    "date_obs": ("DATE-OBS", _EXT1),
    "sdqflags": ("SDQFLAGS", _EXT1),
}

#: The keys of :func:`catalogue_record`: the contract with the ``metadata`` table.
CATALOGUE_FIELDS: tuple[str, ...] = (
    "filename", "telescop", "instrume", "targname", "cal_ver", "obstype", "cenwave",
    "aperture", "detector", "opt_elem", "fppos", "rootname", "proposid", "expstart", "exptime",
)

#: The widest text each header value may have: the catalogue's column widths (the
#: ``metadata`` table is declared with these).  A wider value is refused as a missing
#: keyword, on every database alike (PostgreSQL would refuse the insert, SQLite not).
TEXT_WIDTHS: dict[str, int] = {
    "telescop": 10, "instrume": 10, "targname": 64, "cal_ver": 30, "obstype": 30,
    "aperture": 30, "detector": 30, "opt_elem": 30, "rootname": 32,
}

_IMAGING = "IMAGING"


@dataclass(frozen=True)
class ObservationInfo:
    """Header values of one observation file, typed.

    Attributes
    ----------
    filename : str
        Base name of the file as found on disk (``ld9m10ujq_corrtag_a.fits``).
    rootname : str
        ROOTNAME, lower case (falls back to the file name before its first ``_``).
    telescop, obstype, aperture, cal_ver, segment, date_obs, fluxtab, tdstab : str or None
        Text keywords; None when absent.  ``segment`` is the raw SEGMENT value
        (``FUVA``, ``FUVB``, ``NUV``, ``BOTH``); STIS files have none.
    instrume, detector, obsmode, targname, opt_elem, expflag : str
        Required text keywords.  ``targname`` is as written (not normalised, see
        :func:`hstlc.targets.normalize_targname`).
    ra_targ, dec_targ, equinox : float or None
        Target position (deg) and its equinox.
    proposid : int
        Proposal ID.
    cenwave : int
        Central wavelength setting (A); 0 for imaging modes, which have none.
    fppos : int or None
        COS FP-POS; None for STIS.
    exptime : float
        Exposure time (s).
    expstart, expend : float, float or None
        Exposure start and end (MJD).
    sdqflags : int or None
        Serious data-quality bits; None when the file does not say.
    nevents : int
        Rows in the event table that was read (the thinned table of a real file
        may hold fewer rows than its NEVENTS keyword); 0 for x1d and lightcurves.
    product : Product
        What the file is.
    """

    filename: str
    rootname: str
    telescop: str | None
    instrume: str
    detector: str
    obsmode: str
    obstype: str | None
    targname: str
    ra_targ: float | None
    dec_targ: float | None
    equinox: float | None
    proposid: int
    opt_elem: str
    cenwave: int
    aperture: str
    cal_ver: str | None
    fppos: int | None
    segment: str | None
    expflag: str
    exptime: float
    expstart: float
    expend: float | None
    date_obs: str | None
    sdqflags: int | None
    fluxtab: str | None
    tdstab: str | None
    nevents: int
    product: Product


class GroupKey(NamedTuple):
    """The group of exposures one composite lightcurve (HLSP) is made of.

    The 2016 key: INSTRUME, DETECTOR, TARGNAME (normalised, see
    :func:`hstlc.targets.normalize_targname`), OPT_ELEM, CENWAVE and APERTURE.  Build it
    with :meth:`of` from an :class:`ObservationInfo` or a catalogue ``metadata`` row, so
    both give the same key.  A named tuple: it sorts, hashes, pickles, and a flow
    parameter given as a JSON list comes back as a key.

    Examples
    --------
    >>> key = GroupKey("COS", "FUV", "GJ436", "G130M", 1291, "PSA")
    >>> key.label
    'COS/FUV/GJ436/G130M/1291/PSA'
    """

    instrume: str
    detector: str
    targname: str
    opt_elem: str
    cenwave: int
    aperture: str

    @classmethod
    def of(cls, record: Any) -> GroupKey:
        """The key of a header (:class:`ObservationInfo`) or a catalogue ``metadata`` row.

        Any object with the attributes instrume, detector, targname, opt_elem, cenwave
        and aperture will do.
        """
        return cls(record.instrume, record.detector, normalize_targname(record.targname),
                   record.opt_elem, int(record.cenwave), record.aperture)

    @property
    def label(self) -> str:
        """``INSTRUME/DETECTOR/TARGNAME/OPT_ELEM/CENWAVE/APERTURE``, for logs and summaries."""
        return "/".join(str(value) for value in self)


def keyword_for(field: str) -> str:
    """The FITS keyword behind an :class:`ObservationInfo` field (``expflag`` -> ``EXPFLAG``)."""
    return KEYWORDS[field][0]


def extension_for(field: str) -> int:
    """The extension (0 or 1) where the keyword of ``field`` is looked for first."""
    return KEYWORDS[field][1]


class _HeaderReader:
    """Look keywords up in ext 0 and ext 1 and convert them, naming file and keyword on error."""

    def __init__(self, hdulist: fits.HDUList, filename: str):
        self.hdulist = hdulist
        self.headers = [hdulist[0].header]
        if len(hdulist) > 1:
            self.headers.append(hdulist[1].header)
        self.filename = filename

    def raw(self, field: str) -> Any:
        key, preferred = KEYWORDS[field]
        order = (preferred, 1 - preferred)
        for ext in order:
            if ext < len(self.headers):
                value = self.headers[ext].get(key)
                if value is not None and not isinstance(value, fits.card.Undefined):
                    return value
        return None

    def _missing(self, field: str) -> MissingKeywordError:
        key, preferred = KEYWORDS[field]
        return MissingKeywordError(f"{self.filename}: ext {preferred} has no {key}",
                                   filename=self.filename)

    def _bad(self, field: str, value: Any, wanted: str) -> MissingKeywordError:
        key, preferred = KEYWORDS[field]
        return MissingKeywordError(
            f"{self.filename}: ext {preferred} keyword {key}={value!r} is not {wanted}",
            filename=self.filename,
        )

    def _check_ascii(self, field: str, text: str) -> None:
        """Refuse a value astropy read with ``?`` for non-ASCII bytes (see :func:`_raw_card`)."""
        key = KEYWORDS[field][0]
        for ext, header in enumerate(self.headers):
            if key in header:
                card = _raw_card(self.hdulist, ext, key)
                if card is not None and not card.isascii():
                    value = card[10:].split(b"/")[0].strip().strip(b"'").rstrip()
                    raise MissingKeywordError(
                        f"{self.filename}: ext {ext} keyword {key} holds non-ASCII bytes "
                        f"{value!r} (read as {text!r}); FITS headers are ASCII",
                        filename=self.filename)
                return

    def text(self, field: str, *, required: bool = False) -> str | None:
        value = self.raw(field)
        text = None if value is None else str(value).strip()
        if text and "?" in text:
            self._check_ascii(field, text)
        if required and not text:
            raise self._missing(field)
        limit = TEXT_WIDTHS.get(field)
        if text and limit is not None and len(text) > limit:
            raise self._bad(field, text, f"at most {limit} characters (the catalogue's width)")
        return text or None

    def number(self, field: str, *, required: bool = False) -> float | None:
        value = self.raw(field)
        if value is None:
            if required:
                raise self._missing(field)
            return None
        try:
            if isinstance(value, bool):
                raise ValueError(value)
            number = float(value)
        except (TypeError, ValueError):
            raise self._bad(field, value, "a number") from None
        if required and not math.isfinite(number):
            raise self._bad(field, value, "a finite number")
        return number

    def integer(self, field: str, *, required: bool = False) -> int | None:
        number = self.number(field, required=required)
        if number is None:
            return None
        if not number.is_integer():
            raise self._bad(field, self.raw(field), "an integer")
        return int(number)


def _raw_card(hdulist: fits.HDUList, ext: int, key: str) -> bytes | None:
    """The first 80-byte card of ``key`` in ext ``ext`` as stored in the file, or None.

    astropy replaces each non-ASCII byte of a header by ``?`` (with a warning), so a
    value with ``?`` is looked up again in the file's bytes to tell the two apart.
    """
    info = hdulist.fileinfo(ext)
    if info is None or info.get("file") is None:
        return None
    stream, start = info["file"], int(info["hdrLoc"])
    position = stream.tell()
    try:
        stream.seek(start)
        raw = stream.read(int(info["datLoc"]) - start)
    finally:
        stream.seek(position)
    name = key.encode("ascii")
    for offset in range(0, len(raw), 80):
        if raw[offset:offset + 8].rstrip() == name:
            return bytes(raw[offset:offset + 80])
    return None


def rootname_from_name(filename: str) -> str:
    """The rootname a file's name gives: lower case, before its first ``_`` (or ``.``).

    >>> rootname_from_name("LD9M10UJQ_corrtag_a.fits")
    'ld9m10ujq'
    """
    return filename.split("_", 1)[0].split(".", 1)[0].lower()


def _rootname(reader: _HeaderReader, filename: str) -> str:
    rootname = reader.text("rootname")
    if rootname:
        return rootname.lower()
    fallback = rootname_from_name(filename)
    logger.debug("%s: no ROOTNAME, using %r from the file name", filename, fallback)
    return fallback


def _event_rows(hdulist: fits.HDUList, product: Product) -> int:
    """Rows of the ext-1 event table, from NAXIS2 (no data are read)."""
    if not product.has_events:
        return 0
    return int(hdulist[1].header.get("NAXIS2", 0))


#: Text keywords every observation must have, in the order a missing one is reported.
_REQUIRED_TEXT = ("instrume", "detector", "obsmode", "targname", "opt_elem", "aperture", "expflag")
_OPTIONAL_TEXT = ("telescop", "cal_ver", "segment", "date_obs", "fluxtab", "tdstab")
_OPTIONAL_NUMBER = ("ra_targ", "dec_targ", "equinox", "expend")


def read_observation_info(hdulist: fits.HDUList, filename: str,
                          product: Product) -> ObservationInfo:
    """Read the header values of an open file into an :class:`ObservationInfo`.

    Parameters
    ----------
    hdulist : astropy.io.fits.HDUList
        The open file.
    filename : str
        Its base name.
    product : Product
        Its product, from :func:`hstlc.io.products.detect_product`.

    Raises
    ------
    MissingKeywordError
        A required keyword (INSTRUME, DETECTOR, OBSMODE, TARGNAME, PROPOSID,
        OPT_ELEM, APERTURE, EXPFLAG, EXPTIME, EXPSTART; CENWAVE unless imaging) is
        absent or unusable.
    """
    r = _HeaderReader(hdulist, filename)
    obstype = r.text("obstype")
    cenwave = r.integer("cenwave")
    if cenwave is None:
        if (obstype or "").upper() != _IMAGING:
            raise r._missing("cenwave")
        cenwave = 0
    exptime = r.number("exptime", required=True)
    expstart = r.number("expstart", required=True)
    proposid = r.integer("proposid", required=True)
    assert exptime is not None and expstart is not None and proposid is not None
    values: dict[str, Any] = {field: str(r.text(field, required=True)) for field in _REQUIRED_TEXT}
    values.update({field: r.text(field) for field in _OPTIONAL_TEXT})
    values.update({field: r.number(field) for field in _OPTIONAL_NUMBER})
    return ObservationInfo(
        filename=filename,
        rootname=_rootname(r, filename),
        obstype=obstype,
        proposid=proposid,
        cenwave=cenwave,
        exptime=exptime,
        expstart=expstart,
        fppos=r.integer("fppos"),
        sdqflags=r.integer("sdqflags"),
        nevents=_event_rows(hdulist, product),
        product=product,
        **values,
    )


def catalogue_record(info: ObservationInfo) -> dict[str, Any]:
    """The values of the catalogue ``metadata`` table columns for one file.

    Keys (the contract with the database layer): filename, telescop, instrume,
    targname, cal_ver, obstype, cenwave, aperture, detector, opt_elem, fppos,
    rootname, proposid, expstart, exptime.

    Examples
    --------
    >>> sorted(CATALOGUE_FIELDS)[:3]
    ['aperture', 'cal_ver', 'cenwave']
    """
    return {field: getattr(info, field) for field in CATALOGUE_FIELDS}


# -- which files make one dataset ------------------------------------------------------------


@dataclass(frozen=True)
class DatasetFiles:
    """The files of one rootname, sorted by kind from their names.

    ``unrecognised`` holds files of this rootname that are no input of hstlc
    (``_rawtag_a``, ``_lampflash``, a duplicate ``.fits``/``.fits.gz`` ...).
    """

    rootname: str
    corrtag_a: Path | None = None
    corrtag_b: Path | None = None
    corrtag: Path | None = None
    tag: Path | None = None
    x1d: Path | None = None
    unrecognised: tuple[Path, ...] = field(default=())

    @property
    def event_files(self) -> tuple[Path, ...]:
        """The event-list files present (corrtag_a, corrtag_b, corrtag, tag)."""
        slots = (self.corrtag_a, self.corrtag_b, self.corrtag, self.tag)
        return tuple(path for path in slots if path is not None)

    @property
    def files(self) -> tuple[Path, ...]:
        """The dataset's files: event lists, then the x1d (not the unrecognised)."""
        return self.event_files + ((self.x1d,) if self.x1d is not None else ())

    @property
    def missing_segments(self) -> tuple[str, ...]:
        """FUV segments without a file when the other one is there."""
        if (self.corrtag_a is None) == (self.corrtag_b is None):
            return ()
        return ("B",) if self.corrtag_b is None else ("A",)


_NAME_PATTERN = re.compile(
    r"^(?P<rootname>[^_./]+)_(?P<kind>corrtag_a|corrtag_b|corrtag|tag|x1d)\.fits(?:\.gz)?$",
    re.IGNORECASE,
)


def group_dataset_files(paths: Iterable[str | os.PathLike[str]]) -> dict[str, DatasetFiles]:
    """Sort files into datasets by rootname, from their names alone.

    ``*_corrtag_a``/``*_corrtag_b`` pair up, ``*_corrtag``, ``*_tag`` and ``*_x1d``
    join their rootname (``.fits`` or ``.fits.gz``).  Any other file is listed in
    ``unrecognised`` of the rootname before its first ``_`` (or of its name, without
    extensions, when it has none).  Rootnames are lower case; the result is sorted.

    Examples
    --------
    >>> groups = group_dataset_files(["x/ld9m10ujq_corrtag_a.fits", "x/ld9m10ujq_x1d.fits"])
    >>> groups["ld9m10ujq"].missing_segments
    ('B',)
    """
    slots: dict[str, dict[str, Path]] = {}
    others: dict[str, list[Path]] = {}
    for path in sorted(Path(p) for p in paths):
        match = _NAME_PATTERN.match(path.name)
        if match is None:
            rootname = rootname_from_name(path.name)
            others.setdefault(rootname, []).append(path)
            continue
        rootname, kind = match["rootname"].lower(), match["kind"].lower()
        slot = slots.setdefault(rootname, {})
        if kind in slot:
            logger.warning("%s: %s already given by %s; listed as unrecognised",
                           path.name, kind, slot[kind].name)
            others.setdefault(rootname, []).append(path)
            continue
        slot[kind] = path
    return {
        rootname: DatasetFiles(rootname=rootname, unrecognised=tuple(others.get(rootname, ())),
                               **slots.get(rootname, {}))  # type: ignore[arg-type]
        for rootname in sorted(set(slots) | set(others))
    }
