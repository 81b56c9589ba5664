"""FITS pieces shared by the builders: headers from card lists, tables written like the real ones.

Headers are built from ``(keyword, value, comment)`` card lists copied from real files;
a builder's ``**header_overrides`` then set or delete keywords where they live
(:func:`split_overrides`). Tables keep the TFORMs of the real products ('1E', '16384D',
'4A'), and integer tick columns carry TSCALn (STIS TIME).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.time import Time

from hstlc.io.fits_writer import write_fits

Card = tuple[str, Any, str]
"""A header card: ``(keyword, value, comment)``."""

_TFORM_CODES = {"f4": "E", "f8": "D", "i2": "I", "i4": "J", "u1": "B", "b1": "L"}


def header(cards: Sequence[Card], overrides: Mapping[str, Any] | None = None,
           add_missing: bool = False) -> fits.Header:
    """A header from ``cards``, then ``overrides`` (None deletes; new keys only if ``add_missing``).

    Comments are cut so that no card needs a CONTINUE.
    """
    hdr = fits.Header()
    for key, value, comment in cards:
        room = 80 - max(len(fits.Card(key, value).image.rstrip()), 30) - 3
        hdr[key] = (value, comment[:max(room, 0)])
    for key, value in (overrides or {}).items():
        if value is None:
            hdr.remove(key, ignore_missing=True, remove_all=True)
        elif key in hdr or add_missing:
            hdr[key] = value
    return hdr


def split_overrides(overrides: Mapping[str, Any], ext_keys: set[str]
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


def table_hdu(columns: Sequence[tuple[str, str, str]], data: Mapping[str, Any],
              hdr: fits.Header, nrows: int, scales: Mapping[str, float] | None = None
              ) -> fits.BinTableHDU:
    """A binary table with TFORMs written like the real files ('1E', '16384D', '4A').

    ``columns`` are ``(name, numpy dtype, unit)``; ``scales`` gives TSCALn for integer
    columns that hold ticks (the data are then the raw integers).
    """
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
            tform = f"{repeat}{_TFORM_CODES[dt.str[1:]]}"
        dim = (f"({','.join(str(d) for d in reversed(value.shape[1:]))})"
               if value.ndim > 2 else None)
        cols.append(fits.Column(name=name, format=tform, unit=unit or None, dim=dim,
                                array=value))
    hdu = fits.BinTableHDU.from_columns(cols, header=hdr, nrows=nrows)
    for i, (name, _, _) in enumerate(columns, start=1):
        if scales and name in scales:
            hdu.header[f"TSCAL{i}"] = scales[name]
            hdu.header[f"TZERO{i}"] = 0.0
    return hdu


def write(hdus: Sequence[fits.hdu.base.ExtensionHDU | fits.PrimaryHDU], path: Path) -> Path:
    """Write ``hdus`` to ``path`` (replacing it) with hstlc's atomic writer; return the path.

    No CHECKSUM/DATASUM cards are added, as in the files the builders have always written.
    """
    return write_fits(hdus, path, checksum=False)


def gti_hdu(gti: np.ndarray, rootname: str) -> fits.BinTableHDU:
    """The GTI extension (START, STOP in seconds since EXPSTART)."""
    hdr = header([("EXTNAME", "GTI", "extension name"), ("EXTVER", 1, ""),
                  ("INHERIT", True, "inherit the primary header"),
                  ("ROOTNAME", rootname, "rootname of the observation set"),
                  ("EXPNAME", rootname, "exposure identifier")])
    return table_hdu((("START", ">f8", "seconds"), ("STOP", ">f8", "seconds")),
                     {"START": gti[:, 0], "STOP": gti[:, 1]}, hdr, len(gti))


def date_cards(expstart: float, exptime_span: float, exptime: float, expflag: str) -> list[Card]:
    """The ext-1 time keywords: DATE-OBS/TIME-OBS from EXPSTART, EXPEND after the span, EXPTIME."""
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
