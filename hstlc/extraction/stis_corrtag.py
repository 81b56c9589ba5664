"""STIS MAMA TIME-TAG: ``_tag`` to COS-like ``_corrtag`` conversion, and the x1d reader.

A STIS ``<root>_tag.fits`` holds events with TIME, AXIS1, AXIS2 (high-res pixels
0..2047, Doppler corrected) and DETAXIS1 (raw axis 1). :func:`tag_to_corrtag` writes
``<root>_corrtag.fits`` with the columns of a COS corrtag that hstlc's extraction uses::

    TIME RAWX=DETAXIS1 RAWY=AXIS2 XCORR=AXIS1 YCORR=AXIS2 WAVELENGTH EPSILON DQ

Conventions
-----------
* x1d quantities (A2CENTER, EXTRSIZE, BK*SIZE, BK*OFFST and the WAVELENGTH index) are
  LOW-RES pixels; low-res column = AXIS1 // 2, low-res row = AXIS2 / 2.
* WAVELENGTH (EVENTS keyword WAVESRC says which rule was used):
  ``X1D`` first order -- the x1d WAVELENGTH at the event's low-res column, for every event;
  ``X1D`` echelle -- the event belongs to the first x1d order k (in table order) with
  ``|AXIS2/2 - (A2CENTER_k + SHIFTA2)| <= EXTRSIZE_k / 2`` (SHIFTA2 from the x1d SCI header,
  0 if absent) and takes that order's WAVELENGTH at its column; events in no order get
  WAVELENGTH = 0, so any wavelength limit drops them;
  ``IMAGING`` -- 0 for every event; ``CENTRWV``/``CENWAVE`` -- no x1d: that keyword's value.
* EPSILON = 1 / (product of the flats found among PFLTFILE, LFLTFILE) at the event's
  detector pixel (DETAXIS1, AXIS2: flats belong to detector pixels, and AXIS1 is Doppler
  shifted off them) (flat images of any size that divides 2048 are indexed by scaling the
  high-res position); events on a non-positive or non-finite flat value get EPSILON 0.
  Without flats EPSILON = 1. Keyword EPSSRC: 'PFLTFILE+LFLTFILE', 'PFLTFILE', 'LFLTFILE'
  or 'NONE'.
* DQ = OR of the BPIXTAB rows (PIX1, PIX2 1-based low-res, LENGTH, AXIS, VALUE) covering the
  event's low-res detector pixel (DETAXIS1, AXIS2), else 0. Keyword DQSRC: 'BPIXTAB' or 'NONE'.
* Reference names ``oref$name`` resolve against ``reference_dir``, then ``$oref``.

The ``_tag`` file is only read; the output is written to a temporary file in the same
folder and moved into place with :func:`os.replace`.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

import hstlc
from hstlc.errors import MissingKeywordError, UnreadableFileError, UnsupportedProductError

log = logging.getLogger(__name__)

__all__ = [
    "StisOrder",
    "read_stis_x1d_orders",
    "resolve_reference",
    "tag_to_corrtag",
    "default_corrtag_path",
    "event_wavelengths",
    "flat_epsilon",
    "bad_pixel_dq",
]

HIGH_RES = 2048
LOW_RES = 1024
DEFAULT_SDQFLAGS = 31743
TAG_COLUMNS = ("TIME", "AXIS1", "AXIS2", "DETAXIS1")
X1D_COLUMNS = ("SPORDER", "WAVELENGTH", "A2CENTER", "EXTRSIZE", "BK1SIZE", "BK2SIZE",
               "BK1OFFST", "BK2OFFST", "FLUX", "NET")
CORRTAG_FORMATS = (("TIME", "1D", "s"), ("RAWX", "1I", "pixel"), ("RAWY", "1I", "pixel"),
                   ("XCORR", "1E", "pixel"), ("YCORR", "1E", "pixel"),
                   ("WAVELENGTH", "1E", "angstrom"), ("EPSILON", "1E", None), ("DQ", "1I", None))
_TABLE_KEYWORD = re.compile(
    r"^(XTENSION|BITPIX|NAXIS\d*|PCOUNT|GCOUNT|TFIELDS|THEAP|"
    r"T(TYPE|FORM|UNIT|SCAL|ZERO|NULL|DISP|DIM|LMIN|LMAX|DMIN|DMAX|CTYP|CUNI|CRPX|CRVL|CDLT|CROT)\d+)$"
)


@dataclass(frozen=True, eq=False)
class StisOrder:
    """One spectral order of a STIS x1d (all positions in LOW-RES pixels).

    ``shifta2`` is the x1d SCI header's SHIFTA2; the order's centre row is :attr:`centre`.
    """

    sporder: int
    wavelength: np.ndarray
    a2center: float
    extrsize: float
    bk1size: float
    bk2size: float
    bk1offst: float
    bk2offst: float
    flux: np.ndarray
    net: np.ndarray
    shifta2: float = 0.0

    @property
    def centre(self) -> float:
        """Low-res row of the extraction centre, ``a2center + shifta2``."""
        return self.a2center + self.shifta2


_UNREADABLE = re.compile(r"truncat|Error validating header|remaining HDUs will be ignored",
                         re.IGNORECASE)


def _open(path: Path) -> fits.HDUList:
    """Open a FITS file fully into memory, turning every failure into UnreadableFileError."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            hdul = fits.open(path, memmap=False, lazy_load_hdus=False)
            for hdu in hdul:
                _ = hdu.data
    except FileNotFoundError:
        raise
    except (OSError, ValueError, TypeError, IndexError, KeyError) as exc:
        raise UnreadableFileError(f"{path.name}: cannot be read as FITS ({exc})",
                                  filename=path.name) from exc
    for warning in caught:
        if _UNREADABLE.search(str(warning.message)):
            hdul.close()
            raise UnreadableFileError(f"{path.name}: damaged FITS file ({warning.message})",
                                      filename=path.name)
        log.warning("%s: %s", path.name, warning.message)
    return hdul


def _table(hdul: fits.HDUList, extname: str, path: Path) -> fits.BinTableHDU:
    hdu = hdul[extname] if extname in hdul else (hdul[1] if len(hdul) > 1 else None)
    if not isinstance(hdu, fits.BinTableHDU):
        raise UnsupportedProductError(f"{path.name}: no {extname} binary table in ext 1",
                                      filename=path.name)
    return hdu


def _require_columns(hdu: fits.BinTableHDU, names: Sequence[str], path: Path) -> None:
    present = {n.upper() for n in hdu.columns.names}
    for name in names:
        if name not in present:
            raise MissingKeywordError(
                f"{path.name}: ext {hdu.name} has no column {name} (found {sorted(present)})",
                filename=path.name)


def read_stis_x1d_orders(x1d_path: str | os.PathLike[str]) -> list[StisOrder]:
    """Read the orders (rows) of a STIS ``_x1d.fits`` SCI table.

    Parameters
    ----------
    x1d_path : path-like
        The x1d file.

    Returns
    -------
    list of StisOrder
        In table order; positions in low-res pixels.

    Raises
    ------
    UnreadableFileError, UnsupportedProductError, MissingKeywordError
    """
    path = Path(x1d_path)
    with _open(path) as hdul:
        sci = _table(hdul, "SCI", path)
        _require_columns(sci, X1D_COLUMNS, path)
        shifta2 = float(sci.header.get("SHIFTA2", 0.0))
        data = sci.data
        orders = [
            StisOrder(sporder=int(row["SPORDER"]),
                      wavelength=np.array(row["WAVELENGTH"], dtype=float),
                      a2center=float(row["A2CENTER"]), extrsize=float(row["EXTRSIZE"]),
                      bk1size=float(row["BK1SIZE"]), bk2size=float(row["BK2SIZE"]),
                      bk1offst=float(row["BK1OFFST"]), bk2offst=float(row["BK2OFFST"]),
                      flux=np.array(row["FLUX"], dtype=float),
                      net=np.array(row["NET"], dtype=float), shifta2=shifta2)
            for row in data
        ]
    if not orders:
        raise UnsupportedProductError(f"{path.name}: SCI table has no spectral orders",
                                      filename=path.name)
    return orders


def resolve_reference(name: str | None, reference_dir: str | os.PathLike[str] | None = None
                      ) -> Path | None:
    """Path of a reference file named like ``oref$x_pfl.fits``, or None when not found.

    The name is looked up in ``reference_dir``, then in the folder named by the environment
    variable of its prefix (``$oref``); 'N/A', 'NONE' and blank names give None.
    """
    if name is None or name.strip().upper() in ("", "N/A", "NONE"):
        return None
    prefix, _, base = name.strip().rpartition("$")
    folders = [Path(reference_dir)] if reference_dir is not None else []
    for var in dict.fromkeys((prefix, prefix.lower())):
        if var and os.environ.get(var):
            folders.append(Path(os.environ[var]))
    candidates = [folder / base for folder in folders] or ([Path(base)] if not prefix else [])
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    log.info("reference file %s not found (looked in %s)", name,
             ", ".join(str(c.parent) for c in candidates) or "nowhere")
    return None


def _image(path: Path) -> np.ndarray:
    with _open(path) as hdul:
        hdu = hdul["SCI"] if "SCI" in hdul else next(
            (h for h in hdul if h.data is not None and np.ndim(h.data) == 2), None)
        if hdu is None or hdu.data is None or hdu.data.ndim != 2:
            raise UnsupportedProductError(f"{path.name}: no 2-D flat-field image",
                                          filename=path.name)
        return np.asarray(hdu.data, dtype=float)


def _pixel_value(image: np.ndarray, axis1: np.ndarray, axis2: np.ndarray) -> np.ndarray:
    """``image`` at high-res positions, scaling the indices to the image's own size."""
    rows, cols = image.shape
    ix = np.clip(axis1.astype(np.int64) * cols // HIGH_RES, 0, cols - 1)
    iy = np.clip(axis2.astype(np.int64) * rows // HIGH_RES, 0, rows - 1)
    return image[iy, ix]


def flat_epsilon(axis1: np.ndarray, axis2: np.ndarray, flats: Sequence[np.ndarray]
                 ) -> np.ndarray:
    """EPSILON = 1 / product of the flat values at each event (0 where a flat is <= 0)."""
    flat = np.ones(axis1.shape, dtype=float)
    for image in flats:
        flat *= _pixel_value(image, axis1, axis2)
    good = np.isfinite(flat) & (flat > 0)
    if not good.all():
        log.info("%d events fall on non-positive flat values: EPSILON 0", int((~good).sum()))
    return np.divide(1.0, flat, out=np.zeros_like(flat), where=good).astype(np.float32)


def bad_pixel_dq(axis1: np.ndarray, axis2: np.ndarray, table: fits.FITS_rec) -> np.ndarray:
    """DQ of each event from a BPIXTAB (PIX1/PIX2 1-based low-res; AXIS 1 = along a row)."""
    image = np.zeros((LOW_RES, LOW_RES), dtype=np.int16)
    for row in table:  # a loop over table rows, not events
        x, y, length = int(row["PIX1"]) - 1, int(row["PIX2"]) - 1, int(row["LENGTH"])
        if int(row["AXIS"]) == 1:
            image[y, max(x, 0):max(x + length, 0)] |= np.int16(row["VALUE"])
        else:
            image[max(y, 0):max(y + length, 0), x] |= np.int16(row["VALUE"])
    return image[np.clip(axis2 // 2, 0, LOW_RES - 1), np.clip(axis1 // 2, 0, LOW_RES - 1)]


def event_wavelengths(axis1: np.ndarray, axis2: np.ndarray, orders: Sequence[StisOrder],
                      echelle: bool) -> np.ndarray:
    """WAVELENGTH of each event from the x1d orders (see the module conventions)."""
    column = axis1.astype(np.int64) // 2
    wave = np.zeros(axis1.shape, dtype=float)
    if not echelle:
        table = orders[0].wavelength
        return table[np.clip(column, 0, table.size - 1)]
    row = axis2.astype(float) / 2.0
    free = np.ones(axis1.shape, dtype=bool)
    for order in orders:  # a loop over orders, each vectorised over events
        mine = free & (np.abs(row - order.centre) <= order.extrsize / 2.0)
        wave[mine] = order.wavelength[np.clip(column[mine], 0, order.wavelength.size - 1)]
        free &= ~mine
    log.debug("%d of %d events fall in no echelle order", int(free.sum()), free.size)
    return wave


def default_corrtag_path(tag_path: str | os.PathLike[str], rootname: str | None = None) -> Path:
    """``<rootname>_corrtag.fits`` beside the tag file."""
    path = Path(tag_path)
    name = path.name
    root = name[: -len("_tag.fits")] if name.lower().endswith("_tag.fits") else rootname
    if not root:
        root = name.split("_")[0].split(".")[0]
    return path.with_name(f"{root.lower()}_corrtag.fits")


def _clean_header(header: fits.Header) -> fits.Header:
    out = fits.Header()
    for card in header.cards:
        if card.keyword and not _TABLE_KEYWORD.match(card.keyword):
            out.append(fits.Card(card.keyword, card.value, card.comment))
    return out


def _wavelength_column(tag: Path, header0: fits.Header, axis1: np.ndarray, axis2: np.ndarray,
                       x1d_path: Path | None) -> tuple[np.ndarray, str]:
    if str(header0.get("OBSTYPE", "")).strip().upper() == "IMAGING":
        return np.zeros(axis1.shape), "IMAGING"
    if x1d_path is not None:
        orders = read_stis_x1d_orders(x1d_path)
        echelle = str(header0.get("OPT_ELEM", "")).strip().upper().startswith("E")
        return event_wavelengths(axis1, axis2, orders, echelle or len(orders) > 1), "X1D"
    for key in ("CENTRWV", "CENWAVE"):
        if key in header0:
            log.info("%s: no x1d, every event gets %s = %s", tag.name, key, header0[key])
            return np.full(axis1.shape, float(header0[key])), key
    raise MissingKeywordError(f"{tag.name}: no x1d and the primary header has no CENTRWV or "
                              "CENWAVE", filename=tag.name)


def _flats(header0: fits.Header, reference_dir: str | os.PathLike[str] | None
           ) -> tuple[list[np.ndarray], str]:
    images, used = [], []
    for key in ("PFLTFILE", "LFLTFILE"):
        found = resolve_reference(header0.get(key), reference_dir)
        if found is not None:
            images.append(_image(found))
            used.append(key)
    return images, "+".join(used) or "NONE"


def _write_atomic(hdul: fits.HDUList, out: Path) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            hdul.writeto(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def tag_to_corrtag(tag_path: str | os.PathLike[str],
                   x1d_path: str | os.PathLike[str] | None = None,
                   out_path: str | os.PathLike[str] | None = None, *,
                   reference_dir: str | os.PathLike[str] | None = None) -> Path:
    """Convert a STIS MAMA ``_tag.fits`` into a COS-like ``_corrtag.fits``.

    Parameters
    ----------
    tag_path : path-like
        The STIS TIME-TAG file (never modified).
    x1d_path : path-like, optional
        Its x1d; default ``<root>_x1d.fits`` beside the tag when that file exists.
    out_path : path-like, optional
        Output file; default ``<root>_corrtag.fits`` beside the tag.
    reference_dir : path-like, optional
        The ``oref`` folder for PFLTFILE, LFLTFILE and BPIXTAB (else ``$oref``).

    Returns
    -------
    Path
        The written corrtag.

    Raises
    ------
    UnreadableFileError
        The tag, x1d or a reference file is not readable FITS.
    UnsupportedProductError
        Not a STIS TIME-TAG events file.
    MissingKeywordError
        A needed column or keyword is absent.
    """
    tag = Path(tag_path)
    out = Path(out_path) if out_path is not None else default_corrtag_path(tag)
    if out.resolve() == tag.resolve():
        raise ValueError(f"{tag.name}: the output would overwrite the tag file")
    if x1d_path is None:
        guess = tag.with_name(tag.name.replace("_tag.fits", "_x1d.fits"))
        x1d = guess if guess != tag and guess.is_file() else None
    else:
        x1d = Path(x1d_path)

    with _open(tag) as hdul:
        header0 = hdul[0].header
        for key, wanted in (("INSTRUME", "STIS"), ("OBSMODE", "TIME-TAG")):
            if key not in header0:
                raise MissingKeywordError(f"{tag.name}: primary header has no {key}",
                                          filename=tag.name)
            if str(header0[key]).strip().upper() != wanted:
                raise UnsupportedProductError(
                    f"{tag.name}: {key} = {header0[key]!r}, expected {wanted!r}",
                    filename=tag.name)
        events = _table(hdul, "EVENTS", tag)
        _require_columns(events, TAG_COLUMNS, tag)
        data = events.data
        time = np.asarray(data["TIME"], dtype=np.float64)
        axis1 = np.asarray(data["AXIS1"]).astype(np.int64)
        axis2 = np.asarray(data["AXIS2"]).astype(np.int64)
        detaxis1 = np.asarray(data["DETAXIS1"]).astype(np.int16)
        header0, header1 = header0.copy(), _clean_header(events.header)
        gti = hdul["GTI"].copy() if "GTI" in hdul else None

    wave, wavesrc = _wavelength_column(tag, header0, axis1, axis2, x1d)
    flats, epssrc = _flats(header0, reference_dir)
    # Flats and bad pixels belong to detector pixels: looked up at DETAXIS1 (AXIS1 is
    # Doppler corrected, off the detector pixel by up to a few pixels along a row).
    detector_x = detaxis1.astype(np.int64)
    epsilon = (flat_epsilon(detector_x, axis2, flats) if flats
               else np.ones(time.size, np.float32))
    bpix = resolve_reference(header0.get("BPIXTAB"), reference_dir)
    if bpix is not None:
        with _open(bpix) as ref:
            dq, dqsrc = bad_pixel_dq(detector_x, axis2, _table(ref, "BPIX", bpix).data), "BPIXTAB"
    else:
        dq, dqsrc = np.zeros(time.size, np.int16), "NONE"

    header0["FILENAME"] = out.name
    header0["HSTLCVER"] = (hstlc.__version__, "hstlc version that wrote this file")
    header0["TAGFILE"] = (tag.name, "STIS TIME-TAG input")
    header0["X1DFILE"] = (x1d.name if x1d is not None else "NONE", "x1d used for WAVELENGTH")
    header0.add_history(f"hstlc {hstlc.__version__}: corrtag from {tag.name}"
                        f" (x1d {x1d.name if x1d else 'none'})")
    header0.add_history(f"WAVELENGTH from {wavesrc}; EPSILON from {epssrc}; DQ from {dqsrc}")
    header1["WAVESRC"] = (wavesrc, "source of WAVELENGTH: X1D, IMAGING, CENTRWV")
    header1["EPSSRC"] = (epssrc, "flats used for EPSILON (NONE: EPSILON = 1)")
    header1["DQSRC"] = (dqsrc, "source of DQ (NONE: DQ = 0)")
    if "SDQFLAGS" not in header1:
        header1["SDQFLAGS"] = (DEFAULT_SDQFLAGS, "hstlc default STIS serious DQ flags")
    columns = {"TIME": time, "RAWX": detaxis1, "RAWY": axis2.astype(np.int16),
               "XCORR": axis1.astype(np.float32), "YCORR": axis2.astype(np.float32),
               "WAVELENGTH": wave.astype(np.float32), "EPSILON": epsilon,
               "DQ": dq.astype(np.int16)}
    table = fits.BinTableHDU.from_columns(
        [fits.Column(name=n, format=f, unit=u, array=columns[n]) for n, f, u in CORRTAG_FORMATS],
        header=header1)
    hdus = [fits.PrimaryHDU(header=header0), table] + ([gti] if gti is not None else [])
    _write_atomic(fits.HDUList(hdus), out)
    log.info("%s -> %s: %d events, WAVELENGTH %s, EPSILON %s, DQ %s", tag.name, out.name,
             time.size, wavesrc, epssrc, dqsrc)
    return out
