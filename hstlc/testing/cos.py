"""COS TIME-TAG builders: a FUV ``corrtag_a``/``corrtag_b`` pair, a NUV ``corrtag``, and their x1d.

Source events fall in each segment's (FUV) or stripe's (NUV) box: rows follow a Gaussian
truncated at ``HGT // 2 - 0.5`` rows from SP_LOC, so every source event is inside the box
whichever edge convention (``LOC -/+ HGT//2`` or ``LOC -/+ HGT/2``) is used; columns follow
the blaze :func:`~hstlc.testing.draws.column_pmf` over the active columns. The background
is uniform over the active columns and over ``truth.background_rows`` (both background
stripes and the source box), ``background_rate`` counts/s per pixel row. Times are
quantised to 32 ms and stored as float32. In the x1d, FLUX = ``flat_flux`` where the
source falls and NET = FLUX * sensitivity, so that summing ``1 / (dt * NET/FLUX)`` over
events, per covered column, gives back ``flat_flux``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from astropy.io import fits

from hstlc.testing import cos_layout as layout
from hstlc.testing.cos_layout import COS_TICK, DEFAULT_EXPSTART, Stripe
from hstlc.testing.draws import (
    Exposure,
    Transform,
    dq_flags,
    folder_and_rng,
    rates_for,
    sample_pmf,
    sensitivity,
    truncated_normal,
)
from hstlc.testing.fitsutil import date_cards, gti_hdu, header, split_overrides, table_hdu, write
from hstlc.testing.truth import BACKGROUND, SOURCE, CosTruth, Flare, SegmentTruth, Sinusoid


@dataclass(frozen=True)
class _DqModel:
    """Per-event EPSILON and DQ draws of a detector."""

    sdqflags: int
    epsilon_scatter: float
    bad_fraction: float
    benign_fraction: float


@dataclass(frozen=True)
class _File:
    """The events of one corrtag file, before writing."""

    stripes: list[Stripe]
    data: dict[str, np.ndarray]
    component: np.ndarray
    n_source: list[int]


def _events(rng: np.random.Generator, exposure: Exposure, stripes: Sequence[Stripe],
            rates: Sequence[float], flare_counts: Sequence[int] | np.ndarray, bkg_rate: float,
            bkg_rows: tuple[float, float], dq: _DqModel, fuv: bool
            ) -> tuple[dict[str, np.ndarray], np.ndarray, list[int]]:
    """Events of one corrtag file: sources (+flares) of ``stripes`` and one background."""
    times, xs, ys, waves, comps, n_src = [], [], [], [], [], []
    for stripe, rate, n_flare in zip(stripes, rates, flare_counts, strict=True):
        t, comp = exposure.source_and_flare(rng, rate, int(n_flare))
        n = t.size
        x = stripe.xrange[0] + sample_pmf(rng, stripe.pmf, n) + rng.random(n) - 0.5
        half = stripe.source.height // 2 - 0.5
        y = stripe.source.loc + truncated_normal(rng, n, stripe.source.height / 8, half)
        times.append(t)
        xs.append(x)
        ys.append(y)
        waves.append(stripe.wave0 + stripe.disp * x)
        comps.append(comp)
        n_src.append(int(np.count_nonzero(comp == SOURCE)))
    t_bkg = exposure.background(rng, bkg_rate, bkg_rows[1] - bkg_rows[0])
    n_bkg = t_bkg.size
    times.append(t_bkg)
    lo, hi = stripes[0].xrange
    x_bkg = rng.uniform(lo - 0.5, hi - 0.5, n_bkg)
    y_bkg = rng.uniform(bkg_rows[0], bkg_rows[1], n_bkg)
    # a background event has the wavelength solution of the stripe whose SP_LOC is nearest
    centres = np.array([s.source.loc for s in stripes])
    nearest = np.argmin(np.abs(y_bkg[:, None] - centres[None, :]), axis=1) if n_bkg else []
    wave0 = np.array([s.wave0 for s in stripes])[nearest]
    disp = np.array([s.disp for s in stripes])[nearest]
    xs.append(x_bkg)
    ys.append(y_bkg)
    waves.append(wave0 + disp * x_bkg)
    comps.append(np.full(n_bkg, BACKGROUND, np.int8))

    t = np.floor(np.concatenate(times) / COS_TICK) * COS_TICK
    order = np.argsort(t, kind="stable")
    t, x, y = t[order], np.concatenate(xs)[order], np.concatenate(ys)[order]
    wave, comp = np.concatenate(waves)[order], np.concatenate(comps)[order]
    n = t.size
    eps = (np.ones(n) if dq.epsilon_scatter <= 0 else
           np.clip(rng.normal(1.0, dq.epsilon_scatter, n), 0.5, 2.0))
    pha = (np.clip(np.rint(rng.normal(12, 3, n)), 0, 31) if fuv else np.zeros(n)).astype(np.uint8)
    xmax, ymax = (16383, 1023) if fuv else (1023, 1023)
    data = {"TIME": t, "RAWX": np.clip(np.rint(x + 32.0), 0, xmax),
            "RAWY": np.clip(np.rint(y - 4.0), 0, ymax),
            "XCORR": x, "YCORR": y, "XDOPP": x, "XFULL": x, "YFULL": y, "WAVELENGTH": wave,
            "EPSILON": eps, "DQ": dq_flags(rng, n, dq.sdqflags, dq.bad_fraction,
                                           dq.benign_fraction), "PHA": pha}
    return data, comp, n_src


def _segment_truths(files: Mapping[str, _File], rates: Sequence[float], background_rate: float,
                    flare_split: np.ndarray, flat_flux: float) -> dict[str, SegmentTruth]:
    truths: dict[str, SegmentTruth] = {}
    stripes = [(f, j, s) for f in files.values() for j, s in enumerate(f.stripes)]
    for (f, j, s), rate, n_flare in zip(stripes, rates, flare_split, strict=True):
        sens = np.zeros(s.nelem)
        sens[s.x1d_active] = sensitivity(rate, s.pmf, flat_flux)
        truths[s.name] = SegmentTruth(
            s.name, rate, background_rate, s.source, s.bkg1, s.bkg2, s.xrange, s.wave0,
            s.disp, s.x1d_offset, s.pmf, sens, f.n_source[j], int(n_flare),
            int(np.count_nonzero(f.component == BACKGROUND)))
    return truths


def _build_cos(directory: str | os.PathLike[str], rootname: str, *, detector: str,
               files: dict[str, list[Stripe]], header_stripes: list[Stripe],
               source_rate: float | Mapping[str, float], background_rate: float,
               opt_elem: str, cenwave: int, seed: int = 0, exptime: float = 1000.0,
               flare: Flare | Mapping[str, Any] | None = None,
               sinusoid: Sinusoid | Mapping[str, Any] | None = None, gti: Any = None,
               with_x1d: bool = True, flat_flux: float = 1e-14, targname: str = "TEST-STAR",
               proposid: int = 12345, aperture: str = "PSA", fppos: int = 3,
               expstart: float = DEFAULT_EXPSTART, expflag: str = "NORMAL",
               n_events: int | None = None, epsilon_scatter: float = 0.0,
               bad_dq_fraction: float = 0.01, benign_dq_fraction: float = 0.03,
               _transform: Transform | None = None, **header_overrides: Any) -> dict[str, Any]:
    """Draw and write the corrtag ``files`` (key -> stripes) of one COS exposure, and its x1d.

    The keyword arguments after ``cenwave`` are the options every COS builder shares
    (documented in :func:`build_cos_fuv_pair`); unknown keywords are header overrides.
    """
    folder, rng = folder_and_rng(directory, seed)
    exposure = Exposure.make(exptime, gti, flare, sinusoid)
    live = exposure.live
    stripes = [s for group in files.values() for s in group]
    bkg_rows = layout.background_rows(header_stripes)
    rates, background_rate, flare_split = exposure.plan(
        rng, rates_for(source_rate, [s.name for s in stripes]), background_rate,
        len(files) * (bkg_rows[1] - bkg_rows[0]), n_events)
    fuv = detector == "FUV"
    sdqflags = layout.COS_FUV_SDQFLAGS if fuv else layout.COS_NUV_SDQFLAGS
    dq = _DqModel(sdqflags, epsilon_scatter, bad_dq_fraction, benign_dq_fraction)

    drawn: dict[str, _File] = {}
    k = 0
    for key, group in files.items():
        n = len(group)
        data, comp, n_src = _events(rng, exposure, group, rates[k:k + n], flare_split[k:k + n],
                                    background_rate, bkg_rows, dq, fuv)
        if _transform is not None:
            data, comp = _transform(data, comp)
        drawn[key] = _File(group, data, comp, n_src)
        k += n
    truths = _segment_truths(drawn, rates, background_rate, flare_split, flat_flux)

    span = float(max(exptime, exposure.gti[-1, 1]))
    dates = date_cards(expstart, span, live, expflag)
    if fuv:
        dates += [("EXPTIMEA", live, "Exposure time for segment A (seconds)"),
                  ("EXPTIMEB", live, "Exposure time for segment B (seconds)")]
    ext_cards = layout.ext1_cards(rootname=rootname, stripes=header_stripes, date_cards=dates,
                                  sdqflags=sdqflags, detector=detector,
                                  nevents=sum(len(f.component) for f in drawn.values()))
    if fuv:
        for key, letter in (("corrtag_a", "A"), ("corrtag_b", "B")):
            n_seg = len(drawn[key].component) if key in drawn else 0
            ext_cards.append((f"NEVENTS{letter}", n_seg, f"Number of events (segment {letter})"))
    p_over, e_over = split_overrides(header_overrides, {c[0] for c in ext_cards})

    def primary(filename: str, segment: str, nextend: int) -> fits.PrimaryHDU:
        cards = layout.primary_cards(
            rootname=rootname, filename=filename, detector=detector, segment=segment,
            nextend=nextend, opt_elem=opt_elem, cenwave=cenwave, aperture=aperture,
            targname=targname, proposid=proposid, fppos=fppos)
        return fits.PrimaryHDU(header=header(cards, p_over, True))

    paths: dict[str, Any] = {}
    for key, f in drawn.items():
        filename = f"{rootname}_{key}.fits"
        events = table_hdu(layout.CORRTAG_COLUMNS, f.data, header(ext_cards, e_over),
                           len(f.component))
        paths[key] = write([primary(filename, f.stripes[0].label if fuv else "N/A", 3), events,
                            gti_hdu(exposure.gti, rootname),
                            layout.timeline_hdu(span, rootname, rng)], folder / filename)
    paths["x1d"] = None
    if with_x1d:
        filename = f"{rootname}_x1d.fits"
        hdr = header([c for c in ext_cards if not c[0].startswith("NEVENTS")], e_over)
        sci = layout.x1d_hdu(stripes, [truths[s.name] for s in stripes], live, background_rate,
                             hdr)
        paths["x1d"] = write([primary(filename, "BOTH" if fuv else "N/A", 1), sci],
                             folder / filename)
    paths["truth"] = CosTruth(seed, exptime, expstart, exposure.gti, live, flat_flux, sdqflags,
                              exposure.flare, exposure.sinusoid, bkg_rows, truths,
                              {key: f.component for key, f in drawn.items()})
    return paths


def build_cos_fuv_pair(directory: str | os.PathLike[str], rootname: str = "lb1c01abq", *,
                       source_rate: float | Mapping[str, float] = 20.0,
                       background_rate: float = 0.05, segments: Sequence[str] = ("A", "B"),
                       opt_elem: str = "G130M", cenwave: int = 1291,
                       boxes: Mapping[str, Sequence[float]] | None = None,
                       **options: Any) -> dict[str, Any]:
    """Write a COS FUV ``<root>_corrtag_a.fits`` / ``_b.fits`` pair and its ``_x1d.fits``.

    Parameters
    ----------
    directory : path-like
        Output folder (created if needed).
    rootname : str
        Dataset rootname.
    source_rate : float or mapping
        Quiescent source counts/s in each segment's source box (``{'A': .., 'B': ..}``).
    background_rate : float
        Background counts/s per pixel row, uniform over ``truth.background_rows``.
    segments : sequence of {'A', 'B'}
        Which corrtag files to write (the other path is None). Both files carry the box
        keywords of both segments.
    opt_elem, cenwave : str, int
        Grating and central wavelength (they set the linear wavelength solution).
    boxes : mapping, optional
        Per segment ``(SP_LOC, SP_HGT, B_BKG1, B_HGT1, B_BKG2, B_HGT2, SP_NOM)``.
    **options
        The options below, shared by the COS builders; any other keyword is a header value
        to set (in the header that has the keyword, else the primary); ``None`` deletes
        the keyword. Use ``**{'DATE-OBS': ...}`` for dashed names.

    Other Parameters
    ----------------
    seed : int
        Seed of the ``numpy.random.Generator`` (default 0); equal seeds give identical files.
    exptime : float
        Span of the exposure in seconds (default 1000; events lie in ``[0, exptime)``); the
        EXPTIME keyword is the live time, the sum of the GTIs.
    flare, sinusoid : Flare, Sinusoid or dict, optional
        Injected variability (see :class:`Flare`, :class:`Sinusoid`).
    gti : array-like of [start, stop], optional
        Good time intervals (default ``[[0, exptime]]``); no events fall outside.
    with_x1d : bool
        Also write the x1d (default True; FLUX = ``flat_flux`` where the source falls).
    flat_flux : float
        The x1d FLUX, erg/s/cm2/A (default 1e-14).
    targname, proposid, aperture, fppos, expstart, expflag
        Header values (defaults 'TEST-STAR', 12345, 'PSA', 3, MJD 58108.51215764, 'NORMAL').
    n_events : int, optional
        Scale source and background rates so the expected total is ``n_events``.
    epsilon_scatter, bad_dq_fraction, benign_dq_fraction : float
        EPSILON ~ N(1, scatter) (1.0 exactly when 0, the default); fractions of events with
        a DQ bit inside (default 0.01) / outside (default 0.03) SDQFLAGS.

    Returns
    -------
    dict
        ``{'corrtag_a': Path|None, 'corrtag_b': Path|None, 'x1d': Path|None,
        'truth': CosTruth}``.
    """
    all_stripes = layout.fuv_stripes(opt_elem, cenwave, ("A", "B"), boxes)
    wanted = {seg.upper() for seg in segments}
    files = {f"corrtag_{s.name.lower()}": [s] for s in all_stripes if s.name in wanted}
    out = _build_cos(directory, rootname, detector="FUV", files=files,
                     header_stripes=all_stripes, source_rate=source_rate,
                     background_rate=background_rate, opt_elem=opt_elem, cenwave=cenwave,
                     **options)
    out.setdefault("corrtag_a", None)
    out.setdefault("corrtag_b", None)
    return out


def build_cos_nuv(directory: str | os.PathLike[str], rootname: str = "lb1c02nuq", *,
                  source_rate: float | Mapping[str, float] = 10.0,
                  background_rate: float = 0.01, opt_elem: str = "G185M", cenwave: int = 1882,
                  boxes: Mapping[str, Sequence[float]] | None = None,
                  **options: Any) -> dict[str, Any]:
    """Write a COS NUV ``<root>_corrtag.fits`` (stripes A, B, C; G230L: A, B) and x1d.

    Parameters and ``**options`` are those of :func:`build_cos_fuv_pair` (``source_rate``
    per stripe; the background is one uniform field shared by the stripes; an event's
    WAVELENGTH is that of the stripe whose SP_LOC is nearest). Returns
    ``{'corrtag', 'x1d', 'truth'}``; ``truth.segments`` is keyed 'A', 'B', 'C' and each
    ``n_background`` is the file's total.
    """
    stripes = layout.nuv_stripes(opt_elem, cenwave, boxes)
    return _build_cos(directory, rootname, detector="NUV", files={"corrtag": stripes},
                      header_stripes=stripes, source_rate=source_rate,
                      background_rate=background_rate, opt_elem=opt_elem, cenwave=cenwave,
                      **options)
