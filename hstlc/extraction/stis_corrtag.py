"""STIS MAMA TIME-TAG: the spectral orders' boxes, and ``_tag`` to COS-like ``_corrtag``.

A STIS ``<root>_tag.fits`` holds events with TIME, AXIS1, AXIS2 (high-res pixels
0..2047, Doppler corrected) and DETAXIS1 (raw axis 1). :func:`tag_to_corrtag` writes
``<root>_corrtag.fits`` with the columns of a COS corrtag that hstlc's extraction uses::

    TIME RAWX=DETAXIS1 RAWY=AXIS2 XCORR=AXIS1 YCORR=AXIS2 WAVELENGTH EPSILON DQ

It reads the tag, the x1d and the reference files, computes the new columns with
:func:`convert_events` (a function of arrays), and writes the corrtag.

Conventions
-----------
* x1d quantities (A2CENTER, EXTRSIZE, BK*SIZE, BK*OFFST and the WAVELENGTH index) are
  LOW-RES pixels; low-res column = AXIS1 // 2, low-res row = AXIS2 / 2.
* An event belongs to order k when ``|AXIS2/2 - (A2CENTER_k + SHIFTA2)| <= EXTRSIZE_k / 2``
  (SHIFTA2 from the x1d SCI header, 0 if absent; both ends included): the WAVELENGTH rule
  below and the extraction's source boxes (:func:`order_boxes`) use the same rows.
* WAVELENGTH (EVENTS keyword WAVESRC says which rule was used):
  ``X1D`` first order -- the x1d WAVELENGTH at the event's low-res column, for every event;
  ``X1D`` echelle -- the event takes the WAVELENGTH at its column of the first x1d order
  (in table order) it belongs to; events in no order get WAVELENGTH = 0, so any wavelength
  limit drops them;
  ``IMAGING`` -- 0 for every event; ``CENTRWV``/``CENWAVE`` -- no x1d: that keyword's value.
* EPSILON = 1 / (product of the flats found among PFLTFILE, LFLTFILE) at the event's
  detector pixel (DETAXIS1, AXIS2: flats belong to detector pixels, and AXIS1 is Doppler
  shifted off them) (flat images of any size that divides 2048 are indexed by scaling the
  high-res position); events on a non-positive or non-finite flat value get EPSILON 0.
  Without flats EPSILON = 1. Keyword EPSSRC: 'PFLTFILE+LFLTFILE', 'PFLTFILE', 'LFLTFILE'
  or 'NONE'.
* DQ = OR of the BPIXTAB runs covering the event's low-res detector pixel (DETAXIS1, AXIS2),
  else 0. Keyword DQSRC: 'BPIXTAB' or 'NONE'.
* Reference names ``oref$name`` resolve against ``reference_dir``, then ``$oref``.

The ``_tag`` file is only read; the output is written atomically
(:func:`hstlc.io.fits_writer.write_fits`), without CHECKSUM cards: their comment holds the
time of writing, and a corrtag made again from the same files must be the same bytes (the
catalogue records its sha256).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from astropy.io import fits

import hstlc
from hstlc.errors import MissingKeywordError, UnreadableFileError, UnsupportedProductError
from hstlc.extraction.boxes import BACKGROUND, SOURCE, Box
from hstlc.io.fits_writer import write_fits
from hstlc.io.products import open_fits
from hstlc.io.reference_files import (
    BadPixelRuns,
    read_bpixtab,
    read_flat,
    resolve_reference,
)
from hstlc.io.x1d import OrderGeometry, X1dRow, read_x1d

log = logging.getLogger(__name__)

__all__ = [
    "CorrtagColumns",
    "bad_pixel_dq",
    "convert_events",
    "default_corrtag_path",
    "event_wavelengths",
    "flat_epsilon",
    "order_boxes",
    "tag_to_corrtag",
]

HIGH_RES = 2048
LOW_RES = 1024
DEFAULT_SDQFLAGS = 31743
TAG_COLUMNS = ("TIME", "AXIS1", "AXIS2", "DETAXIS1")
CORRTAG_FORMATS = (("TIME", "1D", "s"), ("RAWX", "1I", "pixel"), ("RAWY", "1I", "pixel"),
                   ("XCORR", "1E", "pixel"), ("YCORR", "1E", "pixel"),
                   ("WAVELENGTH", "1E", "angstrom"), ("EPSILON", "1E", None), ("DQ", "1I", None))
_TABLE_KEYWORD = re.compile(
    r"^(XTENSION|BITPIX|NAXIS\d*|PCOUNT|GCOUNT|TFIELDS|THEAP|"
    r"T(TYPE|FORM|UNIT|SCAL|ZERO|NULL|DISP|DIM|LMIN|LMAX|DMIN|DMAX|CTYP|CUNI|CRPX|CRVL|CDLT|CROT)\d+)$"
)


# ----------------------------------------------------------------------------- orders
def _geometry(order: X1dRow) -> OrderGeometry:
    if order.geometry is None:
        raise ValueError(f"x1d row {order.label} has no STIS order geometry")
    return order.geometry


def order_boxes(order: X1dRow) -> list[Box]:
    """Source and background boxes (high-res rows) of a STIS order from its x1d geometry.

    The source box holds rows with ``|YCORR/2 - centre| <= EXTRSIZE/2`` (both ends
    included, as :func:`event_wavelengths` assigns orders); background box n is
    ``[c_n - BKnSIZE/2, c_n + BKnSIZE/2)`` with ``c_n = centre + BKnOFFST``, scaled by
    ``EXTRSIZE / (BK1SIZE + BK2SIZE)``.  High-res rows are twice the low-res ones.

    Examples
    --------
    >>> row = X1dRow("1", np.zeros(2), np.zeros(2), np.zeros(2), np.ones(2, bool),
    ...              OrderGeometry(100.0, 8.0, 4.0, 6.0, -20.0, 30.0, shifta2=1.0))
    >>> [(b.role, b.y0, round(b.y1, 6), b.scale) for b in order_boxes(row)]
    [('source', 194.0, 210.0, 1.0), ('background', 158.0, 166.0, 0.8), ('background', 256.0, 268.0, 0.8)]
    """
    geometry = _geometry(order)
    centre, half = float(geometry.centre), float(geometry.extrsize) / 2.0
    scale = float(geometry.extrsize) / (float(geometry.bk1size) + float(geometry.bk2size))
    top = float(np.nextafter(2 * (centre + half), np.inf))
    boxes = [Box(order.label, SOURCE, 2 * (centre - half), top)]
    for offset, size in ((geometry.bk1offst, geometry.bk1size),
                         (geometry.bk2offst, geometry.bk2size)):
        middle = centre + float(offset)
        boxes.append(Box(order.label, BACKGROUND, 2 * (middle - float(size) / 2),
                         2 * (middle + float(size) / 2), scale))
    return boxes


# ----------------------------------------------------------------------------- event columns
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


def bad_pixel_dq(axis1: np.ndarray, axis2: np.ndarray, runs: BadPixelRuns) -> np.ndarray:
    """DQ of each event at high-res ``(axis1, axis2)``: the OR of the runs covering its pixel."""
    image = np.zeros((LOW_RES, LOW_RES), dtype=np.int16)
    for x, y, length, along_row, value in zip(runs.x, runs.y, runs.length, runs.along_row,
                                              runs.value, strict=True):  # runs, not events
        if along_row:
            image[y, max(x, 0):max(x + length, 0)] |= value
        else:
            image[max(y, 0):max(y + length, 0), x] |= value
    return image[np.clip(axis2 // 2, 0, LOW_RES - 1), np.clip(axis1 // 2, 0, LOW_RES - 1)]


def event_wavelengths(axis1: np.ndarray, axis2: np.ndarray, orders: Sequence[X1dRow],
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
        geometry = _geometry(order)
        mine = free & (np.abs(row - geometry.centre) <= geometry.extrsize / 2.0)
        wave[mine] = order.wavelength[np.clip(column[mine], 0, order.wavelength.size - 1)]
        free &= ~mine
    log.debug("%d of %d events fall in no echelle order", int(free.sum()), free.size)
    return wave


class CorrtagColumns(NamedTuple):
    """The corrtag columns computed for STIS events."""

    wavelength: np.ndarray  #: float32, A (0: no wavelength)
    epsilon: np.ndarray  #: float32
    dq: np.ndarray  #: int16


def convert_events(axis1: np.ndarray, axis2: np.ndarray, detaxis1: np.ndarray, *,
                   orders: Sequence[X1dRow] | None = None, echelle: bool = False,
                   wavelength: float = 0.0, flats: Sequence[np.ndarray] = (),
                   bad_pixels: BadPixelRuns | None = None) -> CorrtagColumns:
    """WAVELENGTH, EPSILON and DQ of STIS events (see the module conventions).

    Parameters
    ----------
    axis1, axis2, detaxis1 : numpy.ndarray
        The events' high-res AXIS1, AXIS2 and DETAXIS1.
    orders : sequence of X1dRow, optional
        The x1d orders; None: every event gets ``wavelength``.
    echelle : bool
        Assign events to the orders by row (else: the first order's wavelength at the
        event's column, whatever its row).
    wavelength : float
        The wavelength of every event without ``orders`` (0 for imaging).
    flats : sequence of numpy.ndarray
        Flat-field images (EPSILON = 1 / their product at the detector pixel).
    bad_pixels : BadPixelRuns, optional
        The BPIXTAB runs (DQ = 0 without).
    """
    axis1 = np.asarray(axis1).astype(np.int64)
    axis2 = np.asarray(axis2).astype(np.int64)
    # Flats and bad pixels belong to detector pixels: looked up at DETAXIS1 (AXIS1 is
    # Doppler corrected, off the detector pixel by up to a few pixels along a row).
    detector_x = np.asarray(detaxis1).astype(np.int64)
    wave = (event_wavelengths(axis1, axis2, orders, echelle) if orders is not None
            else np.full(axis1.shape, float(wavelength)))
    epsilon = (flat_epsilon(detector_x, axis2, flats) if flats
               else np.ones(axis1.size, np.float32))
    dq = (bad_pixel_dq(detector_x, axis2, bad_pixels) if bad_pixels is not None
          else np.zeros(axis1.size, np.int16))
    return CorrtagColumns(wave.astype(np.float32), epsilon, dq.astype(np.int16))


# ----------------------------------------------------------------------------- the files
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


class _Tag(NamedTuple):
    header0: fits.Header
    header1: fits.Header
    columns: dict[str, np.ndarray]
    gti: fits.BinTableHDU | None


def _read_tag(tag: Path) -> _Tag:
    """The headers, event columns (TIME, AXIS1, AXIS2, DETAXIS1) and GTI table of a tag."""
    with open_fits(tag) as hdul:
        header0 = hdul[0].header
        for key, wanted in (("INSTRUME", "STIS"), ("OBSMODE", "TIME-TAG")):
            if key not in header0:
                raise MissingKeywordError(f"{tag.name}: primary header has no {key}",
                                          filename=tag.name)
            if str(header0[key]).strip().upper() != wanted:
                raise UnsupportedProductError(
                    f"{tag.name}: {key} = {header0[key]!r}, expected {wanted!r}",
                    filename=tag.name)
        events = hdul["EVENTS"] if "EVENTS" in hdul else (hdul[1] if len(hdul) > 1 else None)
        if not isinstance(events, fits.BinTableHDU):
            raise UnsupportedProductError(f"{tag.name}: no EVENTS binary table in ext 1",
                                          filename=tag.name)
        present = {n.upper() for n in events.columns.names}
        for name in TAG_COLUMNS:
            if name not in present:
                raise MissingKeywordError(f"{tag.name}: ext {events.name} has no column {name} "
                                          f"(found {sorted(present)})", filename=tag.name)
        try:
            data = events.data
            columns = {"TIME": np.array(data["TIME"], dtype=np.float64),
                       **{n: np.array(data[n]).astype(np.int64) for n in TAG_COLUMNS[1:]}}
            gti = hdul["GTI"].copy() if "GTI" in hdul else None
        except (OSError, ValueError, TypeError, IndexError) as exc:
            raise UnreadableFileError(f"{tag.name}: the events cannot be read ({exc})",
                                      filename=tag.name) from exc
        return _Tag(header0.copy(), _clean_header(events.header), columns, gti)


def _wavelength_source(tag: Path, header0: fits.Header, x1d: Path | None
                       ) -> tuple[tuple[X1dRow, ...] | None, bool, float, str]:
    """``(orders, echelle, wavelength)`` for :func:`convert_events`, and the WAVESRC value."""
    if str(header0.get("OBSTYPE", "")).strip().upper() == "IMAGING":
        return None, False, 0.0, "IMAGING"
    if x1d is not None:
        orders = read_x1d(x1d, need_geometry=True)
        echelle = str(header0.get("OPT_ELEM", "")).strip().upper().startswith("E")
        return orders, echelle or len(orders) > 1, 0.0, "X1D"
    for key in ("CENTRWV", "CENWAVE"):
        if key in header0:
            log.info("%s: no x1d, every event gets %s = %s", tag.name, key, header0[key])
            return None, False, float(header0[key]), key
    raise MissingKeywordError(f"{tag.name}: no x1d and the primary header has no CENTRWV or "
                              "CENWAVE", filename=tag.name)


def _flats(header0: fits.Header, reference_dir: str | os.PathLike[str] | None
           ) -> tuple[list[np.ndarray], str]:
    images, used = [], []
    for key in ("PFLTFILE", "LFLTFILE"):
        found = resolve_reference(header0.get(key), reference_dir)
        if found is not None:
            images.append(read_flat(found))
            used.append(key)
    return images, "+".join(used) or "NONE"


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

    header0, header1, events, gti = _read_tag(tag)
    orders, echelle, wavelength, wavesrc = _wavelength_source(tag, header0, x1d)
    flats, epssrc = _flats(header0, reference_dir)
    bpix = resolve_reference(header0.get("BPIXTAB"), reference_dir)
    dqsrc = "BPIXTAB" if bpix is not None else "NONE"
    converted = convert_events(events["AXIS1"], events["AXIS2"], events["DETAXIS1"],
                               orders=orders, echelle=echelle, wavelength=wavelength,
                               flats=flats, bad_pixels=read_bpixtab(bpix) if bpix else None)

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
    columns = {"TIME": events["TIME"], "RAWX": events["DETAXIS1"].astype(np.int16),
               "RAWY": events["AXIS2"].astype(np.int16),
               "XCORR": events["AXIS1"].astype(np.float32),
               "YCORR": events["AXIS2"].astype(np.float32), "WAVELENGTH": converted.wavelength,
               "EPSILON": converted.epsilon, "DQ": converted.dq}
    table = fits.BinTableHDU.from_columns(
        [fits.Column(name=n, format=f, unit=u, array=columns[n]) for n, f, u in CORRTAG_FORMATS],
        header=header1)
    hdus = [fits.PrimaryHDU(header=header0), table] + ([gti] if gti is not None else [])
    write_fits(hdus, out, checksum=False)  # no dated CHECKSUM: the same inputs, the same bytes
    log.info("%s -> %s: %d events, WAVELENGTH %s, EPSILON %s, DQ %s", tag.name, out.name,
             events["TIME"].size, wavesrc, epssrc, dqsrc)
    return out
