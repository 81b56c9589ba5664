"""The x1d reader: the 1-D spectrum of an exposure, one row per COS segment or STIS order.

An x1d (``<rootname>_x1d.fits``) holds in its ``SCI`` table (ext 1) one row per COS
segment or stripe (column SEGMENT: ``FUVA``, ``FUVB``, ``NUVA`` ...) or per STIS
spectral order (column SPORDER).  Each row gives per pixel column the WAVELENGTH (A),
the FLUX (erg s^-1 cm^-2 A^-1) and the NET count rate (count s^-1); COS rows also
DQ_WGT, 0 where calcos left the pixel out of the spectrum.  Pixel ``i`` is XCORR column
``i`` for COS and low-resolution column ``i`` (high-res AXIS1 // 2) for STIS.

A STIS row also says where its order lies on the detector, in low-resolution rows: the
extraction centre A2CENTER, shifted by the wavecal offset SHIFTA2 of the SCI header, the
height EXTRSIZE, and two background boxes of heights BK1SIZE, BK2SIZE centred at
BK1OFFST, BK2OFFST from the centre (:class:`OrderGeometry`).

This is an I/O module: the x1d column and keyword names live here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

from hstlc.errors import MissingKeywordError, UnreadableFileError, UnsupportedProductError
from hstlc.io.products import open_fits

__all__ = ["OrderGeometry", "X1dRow", "read_x1d"]

#: The extension of the spectrum table (ext 1 when no extension has that name).
SCI_EXTNAME = "SCI"
#: Row label columns: COS segment / stripe, STIS spectral order.
LABEL_COLUMNS = ("SEGMENT", "SPORDER")
SPECTRUM_COLUMNS = ("WAVELENGTH", "FLUX", "NET")
#: Optional COS column: pixels with DQ_WGT > 0 are in the spectrum.
WEIGHT_COLUMN = "DQ_WGT"
#: STIS order geometry columns (low-res pixels), in :class:`OrderGeometry` field order.
GEOMETRY_COLUMNS = ("A2CENTER", "EXTRSIZE", "BK1SIZE", "BK2SIZE", "BK1OFFST", "BK2OFFST")
SHIFT_KEYWORD = "SHIFTA2"


@dataclass(frozen=True)
class OrderGeometry:
    """Where a STIS spectral order lies on the detector (low-resolution rows).

    The source box is centred on :attr:`centre` = ``a2center + shifta2`` with height
    ``extrsize``; background box ``n`` is centred on ``centre + bknoffst`` with height
    ``bknsize``.

    Examples
    --------
    >>> OrderGeometry(400.0, 7.0, 5.0, 5.0, -30.0, 30.0, shifta2=1.5).centre
    401.5
    """

    a2center: float
    extrsize: float
    bk1size: float
    bk2size: float
    bk1offst: float
    bk2offst: float
    shifta2: float = 0.0

    @property
    def centre(self) -> float:
        """Low-res row of the extraction centre, ``a2center + shifta2``."""
        return self.a2center + self.shifta2


@dataclass(frozen=True, eq=False)
class X1dRow:
    """One row of an x1d: a COS segment / stripe or a STIS order.

    Attributes
    ----------
    label : str
        SEGMENT for COS (``'FUVA'``, ``'NUVB'``), SPORDER for STIS (``'1'``, ``'87'``).
    wavelength, flux, net : numpy.ndarray
        Per pixel column: wavelength (A), flux density (erg s^-1 cm^-2 A^-1) and net
        count rate (count s^-1), float64.
    good : numpy.ndarray
        Pixels in the spectrum: ``DQ_WGT > 0`` when the file has DQ_WGT, else all.
    geometry : OrderGeometry or None
        The STIS order geometry; None for COS.
    """

    label: str
    wavelength: np.ndarray
    flux: np.ndarray
    net: np.ndarray
    good: np.ndarray
    geometry: OrderGeometry | None = None


def _spectrum_table(hdul: fits.HDUList, name: str) -> fits.BinTableHDU:
    hdu = hdul[SCI_EXTNAME] if SCI_EXTNAME in hdul else (hdul[1] if len(hdul) > 1 else None)
    if not isinstance(hdu, fits.BinTableHDU):
        raise UnsupportedProductError(f"{name}: no {SCI_EXTNAME} binary table in ext 1",
                                      filename=name)
    return hdu


def _missing(name: str, hdu: fits.BinTableHDU, column: str, present: set[str]
             ) -> MissingKeywordError:
    return MissingKeywordError(
        f"{name}: ext {hdu.name} has no column {column} (found {sorted(present)})",
        filename=name)


def _rows(hdu: fits.BinTableHDU, name: str, need_geometry: bool) -> tuple[X1dRow, ...]:
    present = {str(column).upper() for column in hdu.columns.names}
    label = next((column for column in LABEL_COLUMNS if column in present), None)
    if label is None or (need_geometry and label != "SPORDER"):
        raise _missing(name, hdu, "SPORDER" if need_geometry else " or ".join(LABEL_COLUMNS),
                       present)
    with_geometry = label == "SPORDER" and (need_geometry or present.issuperset(GEOMETRY_COLUMNS))
    for column in SPECTRUM_COLUMNS + (GEOMETRY_COLUMNS if with_geometry else ()):
        if column not in present:
            raise _missing(name, hdu, column, present)
    data = hdu.data
    shifta2 = float(hdu.header.get(SHIFT_KEYWORD, 0.0))
    rows = []
    for i in range(len(data)):
        wavelength = np.array(data["WAVELENGTH"][i], np.float64)
        good = (np.asarray(data[WEIGHT_COLUMN][i]) > 0 if WEIGHT_COLUMN in present
                else np.ones(wavelength.shape, bool))
        geometry = None
        if with_geometry:
            a2center, extrsize, bk1size, bk2size, bk1offst, bk2offst = (
                float(data[column][i]) for column in GEOMETRY_COLUMNS)
            geometry = OrderGeometry(a2center, extrsize, bk1size, bk2size, bk1offst, bk2offst,
                                     shifta2)
        text = data[label][i]
        rows.append(X1dRow(str(int(text)) if label == "SPORDER" else str(text).strip().upper(),
                           wavelength, np.array(data["FLUX"][i], np.float64),
                           np.array(data["NET"][i], np.float64), good, geometry))
    return tuple(rows)


def read_x1d(path: str | os.PathLike[str], *, need_geometry: bool = False) -> tuple[X1dRow, ...]:
    """Read the rows of an x1d file (COS segments or STIS orders), in table order.

    Parameters
    ----------
    path : path-like
        The x1d (``.fits`` or ``.fits.gz``).
    need_geometry : bool
        The caller needs the STIS order geometry: the table must have SPORDER, the
        geometry columns and at least one row.

    Returns
    -------
    tuple of X1dRow
        One per table row; the STIS order geometry is read whenever the table has it.

    Raises
    ------
    UnreadableFileError
        The file is missing, not FITS, truncated, or a column cannot be read.
    UnsupportedProductError
        No binary table in ext 1 (or ``SCI``); no row when ``need_geometry``.
    MissingKeywordError
        A needed column is absent (the message names it and the columns found).
    """
    path = Path(path)
    name = path.name
    with open_fits(path) as hdul:
        hdu = _spectrum_table(hdul, name)
        try:
            rows = _rows(hdu, name, need_geometry)
        except (OSError, ValueError, TypeError, IndexError, KeyError) as error:
            raise UnreadableFileError(f"{name}: the x1d table cannot be read ({error})",
                                      filename=name) from error
    if need_geometry and not rows:
        raise UnsupportedProductError(f"{name}: {hdu.name} table has no spectral orders",
                                      filename=name)
    return rows
