"""Files a TIME-TAG pipeline must refuse, each with the ``bad_data`` reason it should produce.

Most are a normal COS FUV ``_corrtag_a.fits`` (segment B absent) or STIS ``_tag.fits``
with one defect (a keyword value, a rewritten TIME column, a cut file); the others are
products that are not event lists at all (ACCUM acquisitions, a COS lamp-flash table,
a text file with a FITS name).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from hstlc import errors
from hstlc.testing import cos_layout, stis
from hstlc.testing.cos import build_cos_fuv_pair
from hstlc.testing.fitsutil import header, table_hdu, write
from hstlc.testing.stis import STIS_TICK, build_stis_tag

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

BAD_INSTRUMENTS: dict[str, tuple[str, ...]] = {
    kind: ("cos",) if kind == "lampflash" else ("cos", "stis") for kind in BAD_KINDS
}
"""The instruments :func:`build_bad` can write each kind for (a lamp flash is COS only)."""

_SHIFT_BACK = 100.0
"""Seconds the ``nonmonotonic_time`` block of 50 events is moved back."""
_SINGULAR_TIME = 5.0
"""TIME of the 20 events of ``singular_time``."""


def _in_time_units(seconds: float, time: np.ndarray) -> float:
    """``seconds`` in the units of a TIME column (float seconds, or STIS integer ticks)."""
    return seconds if time.dtype.kind == "f" else round(seconds / STIS_TICK)


def _shift_block(data: dict[str, np.ndarray], comp: np.ndarray
                 ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    t = np.array(data["TIME"], copy=True)
    i0 = t.size // 2
    t[i0:i0 + 50] = t[i0:i0 + 50] - _in_time_units(_SHIFT_BACK, t)
    return {**data, "TIME": np.maximum(t, 0)}, comp


def _empty(data: dict[str, np.ndarray], comp: np.ndarray
           ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    return {k: v[:0] for k, v in data.items()}, comp[:0]


def _singular(data: dict[str, np.ndarray], comp: np.ndarray
              ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    out = {k: np.array(v[:20], copy=True) for k, v in data.items()}
    out["TIME"][:] = _in_time_units(_SINGULAR_TIME, out["TIME"])
    return out, comp[:20]


def _accum_file(path: Path, instrument: str, rootname: str) -> Path:
    if instrument == "stis":
        cards = stis.primary_cards(
            rootname=rootname, filename=path.name, detector="FUV-MAMA", mode="imaging",
            opt_elem="MIRROR", cenwave=None, aperture="F25SRF2", targname="TEST-STAR",
            proposid=12345, expstart=56000.25, expend=56000.25001, exptime=0.74, nextend=1,
            pfltfile="N/A", lfltfile="N/A", bpixtab="N/A")
        primary = fits.PrimaryHDU(header=header(cards, {"OBSMODE": "ACCUM"}, True))
        sci = fits.ImageHDU(np.zeros((32, 32), np.int16), name="SCI")
        sci.header["EXPTIME"] = 0.74
        sci.header["EXPFLAG"] = "NORMAL"
        return write([primary, sci], path)
    cards = cos_layout.primary_cards(
        rootname=rootname, filename=path.name, detector="FUV", segment="BOTH",
        opt_elem="G160M", cenwave=1589, aperture="PSA", targname="TEST-STAR", proposid=12345,
        fppos=3, nextend=1, filetype="ACQ", imagetyp="ACCUM", obsmode="ACCUM",
        exptype="ACQ/PEAKXD")
    hdr = header([("EXTNAME", "ACQ", "extension name"), ("EXPTIME", 0.4, "exposure duration"),
                  ("EXPFLAG", "NORMAL", "Exposure interruption indicator")])
    acq = table_hdu((("DWELL_POINT", ">i2", ""), ("XDISP_OFFSET", ">f4", ""),
                     ("COUNTS", ">i4", "")),
                    {"DWELL_POINT": np.arange(3), "XDISP_OFFSET": [-1.0, 0.0, 1.0],
                     "COUNTS": [10, 50, 12]}, hdr, 3)
    return write([fits.PrimaryHDU(header=header(cards)), acq], path)


def _lampflash_file(path: Path, rootname: str) -> Path:
    cards = cos_layout.primary_cards(
        rootname=rootname, filename=path.name, detector="FUV", segment="FUVA",
        opt_elem="G140L", cenwave=1105, aperture="PSA", targname="TEST-STAR", proposid=12345,
        fppos=1, nextend=1)
    hdr = header([("EXTNAME", "LAMPFLASH", "extension name"),
                  ("EXPTIME", 1116.192, "exposure duration"),
                  ("EXPFLAG", "NORMAL", "Exposure interruption indicator")])
    table = table_hdu((("SEGMENT", "S4", ""), ("TIME", ">f8", "s"), ("LAMP_ON", ">f8", "s"),
                       ("LAMP_OFF", ">f8", "s"), ("SHIFT_DISP", ">f4", "pixel")),
                      {"SEGMENT": ["FUVA"], "TIME": [6.5], "LAMP_ON": [0.6],
                       "LAMP_OFF": [12.4], "SHIFT_DISP": [-33.5]}, hdr, 1)
    return write([fits.PrimaryHDU(header=header(cards)), table], path)


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
        'accum' writes ``_rawacq.fits`` (COS) or ``_raw.fits`` (STIS); 'lampflash' is COS
        only (see :data:`BAD_INSTRUMENTS`).
    keyword : str
        The keyword deleted for ``kind='missing_keyword'`` (use e.g. 'EXPSTART' for STIS).
    proposid : int
        PROPOSID written for ``kind='bad_proposal'``.

    Raises
    ------
    ValueError
        An unknown kind or instrument, or a kind the instrument has no product for.
    """
    if kind not in BAD_KINDS:
        raise ValueError(f"unknown bad-file kind {kind!r}; choose from {sorted(BAD_KINDS)}")
    if instrument not in ("cos", "stis"):
        raise ValueError(f"instrument must be 'cos' or 'stis', not {instrument!r}")
    if instrument not in BAD_INSTRUMENTS[kind]:
        raise ValueError(f"a {kind!r} file is a {'/'.join(BAD_INSTRUMENTS[kind])} product, "
                         f"not {instrument!r}")
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
