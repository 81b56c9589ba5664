"""Calibration of events: the count-rate-to-flux conversion, and the COS NUV dispersion.

A *conversion* ``c(lambda)`` turns a count rate per pixel (count/s) into a flux density
(erg s^-1 cm^-2 A^-1).  Three sources, tried in this order by :func:`choose_response`:

1. ``FLUXTAB+TDSTAB`` -- the COS reference files named in the primary header
   (``lref$...``), found in a reference folder or through the ``$lref`` / ``$oref``
   environment variables: ``c = 1 / (S(lambda) * T(lambda, t))`` with ``S`` the
   FLUXTAB ``SENSITIVITY`` and ``T`` the time-dependent sensitivity factor, evaluated as
   calcos does at the middle of the exposure.  ``FLUXTAB`` alone when the dataset asks
   for no TDS correction.
2. ``X1D`` -- the dataset's own 1-D spectrum: ``c = FLUX / NET`` per segment (or
   echelle order), on the pixels where ``NET > 0``; it already includes the TDS.
3. ``NONE`` -- no conversion: the flux columns are NaN.

A COS NUV event's WAVELENGTH is that of the stripe nearest to it, so the background rows,
shared by the stripes, carry one stripe's wavelengths only: :func:`nuv_column_wavelengths`
gives each stripe's wavelength per XCORR column from a fit (:func:`fit_dispersion`) to the
events of its source box, for the band cut and the conversion of its background.

The reference tables and the x1d are read by :mod:`hstlc.io.reference_files` and
:mod:`hstlc.io.x1d`; this module works on their arrays.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from hstlc.errors import HstlcError, MissingKeywordError
from hstlc.io.events import DEFAULT_BLOCK_ROWS, EventTable, iter_event_blocks
from hstlc.io.reference_files import TdsRow, read_fluxtab, read_tdstab, resolve_reference
from hstlc.io.x1d import X1dRow

logger = logging.getLogger(__name__)

FLUXCAL_REFERENCE = "FLUXTAB+TDSTAB"
FLUXCAL_FLUXTAB = "FLUXTAB"
FLUXCAL_X1D = "X1D"
FLUXCAL_NONE = "NONE"
FLUXCAL_CHOICES = ("auto", FLUXCAL_REFERENCE, FLUXCAL_FLUXTAB, FLUXCAL_X1D, FLUXCAL_NONE)

DAYS_PER_YEAR = 365.25


@dataclass(frozen=True)
class Response:
    """Count-rate-to-flux conversion per segment / order.

    Attributes
    ----------
    source : str
        ``FLUXTAB+TDSTAB``, ``FLUXTAB``, ``X1D`` or ``NONE`` (the ``FLUXCAL`` keyword).
    wavelength, factor : dict of str to ndarray
        Per segment / order name: ascending wavelengths (A) and the conversion at each
        (erg s^-1 cm^-2 A^-1 per count s^-1).
    files : tuple of str
        The files the conversion came from.
    """

    source: str
    wavelength: Mapping[str, np.ndarray] = field(default_factory=dict)
    factor: Mapping[str, np.ndarray] = field(default_factory=dict)
    files: tuple[str, ...] = ()

    @property
    def calibrated(self) -> bool:
        """True unless the source is ``NONE``."""
        return self.source != FLUXCAL_NONE

    def conversion(self, name: str, wavelength: np.ndarray) -> np.ndarray:
        """The conversion of segment/order ``name`` at ``wavelength`` (linear; clamped at the
        table's ends; NaN when uncalibrated or the name has no table)."""
        wavelength = np.asarray(wavelength, np.float64)
        if not self.calibrated or name not in self.factor:
            return np.full(wavelength.shape, np.nan)
        return np.interp(wavelength, self.wavelength[name], self.factor[name])

    def indexed(self, names: list[str]) -> ConversionLookup:
        """A vectorised lookup ``f(group_index, wavelength)`` for the groups ``names``."""
        return ConversionLookup(self, names)


class ConversionLookup:
    """Conversion for many events of several segments/orders, in O(1) per event.

    Each group's table is resampled once on a uniform wavelength grid
    :attr:`OVERSAMPLE` times finer than the table (linear interpolation), and an event
    takes the value of the nearest grid point, found by arithmetic rather than a binary
    search (``np.interp`` costs ~100 ns per event on a 16384-pixel table).  The error is
    below 1/(2*OVERSAMPLE) of the change between neighbouring table entries; the table is
    float32 and small enough to stay in cache (a 16384-pixel x1d row gives 128 kB).  Wavelengths
    beyond a table's ends get its end values, like ``np.interp``; groups without a table
    give NaN.
    """

    OVERSAMPLE = 2

    def __init__(self, response: Response, names: list[str]):
        values, start, inverse, size, base = [], [], [], [], []
        offset = 0
        for name in names:
            if response.calibrated and name in response.factor:
                wave = np.asarray(response.wavelength[name], np.float64)
                factor = np.asarray(response.factor[name], np.float64)
                n = int(min(max(self.OVERSAMPLE * wave.size, 2), 1 << 22))
                span = wave[-1] - wave[0]
                grid = wave[0] + span * np.arange(n) / (n - 1)
                values.append(np.interp(grid, wave, factor))
                inverse.append((n - 1) / span if span > 0 else 0.0)
                start.append(wave[0] - 0.5 / inverse[-1] if span > 0 else wave[0])
            else:
                n = 1
                values.append(np.full(1, np.nan))
                start.append(0.0)
                inverse.append(0.0)
            size.append(n)
            base.append(offset)
            offset += n
        self.table = (np.concatenate(values) if values else np.full(1, np.nan)).astype(np.float32)
        self.start, self.inverse = np.array(start), np.array(inverse)
        self.size, self.base = np.array(size, np.intp), np.array(base, np.intp)

    def __call__(self, group_index: np.ndarray | None, wavelength: np.ndarray,
                 out: np.ndarray | None = None, scratch: Any = None) -> np.ndarray:
        """Conversion at ``wavelength`` for events of groups ``group_index`` (None: group 0).

        Returns float32 values (in ``out`` when given, a float32 array);
        ``scratch(name, dtype, n)``, when given, supplies reusable work arrays.
        """
        wavelength = np.asarray(wavelength)
        n = wavelength.size
        if wavelength.dtype != np.float32:
            wavelength = wavelength.astype(np.float64)
        kind = wavelength.dtype
        position = (scratch("conv_position", kind, n) if scratch is not None
                    else np.empty(n, kind))
        if group_index is None or self.size.size == 1:
            np.subtract(wavelength, kind.type(self.start[0]), out=position)
            position *= kind.type(self.inverse[0])
            top: Any = kind.type(self.size[0] - 1)
        else:
            np.subtract(wavelength, self.start[group_index].astype(kind), out=position)
            position *= self.inverse[group_index].astype(kind)
            top = (self.size[group_index] - 1).astype(kind)
        np.fmax(position, 0, out=position)  # fmax/fmin also turn NaN into the bound
        np.fmin(position, top, out=position)
        index = scratch("conv_index", np.intp, n) if scratch is not None else np.empty(n, np.intp)
        np.copyto(index, position, casting="unsafe")
        if group_index is not None and self.size.size > 1:
            index += self.base[group_index]
        return np.take(self.table, index, out=out)


def tds_factors(row: TdsRow, t_obs: float, filename: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Time-dependent sensitivity factors at time ``t_obs`` (MJD), per wavelength.

    Follows calcos: the interval ``i`` is the last with ``TIME[i] <= t_obs`` (the first
    interval before the table starts), and the factor is
    ``(t_obs - REF_TIME) / 365.25 * SLOPE[i] / 100 + INTERCEPT[i]``: the sensitivity
    relative to the FLUXTAB's, drifting linearly by ``SLOPE`` percent a year.

    Returns
    -------
    wavelength, factor : numpy.ndarray
        Sorted by wavelength.

    Examples
    --------
    >>> row = TdsRow(50000.0, np.array([49000.0, 50000.0]), np.array([1200.0, 1100.0]),
    ...              np.array([[0.0, 0.0], [-10.0, -5.0]]), np.ones((2, 2)))
    >>> wavelength, factor = tds_factors(row, 50000.0 + 365.25)
    >>> wavelength.tolist(), factor.tolist()
    ([1100.0, 1200.0], [0.95, 0.9])
    """
    nt = row.time.size
    interval = int(np.clip(np.searchsorted(row.time, t_obs, side="right") - 1, 0, nt - 1))
    delta_years = (t_obs - row.ref_time) / DAYS_PER_YEAR
    factor = delta_years * row.slope[interval] / 100.0 + row.intercept[interval]
    if t_obs < row.time[0] or t_obs >= row.time[nt - 1]:
        logger.info("%s: TDS factors extrapolated to MJD %.3f", filename, t_obs)
    order = np.argsort(row.wavelength)
    return row.wavelength[order], factor[order]


def response_from_reference(
    fluxtab: Path,
    tdstab: Path | None,
    segments: Mapping[str, Mapping[str, str | int]],
    t_obs: float,
) -> Response:
    """Conversion ``1 / (S * T)`` per segment from a FLUXTAB and (optionally) a TDSTAB.

    Parameters
    ----------
    fluxtab, tdstab : Path
        Reference tables (``tdstab`` None: no TDS correction).
    segments : mapping
        Segment name -> row selection (SEGMENT, OPT_ELEM, CENWAVE, APERTURE, ...).
    t_obs : float
        Time of the observation for the TDS (MJD; calcos uses the exposure middle).
    """
    wavelengths, factors = {}, {}
    for name, selection in segments.items():
        wavelength, sensitivity = read_fluxtab(fluxtab, selection)
        tds = np.ones_like(wavelength)
        if tdstab is not None:
            tds_selection = {key: value for key, value in selection.items() if key != "FPOFFSET"}
            tds_wavelength, tds_factor = tds_factors(read_tdstab(tdstab, tds_selection), t_obs,
                                                     tdstab.name)
            tds = np.interp(wavelength, tds_wavelength, tds_factor)
        product = sensitivity * tds
        good = product > 0
        if not good.any():
            raise MissingKeywordError(f"{fluxtab.name}: no positive SENSITIVITY for {name}",
                                      filename=fluxtab.name)
        wavelengths[name], factors[name] = wavelength[good], 1.0 / product[good]
    files = (fluxtab.name,) + ((tdstab.name,) if tdstab is not None else ())
    source = FLUXCAL_REFERENCE if tdstab is not None else FLUXCAL_FLUXTAB
    return Response(source, wavelengths, factors, files)


def response_from_spectra(spectra: Mapping[str, X1dRow], filename: str = "") -> Response:
    """Conversion ``FLUX / NET`` per segment/order from x1d spectra (pixels with NET > 0).

    Segments/orders without a usable pixel are left out (their events get NaN flux).
    """
    wavelengths, factors = {}, {}
    for name, spectrum in spectra.items():
        net = np.asarray(spectrum.net, np.float64)
        flux = np.asarray(spectrum.flux, np.float64)
        ok = (net > 0) & np.isfinite(flux) & np.isfinite(spectrum.wavelength)
        if not ok.any():
            logger.warning("%s: %s has no pixel with NET > 0; no flux conversion for it",
                           filename, name)
            continue
        wavelength = np.asarray(spectrum.wavelength, np.float64)[ok]
        order = np.argsort(wavelength, kind="stable")
        wavelengths[name] = wavelength[order]
        factors[name] = (flux[ok] / net[ok])[order]
    if not factors:
        return Response(FLUXCAL_NONE)
    return Response(FLUXCAL_X1D, wavelengths, factors, (filename,) if filename else ())


class Keywords(Protocol):
    """A header's keyword lookup (:class:`hstlc.extraction.extract.EventHeader`)."""

    def get(self, key: str, default: Any = None) -> Any:
        """The value, or ``default`` when absent."""

    def require(self, key: str) -> Any:
        """The value; MissingKeywordError when absent."""


def reference_response(first: Keywords, groups: list[str],
                       reference_dir: str | os.PathLike[str] | None,
                       t_obs: float) -> Response | None:
    """FLUXTAB(+TDSTAB) response of a COS dataset, or None when the files are not found.

    The header names the files (FLUXTAB, TDSTAB; the TDS is applied when TDSCORR is
    PERFORM or COMPLETE) and selects their rows (OPT_ELEM, CENWAVE, APERTURE, FPOFFSET,
    and each segment/stripe of ``groups``).  ``t_obs`` (MJD) is the middle of the
    exposure.  Unusable tables give None and a warning.
    """
    fluxtab = resolve_reference(first.get("FLUXTAB"), reference_dir)
    if fluxtab is None:
        return None
    wants_tds = str(first.get("TDSCORR", "OMIT")).upper() in ("PERFORM", "COMPLETE")
    tdstab = resolve_reference(first.get("TDSTAB"), reference_dir) if wants_tds else None
    if wants_tds and tdstab is None:
        logger.info("%s found but not the TDSTAB %s", fluxtab.name, first.get("TDSTAB"))
    selection: dict[str, str | int] = {"OPT_ELEM": str(first.require("OPT_ELEM")),
                                       "CENWAVE": int(first.require("CENWAVE")),
                                       "APERTURE": str(first.require("APERTURE"))}
    if first.get("FPOFFSET") is not None:
        selection["FPOFFSET"] = int(first.get("FPOFFSET"))
    segments = {group: {**selection, "SEGMENT": group} for group in groups}
    try:
        response = response_from_reference(fluxtab, tdstab, segments, t_obs)
    except HstlcError as error:
        logger.warning("reference flux calibration unusable: %s", error)
        return None
    return response if tdstab is not None or not wants_tds else Response(
        FLUXCAL_FLUXTAB, response.wavelength, response.factor, response.files)


def choose_response(
    method: str,
    *,
    reference: Response | None,
    spectra: Mapping[str, X1dRow] | None,
    x1d_name: str = "",
) -> Response:
    """Pick the conversion: ``auto`` tries FLUXTAB+TDSTAB, then X1D, then NONE.

    Parameters
    ----------
    method : str
        ``auto`` or one of the FLUXCAL values to force a source (a forced source that is
        unavailable gives ``NONE`` and a warning in the log).
    reference : Response or None
        The reference-file response, when the reference files were found.
    spectra : mapping or None
        The dataset's x1d spectra.
    """
    if method not in FLUXCAL_CHOICES:
        raise ValueError(f"calibration must be one of {FLUXCAL_CHOICES}, got {method!r}")
    from_x1d = response_from_spectra(spectra, x1d_name) if spectra else Response(FLUXCAL_NONE)
    if method == FLUXCAL_NONE:
        return Response(FLUXCAL_NONE)
    if method in ("auto", FLUXCAL_REFERENCE, FLUXCAL_FLUXTAB) and reference is not None:
        if method == "auto" and reference.source == FLUXCAL_FLUXTAB and from_x1d.calibrated:
            return from_x1d  # the x1d includes the TDS; a bare FLUXTAB does not
        return reference
    if method in ("auto", FLUXCAL_X1D) and from_x1d.calibrated:
        return from_x1d
    if method != "auto":
        logger.warning("flux calibration %s unavailable; flux columns will be NaN", method)
    return Response(FLUXCAL_NONE)


# ----------------------------------------------------------------------------- wavelengths
#: Events of each COS NUV stripe's source box that its dispersion fit uses (at most).
NUV_FIT_EVENTS = 50_000
#: COS NUV pixel columns (XCORR 0 .. 1024).
NUV_COLUMNS = 1024


def fit_dispersion(x: np.ndarray, wave: np.ndarray) -> np.polynomial.Polynomial | None:
    """WAVELENGTH as a polynomial of XCORR, outliers clipped; None with too few events.

    Cubic (linear below 200 events), refitted without the events more than 5 robust
    sigmas away until none is dropped (at most 5 times).  Fewer than 10 events, or events
    spanning less than a quarter of the detector, give None.

    Examples
    --------
    >>> x = np.linspace(0.0, 1023.0, 300)
    >>> fit = fit_dispersion(x, 1700.0 + 0.04 * x + 1e-6 * x**2)
    >>> round(float(fit(512.0)), 4)
    1720.7421
    """
    ok = np.isfinite(x) & np.isfinite(wave)
    x, wave = x[ok], wave[ok]
    if x.size < 10 or np.ptp(x) < 0.25 * NUV_COLUMNS:
        return None
    degree = 3 if x.size >= 200 else 1
    keep = np.ones(x.size, bool)
    fit = np.polynomial.Polynomial.fit(x, wave, degree)
    for _ in range(5):
        residual = np.abs(wave - fit(x))
        # float32 wavelengths: a perfect fit still leaves ~1e-7 relative residuals
        limit = 5 * 1.4826 * np.median(residual[keep]) + 1e-6 * float(np.median(np.abs(wave)))
        within = residual <= limit
        if np.array_equal(within, keep) or np.count_nonzero(within) < 10:
            break
        keep = within
        fit = np.polynomial.Polynomial.fit(x[keep], wave[keep], degree)
    return fit


def nuv_column_wavelengths(table: EventTable, sources: Mapping[str, tuple[float, float]],
                           block_rows: int = DEFAULT_BLOCK_ROWS) -> dict[str, np.ndarray] | None:
    """Per COS NUV stripe, its wavelength at the centre of each XCORR column ``[c, c + 1)``.

    An NUV event's WAVELENGTH is that of the stripe nearest to it, so the events of the
    background rows, shared by the stripes, carry the wavelengths of one stripe only.
    Each stripe's dispersion ``WAVELENGTH(XCORR)`` is fitted to the events of its source
    box (all of them carry its wavelengths; its wavecal shift is included), read from
    the start of the table until every stripe has :data:`NUV_FIT_EVENTS` of them.  None
    when a stripe has too few events for a fit.

    Parameters
    ----------
    table : EventTable
        The NUV corrtag.
    sources : mapping
        Stripe name -> the rows ``[y0, y1)`` of its source box.
    block_rows : int
        Streaming block size.
    """
    found: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {g: [] for g in sources}
    counts = dict.fromkeys(sources, 0)
    for block in iter_event_blocks(table, ["XCORR", "YCORR", "WAVELENGTH"],
                                   block_rows=block_rows):
        y = block["YCORR"]
        for group, (y0, y1) in sources.items():
            inside = np.flatnonzero((y >= y0) & (y < y1))
            found[group].append((block["XCORR"][inside].astype(np.float64),
                                 block["WAVELENGTH"][inside].astype(np.float64)))
            counts[group] += inside.size
        if min(counts.values()) >= NUV_FIT_EVENTS:
            break
    centres = np.arange(NUV_COLUMNS) + 0.5
    columns = {}
    for group, parts in found.items():
        fit = fit_dispersion(np.concatenate([p[0] for p in parts]),
                              np.concatenate([p[1] for p in parts]))
        if fit is None:
            logger.warning("%s: too few events in the %s source box to fit its dispersion; "
                           "background events keep their WAVELENGTH", table.path.name, group)
            return None
        columns[group] = fit(centres)
    return columns
