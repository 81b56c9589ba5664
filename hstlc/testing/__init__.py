"""Synthetic HST TIME-TAG files with injected signals, for the tests, the benchmarks and ``hstlc demo``.

Realistic COS FUV pairs, COS NUV, STIS tag + x1d files, bad files and reference files.
Every builder is seeded (``numpy.random.Generator``), writes real FITS files with
astropy and returns the written paths together with a *truth* object that records
what was injected, so that tests can compare a pipeline's answer with the truth.

Modules
-------
* :mod:`~hstlc.testing.truth` -- the truth types (:class:`Flare`, :class:`Sinusoid`,
  :class:`CosTruth`, :class:`StisTruth` ...) and the component labels.
* :mod:`~hstlc.testing.draws` -- the random draws shared by the instruments (event times
  in GTIs, flares, sinusoids, background, DQ flags) and the x1d calibration relation.
* :mod:`~hstlc.testing.fitsutil` -- headers and tables written like the real files.
* :mod:`~hstlc.testing.cos_layout`, :mod:`~hstlc.testing.cos` -- COS geometry and headers;
  the COS builders.
* :mod:`~hstlc.testing.stis` -- the STIS builder.
* :mod:`~hstlc.testing.bad` -- files the quality checks must refuse.
* :mod:`~hstlc.testing.reference` -- reference files (``oref``/``lref`` folders).

Products
--------
* :func:`build_cos_fuv_pair` -- COS FUV ``<root>_corrtag_a.fits`` / ``_b.fits`` + ``_x1d.fits``.
* :func:`build_cos_nuv` -- COS NUV ``<root>_corrtag.fits`` (stripes A, B, C) + ``_x1d.fits``.
* :func:`build_stis_tag` -- STIS MAMA ``<root>_tag.fits`` (first order, echelle or imaging)
  + ``_x1d.fits``.
* :func:`build_bad` -- files the quality checks must refuse (see :data:`BAD_KINDS`).
* :func:`build_stis_flat`, :func:`build_stis_bpixtab`, :func:`build_cos_reference_files`
  -- small reference files (``oref``/``lref`` folders).

Conventions (everyone relies on them)
-------------------------------------
* Headers follow the real files: DATE-OBS, TIME-OBS, EXPSTART, EXPEND, EXPTIME, EXPFLAG,
  SDQFLAGS, NEVENTS and the COS box keywords are in the ext-1 (EVENTS) header, as on real
  COS corrtags; the primary has no DATE-OBS (STIS primaries carry TDATEOBS/TEXPSTRT).
  STIS primaries carry no IMAGETYP and no FLUXTAB (STIS names PHOTTAB), like real STIS files.
* A COS FUV corrtag carries the box keywords of *both* segments (SP_LOC_A and SP_LOC_B ...),
  as the real GJ-436 ``_a`` file does.
* Event times are seconds since EXPSTART, sorted, quantised like the instrument
  (COS 32 ms as float32; STIS 125 us ticks stored as ``1J`` with ``TSCAL1``).
* COS: WAVELENGTH = ``wave0 + dispersion * XCORR``; the x1d WAVELENGTH[i] is the same line
  at pixel centre ``i - x1d_offset`` (FUV offset 0; NUV offset 125, arrays of 1274).
  XDOPP = XFULL = XCORR and YFULL = YCORR (no Doppler or wavecal shifts).
* STIS: x1d quantities (A2CENTER, EXTRSIZE, BK*SIZE, BK*OFFST and the WAVELENGTH index)
  are LOW-RES pixels 0..1023 (0-based); AXIS1/AXIS2 are HIGH-RES pixels 0..2047.
  Low-res column = AXIS1 // 2, low-res row = AXIS2 / 2. An order's rows are
  ``|AXIS2 / 2 - (A2CENTER + SHIFTA2)| <= EXTRSIZE / 2`` with SHIFTA2 from the x1d SCI header.
* Calibration: in every x1d row FLUX = ``flat_flux`` (erg/s/cm2/A) where the source falls
  and NET = FLUX * sensitivity, and the source events' columns are drawn in proportion
  to NET; hence summing ``1 / (dt * NET/FLUX)`` over events, per covered pixel column,
  gives back ``flat_flux``. Outside the active columns NET = FLUX = 0.
* ``source_rate`` is counts/s of the quiescent source in each source box (COS segment or
  stripe, STIS order; a mapping gives one value per segment). ``background_rate`` is
  counts/s per detector pixel row (COS) or per LOW-RES row (STIS), uniform over the
  active columns and over ``truth.background_rows`` (which covers both background
  stripes and the source box), so the background in a box of height h is
  ``background_rate * h * live_time``.
* Source rows follow a Gaussian truncated at ``HGT // 2 - 0.5`` rows from SP_LOC, so every
  source event is inside the box whichever edge convention (``LOC -/+ HGT//2`` or
  ``LOC -/+ HGT/2``) is used.
* A flare adds exactly ``Flare.counts`` events in total, split over segments/stripes/orders
  in proportion to their source rates (the exact split is in the truth). DQ flags are
  drawn for every event: ``bad_dq_fraction`` with a bit in SDQFLAGS, ``benign_dq_fraction``
  with a bit outside it.
* ``truth.component`` (per written row: 0 background, 1 source, 2 flare) lets a test
  recompute any expected count with its own selection.

Examples
--------
>>> import tempfile
>>> from hstlc.testing import build_cos_nuv
>>> with tempfile.TemporaryDirectory() as folder:
...     out = build_cos_nuv(folder, seed=1, exptime=100.0)
...     sorted(out["truth"].segments), out["corrtag"].name
(['A', 'B', 'C'], 'lb1c02nuq_corrtag.fits')
"""

from hstlc.testing.bad import BAD_INSTRUMENTS, BAD_KINDS, build_bad
from hstlc.testing.cos import build_cos_fuv_pair, build_cos_nuv
from hstlc.testing.cos_layout import (
    COS_FUV_SDQFLAGS,
    COS_NUV_SDQFLAGS,
    COS_TICK,
    DEFAULT_EXPSTART,
)
from hstlc.testing.draws import Transform
from hstlc.testing.reference import build_cos_reference_files, build_stis_bpixtab, build_stis_flat
from hstlc.testing.stis import STIS_SDQFLAGS, STIS_TICK, build_stis_tag
from hstlc.testing.truth import (
    BACKGROUND,
    FLARE,
    SOURCE,
    Box,
    CosTruth,
    Flare,
    OrderTruth,
    SegmentTruth,
    Sinusoid,
    StisTruth,
)

__all__ = [
    "BACKGROUND", "BAD_INSTRUMENTS", "BAD_KINDS", "COS_FUV_SDQFLAGS", "COS_NUV_SDQFLAGS",
    "COS_TICK", "DEFAULT_EXPSTART", "FLARE", "SOURCE", "STIS_SDQFLAGS", "STIS_TICK",
    "Box", "CosTruth", "Flare", "OrderTruth", "SegmentTruth", "Sinusoid", "StisTruth",
    "Transform", "build_bad", "build_cos_fuv_pair", "build_cos_nuv",
    "build_cos_reference_files", "build_stis_bpixtab", "build_stis_flat", "build_stis_tag",
]
