"""Realistic synthetic HST TIME-TAG files (COS FUV pair, COS NUV, STIS tag + x1d, bad files).

Every builder is seeded (``numpy.random.Generator``), writes real FITS files with
astropy and returns the written paths together with a *truth* object that records
what was injected, so that tests can compare a pipeline's answer with the truth.

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
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from astropy.io import fits
from astropy.time import Time

from hstlc import errors

BACKGROUND, SOURCE, FLARE = 0, 1, 2
COS_TICK = 0.032
STIS_TICK = 1.25e-4
COS_FUV_SDQFLAGS = 8346
COS_NUV_SDQFLAGS = 184
STIS_SDQFLAGS = 31743
DEFAULT_EXPSTART = 58108.51215764
AIRGLOW = ((1208.0, 1225.0), (1298.0, 1312.0))

COS_CORRTAG_COLUMNS = (
    ("TIME", ">f4", "s"), ("RAWX", ">i2", "pixel"), ("RAWY", ">i2", "pixel"),
    ("XCORR", ">f4", "pixel"), ("YCORR", ">f4", "pixel"), ("XDOPP", ">f4", "pixel"),
    ("XFULL", ">f4", "pixel"), ("YFULL", ">f4", "pixel"), ("WAVELENGTH", ">f4", "angstrom"),
    ("EPSILON", ">f4", ""), ("DQ", ">i2", ""), ("PHA", "u1", ""),
)
STIS_TAG_COLUMNS = (
    ("TIME", ">i4", "s"), ("AXIS1", ">i2", "pixel"), ("AXIS2", ">i2", "pixel"),
    ("DETAXIS1", ">i2", "pixel"),
)
TIMELINE_COLUMNS = ("TIME", "LONGITUDE", "LATITUDE", "SUN_ALT", "SUN_ZD", "TARGET_ALT",
                    "RADIAL_VEL", "SHIFT1", "LY_ALPHA", "OI_1304", "OI_1356", "DARKRATE")


# ----------------------------------------------------------------------------- truth types
@dataclass(frozen=True)
class Flare:
    """A flare: exactly ``counts`` extra source events between ``start`` and ``start + duration``.

    ``profile`` is ``"boxcar"`` (uniform) or ``"exponential"`` (decay time duration / 5,
    truncated at the end of the window). Times are seconds since EXPSTART.
    """

    start: float
    duration: float
    counts: int
    profile: str = "boxcar"


@dataclass(frozen=True)
class Sinusoid:
    """Source rate modulation ``rate * (1 + amplitude * sin(2 pi t / period + phase))``."""

    period: float
    amplitude: float
    phase: float = 0.0


@dataclass(frozen=True)
class Box:
    """A COS extraction box: centre row ``loc`` and ``height`` in rows."""

    loc: float
    height: float

    @property
    def rows(self) -> tuple[float, float]:
        """Rows ``[loc - height/2, loc + height/2)``."""
        return (self.loc - self.height / 2, self.loc + self.height / 2)

    @property
    def legacy_rows(self) -> tuple[float, float]:
        """Rows ``[loc - height//2, loc + height//2)`` as the 2016 code used them."""
        return (self.loc - self.height // 2, self.loc + self.height // 2)


@dataclass(frozen=True)
class SegmentTruth:
    """What was injected in one COS segment (FUV) or stripe (NUV).

    ``source_pmf[i]`` is the probability that a source event falls in the active pixel
    column ``xcorr_range[0] + i``; ``sensitivity`` is NET/FLUX on the x1d pixel grid.
    """

    segment: str
    source_rate: float
    background_rate: float
    source_box: Box
    background1: Box
    background2: Box
    xcorr_range: tuple[int, int]
    wave0: float
    dispersion: float
    x1d_offset: int
    source_pmf: np.ndarray = field(repr=False)
    sensitivity: np.ndarray = field(repr=False)
    n_source: int = 0
    n_flare: int = 0
    n_background: int = 0

    def wavelength_at(self, xcorr: np.ndarray | float) -> np.ndarray:
        """WAVELENGTH of an event at ``xcorr``."""
        return self.wave0 + self.dispersion * np.asarray(xcorr, dtype=float)

    def source_fraction(self, wmin: float, wmax: float,
                        exclude: Sequence[tuple[float, float]] = ()) -> float:
        """Expected fraction of source events in ``(wmin, wmax)`` and outside ``exclude``."""
        edges = self.xcorr_range[0] - 0.5 + np.arange(self.source_pmf.size + 1)
        return _fraction_in_wavelength(self.wavelength_at(edges), self.source_pmf, wmin, wmax,
                                       exclude)

    def background_fraction(self, wmin: float, wmax: float,
                            exclude: Sequence[tuple[float, float]] = ()) -> float:
        """Expected fraction of background events (uniform columns) in the wavelength window."""
        lo, hi = self.xcorr_range
        pmf = np.full(hi - lo, 1.0 / (hi - lo))
        edges = lo - 0.5 + np.arange(hi - lo + 1)
        return _fraction_in_wavelength(self.wavelength_at(edges), pmf, wmin, wmax, exclude)


@dataclass(frozen=True)
class CosTruth:
    """Truth of a COS dataset.

    ``component[key]`` holds, per written row of the file ``key`` ('corrtag_a', 'corrtag_b'
    or 'corrtag'), 0 background / 1 source / 2 flare.
    """

    seed: int
    exptime: float
    expstart: float
    gti: np.ndarray
    live_time: float
    flat_flux: float
    sdqflags: int
    flare: Flare | None
    sinusoid: Sinusoid | None
    background_rows: tuple[float, float]
    segments: dict[str, SegmentTruth]
    component: dict[str, np.ndarray] = field(repr=False)

    @property
    def n_flare(self) -> int:
        """Total injected flare events (all segments)."""
        return sum(s.n_flare for s in self.segments.values())


@dataclass(frozen=True)
class OrderTruth:
    """One STIS spectral order as written to the x1d (LOW-RES pixels, 0-based)."""

    sporder: int
    a2center: float
    extrsize: float
    bk1size: float
    bk2size: float
    bk1offst: float
    bk2offst: float
    wavelength: np.ndarray
    sensitivity: np.ndarray
    source_pmf: np.ndarray
    source_rate: float
    n_source: int
    n_flare: int


@dataclass(frozen=True)
class StisTruth:
    """Truth of a STIS tag dataset.

    ``component`` (0 background, 1 source, 2 flare) and ``event_order`` (SPORDER of each
    source/flare event, 0 for background) are aligned with the rows of the tag file.
    """

    seed: int
    mode: str
    exptime: float
    expstart: float
    gti: np.ndarray
    live_time: float
    flat_flux: float
    shifta2: float
    background_rate: float
    n_background: int
    orders: dict[int, OrderTruth]
    component: np.ndarray
    event_order: np.ndarray
    flare: Flare | None
    sinusoid: Sinusoid | None
    source_position: tuple[float, float] | None = None

    @property
    def n_flare(self) -> int:
        """Total injected flare events."""
        return int(np.count_nonzero(self.component == FLARE))


def _fraction_in_wavelength(edge_wave: np.ndarray, pmf: np.ndarray, wmin: float, wmax: float,
                            exclude: Sequence[tuple[float, float]]) -> float:
    """Probability mass, piecewise uniform per pixel, in (wmin, wmax) minus ``exclude``."""
    lo, hi = np.minimum(edge_wave[:-1], edge_wave[1:]), np.maximum(edge_wave[:-1], edge_wave[1:])

    def mass(a: float, b: float) -> float:
        overlap = np.clip(np.minimum(hi, b) - np.maximum(lo, a), 0.0, None)
        return float(np.sum(pmf * overlap / (hi - lo)))

    total = mass(wmin, wmax)
    for a, b in exclude:
        total -= mass(max(a, wmin), min(b, wmax)) if min(b, wmax) > max(a, wmin) else 0.0
    return total


# ----------------------------------------------------------------------------- event helpers
def _as_gti(gti: Sequence[Sequence[float]] | np.ndarray | None, exptime: float) -> np.ndarray:
    arr = np.array([[0.0, exptime]] if gti is None else gti, dtype=float).reshape(-1, 2)
    if np.any(arr[:, 1] <= arr[:, 0]) or np.any(arr[1:, 0] < arr[:-1, 1]):
        raise ValueError(f"GTI must be sorted, non-overlapping [start, stop] pairs: {arr.tolist()}")
    return arr


def _uniform_in_gti(rng: np.random.Generator, n: int, gti: np.ndarray) -> np.ndarray:
    cum = np.concatenate([[0.0], np.cumsum(gti[:, 1] - gti[:, 0])])
    u = rng.random(n) * cum[-1]
    idx = np.clip(np.searchsorted(cum, u, side="right") - 1, 0, len(gti) - 1)
    return gti[idx, 0] + (u - cum[idx])


def _source_times(rng: np.random.Generator, rate: float, gti: np.ndarray,
                  sinusoid: Sinusoid | None) -> np.ndarray:
    live = float(np.sum(gti[:, 1] - gti[:, 0]))
    peak = rate * (1.0 + abs(sinusoid.amplitude)) if sinusoid else rate
    t = _uniform_in_gti(rng, int(rng.poisson(peak * live)), gti)
    if sinusoid:
        model = 1.0 + sinusoid.amplitude * np.sin(2 * np.pi * t / sinusoid.period + sinusoid.phase)
        t = t[rng.random(t.size) * (1.0 + abs(sinusoid.amplitude)) < model]
    return t


def _flare_times(rng: np.random.Generator, flare: Flare, n: int) -> np.ndarray:
    if flare.profile == "boxcar":
        return flare.start + rng.random(n) * flare.duration
    if flare.profile == "exponential":
        tau = flare.duration / 5.0
        u = rng.random(n) * (1.0 - np.exp(-flare.duration / tau))
        return flare.start - tau * np.log1p(-u)
    raise ValueError(f"unknown flare profile {flare.profile!r}")


def _check_flare(flare: Flare | None, gti: np.ndarray) -> None:
    if flare is None:
        return
    inside = (gti[:, 0] <= flare.start) & (flare.start + flare.duration <= gti[:, 1])
    if not inside.any():
        raise ValueError(f"flare {flare} must lie inside one GTI {gti.tolist()}")


def _split_counts(rng: np.random.Generator, total: int, weights: Sequence[float]) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    return rng.multinomial(total, w / w.sum()) if w.sum() > 0 else np.zeros(len(w), int)


def _sample_pmf(rng: np.random.Generator, pmf: np.ndarray, n: int) -> np.ndarray:
    cdf = np.cumsum(pmf)
    return np.minimum(np.searchsorted(cdf / cdf[-1], rng.random(n), side="right"), pmf.size - 1)


def _truncated_normal(rng: np.random.Generator, n: int, sigma: float, half: float) -> np.ndarray:
    y = rng.normal(0.0, sigma, n)
    bad = np.abs(y) >= half
    while bad.any():
        y[bad] = rng.normal(0.0, sigma, int(bad.sum()))
        bad = np.abs(y) >= half
    return y


def _dq_flags(rng: np.random.Generator, n: int, sdqflags: int, bad_fraction: float,
              benign_fraction: float) -> np.ndarray:
    bits = np.array([1 << k for k in range(15)])
    bad_bits = bits[(bits & sdqflags) != 0]
    benign_bits = np.array([b for b in (4, 512, 1024) if not b & sdqflags] or [0])
    u = rng.random(n)
    dq = np.zeros(n, dtype=np.int16)
    bad = u < bad_fraction
    benign = ~bad & (u < bad_fraction + benign_fraction)
    dq[bad] = bad_bits[rng.integers(0, bad_bits.size, int(bad.sum()))]
    dq[benign] = benign_bits[rng.integers(0, benign_bits.size, int(benign.sum()))]
    return dq


def _quantise(t: np.ndarray, tick: float) -> np.ndarray:
    return np.floor(t / tick) * tick


def _shape(n: int) -> np.ndarray:
    """A smooth sensitivity/blaze shape over ``n`` pixels, 1 at the centre, 0.5 at the ends."""
    u = (np.arange(n) - (n - 1) / 2) / ((n - 1) / 2)
    return 1.0 - 0.5 * u**2


# ----------------------------------------------------------------------------- FITS helpers
def _header(cards: Sequence[tuple[str, Any, str]], overrides: Mapping[str, Any],
            add_missing: bool) -> fits.Header:
    hdr = fits.Header()
    for key, value, comment in cards:
        room = 80 - max(len(fits.Card(key, value).image.rstrip()), 30) - 3
        hdr[key] = (value, comment[:max(room, 0)])
    for key, value in overrides.items():
        if value is None:
            hdr.remove(key, ignore_missing=True, remove_all=True)
        elif key in hdr or add_missing:
            hdr[key] = value
    return hdr


def _table_hdu(columns: Sequence[tuple[str, str, str]], data: Mapping[str, Any],
               header: fits.Header, nrows: int, scales: Mapping[str, float] | None = None
               ) -> fits.BinTableHDU:
    """A binary table with TFORMs written like the real files ('1E', '16384D', '4A').

    ``columns`` are ``(name, numpy dtype, unit)``; ``scales`` gives TSCALn for integer
    columns that hold ticks (the data are then the raw integers).
    """
    codes = {"f4": "E", "f8": "D", "i2": "I", "i4": "J", "u1": "B", "b1": "L"}
    cols = []
    for name, fmt, unit in columns:
        dt = np.dtype(fmt)
        value = np.asarray(data[name]).astype(dt, copy=False)
        if value.ndim == 0:
            value = np.full(nrows, value, dtype=dt)
        if dt.kind == "S":
            tform = f"{dt.itemsize}A"
        else:
            repeat = int(np.prod(value.shape[1:])) if value.ndim > 1 else 1
            tform = f"{repeat}{codes[dt.str[1:]]}"
        dim = (f"({','.join(str(d) for d in reversed(value.shape[1:]))})"
               if value.ndim > 2 else None)
        cols.append(fits.Column(name=name, format=tform, unit=unit or None, dim=dim,
                                array=value))
    hdu = fits.BinTableHDU.from_columns(cols, header=header, nrows=nrows)
    for i, (name, _, _) in enumerate(columns, start=1):
        if scales and name in scales:
            hdu.header[f"TSCAL{i}"] = scales[name]
            hdu.header[f"TZERO{i}"] = 0.0
    return hdu


def _write(hdus: Sequence[fits.hdu.base.ExtensionHDU | fits.PrimaryHDU], path: Path) -> Path:
    fits.HDUList(list(hdus)).writeto(path, overwrite=True)
    return path


def _gti_hdu(gti: np.ndarray, rootname: str) -> fits.BinTableHDU:
    hdr = _header([("EXTNAME", "GTI", "extension name"), ("EXTVER", 1, ""),
                   ("INHERIT", True, "inherit the primary header"),
                   ("ROOTNAME", rootname, "rootname of the observation set"),
                   ("EXPNAME", rootname, "exposure identifier")], {}, False)
    return _table_hdu((("START", ">f8", "seconds"), ("STOP", ">f8", "seconds")),
                      {"START": gti[:, 0], "STOP": gti[:, 1]}, hdr, len(gti))


def _timeline_hdu(exptime: float, rootname: str, rng: np.random.Generator) -> fits.BinTableHDU:
    t = np.arange(0.0, max(exptime, 1.0) + 1.0, 1.0)
    data = {name: np.zeros(t.size) for name in TIMELINE_COLUMNS}
    data["TIME"] = t
    data["LONGITUDE"] = (254.6 + 0.0578 * t) % 360
    data["LATITUDE"] = 28.5 * np.sin(2 * np.pi * t / 5717.77)
    data["SUN_ALT"] = 14.3 + 60 * np.sin(2 * np.pi * t / 5717.77)
    data["SUN_ZD"] = 90.0 - data["SUN_ALT"]
    data["TARGET_ALT"] = 66.8 + 0.03 * t % 30
    data["RADIAL_VEL"] = -2.67 + 7.0 * np.sin(2 * np.pi * t / 5717.77)
    data["SHIFT1"] = np.full(t.size, -32.15)
    data["LY_ALPHA"] = rng.poisson(3.0, t.size).astype(float)
    data["DARKRATE"] = np.full(t.size, 2.0e-6)
    hdr = _header([("EXTNAME", "TIMELINE", "extension name"), ("EXTVER", 1, ""),
                   ("INHERIT", True, "inherit the primary header"),
                   ("ROOTNAME", rootname, "rootname of the observation set")], {}, False)
    units = {"TIME": "s", "LONGITUDE": "degree", "LATITUDE": "degree", "SUN_ALT": "degree",
             "SUN_ZD": "degree", "TARGET_ALT": "degree", "RADIAL_VEL": "km /s",
             "SHIFT1": "pixel", "LY_ALPHA": "count /s", "OI_1304": "count /s",
             "OI_1356": "count /s", "DARKRATE": "count /s /pixel"}
    cols = tuple((n, ">f4", units[n]) for n in TIMELINE_COLUMNS)
    return _table_hdu(cols, data, hdr, t.size)


def _date_cards(expstart: float, exptime_span: float, exptime: float, expflag: str
                ) -> list[tuple[str, Any, str]]:
    iso = Time(expstart, format="mjd", scale="utc").isot
    expend = expstart + exptime_span / 86400.0
    return [("DATE-OBS", iso[:10], "UT date of start of observation (yyyy-mm-dd)"),
            ("TIME-OBS", iso[11:19], "UT time of start of observation (hh:mm:ss)"),
            ("EXPSTART", expstart, "exposure start time (Modified Julian Date)"),
            ("EXPEND", expend, "exposure end time (Modified Julian Date)"),
            ("EXPTIME", exptime, "exposure duration (seconds)--calculated"),
            ("EXPFLAG", expflag, "Exposure interruption indicator"),
            ("EXPSTRTJ", expstart + 2400000.5, "start time (JD) of exposure"),
            ("EXPENDJ", expend + 2400000.5, "end time (JD) of exposure"),
            ("PLANTIME", float(round(exptime_span)), "Planned exposure time (seconds)")]


# ----------------------------------------------------------------------------- COS
@dataclass(frozen=True)
class _Stripe:
    """Geometry and wavelength solution of one COS segment or NUV stripe."""

    name: str
    label: str
    source: Box
    bkg1: Box
    bkg2: Box
    xrange: tuple[int, int]
    wave0: float
    disp: float
    x1d_offset: int
    nelem: int
    nominal: float

    @property
    def pmf(self) -> np.ndarray:
        shape = _shape(self.xrange[1] - self.xrange[0])
        return shape / shape.sum()


_FUV_BOXES = {
    "A": (425.1910656982463, 39, 367.0, 35, 570.0, 35, 425.7),
    "B": (485.6997976921326, 39, 426.0, 35, 629.0, 35, 486.51),
}
_FUV_DISPERSION = {"G130M": 0.009966, "G160M": 0.01223, "G140L": 0.0803}
_NUV_BOXES = {"A": (187.62, 8, 60.0, 40, 640.0, 40, 187.5),
              "B": (290.35, 8, 60.0, 40, 640.0, 40, 290.5),
              "C": (431.18, 8, 60.0, 40, 640.0, 40, 431.5)}
_NUV_DISPERSION = {"G185M": 0.037, "G225M": 0.033, "G285M": 0.040, "G230L": 0.39}


def _fuv_stripes(opt_elem: str, cenwave: float, segments: Sequence[str],
                 boxes: Mapping[str, Sequence[float]] | None) -> list[_Stripe]:
    disp = _FUV_DISPERSION.get(opt_elem, 0.01)
    span = 16384 * disp
    out = []
    for seg in segments:
        loc, hgt, b1, h1, b2, h2, nom = (boxes or {}).get(seg, _FUV_BOXES[seg])
        wave0 = max(cenwave - (0.078 if seg == "A" else 1.016) * span, 900.0)
        out.append(_Stripe(seg, f"FUV{seg}", Box(loc, hgt), Box(b1, h1), Box(b2, h2),
                           (1000, 15000), wave0, disp, 0, 16384, nom))
    return out


def _nuv_stripes(opt_elem: str, cenwave: float,
                 boxes: Mapping[str, Sequence[float]] | None) -> list[_Stripe]:
    disp = _NUV_DISPERSION.get(opt_elem, 0.037)
    span = 1024 * disp
    names = ("A", "B") if opt_elem == "G230L" else ("A", "B", "C")
    offsets = {"A": -2.75, "B": 0.0} if opt_elem == "G230L" else {"A": -1.9, "B": 0.0, "C": 1.9}
    out = []
    for name in names:
        loc, hgt, b1, h1, b2, h2, nom = (boxes or {}).get(name, _NUV_BOXES[name])
        centre = cenwave + offsets[name] * span
        out.append(_Stripe(name, f"NUV{name}", Box(loc, hgt), Box(b1, h1), Box(b2, h2),
                           (20, 1004), centre - 511.5 * disp, disp, 125, 1274, nom))
    return out


def _background_rows(stripes: Sequence[_Stripe]) -> tuple[float, float]:
    lows = [b.rows[0] for s in stripes for b in (s.bkg1, s.bkg2, s.source)]
    highs = [b.rows[1] for s in stripes for b in (s.bkg1, s.bkg2, s.source)]
    return (max(min(lows) - 20.0, 0.0), min(max(highs) + 20.0, 1023.0))


@dataclass(frozen=True)
class _Signal:
    gti: np.ndarray
    flare: Flare | None
    sinusoid: Sinusoid | None
    epsilon_scatter: float
    bad_dq_fraction: float
    benign_dq_fraction: float
    sdqflags: int


def _cos_events(rng: np.random.Generator, stripes: Sequence[_Stripe], rates: Sequence[float],
                flare_counts: Sequence[int] | np.ndarray, bkg_rate: float, bkg_rows: tuple[float, float],
                sig: _Signal, fuv: bool) -> tuple[dict[str, np.ndarray], np.ndarray, list[int]]:
    """Events of one corrtag file: sources (+flares) of ``stripes`` and one background."""
    times, xs, ys, waves, comps, n_src = [], [], [], [], [], []
    for stripe, rate, n_flare in zip(stripes, rates, flare_counts, strict=True):
        t_src = _source_times(rng, rate, sig.gti, sig.sinusoid)
        t_fl = _flare_times(rng, sig.flare, n_flare) if sig.flare else np.empty(0)
        n = t_src.size + t_fl.size
        x = stripe.xrange[0] + _sample_pmf(rng, stripe.pmf, n) + rng.random(n) - 0.5
        half = stripe.source.height // 2 - 0.5
        y = stripe.source.loc + _truncated_normal(rng, n, stripe.source.height / 8, half)
        times += [t_src, t_fl]
        xs.append(x)
        ys.append(y)
        waves.append(stripe.wave0 + stripe.disp * x)
        comps += [np.full(t_src.size, SOURCE, np.int8), np.full(t_fl.size, FLARE, np.int8)]
        n_src.append(t_src.size)
    live = float(np.sum(sig.gti[:, 1] - sig.gti[:, 0]))
    n_bkg = int(rng.poisson(bkg_rate * (bkg_rows[1] - bkg_rows[0]) * live))
    times.append(_uniform_in_gti(rng, n_bkg, sig.gti))
    lo, hi = stripes[0].xrange
    x_bkg = rng.uniform(lo - 0.5, hi - 0.5, n_bkg)
    y_bkg = rng.uniform(bkg_rows[0], bkg_rows[1], n_bkg)
    centres = np.array([s.source.loc for s in stripes])
    nearest = np.argmin(np.abs(y_bkg[:, None] - centres[None, :]), axis=1) if n_bkg else []
    wave0 = np.array([s.wave0 for s in stripes])[nearest]
    disp = np.array([s.disp for s in stripes])[nearest]
    xs.append(x_bkg)
    ys.append(y_bkg)
    waves.append(wave0 + disp * x_bkg)
    comps.append(np.full(n_bkg, BACKGROUND, np.int8))

    t = _quantise(np.concatenate(times), COS_TICK)
    order = np.argsort(t, kind="stable")
    t, x, y = t[order], np.concatenate(xs)[order], np.concatenate(ys)[order]
    wave, comp = np.concatenate(waves)[order], np.concatenate(comps)[order]
    n = t.size
    eps = (np.ones(n) if sig.epsilon_scatter <= 0 else
           np.clip(rng.normal(1.0, sig.epsilon_scatter, n), 0.5, 2.0))
    pha = (np.clip(np.rint(rng.normal(12, 3, n)), 0, 31) if fuv else np.zeros(n)).astype(np.uint8)
    xmax, ymax = (16383, 1023) if fuv else (1023, 1023)
    data = {"TIME": t, "RAWX": np.clip(np.rint(x + 32.0), 0, xmax),
            "RAWY": np.clip(np.rint(y - 4.0), 0, ymax),
            "XCORR": x, "YCORR": y, "XDOPP": x, "XFULL": x, "YFULL": y, "WAVELENGTH": wave,
            "EPSILON": eps, "DQ": _dq_flags(rng, n, sig.sdqflags, sig.bad_dq_fraction,
                                             sig.benign_dq_fraction), "PHA": pha}
    return data, comp, n_src


def _cos_primary_cards(*, rootname: str, filename: str, detector: str, segment: str,
                       opt_elem: str, cenwave: int, aperture: str, targname: str,
                       proposid: int, fppos: int, nextend: int, filetype: str = "SCI",
                       imagetyp: str = "TIME-TAG", obsmode: str = "TIME-TAG",
                       exptype: str = "EXTERNAL/SCI") -> list[tuple[str, Any, str]]:
    return [
        ("NEXTEND", nextend, "Number of standard extensions"),
        ("DATE", "2017-12-22", "date this file was written (yyyy-mm-dd)"),
        ("FILENAME", filename, "name of file"),
        ("FILETYPE", filetype, "type of data found in data file"),
        ("TELESCOP", "HST", "telescope used to acquire data"),
        ("INSTRUME", "COS", "identifier for instrument used to acquire data"),
        ("EQUINOX", 2000.0, "equinox of celestial coord. system"),
        ("ROOTNAME", rootname, "rootname of the observation set"),
        ("IMAGETYP", imagetyp, "type of exposure identifier"),
        ("PRIMESI", "COS", "instrument designated as prime"),
        ("TARGNAME", targname, "proposer's target name"),
        ("RA_TARG", 175.5512325935, "right ascension of the target (deg) (J2000)"),
        ("DEC_TARG", 26.70250783734, "declination of the target (deg) (J2000)"),
        ("PROPOSID", proposid, "PEP proposal identifier"),
        ("LINENUM", "10.003", "proposal logsheet line number"),
        ("PR_INV_L", "Synthetic", "last name of principal investigator"),
        ("PR_INV_F", "Test", "first name of principal investigator"),
        ("PR_INV_M", "", "middle name / initial of principal investigator"),
        ("OPUS_VER", "HSTDP 2017_3a", "data processing software system version"),
        ("CSYS_VER", "hstdp-2017.3", "Calibration software system version id"),
        ("CAL_VER", "3.2.1 (2017-04-28)", "CALCOS code version"),
        ("OBSTYPE", "SPECTROSCOPIC", "observation type - imaging or spectroscopic"),
        ("OBSMODE", obsmode, "operating mode"),
        ("EXPTYPE", exptype, "type of exposure"),
        ("DETECTOR", detector, "FUV or NUV"),
        ("SEGMENT", segment, "FUV detector segment name (FUVA, FUVB, or BOTH)"),
        ("SUBARRAY", False, "data from a subarray (T) or full frame (F)"),
        ("LIFE_ADJ", 4 if detector == "FUV" else -1, "Life Time Adjustment Position"),
        ("FPPOS", fppos, "grating offset index (1-4) for FP split"),
        ("FPOFFSET", fppos - 3, "FP offset from nominal, in motor steps"),
        ("CENWAVE", cenwave, "central wavelength of spectrum"),
        ("APERTURE", aperture, "aperture name"),
        ("PROPAPER", aperture, "proposed aperture name"),
        ("OPT_ELEM", opt_elem, "optical element in use"),
        ("SHUTTER", "Open", "External Shutter Position (OPEN, CLOSED)"),
        ("EXTENDED", "NO", "Is target specified as extended object?"),
        ("TAGFLASH", "NONE", "Type of flashed exposures in time-tag"),
        ("FLATCORR", "COMPLETE", "apply flat-field correction"),
        ("DEADCORR", "COMPLETE", "correct for deadtime"),
        ("DQICORR", "COMPLETE", "data quality initialization"),
        ("DOPPCORR", "COMPLETE", "orbital Doppler correction"),
        ("X1DCORR", "PERFORM", "1-D spectral extraction"),
        ("BACKCORR", "PERFORM", "subtract background (when doing 1-D extraction)"),
        ("FLUXCORR", "PERFORM", "convert count-rate to absolute flux units"),
        ("TDSCORR", "PERFORM", "switch for time-dependent sensitivity correction"),
        ("FLATFILE", "lref$19m1548dl_flat.fits", "Pixel to Pixel Flat Field Reference File"),
        ("DEADTAB", "lref$s7g1700gl_dead.fits", "Deadtime Reference Table"),
        ("BPIXTAB", "lref$yae1249sl_bpix.fits", "bad pixel table"),
        ("XTRACTAB", "lref$19m15489l_1dx.fits", "1-D Spectral Extraction Information Table"),
        ("DISPTAB", "lref$18118285l_disp.fits", "Dispersion Coefficient Reference Table"),
        ("FLUXTAB", "lref$synth_phot.fits", "Spectroscopic flux calibration table"),
        ("TDSTAB", "lref$synth_tds.fits", "time-dependent sensitivity correction table"),
        ("CENTRWV", float(cenwave), "central wavelength of the data"),
        ("TARDESCR", "STAR;SYNTHETIC", ""),
        ("TARDESC2", "", ""),
        ("ASN_ID", f"{rootname[:6].upper()}010", "unique identifier assigned to association"),
        ("ASN_TAB", f"{rootname[:6]}010_asn.fits", "name of the association table"),
    ]


def _cos_box_cards(stripes: Sequence[_Stripe]) -> list[tuple[str, Any, str]]:
    cards: list[tuple[str, Any, str]] = [("DISPAXIS", 1, "dispersion axis; 1 = axis 1")]
    for s in stripes:
        cards += [(f"SHIFT1{s.name}", 0.0, f"wavecal shift determined for {s.name} (pixels)"),
                  (f"SHIFT2{s.name}", 0.0, f"Offset in cross-dispersion direction, {s.name}")]
    for s in stripes:
        x = s.name
        cards += [(f"SP_LOC_{x}", s.source.loc, f"location of spectral extraction region {x}"),
                  (f"SP_OFF_{x}", round(s.source.loc - s.nominal, 4), "XD spectrum offset"),
                  (f"SP_NOM_{x}", s.nominal, "Expected location of spectrum in XD"),
                  (f"SP_SLP_{x}", 0.0, f"slope of {x} spectrum"),
                  (f"SP_HGT_{x}", s.source.height, f"height (pixels) of {x} extraction region"),
                  (f"B_HGT1_{x}", s.bkg1.height, f"height of spectral background 1 {x}"),
                  (f"B_HGT2_{x}", s.bkg2.height, f"height of spectral background 2 {x}"),
                  (f"B_BKG1_{x}", s.bkg1.loc, f"location of spectral background 1 {x}"),
                  (f"B_BKG2_{x}", s.bkg2.loc, f"location of spectral background 2 {x}")]
    return cards


def _cos_ext1_cards(*, rootname: str, stripes: Sequence[_Stripe], date_cards: list,
                    sdqflags: int, nevents: int, detector: str) -> list[tuple[str, Any, str]]:
    head: list[tuple[str, Any, str]] = [
        ("INHERIT", True, "inherit the primary header"),
        ("EXTNAME", "EVENTS", "extension name"), ("EXTVER", 1, "extension version number"),
        ("ROOTNAME", rootname, "rootname of the observation set"),
        ("EXPNAME", rootname, "exposure identifier"),
        ("ASN_MTYP", "EXP-FP", "Role of the Member in the Association"),
        ("RA_APER", 175.5512325935, "RA of reference aperture center"),
        ("DEC_APER", 26.70250783734, "Declination of reference aperture center"),
        ("PA_APER", 154.63, "Position Angle of reference aperture center (de"),
    ]
    tail: list[tuple[str, Any, str]] = [
        ("X_OFFSET", 0, "offset of detector in a calibrated image"),
        ("ORIENTAT", 154.63, "position angle of image y axis (deg. e of n)"),
        ("SUN_ALT", 14.34696, "altitude of the sun above Earth's limb"),
        *date_cards,
        ("NINTERPT", 0, "Number of Exposure Interrupts"),
        ("BUFFTIME", 1000.0, "Onboard memory half-buffer-fill time"),
        ("NUMFLASH", 0, "Integer number of flashes"),
        ("V_HELIO", -26.957, "Geocentric to heliocentric velocity"),
        ("ORBITPER", 5717.771688, "Orbital Period used on board for Doppler corr."),
        ("DOPPON", False, "Doppler correction flag"),
        ("SDQFLAGS", sdqflags, "serious data quality flags"),
        ("SDQOUTER", 2, "SDQFlags for the outer extraction zone"),
        ("NEVENTS", nevents, "Number of events in raw data file"),
        ("TALEN2", 16384 if detector == "FUV" else 1024, "length of axis 1"),
        ("TALEN3", 1024, "length of axis 2"),
        ("XS-SORT", "TIME", ""),
    ]
    return head + _cos_box_cards(stripes) + tail


def _split_overrides(overrides: Mapping[str, Any], ext_keys: set[str]
                     ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Overrides for (primary, ext 1): a key goes where it lives; None deletes it everywhere."""
    primary: dict[str, Any] = {}
    ext: dict[str, Any] = {}
    for key, value in overrides.items():
        key = key.upper()
        if value is None:
            primary[key] = ext[key] = None
        elif key in ext_keys:
            ext[key] = value
        else:
            primary[key] = value
    return primary, ext


def _x1d_cos_hdu(stripes: Sequence[_Stripe], truths: Sequence[SegmentTruth], exptime: float,
                 bkg_rate: float, ext_header: fits.Header) -> fits.BinTableHDU:
    nel = stripes[0].nelem
    data: dict[str, Any] = {"SEGMENT": [s.label for s in stripes],
                            "EXPTIME": np.full(len(stripes), exptime),
                            "NELEM": np.full(len(stripes), nel)}
    arrays: dict[str, list[np.ndarray]] = {}
    for s, truth in zip(stripes, truths, strict=True):
        pix = np.arange(nel) - s.x1d_offset
        active = (pix >= s.xrange[0]) & (pix < s.xrange[1])
        net = np.zeros(nel)
        net[active] = truth.source_rate * s.pmf
        sens = truth.sensitivity
        flux = np.divide(net, sens, out=np.zeros(nel), where=sens > 0)
        bkg = np.where(active, bkg_rate * s.source.height / (s.xrange[1] - s.xrange[0]), 0.0)
        gross = net + bkg
        err = np.divide(np.sqrt(gross * exptime) / exptime, sens, out=np.zeros(nel),
                        where=sens > 0)
        lo, hi = s.source.rows
        cols = {"WAVELENGTH": s.wave0 + s.disp * pix, "FLUX": flux, "ERROR": err,
                "GROSS": gross, "GCOUNTS": gross * exptime, "NET": net, "BACKGROUND": bkg,
                "DQ": np.where(active, 0, 128), "DQ_WGT": active * 1.0,
                "DQ_OUTER": np.zeros(nel), "BACKGROUND_PER_PIXEL": bkg / s.source.height,
                "NUM_EXTRACT_ROWS": np.full(nel, int(s.source.height)),
                "ACTUAL_EE": np.full(nel, 0.99), "Y_LOWER_OUTER": np.full(nel, lo - 5),
                "Y_UPPER_OUTER": np.full(nel, hi + 5), "Y_LOWER_INNER": np.full(nel, lo),
                "Y_UPPER_INNER": np.full(nel, hi)}
        for key, value in cols.items():
            arrays.setdefault(key, []).append(value)
    data.update({key: np.array(value) for key, value in arrays.items()})
    fmt = {"WAVELENGTH": ">f8", "DQ": ">i2", "DQ_OUTER": ">i2", "NUM_EXTRACT_ROWS": ">i2",
           "ACTUAL_EE": ">f8", "Y_LOWER_OUTER": ">f8", "Y_UPPER_OUTER": ">f8",
           "Y_LOWER_INNER": ">f8", "Y_UPPER_INNER": ">f8"}
    units = {"WAVELENGTH": "angstrom", "FLUX": "erg /s /cm**2 /angstrom",
             "ERROR": "erg /s /cm**2 /angstrom", "GROSS": "count /s", "GCOUNTS": "count",
             "NET": "count /s", "BACKGROUND": "count /s",
             "BACKGROUND_PER_PIXEL": "count /s /pixel"}
    columns = [("SEGMENT", "S4", ""), ("EXPTIME", ">f8", "s"), ("NELEM", ">i4", "")]
    columns += [(k, fmt.get(k, ">f4"), units.get(k, "")) for k in arrays]
    hdr = ext_header.copy()
    hdr["EXTNAME"] = "SCI"
    return _table_hdu(columns, data, hdr, len(stripes))


def _exposure(
    directory: str | os.PathLike[str], seed: int, flare: Flare | Mapping | None,
    sinusoid: Sinusoid | Mapping | None, gti: Any, exptime: float,
) -> tuple[Path, np.random.Generator, Flare | None, Sinusoid | None, np.ndarray, float]:
    """What every builder starts from: its folder, generator, signals, GTIs and live time."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    flare, sinusoid = _coerce(flare, Flare), _coerce(sinusoid, Sinusoid)
    gti_arr = _as_gti(gti, exptime)
    _check_flare(flare, gti_arr)
    live = float(np.sum(gti_arr[:, 1] - gti_arr[:, 0]))
    return folder, np.random.default_rng(seed), flare, sinusoid, gti_arr, live


_S = TypeVar("_S")


def _coerce(value: _S | Mapping | None, cls: type[_S]) -> _S | None:
    return cls(**value) if isinstance(value, Mapping) else value


def _rates(source_rate: float | Mapping[str, float], names: Sequence[str]) -> list[float]:
    if isinstance(source_rate, Mapping):
        return [float(source_rate.get(n, 0.0)) for n in names]
    return [float(source_rate)] * len(names)


Transform = Callable[[dict[str, np.ndarray], np.ndarray], tuple[dict[str, np.ndarray], np.ndarray]]


def _build_cos(directory: str | os.PathLike[str], rootname: str, *, detector: str,
               files: dict[str, list[_Stripe]], header_stripes: list[_Stripe], seed: int,
               exptime: float, source_rate: float | Mapping[str, float],
               background_rate: float, flare: Flare | Mapping | None,
               sinusoid: Sinusoid | Mapping | None, gti: Any, with_x1d: bool,
               flat_flux: float, primary_kw: dict[str, Any], expstart: float, expflag: str,
               n_events: int | None, epsilon_scatter: float, bad_dq_fraction: float,
               benign_dq_fraction: float, header_overrides: Mapping[str, Any],
               transform: Transform | None = None) -> dict[str, Any]:
    directory, rng, flare, sinusoid, gti_arr, live = _exposure(directory, seed, flare, sinusoid,
                                                                gti, exptime)
    stripes = [s for group in files.values() for s in group]
    rates = _rates(source_rate, [s.name for s in stripes])
    bkg_rows = _background_rows(header_stripes)
    n_flare_total = flare.counts if flare else 0
    if n_events is not None:
        expected = (sum(rates) * live
                    + len(files) * background_rate * (bkg_rows[1] - bkg_rows[0]) * live)
        scale = max(n_events - n_flare_total, 0) / expected if expected > 0 else 0.0
        rates, background_rate = [r * scale for r in rates], background_rate * scale
    flare_split = _split_counts(rng, n_flare_total, rates if sum(rates) > 0 else [1] * len(rates))
    sdqflags = COS_FUV_SDQFLAGS if detector == "FUV" else COS_NUV_SDQFLAGS
    sig = _Signal(gti_arr, flare, sinusoid, epsilon_scatter, bad_dq_fraction,
                  benign_dq_fraction, sdqflags)

    generated: dict[str, tuple[dict[str, np.ndarray], np.ndarray, list[int]]] = {}
    k = 0
    for key, group in files.items():
        n = len(group)
        data, comp, n_src = _cos_events(rng, group, rates[k:k + n], flare_split[k:k + n],
                                        background_rate, bkg_rows, sig, detector == "FUV")
        if transform is not None:
            data, comp = transform(data, comp)
        generated[key] = (data, comp, n_src)
        k += n
    nevents = sum(len(g[1]) for g in generated.values())

    truths: dict[str, SegmentTruth] = {}
    k = 0
    for key, group in files.items():
        comp, n_src = generated[key][1], generated[key][2]
        for j, s in enumerate(group):
            rate = rates[k]
            pix = np.arange(s.nelem) - s.x1d_offset
            active = (pix >= s.xrange[0]) & (pix < s.xrange[1])
            sens = np.zeros(s.nelem)
            sens[active] = (rate if rate > 0 else 1.0) * s.pmf / flat_flux
            truths[s.name] = SegmentTruth(
                s.name, rate, background_rate, s.source, s.bkg1, s.bkg2, s.xrange, s.wave0,
                s.disp, s.x1d_offset, s.pmf, sens, n_src[j], int(flare_split[k]),
                int(np.count_nonzero(comp == BACKGROUND)))
            k += 1

    span = float(max(exptime, gti_arr[-1, 1]))
    date_cards = _date_cards(expstart, span, live, expflag)
    if detector == "FUV":
        date_cards += [("EXPTIMEA", live, "Exposure time for segment A (seconds)"),
                       ("EXPTIMEB", live, "Exposure time for segment B (seconds)")]
    ext_cards = _cos_ext1_cards(rootname=rootname, stripes=header_stripes, date_cards=date_cards,
                                sdqflags=sdqflags, nevents=nevents, detector=detector)
    if detector == "FUV":
        for key, letter in (("corrtag_a", "A"), ("corrtag_b", "B")):
            n_seg = len(generated[key][1]) if key in generated else 0
            ext_cards.append((f"NEVENTS{letter}", n_seg, f"Number of events (segment {letter})"))
    p_over, e_over = _split_overrides(header_overrides, {c[0] for c in ext_cards})

    paths: dict[str, Any] = {}
    for key, group in files.items():
        data, comp, _ = generated[key]
        filename = f"{rootname}_{key}.fits"
        seg_label = group[0].label if detector == "FUV" else "N/A"
        primary = fits.PrimaryHDU(header=_header(
            _cos_primary_cards(rootname=rootname, filename=filename, detector=detector,
                               segment=seg_label, nextend=3, **primary_kw), p_over, True))
        events = _table_hdu(COS_CORRTAG_COLUMNS, data, _header(ext_cards, e_over, False),
                            len(comp))
        paths[key] = _write([primary, events, _gti_hdu(gti_arr, rootname),
                             _timeline_hdu(span, rootname, rng)], directory / filename)
    if with_x1d:
        filename = f"{rootname}_x1d.fits"
        primary = fits.PrimaryHDU(header=_header(
            _cos_primary_cards(rootname=rootname, filename=filename, detector=detector,
                               segment="BOTH" if detector == "FUV" else "N/A", nextend=1,
                               **primary_kw), p_over, True))
        x1d_stripes = [s for s in stripes]
        hdr = _header([c for c in ext_cards if not c[0].startswith("NEVENTS")], e_over, False)
        sci = _x1d_cos_hdu(x1d_stripes, [truths[s.name] for s in x1d_stripes], live,
                           background_rate, hdr)
        paths["x1d"] = _write([primary, sci], directory / filename)
    else:
        paths["x1d"] = None
    paths["truth"] = CosTruth(seed, exptime, expstart, gti_arr, live, flat_flux, sdqflags,
                              flare, sinusoid, bkg_rows, truths,
                              {key: g[1] for key, g in generated.items()})
    return paths


def build_cos_fuv_pair(directory: str | os.PathLike[str], rootname: str = "lb1c01abq", *,
                       seed: int = 0, exptime: float = 1000.0,
                       source_rate: float | Mapping[str, float] = 20.0,
                       background_rate: float = 0.05, flare: Flare | Mapping | None = None,
                       sinusoid: Sinusoid | Mapping | None = None,
                       segments: Sequence[str] = ("A", "B"), gti: Any = None,
                       with_x1d: bool = True, flat_flux: float = 1e-14,
                       targname: str = "TEST-STAR", proposid: int = 12345,
                       cenwave: int = 1291, opt_elem: str = "G130M", aperture: str = "PSA",
                       fppos: int = 3, expstart: float = DEFAULT_EXPSTART,
                       expflag: str = "NORMAL", n_events: int | None = None,
                       epsilon_scatter: float = 0.0, bad_dq_fraction: float = 0.01,
                       benign_dq_fraction: float = 0.03,
                       boxes: Mapping[str, Sequence[float]] | None = None,
                       _transform: Transform | None = None,
                       **header_overrides: Any) -> dict[str, Any]:
    """Write a COS FUV ``<root>_corrtag_a.fits`` / ``_b.fits`` pair and its ``_x1d.fits``.

    Parameters
    ----------
    directory : path-like
        Output folder (created if needed).
    rootname : str
        Dataset rootname.
    seed : int
        Seed of the ``numpy.random.Generator``; equal seeds give identical files.
    exptime : float
        Span of the exposure in seconds (events lie in ``[0, exptime)``); the EXPTIME
        keyword is the live time, the sum of the GTIs.
    source_rate : float or mapping
        Quiescent source counts/s in each segment's source box (``{'A': .., 'B': ..}``).
    background_rate : float
        Background counts/s per pixel row, uniform over ``truth.background_rows``.
    flare, sinusoid : Flare, Sinusoid or dict, optional
        Injected variability (see :class:`Flare`, :class:`Sinusoid`).
    segments : sequence of {'A', 'B'}
        Which corrtag files to write (the other path is None).
    gti : array-like of [start, stop], optional
        Good time intervals (default ``[[0, exptime]]``); no events fall outside.
    with_x1d : bool
        Also write the x1d (FLUX = ``flat_flux`` where the source falls).
    n_events : int, optional
        Scale source and background rates so the expected total is ``n_events``.
    epsilon_scatter, bad_dq_fraction, benign_dq_fraction : float
        EPSILON ~ N(1, scatter) (1.0 exactly when 0); fractions of events with a DQ bit
        inside / outside SDQFLAGS.
    boxes : mapping, optional
        Per segment ``(SP_LOC, SP_HGT, B_BKG1, B_HGT1, B_BKG2, B_HGT2, SP_NOM)``.
    **header_overrides
        Keyword values to set (in the header that has the keyword, else the primary);
        ``None`` deletes the keyword. Use ``**{'DATE-OBS': ...}`` for dashed names.

    Returns
    -------
    dict
        ``{'corrtag_a': Path|None, 'corrtag_b': Path|None, 'x1d': Path|None,
        'truth': CosTruth}``.
    """
    all_stripes = _fuv_stripes(opt_elem, cenwave, ("A", "B"), boxes)
    wanted = [s for s in all_stripes if s.name in {seg.upper() for seg in segments}]
    files = {f"corrtag_{s.name.lower()}": [s] for s in wanted}
    out = _build_cos(directory, rootname, detector="FUV", files=files,
                     header_stripes=all_stripes, seed=seed, exptime=exptime,
                     source_rate=source_rate, background_rate=background_rate, flare=flare,
                     sinusoid=sinusoid, gti=gti, with_x1d=with_x1d, flat_flux=flat_flux,
                     primary_kw=dict(opt_elem=opt_elem, cenwave=cenwave, aperture=aperture,
                                     targname=targname, proposid=proposid, fppos=fppos),
                     expstart=expstart, expflag=expflag, n_events=n_events,
                     epsilon_scatter=epsilon_scatter, bad_dq_fraction=bad_dq_fraction,
                     benign_dq_fraction=benign_dq_fraction, header_overrides=header_overrides,
                     transform=_transform)
    out.setdefault("corrtag_a", None)
    out.setdefault("corrtag_b", None)
    return out


def build_cos_nuv(directory: str | os.PathLike[str], rootname: str = "lb1c02nuq", *,
                  seed: int = 0, exptime: float = 1000.0,
                  source_rate: float | Mapping[str, float] = 10.0,
                  background_rate: float = 0.01, flare: Flare | Mapping | None = None,
                  sinusoid: Sinusoid | Mapping | None = None, gti: Any = None,
                  with_x1d: bool = True, flat_flux: float = 1e-14,
                  targname: str = "TEST-STAR", proposid: int = 12345, cenwave: int = 1882,
                  opt_elem: str = "G185M", aperture: str = "PSA", fppos: int = 3,
                  expstart: float = DEFAULT_EXPSTART, expflag: str = "NORMAL",
                  n_events: int | None = None, epsilon_scatter: float = 0.0,
                  bad_dq_fraction: float = 0.01, benign_dq_fraction: float = 0.03,
                  boxes: Mapping[str, Sequence[float]] | None = None,
                  _transform: Transform | None = None,
                  **header_overrides: Any) -> dict[str, Any]:
    """Write a COS NUV ``<root>_corrtag.fits`` (stripes A, B, C; G230L: A, B) and x1d.

    Parameters are those of :func:`build_cos_fuv_pair` (``source_rate`` per stripe;
    the background is one uniform field shared by the stripes; an event's WAVELENGTH is
    that of the stripe whose SP_LOC is nearest). Returns ``{'corrtag', 'x1d', 'truth'}``;
    ``truth.segments`` is keyed 'A', 'B', 'C' and each ``n_background`` is the file's total.
    """
    stripes = _nuv_stripes(opt_elem, cenwave, boxes)
    return _build_cos(directory, rootname, detector="NUV", files={"corrtag": stripes},
                      header_stripes=stripes, seed=seed, exptime=exptime,
                      source_rate=source_rate, background_rate=background_rate, flare=flare,
                      sinusoid=sinusoid, gti=gti, with_x1d=with_x1d, flat_flux=flat_flux,
                      primary_kw=dict(opt_elem=opt_elem, cenwave=cenwave, aperture=aperture,
                                      targname=targname, proposid=proposid, fppos=fppos),
                      expstart=expstart, expflag=expflag, n_events=n_events,
                      epsilon_scatter=epsilon_scatter, bad_dq_fraction=bad_dq_fraction,
                      benign_dq_fraction=benign_dq_fraction,
                      header_overrides=header_overrides, transform=_transform)


# ----------------------------------------------------------------------------- STIS
_STIS_MODES: dict[tuple[str, str], dict[str, Any]] = {
    ("first_order", "FUV-MAMA"): dict(opt_elem="G140L", cenwave=1425, aperture="52X0.2",
                                      dispersion=0.5837),
    ("first_order", "NUV-MAMA"): dict(opt_elem="G230L", cenwave=2376, aperture="52X0.2",
                                      dispersion=1.548),
    ("echelle", "FUV-MAMA"): dict(opt_elem="E140M", cenwave=1425, aperture="0.2X0.2",
                                  resolution=45800.0, middle_order=116),
    ("echelle", "NUV-MAMA"): dict(opt_elem="E230M", cenwave=1978, aperture="0.2X0.2",
                                  resolution=30000.0, middle_order=83),
    ("imaging", "FUV-MAMA"): dict(opt_elem="25MAMA", cenwave=None, aperture="25MAMA"),
    ("imaging", "NUV-MAMA"): dict(opt_elem="25MAMA", cenwave=None, aperture="25MAMA"),
}


def _stis_orders(mode: str, spec: Mapping[str, Any], n_orders: int, order_spacing: float
                 ) -> list[tuple[int, float, float, float, float, float, float, np.ndarray]]:
    """(sporder, a2center, extrsize, bk1size, bk2size, bk1offst, bk2offst, wavelength)."""
    pix = np.arange(1024) - 511.5
    if mode == "first_order":
        wave = spec["cenwave"] + spec["dispersion"] * pix
        return [(1, 400.3, 11.0, 5.0, 5.0, -300.0, 300.0, wave)]
    if mode != "echelle":
        return []
    if not 1 <= n_orders <= int((1024 - 140) // order_spacing) + 1:
        raise ValueError(f"n_orders={n_orders} does not fit with spacing {order_spacing}")
    out = []
    for k in range(n_orders):
        m = spec["middle_order"] + n_orders // 2 - k
        centre = spec["cenwave"] * spec["middle_order"] / m
        wave = centre + centre / (2 * spec["resolution"]) * pix
        out.append((m, 70.3 + order_spacing * k, 7.0, 5.0, 5.0, -15.0, 15.0, wave))
    return out


def _stis_primary_cards(*, rootname: str, filename: str, detector: str, mode: str,
                        opt_elem: str, cenwave: int | None, aperture: str, targname: str,
                        proposid: int, expstart: float, expend: float, exptime: float,
                        nextend: int, pfltfile: str, lfltfile: str, bpixtab: str
                        ) -> list[tuple[str, Any, str]]:
    iso = Time(expstart, format="mjd", scale="utc").isot
    cards: list[tuple[str, Any, str]] = [
        ("NEXTEND", nextend, "Number of standard extensions"),
        ("DATE", "2012-06-01", "date this file was written (yyyy-mm-dd)"),
        ("FILENAME", filename, "name of file"), ("FILETYPE", "SCI", "type of data found"),
        ("TELESCOP", "HST", "telescope used to acquire data"),
        ("INSTRUME", "STIS", "identifier for instrument used to acquire data"),
        ("EQUINOX", 2000.0, "equinox of celestial coord. system"),
        ("ROOTNAME", rootname, "rootname of the observation set"),
        ("PRIMESI", "STIS", "instrument designated as prime"),
        ("TARGNAME", targname, "proposer's target name"),
        ("RA_TARG", 287.7270958333, "right ascension of the target (deg) (J2000)"),
        ("DEC_TARG", -59.99621944444, "declination of the target (deg) (J2000)"),
        ("PROPOSID", proposid, "PEP proposal identifier"),
        ("LINENUM", "1.001", "proposal logsheet line number"),
        ("PR_INV_L", "Synthetic", "last name of principal investigator"),
        ("PR_INV_F", "Test", "first name of principal investigator"),
        ("TDATEOBS", iso[:10], "UT date of start of first exposure in file"),
        ("TTIMEOBS", iso[11:19], "UT start time of first exposure in file"),
        ("TEXPSTRT", expstart, "start time (MJD) of 1st exposure in file"),
        ("TEXPEND", expend, "end time (MJD) of last exposure in the file"),
        ("TEXPTIME", exptime, "total exposure time (seconds)"),
        ("OPUS_VER", "HSTDP 2012_2", "OPUS software system version number"),
        ("CAL_VER", "2.38 (01-Mar-2012)", "CALSTIS code version"),
        ("CFSTATUS", "SUPPORTED", "configuration status"),
        ("OBSTYPE", "IMAGING" if mode == "imaging" else "SPECTROSCOPIC",
         "observation type - imaging or spectroscopic"),
        ("OBSMODE", "TIME-TAG", "operating mode"),
        ("SCLAMP", "NONE", "lamp status, NONE or name of lamp which is on"),
        ("LAMPSET", "0.0", "spectral cal lamp current value (milliamps)"),
        ("NRPTEXP", 1, "number of repeat exposures in set: default 1"),
        ("SUBARRAY", False, "data from a subarray (T) or full frame (F)"),
        ("DETECTOR", detector, "detector in use: NUV-MAMA, FUV-MAMA, or CCD"),
        ("OPT_ELEM", opt_elem, "optical element in use"),
        ("APERTURE", aperture, "aperture name"), ("PROPAPER", aperture, "proposed aperture"),
        ("FILTER", "Clear", "filter in use"),
    ]
    if cenwave is not None:
        cards.append(("CENWAVE", cenwave, "central wavelength of spectrum"))
    cards += [
        ("DQICORR", "PERFORM", "data quality initialization"),
        ("FLATCORR", "PERFORM", "flat field data"),
        ("DOPPCORR", "PERFORM", "orbital Doppler correction"),
        ("X1DCORR", "PERFORM", "Perform 1-D spectral extraction"),
        ("BPIXTAB", bpixtab, "bad pixel table"),
        ("DARKFILE", "oref$synth_drk.fits", "dark image file name"),
        ("PFLTFILE", pfltfile, "pixel to pixel flat field file name"),
        ("DFLTFILE", "N/A", "delta flat field file name"),
        ("LFLTFILE", lfltfile, "low order flat"),
        ("PHOTTAB", "oref$synth_pht.fits", "Photometric throughput table"),
        ("APERTAB", "oref$synth_apt.fits", "relative aperture throughput table"),
        ("DISPTAB", "oref$synth_dsp.fits", "dispersion coefficient table"),
        ("SPTRCTAB", "oref$synth_1dt.fits", "spectrum trace table"),
        ("XTRACTAB", "oref$synth_1dx.fits", "parameters for 1-D spectral extraction"),
        ("TDSTAB", "oref$synth_tds.fits", "time-dependent sensitivity algorithm used"),
        ("CENTRWV", float(cenwave or 1480), "central wavelength of the data"),
        ("TARDESCR", "STAR;SYNTHETIC", ""),
        ("ASN_ID", "NONE", "unique identifier assigned to association"),
    ]
    return cards


def _stis_ext1_cards(rootname: str, date_cards: list, nevents: int, extname: str,
                     shifta2: float | None) -> list[tuple[str, Any, str]]:
    cards: list[tuple[str, Any, str]] = [
        ("INHERIT", True, "inherit the primary header"),
        ("EXTNAME", extname, "extension name"), ("EXTVER", 1, "extension version number"),
        ("ROOTNAME", rootname, "rootname of the observation set"),
        ("EXPNAME", rootname, "exposure identifier"),
        ("RA_APER", 287.7270958333, "RA of aperture reference position"),
        ("DEC_APER", -59.99621944444, "Declination of aperture reference position"),
        ("PA_APER", -162.05, "Position Angle of reference aperture center"),
        ("DISPAXIS", 1, "dispersion axis; 1 = axis 1, 2 = axis 2, none"),
        ("ORIENTAT", -161.972, "position angle of image y axis (deg. e of n)"),
        ("SUN_ALT", 36.545, "altitude of the sun above Earth's limb"),
        *date_cards,
        ("DOPPON", True, "Doppler correction flag"),
        ("DOPPZERO", 55000.0, "Commanded time of zero Doppler shift (MJD)"),
        ("DOPPMAG", 3.0, "Doppler shift magnitude (low-res pixels)"),
        ("ORBITPER", 5700.0, "Orbital Period used on board for Doppler corr."),
        ("SDQFLAGS", STIS_SDQFLAGS, "serious data quality flags"),
        ("NEVENTS", nevents, "number of events"),
    ]
    if shifta2 is not None:
        cards += [("SHIFTA1", 0.0, "Spectrum shift in AXIS1 calculated from WAVECAL"),
                  ("SHIFTA2", shifta2, "Spectrum shift in AXIS2 calculated from WAVECAL")]
    return cards


def _stis_x1d_hdu(orders: Sequence[OrderTruth], shifta2: float, bkg_rate: float,
                  exptime: float, header: fits.Header) -> fits.BinTableHDU:
    rows: dict[str, list[Any]] = {}
    for o in orders:
        net = o.source_rate * o.source_pmf
        flux = np.divide(net, o.sensitivity, out=np.zeros(1024), where=o.sensitivity > 0)
        bkg = np.full(1024, bkg_rate * o.extrsize / 1024)
        net_err = np.sqrt((net + bkg) * exptime) / exptime
        values = {"SPORDER": o.sporder, "NELEM": 1024, "WAVELENGTH": o.wavelength,
                  "GROSS": net + bkg, "BACKGROUND": bkg, "NET": net, "FLUX": flux,
                  "ERROR": np.divide(net_err, o.sensitivity, out=np.zeros(1024),
                                     where=o.sensitivity > 0),
                  "NET_ERROR": net_err, "DQ": np.zeros(1024), "A2CENTER": o.a2center,
                  "EXTRSIZE": o.extrsize, "MAXSRCH": 0, "BK1SIZE": o.bk1size,
                  "BK2SIZE": o.bk2size, "BK1OFFST": o.bk1offst, "BK2OFFST": o.bk2offst,
                  "EXTRLOCY": np.full(1024, o.a2center + shifta2), "OFFSET": 0.0}
        for key, value in values.items():
            rows.setdefault(key, []).append(value)
    columns = [("SPORDER", ">i2", ""), ("NELEM", ">i2", ""), ("WAVELENGTH", ">f8", "Angstroms"),
               ("GROSS", ">f4", "Counts/s"), ("BACKGROUND", ">f4", "Counts/s"),
               ("NET", ">f4", "Counts/s"), ("FLUX", ">f4", "erg/s/cm**2/Angstrom"),
               ("ERROR", ">f4", "erg/s/cm**2/Angstrom"), ("NET_ERROR", ">f4", "Counts/s"),
               ("DQ", ">i2", ""), ("A2CENTER", ">f4", "pixel"), ("EXTRSIZE", ">f4", "pixel"),
               ("MAXSRCH", ">i2", "pixel"), ("BK1SIZE", ">f4", "pixel"),
               ("BK2SIZE", ">f4", "pixel"), ("BK1OFFST", ">f4", "pixel"),
               ("BK2OFFST", ">f4", "pixel"), ("EXTRLOCY", ">f4", "pixel"),
               ("OFFSET", ">f4", "pixel")]
    data = {key: np.array(value) for key, value in rows.items()}
    return _table_hdu(columns, data, header, len(orders))


def build_stis_tag(directory: str | os.PathLike[str], rootname: str = "oc5r01abq", *,
                   mode: str = "first_order", detector: str = "FUV-MAMA", seed: int = 0,
                   exptime: float = 1000.0, source_rate: float | Mapping[int, float] = 20.0,
                   background_rate: float = 0.005, flare: Flare | Mapping | None = None,
                   sinusoid: Sinusoid | Mapping | None = None, gti: Any = None,
                   with_x1d: bool = True, flat_flux: float = 1e-14, n_orders: int = 8,
                   order_spacing: float = 40.0, shifta2: float = 0.0,
                   opt_elem: str | None = None, cenwave: int | None = None,
                   aperture: str | None = None, targname: str = "TEST-STAR",
                   proposid: int = 12345, expstart: float = 56000.25, expflag: str = "NORMAL",
                   n_events: int | None = None, pfltfile: str = "oref$synth_pfl.fits",
                   lfltfile: str = "oref$synth_lfl.fits", bpixtab: str = "oref$synth_bpx.fits",
                   _transform: Transform | None = None,
                   **header_overrides: Any) -> dict[str, Any]:
    """Write a STIS MAMA ``<root>_tag.fits`` (EVENTS, GTI) and its ``_x1d.fits``.

    Parameters
    ----------
    mode : {'first_order', 'echelle', 'imaging'}
        First order: one x1d row (SPORDER 1); echelle: ``n_orders`` rows with A2CENTER
        ``order_spacing`` low-res rows apart; imaging: OBSTYPE IMAGING, a point source,
        no x1d.
    detector : {'FUV-MAMA', 'NUV-MAMA'}
    source_rate : float or mapping
        Counts/s of the quiescent source in each order's box (mapping: SPORDER -> rate);
        in imaging mode the point source's rate.
    background_rate : float
        Counts/s per LOW-RES row, uniform over the whole detector.
    shifta2 : float
        SHIFTA2 written in the x1d SCI header; the source rows are centred on
        ``A2CENTER + SHIFTA2`` (low-res).
    pfltfile, lfltfile, bpixtab : str
        Reference-file names written in the primary header (``oref$name``).
    Other parameters are those of :func:`build_cos_fuv_pair`.

    Returns
    -------
    dict
        ``{'tag': Path, 'x1d': Path|None, 'truth': StisTruth}``.
    """
    if (mode, detector) not in _STIS_MODES:
        raise ValueError(f"unsupported STIS mode/detector {mode!r}/{detector!r}")
    spec = dict(_STIS_MODES[(mode, detector)])
    spec.update({k: v for k, v in (("opt_elem", opt_elem), ("cenwave", cenwave),
                                   ("aperture", aperture)) if v is not None})
    directory, rng, flare, sinusoid, gti_arr, live = _exposure(directory, seed, flare, sinusoid,
                                                                gti, exptime)
    geometry = _stis_orders(mode, spec, n_orders, order_spacing)
    keys = [g[0] for g in geometry] or [0]
    if isinstance(source_rate, Mapping):
        rates = [float(source_rate.get(k, 0.0)) for k in keys]
    else:
        rates = [float(source_rate)] * len(keys)
    n_flare_total = flare.counts if flare else 0
    if n_events is not None:
        expected = sum(rates) * live + background_rate * 1024 * live
        scale = max(n_events - n_flare_total, 0) / expected if expected > 0 else 0.0
        rates, background_rate = [r * scale for r in rates], background_rate * scale
    flare_split = _split_counts(rng, n_flare_total, rates if sum(rates) > 0 else [1] * len(rates))

    t_parts: list[np.ndarray] = []
    x_parts: list[np.ndarray] = []
    y_parts: list[np.ndarray] = []
    comp_parts: list[np.ndarray] = []
    order_parts: list[np.ndarray] = []
    orders: dict[int, OrderTruth] = {}
    for k, rate in enumerate(rates):
        t_src = _source_times(rng, rate, gti_arr, sinusoid)
        t_fl = _flare_times(rng, flare, int(flare_split[k])) if flare else np.empty(0)
        n = t_src.size + t_fl.size
        if geometry:
            sporder, a2c, extr, bk1s, bk2s, bk1o, bk2o, wave = geometry[k]
            shape = _shape(1024)
            pmf = shape / shape.sum()
            x: np.ndarray = 2 * _sample_pmf(rng, pmf, n) + rng.integers(0, 2, n)
            y: np.ndarray = 2 * (a2c + shifta2) + _truncated_normal(rng, n, extr / 2.5, extr - 1.5)
            sens = (rate if rate > 0 else 1.0) * pmf / flat_flux
            orders[sporder] = OrderTruth(sporder, a2c, extr, bk1s, bk2s, bk1o, bk2o, wave,
                                         sens, pmf, rate, t_src.size, int(flare_split[k]))
        else:
            sporder = 0
            x = 1024.0 + rng.normal(0.0, 3.0, n)
            y = 1024.0 + rng.normal(0.0, 3.0, n)
        t_parts += [t_src, t_fl]
        x_parts.append(x)
        y_parts.append(y)
        comp_parts += [np.full(t_src.size, SOURCE, np.int8), np.full(t_fl.size, FLARE, np.int8)]
        order_parts.append(np.full(n, sporder, np.int16))
    n_bkg = int(rng.poisson(background_rate * 1024 * live))
    t_parts.append(_uniform_in_gti(rng, n_bkg, gti_arr))
    x_parts.append(rng.integers(0, 2048, n_bkg))
    y_parts.append(rng.integers(0, 2048, n_bkg))
    comp_parts.append(np.full(n_bkg, BACKGROUND, np.int8))
    order_parts.append(np.zeros(n_bkg, np.int16))

    ticks = np.floor(np.concatenate(t_parts) / STIS_TICK).astype(np.int64)
    idx = np.argsort(ticks, kind="stable")
    ticks = ticks[idx]
    axis1 = np.clip(np.rint(np.concatenate(x_parts)[idx]), 0, 2047).astype(np.int16)
    axis2 = np.clip(np.rint(np.concatenate(y_parts)[idx]), 0, 2047).astype(np.int16)
    comp, event_order = np.concatenate(comp_parts)[idx], np.concatenate(order_parts)[idx]
    doppler = np.rint(3.0 * np.sin(2 * np.pi * ticks * STIS_TICK / 5700.0)).astype(np.int16)
    data = {"TIME": ticks, "AXIS1": axis1, "AXIS2": axis2,
            "DETAXIS1": np.clip(axis1 + doppler, 0, 2047)}
    if _transform is not None:
        data, comp = _transform(data, comp)

    span = float(max(exptime, gti_arr[-1, 1]))
    date_cards = _date_cards(expstart, span, live, expflag)
    filename = f"{rootname}_tag.fits"
    ref = dict(pfltfile=pfltfile, lfltfile=lfltfile, bpixtab=bpixtab)
    common = dict(rootname=rootname, detector=detector, mode=mode, opt_elem=spec["opt_elem"],
                  cenwave=spec["cenwave"], aperture=spec["aperture"], targname=targname,
                  proposid=proposid, expstart=expstart, expend=expstart + span / 86400.0,
                  exptime=live, **ref)
    ext_cards = _stis_ext1_cards(rootname, date_cards, len(comp), "EVENTS", None)
    ext_keys = {c[0] for c in ext_cards} | {"SHIFTA1", "SHIFTA2"}
    p_over, e_over = _split_overrides(header_overrides, ext_keys)
    primary = fits.PrimaryHDU(header=_header(
        _stis_primary_cards(filename=filename, nextend=2, **common), p_over, True))
    events = _table_hdu(STIS_TAG_COLUMNS, data, _header(ext_cards, e_over, False), len(comp),
                        scales={"TIME": STIS_TICK})
    out: dict[str, Any] = {"tag": _write([primary, events, _gti_hdu(gti_arr, rootname)],
                                         directory / filename)}
    out["x1d"] = None
    if with_x1d and orders:
        x1d_name = f"{rootname}_x1d.fits"
        primary = fits.PrimaryHDU(header=_header(
            _stis_primary_cards(filename=x1d_name, nextend=1, **common), p_over, True))
        hdr = _header(_stis_ext1_cards(rootname, date_cards, len(comp), "SCI", shifta2),
                      e_over, False)
        sci = _stis_x1d_hdu(list(orders.values()), shifta2, background_rate, live, hdr)
        out["x1d"] = _write([primary, sci], directory / x1d_name)
    out["truth"] = StisTruth(seed, mode, exptime, expstart, gti_arr, live, flat_flux, shifta2,
                             background_rate, n_bkg, orders, comp, event_order, flare, sinusoid,
                             None if orders else (1024.0, 1024.0))
    return out


# ----------------------------------------------------------------------------- bad files
BAD_KINDS: dict[str, str] = {
    "bad_expflag": errors.BAD_EXPFLAG,          # ext-1 EXPFLAG = 'INTERRUPTED'
    "nonmonotonic_time": errors.NON_LINEAR_TIME,  # a block of 50 events moved 100 s back
    "no_events": errors.NO_EVENTS,              # EVENTS table with zero rows
    "singular_time": errors.SINGULAR_EVENT,     # 20 events, all at TIME = 5 s
    "short_exposure": errors.SHORT_EXPOSURE,    # EXPTIME = 0.5 s
    "bad_proposal": errors.BAD_PROPOSAL,        # PROPOSID = ``proposid`` (configure it as bad)
    "missing_keyword": errors.MISSING_KEYWORD,  # ``keyword`` deleted from every header
    "not_fits": errors.UNREADABLE_FILE,         # a text file with a FITS name
    "truncated": errors.UNREADABLE_FILE,        # cut in the middle of the EVENTS header
    "accum": errors.UNSUPPORTED_PRODUCT,        # ACCUM acquisition (COS rawacq / STIS raw)
    "lampflash": errors.UNSUPPORTED_PRODUCT,    # COS TIME-TAG lampflash table, no events
}
"""Kinds accepted by :func:`build_bad`, with the ``bad_data`` reason each should produce."""


def _shift_block(data: dict[str, np.ndarray], comp: np.ndarray):
    t = np.array(data["TIME"], copy=True)
    i0 = t.size // 2
    t[i0:i0 + 50] = t[i0:i0 + 50] - (100.0 if t.dtype.kind == "f" else round(100 / STIS_TICK))
    return {**data, "TIME": np.maximum(t, 0)}, comp


def _empty(data: dict[str, np.ndarray], comp: np.ndarray):
    return {k: v[:0] for k, v in data.items()}, comp[:0]


def _singular(data: dict[str, np.ndarray], comp: np.ndarray):
    out = {k: np.array(v[:20], copy=True) for k, v in data.items()}
    out["TIME"][:] = 5.0 if out["TIME"].dtype.kind == "f" else round(5.0 / STIS_TICK)
    return out, comp[:20]


def _accum_file(path: Path, instrument: str, rootname: str) -> Path:
    if instrument == "stis":
        cards = _stis_primary_cards(
            rootname=rootname, filename=path.name, detector="FUV-MAMA", mode="imaging",
            opt_elem="MIRROR", cenwave=None, aperture="F25SRF2", targname="TEST-STAR",
            proposid=12345, expstart=56000.25, expend=56000.25001, exptime=0.74, nextend=1,
            pfltfile="N/A", lfltfile="N/A", bpixtab="N/A")
        primary = fits.PrimaryHDU(header=_header(cards, {"OBSMODE": "ACCUM"}, True))
        sci = fits.ImageHDU(np.zeros((32, 32), np.int16), name="SCI")
        sci.header["EXPTIME"] = 0.74
        sci.header["EXPFLAG"] = "NORMAL"
        return _write([primary, sci], path)
    cards = _cos_primary_cards(rootname=rootname, filename=path.name, detector="FUV",
                               segment="BOTH", opt_elem="G160M", cenwave=1589, aperture="PSA",
                               targname="TEST-STAR", proposid=12345, fppos=3, nextend=1,
                               filetype="ACQ", imagetyp="ACCUM", obsmode="ACCUM",
                               exptype="ACQ/PEAKXD")
    hdr = _header([("EXTNAME", "ACQ", "extension name"), ("EXPTIME", 0.4, "exposure duration"),
                   ("EXPFLAG", "NORMAL", "Exposure interruption indicator")], {}, False)
    acq = _table_hdu((("DWELL_POINT", ">i2", ""), ("XDISP_OFFSET", ">f4", ""),
                      ("COUNTS", ">i4", "")),
                     {"DWELL_POINT": np.arange(3), "XDISP_OFFSET": [-1.0, 0.0, 1.0],
                      "COUNTS": [10, 50, 12]}, hdr, 3)
    return _write([fits.PrimaryHDU(header=_header(cards, {}, False)), acq], path)


def _lampflash_file(path: Path, rootname: str) -> Path:
    cards = _cos_primary_cards(rootname=rootname, filename=path.name, detector="FUV",
                               segment="FUVA", opt_elem="G140L", cenwave=1105, aperture="PSA",
                               targname="TEST-STAR", proposid=12345, fppos=1, nextend=1)
    hdr = _header([("EXTNAME", "LAMPFLASH", "extension name"),
                   ("EXPTIME", 1116.192, "exposure duration"),
                   ("EXPFLAG", "NORMAL", "Exposure interruption indicator")], {}, False)
    table = _table_hdu((("SEGMENT", "S4", ""), ("TIME", ">f8", "s"), ("LAMP_ON", ">f8", "s"),
                        ("LAMP_OFF", ">f8", "s"), ("SHIFT_DISP", ">f4", "pixel")),
                       {"SEGMENT": ["FUVA"], "TIME": [6.5], "LAMP_ON": [0.6],
                        "LAMP_OFF": [12.4], "SHIFT_DISP": [-33.5]}, hdr, 1)
    return _write([fits.PrimaryHDU(header=_header(cards, {}, False)), table], path)


def build_bad(directory: str | os.PathLike[str], kind: str, *, instrument: str = "cos",
              seed: int = 0, rootname: str | None = None, keyword: str = "SP_LOC_A",
              proposid: int = 99999) -> Path:
    """Write one file that a TIME-TAG pipeline must refuse; return its path.

    Parameters
    ----------
    kind : str
        One of :data:`BAD_KINDS` (the value is the expected ``bad_data`` reason).
    instrument : {'cos', 'stis'}
        A COS FUV ``_corrtag_a.fits`` (segment B absent) or a STIS ``_tag.fits``;
        'accum' writes ``_rawacq.fits`` (COS) or ``_raw.fits`` (STIS); 'lampflash' is COS.
    keyword : str
        The keyword deleted for ``kind='missing_keyword'`` (use e.g. 'EXPSTART' for STIS).
    proposid : int
        PROPOSID written for ``kind='bad_proposal'``.
    """
    if kind not in BAD_KINDS:
        raise ValueError(f"unknown bad-file kind {kind!r}; choose from {sorted(BAD_KINDS)}")
    if instrument not in ("cos", "stis"):
        raise ValueError(f"instrument must be 'cos' or 'stis', not {instrument!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    number = sorted(BAD_KINDS).index(kind)
    root = rootname or f"{'l' if instrument == 'cos' else 'o'}bad{number:02d}q"
    suffix = "_corrtag_a.fits" if instrument == "cos" else "_tag.fits"
    if kind == "not_fits":
        path = directory / f"{root}{suffix}"
        path.write_text("SIMPLE = this is not a FITS file\n")
        return path
    if kind == "accum":
        return _accum_file(directory / f"{root}_{'rawacq' if instrument == 'cos' else 'raw'}.fits",
                           instrument, root)
    if kind == "lampflash":
        return _lampflash_file(directory / f"{root}_lampflash.fits", root)
    kwargs: dict[str, Any] = {"seed": seed, "with_x1d": False}
    transforms = {"nonmonotonic_time": _shift_block, "no_events": _empty,
                  "singular_time": _singular}
    kwargs["_transform"] = transforms.get(kind)
    if kind == "bad_expflag":
        kwargs["expflag"] = "INTERRUPTED"
    elif kind == "short_exposure":
        kwargs["exptime"] = 0.5
    elif kind == "bad_proposal":
        kwargs["proposid"] = proposid
    elif kind == "missing_keyword":
        kwargs[keyword] = None
    if instrument == "cos":
        path = build_cos_fuv_pair(directory, root, segments=("A",), **kwargs)["corrtag_a"]
    else:
        path = build_stis_tag(directory, root, **kwargs)["tag"]
    if kind == "truncated":
        with fits.open(path) as hdul:
            cut = hdul.fileinfo(1)["hdrLoc"] + 1000
        path.write_bytes(path.read_bytes()[:cut])
    return path


# ----------------------------------------------------------------------------- reference files
def build_stis_flat(directory: str | os.PathLike[str], name: str = "synth_pfl.fits", *,
                    shape: tuple[int, int] = (1024, 1024), seed: int = 0, spread: float = 0.2,
                    filetype: str = "PIXEL-TO-PIXEL FLAT") -> tuple[Path, np.ndarray]:
    """Write a STIS flat-field image (SCI, ERR, DQ) into an ``oref`` folder.

    The SCI image is ``1 + U(-spread, spread)``; ``shape`` (rows, columns) may be low-res
    (1024) or high-res (2048) or any divisor of 2048. Returns ``(path, sci_image)``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    image = (1.0 + np.random.default_rng(seed).uniform(-spread, spread, shape)).astype(np.float32)
    primary = fits.PrimaryHDU(header=_header(
        [("FILENAME", name, ""), ("FILETYPE", filetype, ""), ("INSTRUME", "STIS", ""),
         ("DETECTOR", "FUV-MAMA", ""), ("USEAFTER", "Jan 01 1997 00:00:00", "")], {}, False))
    return _write([primary, fits.ImageHDU(image, name="SCI"),
                   fits.ImageHDU(np.full(shape, 0.01, np.float32), name="ERR"),
                   fits.ImageHDU(np.zeros(shape, np.int16), name="DQ")],
                  directory / name), image


def build_stis_bpixtab(directory: str | os.PathLike[str], name: str = "synth_bpx.fits",
                       rows: Sequence[tuple[int, int, int, int, int]] = ((101, 201, 10, 1, 4),
                                                                         (301, 401, 20, 2, 16)),
                       ) -> Path:
    """Write a STIS BPIXTAB: rows ``(PIX1, PIX2, LENGTH, AXIS, VALUE)``.

    PIX1/PIX2 are 1-based LOW-RES column/row (FITS convention, as the 2016 code read
    them); AXIS 1 runs along a row (columns PIX1 .. PIX1+LENGTH-1), AXIS 2 along a column.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arr = np.array(rows, dtype=int).reshape(-1, 5)
    cols = (("PIX1", ">i2", "pixel"), ("PIX2", ">i2", "pixel"), ("LENGTH", ">i2", "pixel"),
            ("AXIS", ">i2", ""), ("VALUE", ">i2", ""))
    data = {c[0]: arr[:, i] for i, c in enumerate(cols)}
    hdr = _header([("EXTNAME", "BPIX", "")], {}, False)
    primary = fits.PrimaryHDU(header=_header([("FILETYPE", "BAD PIXELS", ""),
                                              ("INSTRUME", "STIS", "")], {}, False))
    return _write([primary, _table_hdu(cols, data, hdr, len(arr))], directory / name)


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
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    segs = list(truth.segments.values())
    label = "FUV" if len(segs[0].sensitivity) == 16384 else "NUV"
    names = [f"{label}{s.segment}" for s in segs]
    waves = [s.wavelength_at(np.arange(s.sensitivity.size) - s.x1d_offset) for s in segs]
    base = {"SEGMENT": names, "OPT_ELEM": [opt_elem] * len(segs),
            "CENWAVE": [cenwave] * len(segs), "APERTURE": [aperture] * len(segs)}
    head = (("SEGMENT", "S4", ""), ("OPT_ELEM", "S5", ""), ("CENWAVE", ">i4", ""),
            ("APERTURE", "S3", ""))
    phot = _table_hdu(head + (("WAVELENGTH", ">f8", "Angstrom"), ("SENSITIVITY", ">f4", "")),
                      {**base, "WAVELENGTH": np.array(waves),
                       "SENSITIVITY": np.array([s.sensitivity for s in segs])},
                      _header([("EXTNAME", "PHOT", "")], {}, False), len(segs))
    nwl, nt = 5, 2
    ref_time = truth.expstart - 365.25
    tds = _table_hdu(head + (("NWL", ">i4", ""), ("NT", ">i4", ""),
                             ("WAVELENGTH", ">f8", "Angstrom"), ("TIME", ">f8", "MJD"),
                             ("SLOPE", ">f8", "percent /yr"), ("INTERCEPT", ">f8", "")),
                     {**base, "NWL": [nwl] * len(segs), "NT": [nt] * len(segs),
                      "WAVELENGTH": np.array([np.linspace(w.min() - 50, w.max() + 50, nwl)
                                              for w in waves]),
                      "TIME": np.tile([ref_time - 1000.0, ref_time], (len(segs), 1)),
                      "SLOPE": np.full((len(segs), nt, nwl), tds_slope),
                      "INTERCEPT": np.ones((len(segs), nt, nwl))},
                     _header([("EXTNAME", "TDS", ""), ("REF_TIME", ref_time, "MJD")], {},
                             False), len(segs))
    return {"fluxtab": _write([fits.PrimaryHDU(), phot], directory / fluxtab),
            "tdstab": _write([fits.PrimaryHDU(), tds], directory / tdstab)}
