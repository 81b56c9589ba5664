"""Small reference files: a STIS flat and BPIXTAB (``oref``), a COS FLUXTAB and TDSTAB (``lref``).

The COS tables match a :class:`~hstlc.testing.truth.CosTruth`: SENSITIVITY is the truth's
NET/FLUX on the x1d wavelength grid, so that calibrating the events with them gives back
``flat_flux``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from astropy.io import fits

from hstlc.testing.fitsutil import header, table_hdu, write
from hstlc.testing.truth import CosTruth


def _folder(directory: str | os.PathLike[str]) -> Path:
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def build_stis_flat(directory: str | os.PathLike[str], name: str = "synth_pfl.fits", *,
                    shape: tuple[int, int] = (1024, 1024), seed: int = 0, spread: float = 0.2,
                    filetype: str = "PIXEL-TO-PIXEL FLAT") -> tuple[Path, np.ndarray]:
    """Write a STIS flat-field image (SCI, ERR, DQ) into an ``oref`` folder.

    The SCI image is ``1 + U(-spread, spread)``; ``shape`` (rows, columns) may be low-res
    (1024) or high-res (2048) or any divisor of 2048. Returns ``(path, sci_image)``.
    """
    folder = _folder(directory)
    image = (1.0 + np.random.default_rng(seed).uniform(-spread, spread, shape)).astype(np.float32)
    primary = fits.PrimaryHDU(header=header(
        [("FILENAME", name, ""), ("FILETYPE", filetype, ""), ("INSTRUME", "STIS", ""),
         ("DETECTOR", "FUV-MAMA", ""), ("USEAFTER", "Jan 01 1997 00:00:00", "")]))
    return write([primary, fits.ImageHDU(image, name="SCI"),
                  fits.ImageHDU(np.full(shape, 0.01, np.float32), name="ERR"),
                  fits.ImageHDU(np.zeros(shape, np.int16), name="DQ")],
                 folder / name), image


def build_stis_bpixtab(directory: str | os.PathLike[str], name: str = "synth_bpx.fits",
                       rows: Sequence[tuple[int, int, int, int, int]] = ((101, 201, 10, 1, 4),
                                                                         (301, 401, 20, 2, 16)),
                       ) -> Path:
    """Write a STIS BPIXTAB: rows ``(PIX1, PIX2, LENGTH, AXIS, VALUE)``.

    PIX1/PIX2 are 1-based LOW-RES column/row (FITS convention, as the 2016 code read
    them); AXIS 1 runs along a row (columns PIX1 .. PIX1+LENGTH-1), AXIS 2 along a column.
    """
    arr = np.array(rows, dtype=int).reshape(-1, 5)
    cols = (("PIX1", ">i2", "pixel"), ("PIX2", ">i2", "pixel"), ("LENGTH", ">i2", "pixel"),
            ("AXIS", ">i2", ""), ("VALUE", ">i2", ""))
    data = {c[0]: arr[:, i] for i, c in enumerate(cols)}
    primary = fits.PrimaryHDU(header=header([("FILETYPE", "BAD PIXELS", ""),
                                             ("INSTRUME", "STIS", "")]))
    bpix = table_hdu(cols, data, header([("EXTNAME", "BPIX", "")]), len(arr))
    return write([primary, bpix], _folder(directory) / name)


def build_cos_reference_files(directory: str | os.PathLike[str], truth: CosTruth, *,
                              opt_elem: str = "G130M", cenwave: int = 1291,
                              aperture: str = "PSA", tds_slope: float = 0.0,
                              fluxtab: str = "synth_phot.fits", tdstab: str = "synth_tds.fits"
                              ) -> dict[str, Path]:
    """Write the FLUXTAB and TDSTAB the synthetic COS headers name (``lref$synth_*.fits``).

    SENSITIVITY equals ``truth.segments[x].sensitivity`` (NET/FLUX of the x1d) on the x1d
    wavelength grid; the TDS table has intercept 1 and ``tds_slope`` percent per year
    (REF_TIME = EXPSTART - 365.25), so with slope 0 the correction is exactly 1.
    """
    folder = _folder(directory)
    segs = list(truth.segments.values())
    label = "FUV" if len(segs[0].sensitivity) == 16384 else "NUV"
    names = [f"{label}{s.segment}" for s in segs]
    waves = [s.wavelength_at(np.arange(s.sensitivity.size) - s.x1d_offset) for s in segs]
    base = {"SEGMENT": names, "OPT_ELEM": [opt_elem] * len(segs),
            "CENWAVE": [cenwave] * len(segs), "APERTURE": [aperture] * len(segs)}
    head = (("SEGMENT", "S4", ""), ("OPT_ELEM", "S5", ""), ("CENWAVE", ">i4", ""),
            ("APERTURE", "S3", ""))
    phot = table_hdu(head + (("WAVELENGTH", ">f8", "Angstrom"), ("SENSITIVITY", ">f4", "")),
                     {**base, "WAVELENGTH": np.array(waves),
                      "SENSITIVITY": np.array([s.sensitivity for s in segs])},
                     header([("EXTNAME", "PHOT", "")]), len(segs))
    nwl, nt = 5, 2
    ref_time = truth.expstart - 365.25
    tds = table_hdu(head + (("NWL", ">i4", ""), ("NT", ">i4", ""),
                            ("WAVELENGTH", ">f8", "Angstrom"), ("TIME", ">f8", "MJD"),
                            ("SLOPE", ">f8", "percent /yr"), ("INTERCEPT", ">f8", "")),
                    {**base, "NWL": [nwl] * len(segs), "NT": [nt] * len(segs),
                     "WAVELENGTH": np.array([np.linspace(w.min() - 50, w.max() + 50, nwl)
                                             for w in waves]),
                     "TIME": np.tile([ref_time - 1000.0, ref_time], (len(segs), 1)),
                     "SLOPE": np.full((len(segs), nt, nwl), tds_slope),
                     "INTERCEPT": np.ones((len(segs), nt, nwl))},
                    header([("EXTNAME", "TDS", ""), ("REF_TIME", ref_time, "MJD")]), len(segs))
    return {"fluxtab": write([fits.PrimaryHDU(), phot], folder / fluxtab),
            "tdstab": write([fits.PrimaryHDU(), tds], folder / tdstab)}
