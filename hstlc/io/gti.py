"""Good time intervals (GTIs): validated in one place, read from the ``GTI`` extension.

A GTI array is a plain ``(n, 2)`` float64 array of ``[start, stop]`` in seconds since
EXPSTART, as COS and STIS write them in their ``GTI`` table (columns START and STOP).
Every array hstlc uses passes :func:`validate_gti`: sorted, ``START < STOP``, no
overlaps, touching intervals merged.  A file with no ``GTI`` extension has no GTIs
(None): the extraction then counts the whole exposure, ``[0, EXPTIME]``.

This is an I/O module: the extension and column names live here.
"""

from __future__ import annotations

import numpy as np
from astropy.io import fits

from hstlc.errors import UnsupportedProductError

__all__ = ["GTI_EXTNAME", "read_gti", "validate_gti"]

#: The name of the extension holding the GTIs.
GTI_EXTNAME = "GTI"


def validate_gti(gti: np.ndarray, filename: str = "") -> np.ndarray:
    """Check and normalise GTIs: sorted, ``START < STOP``, touching intervals merged.

    Parameters
    ----------
    gti : array-like
        Intervals ``[[start, stop], ...]`` (any order).
    filename : str
        Named in the error message.

    Returns
    -------
    numpy.ndarray
        ``(n, 2)`` float64, sorted by start.

    Raises
    ------
    UnsupportedProductError
        An interval has ``STOP <= START``, or two intervals overlap.

    Examples
    --------
    >>> validate_gti(np.array([[5.0, 8.0], [0.0, 5.0]])).tolist()
    [[0.0, 8.0]]
    >>> validate_gti(np.array([[0.0, 5.0], [4.0, 8.0]]), "x_corrtag.fits")
    Traceback (most recent call last):
    ...
    hstlc.errors.UnsupportedProductError: x_corrtag.fits: the GTIs overlap
    """
    gti = np.asarray(gti, np.float64).reshape(-1, 2)
    gti = gti[np.argsort(gti[:, 0], kind="stable")]
    if np.any(gti[:, 1] <= gti[:, 0]):
        raise UnsupportedProductError(f"{filename}: a GTI has STOP <= START", filename=filename)
    if np.any(gti[1:, 0] < gti[:-1, 1]):
        raise UnsupportedProductError(f"{filename}: the GTIs overlap", filename=filename)
    if len(gti) > 1:
        touching = gti[1:, 0] == gti[:-1, 1]
        if touching.any():
            keep_start = np.concatenate([[True], ~touching])
            keep_stop = np.concatenate([~touching, [True]])
            gti = np.column_stack([gti[keep_start, 0], gti[keep_stop, 1]])
    return gti


def read_gti(hdul: fits.HDUList, filename: str) -> np.ndarray | None:
    """The validated GTIs of an open file; None when it has no ``GTI`` extension.

    An empty ``GTI`` table gives an empty ``(0, 2)`` array: the file says that no time
    was good.

    Raises
    ------
    UnsupportedProductError
        The GTI table is malformed (see :func:`validate_gti`).
    """
    try:
        data = hdul[GTI_EXTNAME].data
    except KeyError:
        return None
    if data is None or len(data) == 0:
        return np.zeros((0, 2))
    gti = np.column_stack([np.asarray(data["START"], np.float64),
                           np.asarray(data["STOP"], np.float64)])
    return validate_gti(gti, filename)
