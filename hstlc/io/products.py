"""Which HST product a FITS file is, decided from its headers and columns.

The pattern follows lightkurve's ``detect_filetype``: one function looks at the
primary header (INSTRUME, DETECTOR, OBSMODE, SEGMENT) and at the columns of
extension 1, and names the :class:`Product`; the rest of hstlc decides by it how to
read the file.  File names are used only as a fallback
for the COS FUV segment letter, and in messages.

Detection order (the first rule that decides wins):

1. ext 1 is a table with the hstlc lightcurve columns -> ``LIGHTCURVE``;
2. INSTRUME must be COS or STIS;
3. DETECTOR must be a photon-counting detector (COS FUV/NUV, STIS FUV-MAMA/NUV-MAMA);
   a STIS CCD file is refused here, before anything else is looked at;
4. OBSMODE must be TIME-TAG (ACCUM, ACQ, ACQ/PEAK ... are refused);
5. the columns of ext 1 decide: corrtag events, STIS tag events, x1d spectrum;
   anything else (lamp-flash tables, rawtag event lists, images) is refused, but an
   EVENTS table with XCORR and YCORR that lacks another corrtag column is a
   :class:`~hstlc.errors.MissingKeywordError` naming that column.

Whether a file is whole is judged from its own sizes: the bytes each HDU's header
implies (header, data and padding) against the file's length (for ``.gz``, the
decompressed length), never from astropy's warnings, which are process-wide state that
threads opening other files share.

Every refusal raises :class:`~hstlc.errors.UnsupportedProductError` whose detail
names the file and what was found, e.g.
``ldngz2szq_rawacq.fits.gz: OBSMODE='ACCUM', not TIME-TAG``.  A file that astropy
cannot parse (not FITS, empty, truncated) raises
:class:`~hstlc.errors.UnreadableFileError` from :func:`open_fits`.
"""

from __future__ import annotations

import enum
import gzip
import logging
import os
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from astropy.io import fits

from hstlc.errors import MissingKeywordError, UnreadableFileError, UnsupportedProductError

logger = logging.getLogger(__name__)

__all__ = [
    "Product",
    "detect_product",
    "fuv_segment_letter",
    "open_fits",
]

#: Columns of the hstlc lightcurve table (ext 1), the contract with the lightcurve writer.
LIGHTCURVE_COLUMNS = frozenset(
    {"BINS", "TIMES", "MJD", "GROSS", "COUNTS", "NET", "FLUX", "FLUX_ERROR",
     "BACKGROUND", "ERROR", "DATASET"}
)
#: Columns a COS corrtag EVENTS table must have to be read.
COS_CORRTAG_COLUMNS = frozenset({"TIME", "XCORR", "YCORR", "WAVELENGTH", "EPSILON", "DQ"})
#: Columns of a STIS corrtag written by :mod:`hstlc.extraction.stis_corrtag`.
STIS_CORRTAG_COLUMNS = frozenset(
    {"TIME", "RAWX", "RAWY", "XCORR", "YCORR", "WAVELENGTH", "EPSILON", "DQ"}
)
#: Columns only corrected event lists have: with them, a missing column is a defect.
_CORRECTED_COLUMNS = frozenset({"XCORR", "YCORR"})
#: Columns of a STIS MAMA TIME-TAG EVENTS table.
STIS_TAG_COLUMNS = frozenset({"TIME", "AXIS1", "AXIS2"})
#: Columns every x1d spectrum table has.
X1D_COLUMNS = frozenset({"WAVELENGTH", "FLUX", "NET"})

_TIME_TAG = "TIME-TAG"
_EVENTS_EXTNAME = "EVENTS"
_DETECTORS = {"COS": ("FUV", "NUV"), "STIS": ("FUV-MAMA", "NUV-MAMA")}
_FUV_SEGMENTS = {"FUVA": "A", "FUVB": "B"}
# Ways the tail of a file name can say the FUV segment (fallback only).
_NAME_SEGMENTS = {"_corrtag_a": "A", "_corrtag_b": "B"}
# The first bytes of an extension header: after the last HDU read, they mean an HDU was lost.
_XTENSION = b"XTENSION"


class Product(enum.Enum):
    """The kinds of file hstlc reads.

    The value is a short stable name, usable in logs and databases.
    """

    COS_FUV_CORRTAG_A = "cos_fuv_corrtag_a"
    COS_FUV_CORRTAG_B = "cos_fuv_corrtag_b"
    COS_NUV_CORRTAG = "cos_nuv_corrtag"
    STIS_TAG = "stis_tag"
    STIS_CORRTAG = "stis_corrtag"
    X1D = "x1d"
    LIGHTCURVE = "lightcurve"

    @property
    def has_events(self) -> bool:
        """True for the photon event lists (corrtag and tag files)."""
        return self not in (Product.X1D, Product.LIGHTCURVE)

    @property
    def fuv_segment(self) -> str | None:
        """``'A'`` or ``'B'`` for a COS FUV corrtag segment, else None."""
        return {Product.COS_FUV_CORRTAG_A: "A", Product.COS_FUV_CORRTAG_B: "B"}.get(self)

    @property
    def is_cos_fuv(self) -> bool:
        """True for either COS FUV corrtag segment."""
        return self.fuv_segment is not None


def _gzip_length(path: Path) -> int | None:
    """Bytes of a gzip stream once decompressed; None when it stops early or is corrupt."""
    length = 0
    try:
        with gzip.open(path, "rb") as stream:
            while chunk := stream.read(1 << 22):
                length += len(chunk)
    except (OSError, EOFError, zlib.error):
        return None
    return length


def _extent(hdu: fits.hdu.base._BaseHDU) -> tuple[int, int]:
    """``(data start, end)``: the bytes an HDU's header says it occupies, padding included.

    The data size comes from the header (BITPIX, NAXISn, PCOUNT, GCOUNT), not from the file.
    """
    info = hdu.fileinfo()
    start = int(info["datLoc"])
    return start, start + int(info["datSpan"])


def _fits_size(hdulist: fits.HDUList) -> int:
    """Bytes the HDUs that astropy found occupy (end of the last HDU's padded data)."""
    return _extent(hdulist[-1])[1]


def _check_extents(hdulist: fits.HDUList, name: str, size: int) -> None:
    """Refuse a file shorter than its headers say, naming the first HDU it cuts.

    ``size`` is the file's length (decompressed for ``.gz``).  The padding to 2880
    bytes counts: a FITS file that ends inside it lost what followed (an HDU, maybe).
    """
    for index, hdu in enumerate(hdulist):
        start, end = _extent(hdu)
        if end > size:
            raise UnreadableFileError(
                f"{name}: truncated: ext {index} ({hdu.name or 'no EXTNAME'}) needs {end} bytes "
                f"(data from byte {start}) but the file has {size} bytes", filename=name)


def _check_tail(stream: BinaryIO, name: str, end: int, size: int) -> None:
    """Refuse bytes after the last HDU that begin another extension (an HDU was lost)."""
    if size <= end:
        return
    stream.seek(end)
    if stream.read(len(_XTENSION)) == _XTENSION:
        raise UnreadableFileError(
            f"{name}: the extension header at byte {end} cannot be read (truncated or "
            f"corrupt; the file has {size} bytes)", filename=name)
    logger.warning("%s: %d bytes after the last HDU (from byte %d)", name, size - end, end)


def _gzip_size_matches(path: Path, size: int) -> bool:
    """Whether the gzip trailer (ISIZE, size mod 2**32) agrees with ``size``."""
    with open(path, "rb") as stream:
        stream.seek(-4, os.SEEK_END)
        isize = int.from_bytes(stream.read(4), "little")
    return isize == size % (1 << 32)


def _check_complete(hdulist: fits.HDUList, path: Path, stream: BinaryIO) -> None:
    """Refuse a file that lost HDUs or bytes, judged on this file's own sizes alone.

    The bytes each HDU's header implies are compared with the file's length; fewer
    extensions than NEXTEND, or an extension header after the last HDU read, are also
    refused.  For ``.gz`` the trailer's uncompressed size is compared with the HDUs
    found (O(1)); only when they disagree is the whole stream read, to tell a cut stream
    from a short or long decompressed file.
    """
    name = path.name
    expected = hdulist[0].header.get("NEXTEND")
    found = len(hdulist) - 1
    if isinstance(expected, int) and not isinstance(expected, bool) and found < expected:
        raise UnreadableFileError(
            f"{name}: primary NEXTEND={expected} but only {found} extension(s) could be read "
            "(truncated file?)",
            filename=name,
        )
    end = _fits_size(hdulist)
    if path.suffix.lower() != ".gz":
        size = os.fstat(stream.fileno()).st_size
        _check_extents(hdulist, name, size)
        _check_tail(stream, name, end, size)
        return
    if _gzip_size_matches(path, end):
        return
    length = _gzip_length(path)
    if length is None:
        raise UnreadableFileError(f"{name}: the gzip stream is truncated or corrupt",
                                  filename=name)
    _check_extents(hdulist, name, length)
    if length > end:
        logger.warning("%s: %d bytes after the last HDU in the gzip stream", name, length - end)


# Warning: astropy's warnings reach here as exceptions only when the caller's filters turn
# them into errors (``-W error``); astropy then could not read the file as it is.
_FITS_ERRORS = (OSError, EOFError, ValueError, TypeError, IndexError, KeyError, zlib.error,
                fits.VerifyError, Warning)


def _parse_headers(hdulist: fits.HDUList, name: str) -> None:
    """Parse every header card and table definition now, so a corrupt card is seen here."""
    for index, hdu in enumerate(hdulist):
        try:
            for card in hdu.header.cards:
                card.value  # noqa: B018 -- parsing is the point
            if isinstance(hdu, fits.BinTableHDU | fits.TableHDU):
                hdu.columns  # noqa: B018
        except _FITS_ERRORS as exc:
            raise UnreadableFileError(
                f"{name}: ext {index} header cannot be parsed ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0]})", filename=name) from exc


def _open_hdulist(stream: BinaryIO, name: str) -> fits.HDUList:
    """fits.open on an open stream, every header parsed.

    Whether the file is whole is judged afterwards from its own sizes
    (:func:`_check_complete`), never from warnings, which are process-wide state shared
    with the threads opening other files.
    """
    try:
        hdulist = fits.open(stream, memmap=True, lazy_load_hdus=False)
    except _FITS_ERRORS as exc:
        raise UnreadableFileError(
            f"{name}: not a readable FITS file ({type(exc).__name__}: {exc})", filename=name
        ) from exc
    try:
        _parse_headers(hdulist, name)
    except UnreadableFileError:
        hdulist.close()
        raise
    return hdulist


@contextmanager
def open_fits(path: str | os.PathLike[str]) -> Iterator[fits.HDUList]:
    """Open a FITS file (``.fits`` or ``.fits.gz``) for reading, or refuse it.

    Every header is read and parsed at once (so a corrupt card is seen here), and
    the bytes the headers imply are compared with the file's length (so a truncated
    file is seen here, whatever other threads do); the data are memory-mapped when
    the file is not compressed.  The file handle is opened here and always closed,
    also when astropy fails half-way.

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Yields
    ------
    astropy.io.fits.HDUList
        The open file; closed when the ``with`` block ends.

    Raises
    ------
    UnreadableFileError
        The file is missing, empty, not FITS, truncated or corrupt.
    """
    path = Path(path)
    name = path.name
    if not path.is_file():
        what = "not a regular file" if path.exists() else "no such file"
        raise UnreadableFileError(f"{name}: {what} ({path})", filename=name)
    if path.stat().st_size == 0:
        raise UnreadableFileError(f"{name}: empty file (0 bytes)", filename=name)
    try:
        stream = open(path, "rb")  # closed in the finally below
    except OSError as exc:
        raise UnreadableFileError(f"{name}: cannot be opened ({exc})", filename=name) from exc
    try:
        hdulist = _open_hdulist(stream, name)
        try:
            if len(hdulist) == 0:
                raise UnreadableFileError(f"{name}: no HDU in the file", filename=name)
            _check_complete(hdulist, path, stream)
            yield hdulist
        finally:
            hdulist.close()
    finally:
        stream.close()


def _header_text(header: fits.Header, key: str) -> str | None:
    """A header value as stripped upper-case text, None when absent or undefined."""
    value = header.get(key)
    if value is None or isinstance(value, fits.card.Undefined):
        return None
    return str(value).strip().upper()


def _column_names(hdu: fits.hdu.base.ExtensionHDU) -> frozenset[str]:
    """Upper-case column names of a table HDU; empty for an image HDU."""
    if not isinstance(hdu, fits.BinTableHDU | fits.TableHDU):
        return frozenset()
    return frozenset(str(name).upper() for name in hdu.columns.names if name)


def _describe_ext1(hdu: fits.hdu.base.ExtensionHDU) -> str:
    """``ext 1 EXTNAME='X' (image)`` or ``... with columns A, B, C`` for messages."""
    columns = _column_names(hdu)
    kind = f"with columns {', '.join(map(str, hdu.columns.names))}" if columns else "(not a table)"
    return f"ext 1 EXTNAME={hdu.name!r} {kind}"


def fuv_segment_letter(header: fits.Header, filename: str) -> str:
    """The COS FUV segment (``'A'`` or ``'B'``) of a corrtag file.

    The primary SEGMENT keyword (FUVA/FUVB) decides; the file name
    (``*_corrtag_a`` / ``*_corrtag_b``) is used only when the keyword is absent or
    says something else (and then a warning is logged).

    Raises
    ------
    MissingKeywordError
        Neither the keyword nor the file name gives a segment.
    """
    found = _header_text(header, "SEGMENT")
    letter = _FUV_SEGMENTS.get(found or "")
    if letter is not None:
        return letter
    stem = filename.lower().split(".fits")[0]
    for tail, name_letter in _NAME_SEGMENTS.items():
        if stem.endswith(tail):
            logger.warning("%s: ext 0 SEGMENT=%r; segment %s taken from the file name",
                           filename, found, name_letter)
            return name_letter
    raise MissingKeywordError(
        f"{filename}: ext 0 has no usable SEGMENT (found {found!r}, expected FUVA or FUVB)",
        filename=filename,
    )


def _detect_events(instrume: str, detector: str, columns: frozenset[str],
                   header: fits.Header, filename: str) -> Product | None:
    """The event-list product for these columns, or None."""
    if instrume == "COS" and COS_CORRTAG_COLUMNS <= columns:
        if detector == "NUV":
            return Product.COS_NUV_CORRTAG
        letter = fuv_segment_letter(header, filename)
        return Product.COS_FUV_CORRTAG_A if letter == "A" else Product.COS_FUV_CORRTAG_B
    if instrume == "STIS" and STIS_CORRTAG_COLUMNS <= columns:
        return Product.STIS_CORRTAG
    if instrume == "STIS" and STIS_TAG_COLUMNS <= columns:
        return Product.STIS_TAG
    return None


def detect_product(hdulist: fits.HDUList, filename: str) -> Product:
    """Name the product of an open FITS file from its headers and columns.

    Parameters
    ----------
    hdulist : astropy.io.fits.HDUList
        The open file (see :func:`open_fits`).
    filename : str
        Base name of the file, for messages and the FUV segment fallback.

    Returns
    -------
    Product

    Raises
    ------
    UnsupportedProductError
        A readable file that is not a product hstlc processes; the detail names
        the file and what was found.
    MissingKeywordError
        An event table whose primary header lacks INSTRUME, DETECTOR or OBSMODE.
    """
    if len(hdulist) < 2:
        raise UnsupportedProductError(
            f"{filename}: primary HDU only, no extension 1 (no event table or spectrum)",
            filename=filename,
        )
    primary, ext1 = hdulist[0].header, hdulist[1]
    columns = _column_names(ext1)
    if LIGHTCURVE_COLUMNS <= columns:
        return Product.LIGHTCURVE
    found = {key: _header_text(primary, key) for key in ("INSTRUME", "DETECTOR", "OBSMODE")}
    missing = [key for key, value in found.items() if value is None]
    if missing:
        if ext1.name.upper() == _EVENTS_EXTNAME:  # an event list with a broken header
            raise MissingKeywordError(f"{filename}: ext 0 has no {missing[0]}", filename=filename)
        raise UnsupportedProductError(
            f"{filename}: ext 0 has no {', '.join(missing)}; {_describe_ext1(ext1)}",
            filename=filename,
        )
    instrume, detector, obsmode = found["INSTRUME"], found["DETECTOR"], found["OBSMODE"]
    assert instrume is not None and detector is not None and obsmode is not None
    if instrume not in _DETECTORS:
        raise UnsupportedProductError(
            f"{filename}: INSTRUME={instrume!r}, not COS or STIS", filename=filename
        )
    if detector not in _DETECTORS[instrume]:
        raise UnsupportedProductError(
            f"{filename}: {instrume} DETECTOR={detector!r} (OBSMODE={obsmode!r}), "
            f"not a photon-counting TIME-TAG detector ({', '.join(_DETECTORS[instrume])})",
            filename=filename,
        )
    if obsmode != _TIME_TAG:
        raise UnsupportedProductError(
            f"{filename}: OBSMODE={obsmode!r}, not TIME-TAG ({_describe_ext1(ext1)})",
            filename=filename,
        )
    product = _detect_events(instrume, detector, columns, primary, filename)
    if product is not None:
        return product
    if X1D_COLUMNS <= columns and "TIME" not in columns:
        return Product.X1D
    needed = COS_CORRTAG_COLUMNS if instrume == "COS" else STIS_CORRTAG_COLUMNS
    lacking = ", ".join(sorted(needed - columns))
    is_events = ext1.name.upper() == _EVENTS_EXTNAME and "TIME" in columns
    if is_events and _CORRECTED_COLUMNS <= columns:  # a corrtag that lost a column
        raise MissingKeywordError(f"{filename}: ext 1 {ext1.name} has no column {lacking}",
                                  filename=filename)
    hint = f" (a raw event list: no {lacking})" if is_events else ""
    raise UnsupportedProductError(
        f"{filename}: {_describe_ext1(ext1)} is not a corrtag/tag event list "
        f"or an x1d spectrum{hint}",
        filename=filename,
    )
