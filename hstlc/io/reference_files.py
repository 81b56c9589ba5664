"""HST reference files: finding them by their header name, and reading the tables hstlc uses.

A science header names its reference files as ``lref$19m15490l_phot.fits`` (COS) or
``oref$x_pfl.fits`` (STIS): :func:`resolve_reference` finds the file.  The readers return
plain arrays:

* COS ``FLUXTAB`` -- the SENSITIVITY per WAVELENGTH of one row (:func:`read_fluxtab`);
* COS ``TDSTAB`` -- the time-dependent sensitivity table of one row (:func:`read_tdstab`);
* STIS ``PFLTFILE``/``LFLTFILE`` -- a flat-field image (:func:`read_flat`);
* STIS ``BPIXTAB`` -- the runs of bad pixels (:func:`read_bpixtab`).

A table row is chosen by the dataset's configuration (SEGMENT, OPT_ELEM, CENWAVE,
APERTURE, FPOFFSET), with the reference-file wildcards ``ANY`` and -1.

This is an I/O module: the reference files' keyword and column names live here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

from hstlc.errors import MissingKeywordError, UnsupportedProductError
from hstlc.io.products import open_fits

logger = logging.getLogger(__name__)

__all__ = ["BadPixelRuns", "TdsRow", "read_bpixtab", "read_flat", "read_fluxtab", "read_tdstab",
           "resolve_reference"]


def resolve_reference(name: str | None, reference_dir: str | os.PathLike[str] | None = None
                      ) -> Path | None:
    """Find the file behind a header reference name such as ``lref$19m15490l_phot.fits``.

    Looks in ``reference_dir`` first, then in the folder named by the environment variable
    of the prefix (``$lref``, ``$oref``; also in lower or upper case); a name without a
    prefix is also tried as a path.  Returns None for ``N/A``, ``NONE``, an empty name, or a
    file found nowhere.

    Examples
    --------
    >>> resolve_reference("N/A") is None
    True
    """
    if name is None or name.strip().upper() in ("", "N/A", "NONE"):
        return None
    prefix, _, base = name.strip().rpartition("$")
    folders = [Path(reference_dir)] if reference_dir is not None else []
    for variable in dict.fromkeys((prefix, prefix.lower(), prefix.upper())):
        if variable and os.environ.get(variable):
            folders.append(Path(os.environ[variable]))
    candidates = [folder / base for folder in folders] + ([] if prefix else [Path(base)])
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    logger.info("reference file %s not found (looked in %s)", name,
                ", ".join(str(c.parent) for c in candidates) or "nowhere")
    return None


def _matches(column: np.ndarray, value: str | int) -> np.ndarray:
    """Row selection with the reference-file wildcards ``ANY`` (strings) and -1 (numbers)."""
    if isinstance(value, str):
        text = np.char.upper(np.char.strip(np.asarray(column).astype(str)))
        return (text == value.strip().upper()) | (text == "ANY")
    numbers = np.asarray(column)
    return (numbers == value) | (numbers == -1)


def _select_row(data: fits.FITS_rec, selection: Mapping[str, str | int], filename: str) -> int:
    """The one row matching ``selection``; columns the table lacks are not compared."""
    mask = np.ones(len(data), bool)
    names = {name.upper() for name in data.names}
    for column, value in selection.items():
        if column.upper() in names:
            mask &= _matches(data[column], value)
    rows = np.flatnonzero(mask)
    if len(rows) != 1:
        wanted = ", ".join(f"{key}={value}" for key, value in selection.items())
        raise MissingKeywordError(f"{filename}: {len(rows)} rows match {wanted} (need 1)",
                                  filename=filename)
    return int(rows[0])


def read_fluxtab(path: str | Path, selection: Mapping[str, str | int]
                 ) -> tuple[np.ndarray, np.ndarray]:
    """WAVELENGTH and SENSITIVITY of the FLUXTAB row matching ``selection``, by wavelength.

    ``selection`` maps column names (SEGMENT, OPT_ELEM, CENWAVE, APERTURE, optionally
    FPOFFSET) to the dataset's values; columns absent from the table are ignored.

    Raises
    ------
    MissingKeywordError
        No single row matches.
    """
    path = Path(path)
    with open_fits(path) as hdul:
        data = hdul[1].data
        row = _select_row(data, selection, path.name)
        wavelength = np.asarray(data["WAVELENGTH"][row], np.float64).ravel()
        sensitivity = np.asarray(data["SENSITIVITY"][row], np.float64).ravel()
    order = np.argsort(wavelength)
    return wavelength[order], sensitivity[order]


@dataclass(frozen=True, eq=False)
class TdsRow:
    """One row of a COS TDSTAB: the sensitivity's change with time, per wavelength.

    Attributes
    ----------
    ref_time : float
        REF_TIME (MJD), the zero of the slopes.
    time : numpy.ndarray
        Start (MJD) of each of the ``NT`` intervals.
    wavelength : numpy.ndarray
        The ``NWL`` wavelengths (A), as in the table.
    slope, intercept : numpy.ndarray
        ``(NT, NWL)``: per interval and wavelength, the slope (percent per year) and the
        intercept of the relative sensitivity.
    """

    ref_time: float
    time: np.ndarray
    wavelength: np.ndarray
    slope: np.ndarray
    intercept: np.ndarray


def read_tdstab(path: str | Path, selection: Mapping[str, str | int]) -> TdsRow:
    """The TDSTAB row matching ``selection`` (its first ``NT`` times, ``NWL`` wavelengths).

    Raises
    ------
    MissingKeywordError
        The table has no ``REF_TIME`` in its ext-1 header, or no single matching row.
    """
    path = Path(path)
    with open_fits(path) as hdul:
        header, data = hdul[1].header, hdul[1].data
        if "REF_TIME" not in header:
            raise MissingKeywordError(f"{path.name}: ext 1 has no REF_TIME", filename=path.name)
        row = _select_row(data, selection, path.name)
        nwl, nt = int(data["NWL"][row]), int(data["NT"][row])
        times = np.asarray(data["TIME"][row], np.float64).ravel()
        shape = (times.size, -1)
        return TdsRow(float(header["REF_TIME"]), times[:nt],
                      np.asarray(data["WAVELENGTH"][row], np.float64).ravel()[:nwl],
                      np.asarray(data["SLOPE"][row], np.float64).reshape(shape)[:nt, :nwl],
                      np.asarray(data["INTERCEPT"][row], np.float64).reshape(shape)[:nt, :nwl])


def read_flat(path: str | Path) -> np.ndarray:
    """The flat-field image of a STIS PFLTFILE/LFLTFILE: its ``SCI`` or first 2-D image.

    Raises
    ------
    UnsupportedProductError
        The file holds no 2-D image.
    """
    path = Path(path)
    with open_fits(path) as hdul:
        hdu = hdul["SCI"] if "SCI" in hdul else next(
            (h for h in hdul if h.data is not None and np.ndim(h.data) == 2), None)
        if hdu is None or hdu.data is None or hdu.data.ndim != 2:
            raise UnsupportedProductError(f"{path.name}: no 2-D flat-field image",
                                          filename=path.name)
        return np.array(hdu.data, dtype=float)


@dataclass(frozen=True, eq=False)
class BadPixelRuns:
    """Runs of bad STIS pixels (a BPIXTAB): low-res, 0-based.

    Run ``i`` starts at column ``x[i]``, row ``y[i]`` and covers ``length[i]`` pixels
    along a row (``along_row[i]``, BPIXTAB AXIS 1) or a column (AXIS 2); its pixels get
    the DQ bits ``value[i]``.
    """

    x: np.ndarray
    y: np.ndarray
    length: np.ndarray
    along_row: np.ndarray
    value: np.ndarray


def read_bpixtab(path: str | Path) -> BadPixelRuns:
    """The runs of a STIS BPIXTAB (columns PIX1, PIX2 1-based, LENGTH, AXIS, VALUE).

    Raises
    ------
    UnsupportedProductError
        No binary table in ``BPIX`` or ext 1.
    """
    path = Path(path)
    with open_fits(path) as hdul:
        hdu = hdul["BPIX"] if "BPIX" in hdul else (hdul[1] if len(hdul) > 1 else None)
        if not isinstance(hdu, fits.BinTableHDU):
            raise UnsupportedProductError(f"{path.name}: no BPIX binary table in ext 1",
                                          filename=path.name)
        data = hdu.data
        return BadPixelRuns(np.array(data["PIX1"], np.int64) - 1,
                            np.array(data["PIX2"], np.int64) - 1,
                            np.array(data["LENGTH"], np.int64),
                            np.array(data["AXIS"]) == 1, np.array(data["VALUE"], np.int16))
