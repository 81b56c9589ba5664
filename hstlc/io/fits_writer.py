"""The one way hstlc writes a FITS product: atomically.

Every FITS file hstlc makes (individual lightcurves, composites, STIS corrtags) is
written to a temporary name beside its final path, flushed to disk, then renamed into
place (:func:`hstlc.fs.atomic_path`).  A reader therefore sees the old file or the new
one, never half of one, and a crash leaves no partial product behind.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from astropy.io import fits

from hstlc.fs import atomic_path

__all__ = ["write_fits"]


def write_fits(hdus: fits.HDUList | Sequence[fits.hdu.base._BaseHDU], path: str | os.PathLike[str], *,
               overwrite: bool = True, checksum: bool = True) -> Path:
    """Write ``hdus`` to ``path`` atomically; return the path.

    Parameters
    ----------
    hdus : HDUList or sequence of HDUs
        What to write (a primary HDU first).
    path : path
        The final file; its folder is created when missing.
    overwrite : bool
        Replace an existing file (atomically); otherwise an existing file is an error.
    checksum : bool
        Add the ``CHECKSUM`` and ``DATASUM`` cards to every HDU.

    Raises
    ------
    FileExistsError
        ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; not overwriting it")
    hdulist = hdus if isinstance(hdus, fits.HDUList) else fits.HDUList(list(hdus))
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as handle:
            hdulist.writeto(handle, checksum=checksum)
            handle.flush()
            os.fsync(handle.fileno())
    return path
