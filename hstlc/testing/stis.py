"""STIS MAMA TIME-TAG builder: ``<root>_tag.fits`` (first order, echelle or imaging) + ``_x1d.fits``.

Positions follow the STIS conventions: x1d quantities (A2CENTER, EXTRSIZE, BK*SIZE,
BK*OFFST and the WAVELENGTH index) are LOW-RES pixels 0..1023 (0-based); the event
columns AXIS1/AXIS2 are HIGH-RES pixels 0..2047. Low-res column = AXIS1 // 2, low-res
row = AXIS2 / 2. An order's rows are ``|AXIS2 / 2 - (A2CENTER + SHIFTA2)| <= EXTRSIZE / 2``
with SHIFTA2 from the x1d SCI header. Event times are 125 us ticks stored as ``1J`` with
``TSCAL1``. The background is ``background_rate`` counts/s per LOW-RES row, uniform over
the whole detector. STIS primaries carry TDATEOBS/TEXPSTRT (the time keywords themselves
are in ext 1), no IMAGETYP and no FLUXTAB (STIS names PHOTTAB), like real STIS files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import astuple, dataclass
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.time import Time

from hstlc.io.x1d import GEOMETRY_COLUMNS, OrderGeometry
from hstlc.testing.draws import (
    Exposure,
    Transform,
    column_pmf,
    folder_and_rng,
    rate_error,
    rates_for,
    sample_pmf,
    sensitivity,
    to_flux,
    truncated_normal,
)
from hstlc.testing.fitsutil import (
    Card,
    date_cards,
    gti_hdu,
    header,
    split_overrides,
    table_hdu,
    write,
)
from hstlc.testing.truth import BACKGROUND, SOURCE, Flare, OrderTruth, Sinusoid, StisTruth

STIS_TICK = 1.25e-4
"""STIS MAMA TIME-TAG tick (s); TIME is stored as integer ticks with TSCAL1 = STIS_TICK."""
STIS_SDQFLAGS = 31743
TAG_COLUMNS = (
    ("TIME", ">i4", "s"), ("AXIS1", ">i2", "pixel"), ("AXIS2", ">i2", "pixel"),
    ("DETAXIS1", ">i2", "pixel"),
)

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


def _orders(mode: str, spec: Mapping[str, Any], n_orders: int, order_spacing: float
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


def primary_cards(*, rootname: str, filename: str, detector: str, mode: str,
                  opt_elem: str, cenwave: int | None, aperture: str, targname: str,
                  proposid: int, expstart: float, expend: float, exptime: float,
                  nextend: int, pfltfile: str, lfltfile: str, bpixtab: str) -> list[Card]:
    """The primary header of a STIS product (CENWAVE only when there is one)."""
    iso = Time(expstart, format="mjd", scale="utc").isot
    cards: list[Card] = [
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


def _ext1_cards(rootname: str, dates: list[Card], nevents: int, extname: str,
                shifta2: float | None) -> list[Card]:
    cards: list[Card] = [
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
        *dates,
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


def _x1d_hdu(orders: Sequence[OrderTruth], shifta2: float, bkg_rate: float,
             exptime: float, hdr: fits.Header) -> fits.BinTableHDU:
    rows: dict[str, list[Any]] = {}
    for o in orders:
        net = o.source_rate * o.source_pmf
        bkg = np.full(1024, bkg_rate * o.geometry.extrsize / 1024)
        net_err = rate_error(net + bkg, exptime)
        values = {"SPORDER": o.sporder, "NELEM": 1024, "WAVELENGTH": o.wavelength,
                  "GROSS": net + bkg, "BACKGROUND": bkg, "NET": net,
                  "FLUX": to_flux(net, o.sensitivity), "ERROR": to_flux(net_err, o.sensitivity),
                  "NET_ERROR": net_err, "DQ": np.zeros(1024), "MAXSRCH": 0,
                  "EXTRLOCY": np.full(1024, o.geometry.a2center + shifta2), "OFFSET": 0.0}
        values.update(zip(GEOMETRY_COLUMNS, astuple(o.geometry)[: len(GEOMETRY_COLUMNS)],
                          strict=True))
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
    return table_hdu(columns, data, hdr, len(orders))


@dataclass(frozen=True)
class _Drawn:
    """The events of a tag file (time-sorted columns, component and SPORDER of each event)."""

    data: dict[str, np.ndarray]
    component: np.ndarray
    event_order: np.ndarray
    orders: dict[int, OrderTruth]
    n_background: int


def _draw(rng: np.random.Generator, exposure: Exposure, geometry: list[tuple[Any, ...]],
          rates: list[float], flare_split: np.ndarray, background_rate: float, shifta2: float,
          flat_flux: float) -> _Drawn:
    """Draw the source, flare and background events of every order (or the point source)."""
    t_parts, x_parts, y_parts, comp_parts, order_parts = [], [], [], [], []
    orders: dict[int, OrderTruth] = {}
    for k, rate in enumerate(rates):
        t, comp = exposure.source_and_flare(rng, rate, int(flare_split[k]))
        n = t.size
        if geometry:
            sporder, a2c, extr, bk1s, bk2s, bk1o, bk2o, wave = geometry[k]
            pmf = column_pmf(1024)
            x: np.ndarray = 2 * sample_pmf(rng, pmf, n) + rng.integers(0, 2, n)
            y: np.ndarray = 2 * (a2c + shifta2) + truncated_normal(rng, n, extr / 2.5, extr - 1.5)
            orders[sporder] = OrderTruth(sporder, OrderGeometry(a2c, extr, bk1s, bk2s, bk1o, bk2o),
                                         wave,
                                         sensitivity(rate, pmf, flat_flux), pmf, rate,
                                         int(np.count_nonzero(comp == SOURCE)),
                                         int(flare_split[k]))
        else:  # imaging: a point source at the detector centre
            sporder = 0
            x = 1024.0 + rng.normal(0.0, 3.0, n)
            y = 1024.0 + rng.normal(0.0, 3.0, n)
        t_parts.append(t)
        x_parts.append(x)
        y_parts.append(y)
        comp_parts.append(comp)
        order_parts.append(np.full(n, sporder, np.int16))
    t_bkg = exposure.background(rng, background_rate, 1024)
    n_bkg = t_bkg.size
    t_parts.append(t_bkg)
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
    # DETAXIS1 is AXIS1 before the onboard Doppler correction (+-3 pixels over an orbit)
    doppler = np.rint(3.0 * np.sin(2 * np.pi * ticks * STIS_TICK / 5700.0)).astype(np.int16)
    data = {"TIME": ticks, "AXIS1": axis1, "AXIS2": axis2,
            "DETAXIS1": np.clip(axis1 + doppler, 0, 2047)}
    return _Drawn(data, comp, event_order, orders, n_bkg)


def build_stis_tag(directory: str | os.PathLike[str], rootname: str = "oc5r01abq", *,
                   mode: str = "first_order", detector: str = "FUV-MAMA", seed: int = 0,
                   exptime: float = 1000.0, source_rate: float | Mapping[int, float] = 20.0,
                   background_rate: float = 0.005, flare: Flare | Mapping[str, Any] | None = None,
                   sinusoid: Sinusoid | Mapping[str, Any] | None = None, gti: Any = None,
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
    folder, rng = folder_and_rng(directory, seed)
    exposure = Exposure.make(exptime, gti, flare, sinusoid)
    live = exposure.live
    geometry = _orders(mode, spec, n_orders, order_spacing)
    rates, background_rate, flare_split = exposure.plan(
        rng, rates_for(source_rate, [g[0] for g in geometry] or [0]), background_rate, 1024,
        n_events)
    drawn = _draw(rng, exposure, geometry, rates, flare_split, background_rate, shifta2,
                  flat_flux)
    data, comp, orders = drawn.data, drawn.component, drawn.orders
    if _transform is not None:
        data, comp = _transform(data, comp)

    span = float(max(exptime, exposure.gti[-1, 1]))
    dates = date_cards(expstart, span, live, expflag)
    ext_cards = _ext1_cards(rootname, dates, len(comp), "EVENTS", None)
    p_over, e_over = split_overrides(header_overrides,
                                     {c[0] for c in ext_cards} | {"SHIFTA1", "SHIFTA2"})

    def primary(filename: str, nextend: int) -> fits.PrimaryHDU:
        cards = primary_cards(
            rootname=rootname, filename=filename, nextend=nextend, detector=detector, mode=mode,
            opt_elem=spec["opt_elem"], cenwave=spec["cenwave"], aperture=spec["aperture"],
            targname=targname, proposid=proposid, expstart=expstart,
            expend=expstart + span / 86400.0, exptime=live, pfltfile=pfltfile,
            lfltfile=lfltfile, bpixtab=bpixtab)
        return fits.PrimaryHDU(header=header(cards, p_over, True))

    filename = f"{rootname}_tag.fits"
    events = table_hdu(TAG_COLUMNS, data, header(ext_cards, e_over), len(comp),
                       scales={"TIME": STIS_TICK})
    out: dict[str, Any] = {"tag": write([primary(filename, 2), events,
                                         gti_hdu(exposure.gti, rootname)], folder / filename)}
    out["x1d"] = None
    if with_x1d and orders:
        x1d_name = f"{rootname}_x1d.fits"
        hdr = header(_ext1_cards(rootname, dates, len(comp), "SCI", shifta2), e_over)
        sci = _x1d_hdu(list(orders.values()), shifta2, background_rate, live, hdr)
        out["x1d"] = write([primary(x1d_name, 1), sci], folder / x1d_name)
    out["truth"] = StisTruth(seed, mode, exptime, expstart, exposure.gti, live, flat_flux,
                             shifta2, background_rate, drawn.n_background, orders, comp,
                             drawn.event_order,
                             exposure.flare, exposure.sinusoid,
                             None if orders else (1024.0, 1024.0))
    return out
