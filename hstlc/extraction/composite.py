"""Composite lightcurves (the HLSP): every exposure of one configuration of one target.

Members share the group key (INSTRUME, DETECTOR, normalised TARGNAME, OPT_ELEM, CENWAVE,
APERTURE).  The composite:

1. measures each member's wavelength coverage -- the extreme WAVELENGTH of its good-DQ
   events inside the instrument's default band (COS FUV 915-1800 A, NUV 915-3200 A,
   STIS the x1d range);
2. takes the range common to all members (the intersection, ends included);
3. re-extracts every member over that range and stacks them in EXPSTART order, with
   ``dataset`` = 1..K.  A member whose bins are partly empty stays in; a member with no
   coverage or no event in the common range is left out, logged and listed in
   :attr:`CompositeResult.skipped` -- it never stops the others;
4. writes ``hlsp_hstlc_hst_{instrume}-{detector}_{targname}_{opt_elem}_{cenwave}_{aperture}
   _{version}_sci.fits`` (lower case, file-name safe) atomically: a primary header with
   the HLSP keywords (HLSPNAME, HLSPLEAD, PROPOSID from the caller; TELESCOP, INSTRUME,
   DETECTOR, FILTER, TARGNAME, RA_TARG, DEC_TARG, EQUINOX, DATE-OBS, EXPSTART, EXPEND,
   EXPTIME from the members), ext 1 ``LIGHTCURVE`` (WMIN/WMAX and the extraction
   provenance) and ext 2 ``MEMBERS`` (dataset, rootname, EXPSTART, exposure, files).

Reading and writing stay at the edges of :func:`make_composite`: the stacking itself,
:func:`stack_lightcurves`, is a function of :class:`~hstlc.io.lightcurve_file.Lightcurve`
objects.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.time import Time

from hstlc.errors import HstlcError
from hstlc.extraction.barycentre import bjd_column
from hstlc.extraction.extract import (
    COS_FUV_WLIM,
    COS_NUV_WLIM,
    EventHeader,
    extract_lightcurve,
    fuv_partner,
    x1d_range,
)
from hstlc.io.events import map_event_blocks, open_event_table
from hstlc.io.fits_writer import write_fits
from hstlc.io.headers import GroupKey
from hstlc.io.lightcurve_file import (
    COLUMNS,
    Lightcurve,
    provenance_cards,
    set_card,
    software_cards,
    table_hdu,
)
from hstlc.io.x1d import read_x1d
from hstlc.targets import normalize_targname

logger = logging.getLogger(__name__)

MemberSpec = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
_UNSAFE = re.compile(r"[^a-z0-9.+-]+")


@dataclass(frozen=True)
class CompositeResult:
    """What :func:`make_composite` did.

    Attributes
    ----------
    path : Path or None
        The HLSP file (None when no member was usable).
    lightcurve : Lightcurve or None
        The stacked lightcurve.
    members : tuple of dict
        Per included member: dataset, rootname, expstart, exptime (sum of bins), files.
    skipped : tuple of (str, str)
        Members left out and why.
    wmin, wmax : float
        The common wavelength range (NaN when there is none).
    """

    path: Path | None
    lightcurve: Lightcurve | None
    members: tuple[dict[str, Any], ...]
    skipped: tuple[tuple[str, str], ...]
    wmin: float
    wmax: float


def safe_name(text: Any) -> str:
    """Lower-case ``text`` reduced to ``a-z 0-9 . + -`` (runs of others become ``-``).

    Examples
    --------
    >>> safe_name("GJ 436/b"), safe_name("52X0.2")
    ('gj-436-b', '52x0.2')
    """
    cleaned = _UNSAFE.sub("-", str(text).strip().lower()).strip("-")
    return cleaned or "none"


def hlsp_target(targname: str) -> str:
    """The target part of an HLSP file name: one per target name, never shared.

    A name already safe (its lower case is :func:`safe_name`'s result, e.g. ``GJ436``)
    keeps the 2016 form; any other gets ``-`` and the first 8 hex digits of the sha256
    of the name, as :func:`hstlc.fs.safe_dirname` does for target folders, so that
    ``../X`` and ``X``, or ``A/B`` and ``A:B``, never write the same composite file.

    Examples
    --------
    >>> hlsp_target("GJ436")
    'gj436'
    >>> hlsp_target("A/B") != hlsp_target("A:B")
    True
    """
    cleaned = safe_name(targname)
    if cleaned == str(targname).lower():
        return cleaned
    digest = hashlib.sha256(str(targname).encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{cleaned}-{digest}"


def hlsp_filename(key: GroupKey, version: str = "v1") -> str:
    """``hlsp_hstlc_hst_{instrume}-{detector}_{targname}_{opt_elem}_{cenwave}_{aperture}_v1_sci.fits``.

    The target part is :func:`hlsp_target`'s, so that two groups never share a file.
    """
    parts = [f"{safe_name(key.instrume)}-{safe_name(key.detector)}", hlsp_target(key.targname),
             safe_name(key.opt_elem), safe_name(key.cenwave), safe_name(key.aperture)]
    return f"hlsp_hstlc_hst_{'_'.join(parts)}_{safe_name(version)}_sci.fits"


def _member_files(spec: MemberSpec) -> tuple[list[Path], Path | None]:
    """Event files and x1d of a member given as one corrtag path or a list of its files."""
    paths = [Path(spec)] if isinstance(spec, (str, os.PathLike)) else [Path(p) for p in spec]
    x1d = [p for p in paths if p.name.lower().endswith(("_x1d.fits", "_x1d.fits.gz"))]
    events = [p for p in paths if p not in x1d]
    if len(events) == 1 and (other := fuv_partner(events[0])) is not None:
        events = sorted([events[0], other])
    return events, (x1d[0] if x1d else None)


def _default_band(events: list[Path], x1d: Path | None) -> tuple[float, float]:
    """The instrument's band: COS FUV or NUV, STIS the x1d range (without x1d: all)."""
    header = EventHeader(open_event_table(events[0]))
    if str(header.get("INSTRUME")).upper() == "COS":
        detector = str(header.get("DETECTOR")).upper()
        return COS_FUV_WLIM if detector == "FUV" else COS_NUV_WLIM
    return x1d_range(read_x1d(x1d)) if x1d is not None else (0.0, np.inf)


def wavelength_coverage(events: list[Path], x1d: Path | None = None) -> tuple[float, float] | None:
    """Extreme WAVELENGTH of the good-DQ events inside the default band (None: no event).

    The band is inclusive here (an event exactly at a band edge counts).
    """
    low, high = _default_band(events, x1d)
    lows, highs = [], []
    for path in events:
        table = open_event_table(path)
        flags = int(table.header.get("SDQFLAGS", 0))

        def extremes(block: dict[str, np.ndarray], flags: int = flags) -> tuple[float, float]:
            wave = block["WAVELENGTH"]
            good = (block["DQ"].astype(np.int64) & flags) == 0
            good &= (wave >= low) & (wave <= high)
            if not good.any():
                return np.inf, -np.inf
            picked = wave[good]
            return float(picked.min()), float(picked.max())

        for lo, hi in map_event_blocks(table, ["WAVELENGTH", "DQ"], extremes):
            lows.append(lo)
            highs.append(hi)
    if not lows or min(lows) > max(highs):
        return None
    return min(lows), max(highs)


def _inclusive(wmin: float, wmax: float) -> tuple[float, float]:
    """Limits for the (exclusive) extraction band that keep events at ``wmin``/``wmax``."""
    return float(np.nextafter(np.float32(wmin), -np.inf)), float(np.nextafter(np.float32(wmax),
                                                                                np.inf))


def _key_of(meta: Mapping[str, Any], targname: str) -> GroupKey:
    """The group key of a lightcurve's metadata, with ``targname`` (CENWAVE absent: 0)."""
    return GroupKey(str(meta["instrument"]), str(meta["detector"]), targname,
                    str(meta["opt_elem"]), int(meta.get("cenwave") or 0), str(meta["aperture"]))


def make_composite(
    members: Sequence[MemberSpec],
    output_dir: str | os.PathLike[str],
    *,
    hlsp_name: str,
    hlsp_lead: str,
    proposid: str | int,
    key: GroupKey | None = None,
    version: str = "v1",
    **extract_options: Any,
) -> CompositeResult:
    """Build and write the composite lightcurve of a group of exposures.

    Parameters
    ----------
    members : sequence
        Each member: the path of a corrtag (the FUV partner and ``<rootname>_x1d.fits``
        beside it are found), or a list of its corrtag(s) and x1d.
    output_dir : path
        Folder of the HLSP file (created if needed).
    hlsp_name, hlsp_lead, proposid : str
        The HLSP program keywords HLSPNAME, HLSPLEAD and PROPOSID (from the settings).
    key : GroupKey, optional
        The group key (targname normalised by the caller); default: taken from the
        first member with its TARGNAME as written.
    version : str
        Version tag in the file name.
    **extract_options
        Passed to :func:`hstlc.extraction.extract.extract_lightcurve` (step, calibration,
        reference_dir, airglow, ...); ``wlim`` is set to the common range.

    Returns
    -------
    CompositeResult
    """
    if "wlim" in extract_options:
        raise ValueError("make_composite sets wlim itself (the members' common range)")
    skipped: list[tuple[str, str]] = []
    usable = []
    for spec in members:
        events, x1d = _member_files(spec)
        name = events[0].name
        coverage = wavelength_coverage(events, x1d)
        if coverage is None:
            logger.warning("composite: %s has no good event in its band; left out", name)
            skipped.append((name, "no good event in the default wavelength band"))
            continue
        usable.append((events, x1d, coverage))
    if not usable:
        return CompositeResult(None, None, (), tuple(skipped), float("nan"), float("nan"))
    wmin = max(c[0] for _, _, c in usable)
    wmax = min(c[1] for _, _, c in usable)
    if wmin > wmax:
        logger.warning("composite: the members' wavelength ranges do not overlap")
        skipped += [(e[0].name, "no common wavelength range") for e, _, _ in usable]
        return CompositeResult(None, None, (), tuple(skipped), float("nan"), float("nan"))

    curves = []
    for events, x1d, _ in usable:
        lc = extract_lightcurve(events, x1d if x1d is not None else "auto",
                                wlim=_inclusive(wmin, wmax), find_partner=False,
                                **extract_options)
        if not any(box["gross"] > 0 for box in lc.meta["boxes"]):
            logger.warning("composite: %s has no event in the common range %.3f-%.3f A; "
                           "left out", events[0].name, wmin, wmax)
            skipped.append((events[0].name, f"no event in the common range {wmin}-{wmax} A"))
            continue
        curves.append(lc)
    if not curves:
        return CompositeResult(None, None, (), tuple(skipped), wmin, wmax)
    stacked, infos = stack_lightcurves(curves, wmin, wmax)
    if key is None:
        key = _key_of(stacked.meta, str(stacked.meta.get("targname", "")))
    target = normalize_targname(key.targname)
    for lc in curves:
        other = _key_of(lc.meta, key.targname)
        name = str(lc.meta.get("targname", ""))
        if other != key or normalize_targname(name) != target:
            raise HstlcError(f"composite members differ: {lc.meta['rootname']} is "
                             f"{_key_of(lc.meta, name).label}, expected {key.label}")
    path = Path(output_dir) / hlsp_filename(key, version)
    _write(stacked, infos, key, path, hlsp_name=hlsp_name, hlsp_lead=hlsp_lead,
           proposid=proposid)
    logger.info("composite %s: %d members, %.3f-%.3f A", path.name, len(curves), wmin, wmax)
    return CompositeResult(path, stacked, infos, tuple(skipped), wmin, wmax)


def stack_lightcurves(curves: Sequence[Lightcurve], wmin: float, wmax: float
                      ) -> tuple[Lightcurve, tuple[dict[str, Any], ...]]:
    """Stack member lightcurves in EXPSTART order, numbering them ``dataset`` = 1..K.

    Each member keeps its rows (times stay seconds since its own EXPSTART; ``mjd`` is
    absolute); the metadata is the earliest member's, with the common range ``wmin``,
    ``wmax``, the members' rootnames, inputs and dropped bins, and FLUXCAL and NPIX when
    all members share them (FLUXCAL ``MIXED``, NPIX None otherwise).

    Returns
    -------
    lightcurve : Lightcurve
        The stacked rows.
    members : tuple of dict
        Per member in dataset order: dataset, rootname, expstart, exptime (sum of its
        bins), files, fluxcal, npix.
    """
    curves = sorted(curves, key=lambda lc: float(lc.meta["expstart"]))
    columns = {name: np.concatenate([getattr(lc, name) for lc in curves]) for name in COLUMNS}
    columns["dataset"] = np.concatenate([np.full(len(lc), i, np.int16)
                                         for i, lc in enumerate(curves, start=1)])
    meta = dict(curves[0].meta)
    meta.update({"wmin": wmin, "wmax": wmax, "members": [lc.meta["rootname"] for lc in curves],
                 "input_files": [f for lc in curves for f in lc.meta["input_files"]],
                 "input_sha256": {k: v for lc in curves
                                  for k, v in lc.meta.get("input_sha256", {}).items()},
                 "dropped_bins": sum(lc.meta.get("dropped_bins", 0) for lc in curves),
                 "boxes": [], "gti": None,
                 # per member in the MEMBERS table; the header gives a value all members share
                 "fluxcal": _shared([lc.meta.get("fluxcal") for lc in curves], "MIXED"),
                 "npix": _shared([lc.meta.get("npix") for lc in curves], None),
                 "fluxcal_files": sorted({f for lc in curves
                                          for f in lc.meta.get("fluxcal_files", [])})})
    members = tuple({"dataset": i, "rootname": lc.meta["rootname"],
                     "expstart": float(lc.meta["expstart"]), "exptime": float(lc.bins.sum()),
                     "files": list(lc.meta["input_files"]),
                     "fluxcal": str(lc.meta.get("fluxcal", "NONE")),
                     "npix": int(lc.meta.get("npix", 0))}
                    for i, lc in enumerate(curves, start=1))
    return Lightcurve(meta=meta, bjd_tdb=bjd_column(columns["mjd"], meta), **columns), members


def _shared(values: list[Any], otherwise: Any) -> Any:
    """The value every member has, else ``otherwise``."""
    return values[0] if values and all(v == values[0] for v in values) else otherwise


def _write(lc: Lightcurve, members: tuple[dict[str, Any], ...], key: GroupKey, path: Path, *,
           hlsp_name: str, hlsp_lead: str, proposid: str | int) -> None:
    meta = lc.meta
    ends = lc.mjd + lc.bins / 86400.0
    primary = fits.PrimaryHDU()
    cards: list[tuple[str, Any, str]] = [
        ("HLSPNAME", hlsp_name, "high-level science product name"),
        ("HLSPLEAD", hlsp_lead, "HLSP lead"),
        ("PROPOSID", proposid, "HLSP program identifier"),
        ("TELESCOP", meta.get("telescop", "HST"), "telescope"),
        ("INSTRUME", key.instrume, "instrument"),
        ("DETECTOR", key.detector, "detector"),
        ("FILTER", key.opt_elem, "optical element (OPT_ELEM)"),
        ("CENWAVE", key.cenwave, "central wavelength"),
        ("APERTURE", key.aperture, "aperture"),
        ("TARGNAME", key.targname, "target name (normalised)"),
        ("RA_TARG", meta.get("ra_targ"), "right ascension of the target (deg)"),
        ("DEC_TARG", meta.get("dec_targ"), "declination of the target (deg)"),
        ("EQUINOX", meta.get("equinox"), "equinox of the coordinates"),
        ("DATE-OBS", Time(float(lc.mjd.min()), format="mjd").isot, "start of the first bin"),
        ("EXPSTART", float(lc.mjd.min()), "start of the first bin (MJD)"),
        ("EXPEND", float(ends.max()), "end of the last bin (MJD)"),
        ("EXPTIME", float(lc.bins.sum()), "total exposure in the bins (s)"),
        ("NMEMBERS", len(members), "exposures in this composite"),
    ]
    for keyword, value, comment in cards + software_cards():
        if value is not None:
            set_card(primary.header, keyword, value, comment)
    table = table_hdu(lc.columns(), provenance_cards(meta))
    set_card(table.header, "WMIN", meta["wmin"], "common minimum wavelength (A, included)")
    set_card(table.header, "WMAX", meta["wmax"], "common maximum wavelength (A, included)")
    width = max([len(",".join(m["files"])) for m in members] + [1])
    member_table = fits.BinTableHDU.from_columns([
        fits.Column(name="DATASET", format="I", array=[m["dataset"] for m in members]),
        fits.Column(name="ROOTNAME", format="12A", array=[m["rootname"] for m in members]),
        fits.Column(name="EXPSTART", format="D", unit="d",
                    array=[m["expstart"] for m in members]),
        fits.Column(name="EXPTIME", format="D", unit="s", array=[m["exptime"] for m in members]),
        fits.Column(name="FILES", format=f"{width}A",
                    array=[",".join(m["files"]) for m in members]),
        fits.Column(name="FLUXCAL", format="16A", array=[m["fluxcal"] for m in members]),
        fits.Column(name="NPIX", format="J", array=[m["npix"] for m in members]),
    ], name="MEMBERS")
    write_fits([primary, table, member_table], path)
