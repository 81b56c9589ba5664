"""Lightcurve extraction from COS and STIS TIME-TAG event lists.

>>> from hstlc.extraction.extract import extract_lightcurve          # doctest: +SKIP
>>> lc = extract_lightcurve("ld9m10ujq_corrtag_a.fits")   # doctest: +SKIP

The algorithm is the 2016 one (see LEGACY.md) with its defects fixed:

* **Boxes.** COS: per segment (FUV) or stripe (NUV; G230L has A and B only) from the
  ext-1 keywords ``SP_LOC_x``/``SP_HGT_x`` (source) and ``B_BKG1_x``/``B_HGT1_x``,
  ``B_BKG2_x``/``B_HGT2_x`` (background), rows ``LOC - HGT/2 <= YCORR < LOC + HGT/2``.
  STIS: per spectral order from the x1d (``A2CENTER + SHIFTA2``, ``EXTRSIZE``,
  ``BKnOFFST``, ``BKnSIZE``; low-resolution pixels, events in high-resolution pixels).
* **Background** scaled by source height / (background height 1 + 2).
* **Events** kept when ``DQ & SDQFLAGS == 0``, ``XMIN <= XCORR < XMAX``, inside a GTI and
  ``WMIN < lambda < WMAX`` outside the airglow windows (Lyman-alpha 1208-1225 A,
  O I 1298-1312 A).  COS uses the event's WAVELENGTH; STIS the x1d wavelength of the
  event's column in its order (background events between echelle orders have none).
  COS NUV background rows are shared by the stripes, and their events carry the
  WAVELENGTH of the nearest stripe only: for each stripe's background boxes an event's
  wavelength is that stripe's at the centre of the event's XCORR column, from a cubic
  ``WAVELENGTH(XCORR)`` fitted to the events of the stripe's source box (read from the
  start of the table; too few of them: the WAVELENGTH column, with a warning).  So the
  band cut and the flux conversion of a stripe's background use its own dispersion.
* **Time grid.** Bins of ``step`` seconds from ``origin`` (default: the first GTI start);
  ``times`` is each bin's START (``TIMEREF = 'START'``), ``mjd = EXPSTART + times/86400``
  exactly, ``bins`` the bin's exposure inside the GTIs.  Bins with no exposure are
  dropped (never zero-filled); a bin cut by a GTI edge is kept with its partial exposure.
  Both segments of a COS FUV pair use the intersection of their GTIs.
* **Flux**, band-averaged f_lambda: ``(sum_src eps*c(lambda) - sum_bkg scale*eps*c(lambda))
  / bins / npix`` with the per-event conversion ``c`` for source and background (see
  :mod:`hstlc.extraction.calibrate` for its source, recorded as ``FLUXCAL``) and ``npix`` the number
  of pixel columns of the band covered by the events (x1d pixels with DQ_WGT > 0 whose
  wavelength is in the band, outside the airglow windows and within the wavelength range
  of the selected events of their segment/order; without x1d, the events' XCORR span).
  Uncalibrated: flux and flux_error are NaN.
* **Errors.** ``error = sqrt(var)``, ``var`` the variance of ``counts`` for Poisson events:
  ``var = sum over events of eps^2 W^2`` with ``W`` the sum of the weights of the boxes
  that count the event (1 for a source box, ``-scale`` for a background box).  Where no
  two boxes share an event (COS FUV, STIS) it is ``sum_src eps^2 + sum_bkg scale^2
  eps^2``; the COS NUV stripes share their background rows, so a background event there
  weighs ``-(scale_A + scale_B + scale_C)`` and a box-by-box sum would miss the cross
  terms.  The 2016 ``sqrt(gross + background)`` equals it only for eps = 1, scale = 1 and
  no shared rows (it overstated the background's part by 1/scale).
  ``flux_error = sqrt(fvar) / bins / npix`` with ``fvar = sum over events of eps^2 C^2``,
  ``C`` the sum over the boxes counting the event of the box's weight times the event's
  conversion factor ``c`` in that box's segment/stripe/order: the variance of the flux
  numerator.  (The former ``error * |flux / counts|`` assumed one flux per count for
  source and background alike; it diverged where ``counts`` is near zero.)

The science is in functions of arrays: :func:`~hstlc.extraction.boxes.time_grid`,
:func:`~hstlc.extraction.boxes.common_gti` and :func:`~hstlc.extraction.boxes.gti_exposure`
(the grid and each bin's exposure, in :mod:`hstlc.extraction.boxes`), :func:`cos_boxes` and
:func:`hstlc.extraction.stis_corrtag.order_boxes` (the boxes), :func:`band_pixels` (npix)
and :func:`bin_columns` (the columns from the per-box sums).  :func:`extract_lightcurve`
reads the headers and the x1d, streams the events through
:func:`hstlc.extraction.accumulate.accumulate_boxes` (compiled kernel, numpy reference)
and records the provenance.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hstlc.config import DEFAULT_MAX_TIME_SPAN_S
from hstlc.errors import MissingKeywordError, UnsupportedProductError
from hstlc.extraction.accumulate import accumulate_boxes
from hstlc.extraction.barycentre import bjd_column
from hstlc.extraction.boxes import (
    BACKGROUND,
    SOURCE,
    Box,
    BoxSums,
    Selection,
    common_gti,
    gti_exposure,
)
from hstlc.extraction.calibrate import (
    FLUXCAL_NONE,
    Response,
    choose_response,
    nuv_column_wavelengths,
    reference_response,
)
from hstlc.extraction.quality import check_source_events, check_span
from hstlc.extraction.stis_corrtag import order_boxes
from hstlc.io.events import DEFAULT_BLOCK_ROWS, EventTable, FileDigest, open_event_table
from hstlc.io.lightcurve_file import TIMEREF, Lightcurve, derive_columns
from hstlc.io.products import fuv_segment_letter
from hstlc.io.x1d import X1dRow, read_x1d

logger = logging.getLogger(__name__)

__all__ = ["AIRGLOW_WINDOWS", "COS_FUV_WLIM", "COS_NUV_WLIM", "EventHeader",
           "band_pixels", "bin_columns", "cos_boxes", "extract_lightcurve", "fuv_partner",
           "x1d_range"]

AIRGLOW_WINDOWS: tuple[tuple[float, float], ...] = ((1208.0, 1225.0), (1298.0, 1312.0))
COS_FUV_WLIM = (915.0, 1800.0)
COS_NUV_WLIM = (915.0, 3200.0)
XLIM = {"COS/FUV": (0.0, 16384.0), "COS/NUV": (0.0, 1024.0), "STIS": (0.0, 2048.0)}
SECONDS_PER_DAY = 86400.0


def _gti_of(table: EventTable, exptime: float) -> np.ndarray:
    """An event file's GTIs; ``[0, EXPTIME]`` when it has no GTI extension."""
    if table.gti is None or len(table.gti) == 0:
        logger.info("%s: no GTI extension; using [0, EXPTIME]", table.path.name)
        return np.array([[0.0, exptime]])
    return table.gti


# ----------------------------------------------------------------------------- headers
class EventHeader:
    """Keyword lookup in an event file's ext 1, then its primary header.

    :meth:`require` names the file and the keyword when it is absent.
    """

    def __init__(self, table: EventTable):
        self.table = table

    def get(self, key: str, default: Any = None) -> Any:
        """The keyword's value (text stripped), or ``default``."""
        for header in (self.table.header, self.table.primary_header):
            if key in header:
                value = header[key]
                return value.strip() if isinstance(value, str) else value
        return default

    def require(self, key: str) -> Any:
        """The keyword's value; MissingKeywordError when neither header has it."""
        value = self.get(key)
        if value is None:
            raise MissingKeywordError(
                f"{self.table.path.name}: ext {self.table.extension} has no {key}",
                filename=self.table.path.name)
        return value

    def number(self, key: str, *, low: float = -np.inf, default: Any = None) -> float:
        """The keyword as a finite number ``>= low`` (absent: ``default``, else required).

        Raises
        ------
        MissingKeywordError
            Absent without a default, or a value that is no such number (the detail names
            the file, the keyword and the value).
        """
        value = self.require(key) if default is None else self.get(key, default)
        try:
            number = float(value) if not isinstance(value, bool) else np.nan
        except (TypeError, ValueError):
            number = np.nan
        if not (np.isfinite(number) and number >= low):
            wanted = "a finite number" + (f" >= {low}" if low > -np.inf else "")
            raise MissingKeywordError(
                f"{self.table.path.name}: ext {self.table.extension} keyword {key}={value!r} "
                f"is not {wanted}", filename=self.table.path.name)
        return number

    def sdqflags(self) -> int:
        """SDQFLAGS as a DQ bit mask (absent: 0); MissingKeywordError when it is none."""
        flags = self.number("SDQFLAGS", low=0, default=0)
        if not flags.is_integer() or flags >= 2**31:
            raise MissingKeywordError(
                f"{self.table.path.name}: ext {self.table.extension} keyword SDQFLAGS="
                f"{self.get('SDQFLAGS')!r} is not a DQ bit mask", filename=self.table.path.name)
        return int(flags)


def cos_boxes(header: EventHeader, letter: str, group: str) -> list[Box]:
    """Source and background boxes of one COS segment / stripe from the box keywords.

    Rows ``LOC - HGT/2 <= YCORR < LOC + HGT/2`` for the source (``SP_LOC_x``,
    ``SP_HGT_x``) and the two background boxes (``B_BKGn_x``, ``B_HGTn_x``); the
    background is scaled by source height / (background height 1 + 2).
    """
    def rows(loc_key: str, height_key: str) -> tuple[float, float, float]:
        loc, height = header.number(loc_key), header.number(height_key, low=np.nextafter(0, 1))
        return loc - height / 2.0, loc + height / 2.0, height

    y0, y1, height = rows(f"SP_LOC_{letter}", f"SP_HGT_{letter}")
    b1 = rows(f"B_BKG1_{letter}", f"B_HGT1_{letter}")
    b2 = rows(f"B_BKG2_{letter}", f"B_HGT2_{letter}")
    scale = height / (b1[2] + b2[2])
    return [Box(group, SOURCE, y0, y1), Box(group, BACKGROUND, b1[0], b1[1], scale),
            Box(group, BACKGROUND, b2[0], b2[1], scale)]


def fuv_partner(path: Path) -> Path | None:
    """The other segment's corrtag of a COS FUV ``_a`` / ``_b`` file, when it exists."""
    name = path.name
    for mine, other in (("_a.fits", "_b.fits"), ("_b.fits", "_a.fits")):
        for suffix in ("", ".gz"):
            if name.endswith(mine + suffix):
                candidate = path.with_name(name[: -len(mine + suffix)] + other + suffix)
                return candidate if candidate.exists() else None
    return None


# ----------------------------------------------------------------------------- extraction
def x1d_range(spectra: Iterable[X1dRow]) -> tuple[float, float]:
    """The smallest and largest wavelength of x1d rows (NaN ignored)."""
    every = np.concatenate([s.wavelength for s in spectra])
    return float(np.nanmin(every)), float(np.nanmax(every))


def band_pixels(sums: BoxSums, group: str, selection: Selection,
                spectrum: X1dRow | None = None, x_scale: float = 1.0) -> int:
    """Pixel columns of the band covered by a group's events: the flux's ``npix``.

    With the group's x1d row: its good pixels whose wavelength is inside the band
    ``(WMIN, WMAX)``, outside the airglow windows and within the wavelength range of the
    group's counted events.  Without: the columns of the events' XCORR span (times
    ``x_scale``, the ends rounded to a column and included).  0 when the group counted
    no event.

    Examples
    --------
    >>> sums = BoxSums(np.zeros((1, 1)), np.zeros((1, 1)), np.zeros(1), np.zeros(1),
    ...                {"FUVA": (1100.0, 1400.0)}, {"FUVA": (10.2, 59.7)})
    >>> selection = Selection(0, (0.0, 16384.0), (915.0, 1800.0), ((1298.0, 1312.0),),
    ...                       np.array([[0.0, 1.0]]), 0.0, 1.0, 1)
    >>> band_pixels(sums, "FUVA", selection)
    51
    """
    if group not in sums.wave_range:
        return 0
    if spectrum is not None:
        lo, hi = sums.wave_range[group]
        wave = spectrum.wavelength
        ok = spectrum.good & (wave > selection.wlim[0]) & (wave < selection.wlim[1])
        ok &= (wave >= lo) & (wave <= hi)
        for a, b in selection.airglow:
            ok &= (wave < a) | (wave > b)
        return int(np.count_nonzero(ok))
    x0, x1 = sums.x_range[group]
    return int(round(x1 * x_scale) - round(x0 * x_scale) + 1)


def bin_columns(boxes: Sequence[Box], sums: Sequence[BoxSums], exposure: np.ndarray,
                npix: int, calibrated: bool) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The lightcurve columns from the per-box sums of one exposure's event files.

    ``gross`` sums the source boxes, ``background`` the background boxes times their
    scale, ``counts = gross - background``, ``net = counts / bins``; ``error`` is the
    square root of the counts' variance (the files' events are distinct: their variances
    add).  Calibrated, ``flux = (source - scale * background flux sums) / bins / npix``
    and ``flux_error = sqrt(flux variance) / bins / npix``; otherwise (or with
    ``npix = 0``) both are NaN.  See the module docstring for the variances.

    Parameters
    ----------
    boxes : sequence of Box
        Every file's boxes, in the order of the rows of ``sums``' ``gross`` arrays.
    sums : sequence of BoxSums
        Per event file.
    exposure : numpy.ndarray
        Exposure (s) of each bin inside the GTIs (:func:`gti_exposure`).
    npix : int
        Pixel columns averaged in the flux (:func:`band_pixels`, summed over the groups).
    calibrated : bool
        Whether ``sums`` hold converted flux sums.

    Returns
    -------
    keep : numpy.ndarray
        The bins with exposure (the others are dropped).
    columns : dict
        ``gross, background, bins, counts, net, flux, flux_error, error`` of those bins.
    """
    gross = np.concatenate([s.gross for s in sums])
    flux_sum = np.concatenate([s.flux for s in sums])
    src = np.array([b.role == SOURCE for b in boxes])
    bkg = ~src
    scale = np.array([b.scale for b in boxes])[:, None]
    keep = exposure > 0
    gross_col = gross[src].sum(axis=0)
    background = (scale[bkg] * gross[bkg]).sum(axis=0)
    var = np.sum([s.count_variance for s in sums], axis=0)
    flux, flux_var = np.full(exposure.shape, np.nan), np.full(exposure.shape, np.nan)
    if calibrated and npix > 0:
        net_flux = flux_sum[src].sum(axis=0) - (scale[bkg] * flux_sum[bkg]).sum(axis=0)
        norm = exposure * npix
        np.divide(net_flux, norm, out=flux, where=keep)
        np.divide(np.sum([s.flux_variance for s in sums], axis=0), norm * norm, out=flux_var,
                  where=keep)
    return keep, derive_columns(gross_col[keep], background[keep], exposure[keep], flux[keep],
                                var[keep], flux_variance=flux_var[keep])


def extract_lightcurve(
    events: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    x1d: str | os.PathLike[str] | None = "auto",
    *,
    step: float = 2.0,
    wlim: tuple[float, float] | None = None,
    xlim: tuple[float, float] | None = None,
    airglow: Sequence[tuple[float, float]] = AIRGLOW_WINDOWS,
    sdqflags: int | None = None,
    origin: float | None = None,
    calibration: str = "auto",
    reference_dir: str | os.PathLike[str] | None = None,
    find_partner: bool = True,
    checksums: bool | Mapping[str, str] = True,
    block_rows: int = DEFAULT_BLOCK_ROWS,
    threads: int | None = None,
    engine: str = "auto",
    max_time_span_s: float = DEFAULT_MAX_TIME_SPAN_S,
) -> Lightcurve:
    """Extract the calibrated lightcurve of one COS or STIS TIME-TAG exposure.

    Parameters
    ----------
    events : path or sequence of paths
        A COS ``corrtag`` (FUV: the ``_a`` or ``_b`` file; its partner is added when it
        exists and ``find_partner``), a STIS ``corrtag`` (see
        :func:`hstlc.extraction.stis_corrtag.tag_to_corrtag`),
        or an explicit list of the exposure's corrtag files.
    x1d : path, None or "auto"
        The exposure's x1d ("auto": ``<rootname>_x1d.fits`` beside the events, if any).
        Needed for STIS (the boxes come from it); for COS it gives the X1D calibration.
    step : float
        Bin width in seconds.
    wlim : (float, float), optional
        Wavelength band (exclusive); default COS FUV 915-1800 A, NUV 915-3200 A, STIS the
        x1d range.
    xlim : (float, float), optional
        XCORR range ``[xmin, xmax)``; default the whole detector.
    airglow : sequence of (float, float)
        Wavelength windows excluded (inclusive); ``()`` keeps airglow.
    sdqflags : int, optional
        Bad-event DQ bits; default the file's SDQFLAGS (0 for STIS without it).
    origin : float, optional
        Start of the first bin (s since EXPSTART); default the first GTI start.
    calibration : str
        ``auto`` (FLUXTAB+TDSTAB, else X1D, else NONE) or one of those to force it.
    reference_dir : path, optional
        Folder of reference files (``lref$``/``oref$`` names); ``$lref``/``$oref`` are
        also searched.
    find_partner : bool
        Add the other FUV segment's file automatically.
    checksums : bool or mapping
        Record the sha256 of every input in the metadata: True computes them, False
        records none, a mapping ``{file name: sha256}`` supplies known ones (the others
        are computed).  An event file's sha256 is computed in the pass that streams its
        table (:class:`hstlc.io.events.FileDigest`: a thread hashes the very bytes read,
        so the file is read once); the x1d's, and an event file read through astropy
        (compressed), by :func:`hstlc.fs.sha256_file`.
    block_rows, threads : int
        Streaming block size; blocks processed at once (default ``min(2, cpu_count)``).
        When event files are hashed in the pass, the files of an FUV pair are streamed at
        once and share the threads.  Neither changes the result.
    engine : str
        ``auto``, ``kernel`` or ``numpy``: the compiled single-pass kernel or the numpy
        reference path for the per-box sums (see :func:`hstlc.extraction.accumulate.accumulate_boxes`;
        the results are identical).
    max_time_span_s : float
        Longest EXPTIME or time grid accepted, checked before the grid is allocated.

    Returns
    -------
    Lightcurve
        Columns ``times, mjd, bins, gross, counts, net, flux, flux_error, background,
        error, dataset`` (dataset = 1) and provenance in ``meta``.

    Raises
    ------
    QualityError
        ``Time span too long`` (EXPTIME or the grid beyond ``max_time_span_s``), ``No
        source events`` (no bin counted a source event), ``Corrupt events`` (a bin's
        source sum is not finite).
    """
    paths = [Path(events)] if isinstance(events, (str, os.PathLike)) else [Path(p) for p in events]
    if find_partner and len(paths) == 1 and (other := fuv_partner(paths[0])) is not None:
        paths = sorted([paths[0], other])
    tables = [open_event_table(path) for path in paths]
    headers = [EventHeader(table) for table in tables]
    first = headers[0]
    roots = {str(h.get("ROOTNAME", "")).lower() for h in headers}
    if len(roots) > 1:
        raise UnsupportedProductError(f"{paths[0].name}: the event files belong to different "
                                      f"exposures {sorted(roots)}", filename=paths[0].name)
    rootname = str(first.get("ROOTNAME") or paths[0].name[:9]).lower()
    if x1d == "auto":
        candidate = paths[0].with_name(f"{rootname}_x1d.fits")
        x1d_path = candidate if candidate.exists() else None
    else:
        x1d_path = None if x1d is None else Path(x1d)
    plan = _plan(headers, x1d_path)
    expstart = float(first.require("EXPSTART"))
    exptime = float(first.require("EXPTIME"))
    expend = float(first.get("EXPEND", expstart + exptime / SECONDS_PER_DAY))
    check_span(paths[0].name, {"EXPTIME": exptime}, max_time_span_s).raise_for_reason()
    gti, origin, nbins = common_gti([_gti_of(table, exptime) for table in tables], step, origin,
                                    paths[0].name)
    check_span(paths[0].name, {"the time grid": nbins * step}, max_time_span_s).raise_for_reason()
    reference = (reference_response(first, plan.groups, reference_dir, 0.5 * (expstart + expend))
                 if plan.instrument == "COS" and calibration != FLUXCAL_NONE else None)
    response = choose_response(calibration, reference=reference, spectra=plan.spectra,
                               x1d_name=x1d_path.name if x1d_path else "")
    windows = tuple((float(lo), float(hi)) for lo, hi in airglow)
    band = (float(wlim[0]), float(wlim[1])) if wlim is not None else plan.wlim
    columns = (float(xlim[0]), float(xlim[1])) if xlim is not None else plan.xlim
    selections = [Selection(int(sdqflags) if sdqflags is not None else header.sdqflags(),
                            columns, band, windows, gti, origin, step, nbins)
                  for header in headers]
    threads = threads if threads is not None else min(2, os.cpu_count() or 1)
    known = checksums if isinstance(checksums, Mapping) else {}
    digests = {table.path.name: FileDigest() for table in tables
               if checksums is not False and not known.get(table.path.name)}
    # Hashing in the pass: sha256 is serial within a file (~0.11 s per 195 MB here), so the
    # files of a pair are streamed at once, sharing the threads (each adds its hash thread).
    concurrent = len(tables) > 1 and bool(digests)
    per_file = max(1, threads // len(tables)) if concurrent else threads

    def one_table(index: int) -> tuple[BoxSums, int]:
        table, boxes, selection = tables[index], plan.boxes[index], selections[index]
        groups = list(dict.fromkeys(box.group for box in boxes))
        need_x = not plan.spectra or any(g not in plan.spectra for g in groups)
        column_wavelength, mapped = plan.column_wavelength, "all"
        if plan.shared_background:
            sources = {box.group: (box.y0, box.y1) for box in boxes if box.role == SOURCE}
            column_wavelength = nuv_column_wavelengths(table, sources, block_rows)
            mapped = "background"
        part = accumulate_boxes(table, boxes, selection,
                                conversion=response.indexed(groups) if response.calibrated
                                else None,
                                column_wavelength=column_wavelength,
                                column_wavelength_boxes=mapped, x_scale=plan.x_scale,
                                block_rows=block_rows, threads=per_file, want_x_range=need_x,
                                engine=engine, digest=digests.get(table.path.name))
        return part, sum(band_pixels(part, g, selection, (plan.spectra or {}).get(g), plan.x_scale)
                         for g in groups)

    if concurrent:
        with ThreadPoolExecutor(len(tables), thread_name_prefix="hstlc-extract") as pool:
            results = list(pool.map(one_table, range(len(tables))))
    else:
        results = [one_table(i) for i in range(len(tables))]
    sums = [part for part, _ in results]
    npix = sum(n for _, n in results)
    return _assemble(
        tables, headers, [box for boxes in plan.boxes for box in boxes], sums, selections,
        response, npix, gti, x1d_path=x1d_path,
        checksums=_known_sums(checksums, digests), expstart=expstart,
        expend=expend, exptime=exptime, instrument=plan.instrument,
        detector=str(first.require("DETECTOR")).upper(), rootname=rootname)


@dataclass(frozen=True)
class _Plan:
    """What the headers (and the x1d) say about extracting one exposure."""

    instrument: str
    boxes: list[list[Box]]  # per event file
    spectra: dict[str, X1dRow] | None
    wlim: tuple[float, float]
    xlim: tuple[float, float]
    x_scale: float = 1.0
    column_wavelength: dict[str, np.ndarray] | None = None
    #: COS NUV: the stripes share their background rows (see nuv_column_wavelengths).
    shared_background: bool = False

    @property
    def groups(self) -> list[str]:
        return list(dict.fromkeys(b.group for boxes in self.boxes for b in boxes))


def _plan(headers: list[EventHeader], x1d_path: Path | None) -> _Plan:
    """Boxes, spectra and default limits of a COS or STIS exposure."""
    first = headers[0]
    name = first.table.path.name
    instrument = str(first.require("INSTRUME")).upper()
    detector = str(first.require("DETECTOR")).upper()
    if instrument == "COS":
        boxes = []
        for header in headers:
            if detector == "FUV":
                # the segment as the product detection decided it (SEGMENT, else the name)
                names = ["FUV" + fuv_segment_letter(header.table.primary_header,
                                                    header.table.path.name)]
            else:
                optical = str(header.require("OPT_ELEM")).upper()
                names = [f"NUV{x}" for x in ("AB" if optical == "G230L" else "ABC")]
            boxes.append([box for group in names for box in cos_boxes(header, group[-1], group)])
        spectra = ({row.label: row for row in read_x1d(x1d_path)} if x1d_path is not None
                   else None)
        wlim = COS_FUV_WLIM if detector == "FUV" else COS_NUV_WLIM
        return _Plan("COS", boxes, spectra, wlim, XLIM[f"COS/{detector}"],
                     shared_background=detector == "NUV")
    if instrument != "STIS":
        raise UnsupportedProductError(f"{name}: INSTRUME = {instrument!r}, not COS or STIS",
                                      filename=name)
    columns = {c.upper() for c in first.table.columns}
    if "WAVELENGTH" not in columns and "AXIS1" in columns:
        raise UnsupportedProductError(f"{name}: a STIS _tag; convert it with "
                                      "hstlc.extraction.stis_corrtag.tag_to_corrtag first", filename=name)
    if x1d_path is None:
        raise MissingKeywordError(f"{name}: STIS extraction needs the x1d (its A2CENTER, "
                                  "EXTRSIZE, BK* define the boxes)", filename=name)
    orders = read_x1d(x1d_path, need_geometry=True)
    spectra = {row.label: row for row in orders}
    low, high = x1d_range(orders)
    wlim = (float(np.nextafter(low, -np.inf)), float(np.nextafter(high, np.inf)))  # ends in
    return _Plan("STIS", [[box for row in orders for box in order_boxes(row)]], spectra, wlim,
                 XLIM["STIS"], 0.5, {n: s.wavelength for n, s in spectra.items()})


def _assemble(tables: list[EventTable], headers: list[EventHeader], boxes: list[Box],
              sums: list[BoxSums], selections: list[Selection], response: Response, npix: int,
              gti: np.ndarray, *, x1d_path: Path | None,
              checksums: bool | Mapping[str, str], **info: Any
              ) -> Lightcurve:
    """The lightcurve of the box sums (:func:`bin_columns`), with its provenance."""
    selection = selections[0]
    exposure = gti_exposure(gti, selection.origin, selection.step, selection.nbins)
    keep, columns = bin_columns(boxes, sums, exposure, npix, response.calibrated)
    check_source_events(columns["gross"], tables[0].path.name).raise_for_reason()
    times = selection.origin + selection.step * np.arange(selection.nbins)
    expstart = info["expstart"]
    dropped = int(np.count_nonzero(~keep))
    if dropped:
        logger.info("%s: %d of %d bins have no exposure inside the GTIs and are dropped",
                    tables[0].path.name, dropped, keep.size)
    first = headers[0]
    inputs = [t.path for t in tables] + ([x1d_path] if x1d_path else [])
    meta: dict[str, Any] = {
        "instrument": info["instrument"], "detector": info["detector"],
        "rootname": info["rootname"], "targname": str(first.get("TARGNAME", "")),
        "opt_elem": str(first.get("OPT_ELEM", "")), "cenwave": first.get("CENWAVE"),
        "aperture": str(first.get("APERTURE", "")), "telescop": str(first.get("TELESCOP", "HST")),
        "proposid": first.get("PROPOSID"), "ra_targ": first.get("RA_TARG"),
        "dec_targ": first.get("DEC_TARG"), "equinox": first.get("EQUINOX"),
        "expstart": expstart, "expend": info["expend"], "exptime": info["exptime"],
        "step": selection.step, "origin": selection.origin, "timeref": TIMEREF,
        "wmin": selection.wlim[0], "wmax": selection.wlim[1],
        "xmin": selection.xlim[0], "xmax": selection.xlim[1],
        "airglow": [list(w) for w in selection.airglow],
        "sdqflags": [s.sdqflags for s in selections], "gti": gti.tolist(),
        "boxes": [{"group": b.group, "role": b.role, "y0": b.y0, "y1": b.y1, "scale": b.scale,
                   "gross": float(g.sum())}
                  for b, g in zip(boxes, (g for s in sums for g in s.gross), strict=True)],
        "npix": npix, "fluxcal": response.source, "fluxcal_files": list(response.files),
        "dropped_bins": dropped, "input_files": [p.name for p in inputs],
        "input_sha256": _checksums(inputs, checksums),
    }
    mjd = expstart + times[keep] / SECONDS_PER_DAY
    return Lightcurve(times=times[keep], mjd=mjd, bjd_tdb=bjd_column(mjd, meta),
                      dataset=np.ones(int(np.count_nonzero(keep)), np.int16), meta=meta,
                      **columns)


def _known_sums(checksums: bool | Mapping[str, str], digests: Mapping[str, FileDigest]
                ) -> bool | dict[str, str]:
    """``checksums`` with the digests the read passes gave added (False stays False)."""
    if checksums is False:
        return False
    given = dict(checksums) if isinstance(checksums, Mapping) else {}
    given.update({name: d.sha256 for name, d in digests.items() if d.sha256 and not given.get(name)})
    return given


def _checksums(paths: list[Path], known: bool | Mapping[str, str]) -> dict[str, str]:
    """sha256 of each input by file name: none, all computed, or known ones reused."""
    if known is False:
        return {}
    from hstlc.fs import sha256_file

    given = known if isinstance(known, Mapping) else {}
    return {p.name: given.get(p.name) or sha256_file(p) for p in paths}
