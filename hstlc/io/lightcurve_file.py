"""The lightcurve product: the :class:`Lightcurve` container and its FITS file.

``<rootname>_curve.fits``:

* primary header -- what was observed (TELESCOP, INSTRUME, DETECTOR, ROOTNAME, TARGNAME,
  OPT_ELEM, CENWAVE, APERTURE, PROPOSID, RA_TARG, DEC_TARG, EQUINOX, EXPSTART, EXPEND,
  EXPTIME) and the software (LC_VER = hstlc, NP_VER = numpy, AP_VER = astropy, GEN_DATE);
* ext 1 ``LIGHTCURVE`` -- the table (``bins, times, mjd, gross, counts, net, flux,
  flux_error, background, error, dataset`` and ``bjd_tdb``, the barycentric time of each
  bin start; files written before it existed lack it) with the extraction parameters and
  provenance:
  STEPSIZE, TORIGIN, TIMEREF, WMIN/WMAX, XMIN/XMAX, airglow windows (AGLOn/AGHIn), SDQFLAGS,
  boxes (``YMIN_x``/``YMAX_x`` source, ``B1MN_x``/``B1MX_x``/``B2MN_x``/``B2MX_x``
  background rows, ``BSCL_x`` background scale, x = COS segment/stripe letter or STIS
  order), NPIX, FLUXCAL (+FLUXFILE), DROPBINS and the inputs (``INFILEnn``/``INSHAnn``);
* ext 2 ``GTI`` -- the good time intervals used (START, STOP, seconds since EXPSTART).

Files are written atomically (:func:`hstlc.io.fits_writer.write_fits`);
``astropy.table.Table.read`` reads them, :func:`read_lightcurve` gives a :class:`Lightcurve`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import astropy
import numpy as np
from astropy.io import fits

from hstlc._version import __version__
from hstlc.errors import UnreadableFileError
from hstlc.io.fits_writer import write_fits

logger = logging.getLogger(__name__)

TIMEREF = "START"
COLUMNS = ("bins", "times", "mjd", "gross", "counts", "net", "flux", "flux_error",
           "background", "error", "dataset")
#: Columns a file may lack (written before they existed): None in the Lightcurve.
OPTIONAL_COLUMNS = ("bjd_tdb",)
UNITS = {"bins": "s", "times": "s", "mjd": "d", "bjd_tdb": "d", "gross": "count", "counts": "count",
         "net": "count /s", "flux": "erg /s /cm**2 /angstrom",
         "flux_error": "erg /s /cm**2 /angstrom", "background": "count", "error": "count"}
#: COMMENT cards of the LIGHTCURVE table: how the columns are defined.
DEFINITIONS = (
    "times: bin start, s since EXPSTART; mjd = EXPSTART + times/86400 (TIMEREF).",
    "bins: exposure of the bin inside the GTIs (s); bins without exposure are dropped.",
    "gross: sum of EPSILON of source-box events; background: scaled background-box sum",
    "(scale = source height / (background height 1 + 2)); counts = gross - background.",
    "error: sqrt(sum over events of EPSILON^2 W^2), W = sum of the weights of",
    "the boxes counting the event (source 1, background -scale).",
    "net = counts / bins. flux: band-averaged f_lambda, source minus scaled background,",
    "per-event conversion (FLUXCAL) / bins / NPIX. flux_error: sqrt(sum over events",
    "of EPSILON^2 C^2) / bins / NPIX, C = sum of weight * conversion over the boxes.",
    "bjd_tdb: BJD (TDB) of each bin start: mjd (UTC) plus the light travel time from the",
    "geocentre to the solar-system barycentre toward RA_TARG/DEC_TARG (astropy built-in",
    "ephemeris); geocentric: HST's own orbit (up to ~25 ms) is left out.",
)
_PRIMARY = {"telescop": "TELESCOP", "instrument": "INSTRUME", "detector": "DETECTOR",
            "rootname": "ROOTNAME", "targname": "TARGNAME", "opt_elem": "OPT_ELEM",
            "cenwave": "CENWAVE", "aperture": "APERTURE", "proposid": "PROPOSID",
            "ra_targ": "RA_TARG", "dec_targ": "DEC_TARG", "equinox": "EQUINOX",
            "expstart": "EXPSTART", "expend": "EXPEND", "exptime": "EXPTIME"}
_TABLE = {"step": ("STEPSIZE", "bin step (s)"),
          "origin": ("TORIGIN", "start of the first bin (s since EXPSTART)"),
          "timeref": ("TIMEREF", "times/mjd give each bin's START"),
          "wmin": ("WMIN", "minimum wavelength extracted (A, exclusive)"),
          "wmax": ("WMAX", "maximum wavelength extracted (A, exclusive)"),
          "xmin": ("XMIN", "minimum XCORR extracted (inclusive)"),
          "xmax": ("XMAX", "maximum XCORR extracted (exclusive)"),
          "npix": ("NPIX", "pixel columns averaged in the flux"),
          "fluxcal": ("FLUXCAL", "flux calibration: FLUXTAB+TDSTAB, X1D or NONE"),
          "dropped_bins": ("DROPBINS", "bins without GTI exposure, dropped")}


@dataclass(frozen=True)
class Lightcurve:
    """A binned lightcurve (one exposure, or a composite of several).

    Attributes
    ----------
    bins : ndarray
        Exposure of each bin inside the GTIs (s).
    times : ndarray
        Start of each bin, seconds since the member's EXPSTART.
    mjd : ndarray
        ``EXPSTART + times / 86400`` (bin start, ``TIMEREF = 'START'``).
    gross, background, counts : ndarray
        EPSILON-weighted source counts, scaled background counts, ``gross - background``.
    net : ndarray
        ``counts / bins`` (count/s).
    flux, flux_error : ndarray
        Band-averaged f_lambda and its error (erg/s/cm2/A); NaN when uncalibrated.
    error : ndarray
        1-sigma error of ``counts``.
    dataset : ndarray
        Member number (1 for an individual lightcurve).
    bjd_tdb : ndarray or None
        Barycentric Julian Date (TDB) of each bin start (:mod:`hstlc.extraction.barycentre`);
        None for a file written before the column existed, or without RA_TARG/DEC_TARG.
    meta : dict
        Provenance (instrument, detector, targname, opt_elem, cenwave, aperture, rootname,
        expstart, wmin, wmax, boxes, fluxcal, input_files, input_sha256, step, ...).
    """

    bins: np.ndarray
    times: np.ndarray
    mjd: np.ndarray
    gross: np.ndarray
    counts: np.ndarray
    net: np.ndarray
    flux: np.ndarray
    flux_error: np.ndarray
    background: np.ndarray
    error: np.ndarray
    dataset: np.ndarray
    bjd_tdb: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        length = None
        for name in (*COLUMNS, *OPTIONAL_COLUMNS):
            if name in OPTIONAL_COLUMNS and getattr(self, name) is None:
                continue
            dtype = np.int16 if name == "dataset" else np.float64
            array = np.array(getattr(self, name), dtype=dtype, copy=True).reshape(-1)
            array.setflags(write=False)
            object.__setattr__(self, name, array)
            if length is not None and array.size != length:
                raise ValueError(f"column {name} has {array.size} rows, expected {length}")
            length = array.size
        object.__setattr__(self, "meta", dict(self.meta))

    def __len__(self) -> int:
        return int(self.times.size)

    def columns(self) -> dict[str, np.ndarray]:
        """The columns by name, in file order (an optional column only when present)."""
        return {name: getattr(self, name) for name in (*COLUMNS, *OPTIONAL_COLUMNS)
                if getattr(self, name) is not None}


def derive_columns(gross: np.ndarray, background: np.ndarray, bins: np.ndarray,
                   flux: np.ndarray, variance: np.ndarray | None = None, *,
                   flux_variance: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The derived columns: counts, net, error, flux_error (see :mod:`hstlc.extraction.extract`).

    ``variance`` is the variance of ``counts``; None gives the 2016
    ``gross + background``.  ``flux_variance`` is the variance of ``flux``:
    ``flux_error = sqrt(flux_variance)`` (NaN where ``flux`` is).  Without it the
    approximation ``flux_error = error * |flux / counts|`` is used, with the
    lightcurve-wide flux per count where ``counts == 0``; it is poor where ``counts`` is
    near zero.

    Examples
    --------
    >>> cols = derive_columns(np.array([10.0]), np.array([2.0]), np.array([2.0]),
    ...                       np.array([4.0]))
    >>> float(cols["counts"][0]), float(cols["net"][0]), float(cols["error"][0])
    (8.0, 4.0, 3.4641016151377544)
    """
    gross, background = np.asarray(gross, float), np.asarray(background, float)
    bins, flux = np.asarray(bins, float), np.asarray(flux, float)
    counts = gross - background
    variance = gross + background if variance is None else np.asarray(variance, float)
    error = np.sqrt(np.clip(variance, 0.0, None))
    net = np.divide(counts, bins, out=np.full(counts.shape, np.nan), where=bins > 0)
    if flux_variance is not None:
        flux_error = np.where(np.isnan(flux), np.nan,
                              np.sqrt(np.clip(np.asarray(flux_variance, float), 0.0, None)))
        return {"gross": gross, "background": background, "bins": bins, "counts": counts,
                "net": net, "flux": flux, "flux_error": flux_error, "error": error}
    ratio = np.divide(flux, counts, out=np.full(counts.shape, np.nan), where=counts != 0)
    total_counts = counts.sum()
    if total_counts != 0 and np.isfinite(flux).any():
        per_count = np.nansum(flux * bins) / total_counts
        fallback = np.divide(per_count, bins, out=np.full(bins.shape, np.nan), where=bins > 0)
        ratio = np.where(counts == 0, fallback, ratio)
    flux_error = error * np.abs(ratio)
    return {"gross": gross, "background": background, "bins": bins, "counts": counts,
            "net": net, "flux": flux, "flux_error": flux_error, "error": error}


def lightcurve_filename(rootname: str) -> str:
    """``<rootname>_curve.fits`` (lower case)."""
    return f"{rootname.lower()}_curve.fits"


def set_card(header: fits.Header, key: str, value: Any, comment: str = "") -> None:
    """Set a keyword, shortening the comment so that the card fits in 80 characters."""
    value = _value(value)
    room = 80 - len(fits.Card(key, value).image.rstrip()) - 3
    header[key] = (value, comment[: max(room, 0)]) if room > 0 else value


def _value(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def _box_keywords(boxes: list[Mapping[str, Any]]) -> list[tuple[str, Any, str]]:
    cards: list[tuple[str, Any, str]] = []
    seen: dict[str, int] = {}
    for box in boxes:
        group = str(box["group"])
        tag = group[-1] if group[:3] in ("FUV", "NUV") else group[-3:]
        if box["role"] == "source":
            cards += [(f"YMIN_{tag}", box["y0"], f"{group} source box: first row"),
                      (f"YMAX_{tag}", box["y1"], f"{group} source box: end row (excl.)")]
        else:
            n = seen[group] = seen.get(group, 0) + 1
            cards += [(f"B{n}MN_{tag}", box["y0"], f"{group} background {n}: first row"),
                      (f"B{n}MX_{tag}", box["y1"], f"{group} background {n}: end row (excl.)"),
                      (f"BSCL_{tag}", box["scale"], f"{group} background scale (src/bkg)")]
    return cards


def provenance_cards(meta: Mapping[str, Any]) -> list[tuple[str, Any, str]]:
    """Extraction parameters and provenance as ``(keyword, value, comment)`` cards."""
    cards = [(key, _value(meta[name]), comment) for name, (key, comment) in _TABLE.items()
             if meta.get(name) is not None]
    for n, (lo, hi) in enumerate(meta.get("airglow", []), start=1):
        cards += [(f"AGLO{n}", lo, f"airglow window {n} start (A, excluded)"),
                  (f"AGHI{n}", hi, f"airglow window {n} end (A, excluded)")]
    flags = meta.get("sdqflags")
    if flags:
        cards.append(("SDQFLAGS", int(np.bitwise_or.reduce(np.asarray(flags, int))),
                      "DQ bits of bad events"))
    cards += _box_keywords(list(meta.get("boxes", [])))
    if meta.get("fluxcal_files"):
        cards.append(("FLUXFILE", ",".join(meta["fluxcal_files"]), "flux calibration files"))
    sha = meta.get("input_sha256", {})
    inputs = list(meta.get("input_files", []))
    # FITS keywords have 8 characters: INFILEnn holds 99 inputs. A composite of more
    # files lists every one in its MEMBERS extension; the header says how many there are.
    cards.append(("NINFILES", len(inputs), "number of input files"))
    for n, name in enumerate(inputs[:MAX_INPUT_CARDS], start=1):
        cards.append((f"INFILE{n:02d}", name, "input file"))
        if name in sha:
            cards.append((f"INSHA{n:02d}", sha[name], "sha256 of the input file"))
    return cards


MAX_INPUT_CARDS = 99


def software_cards() -> list[tuple[str, Any, str]]:
    """Versions of hstlc, numpy and astropy and the creation date."""
    return [("LC_VER", __version__, "hstlc version"),
            ("NP_VER", np.__version__, "numpy version"),
            ("AP_VER", astropy.__version__, "astropy version"),
            ("GEN_DATE", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
             "creation date (UTC)")]


def table_hdu(columns: Mapping[str, np.ndarray], cards: list[tuple[str, Any, str]],
              extname: str = "LIGHTCURVE") -> fits.BinTableHDU:
    """The lightcurve binary table with header ``cards``."""
    cols = [fits.Column(name=name, format="I" if name == "dataset" else "D",
                        unit=UNITS.get(name), array=np.asarray(columns[name]))
            for name in (*COLUMNS, *OPTIONAL_COLUMNS) if name in columns]
    hdu = fits.BinTableHDU.from_columns(cols, name=extname)
    for key, value, comment in cards:
        set_card(hdu.header, key, value, comment)
    return hdu


def gti_hdu(gti: Any) -> fits.BinTableHDU:
    """The GTIs used, as a ``GTI`` table."""
    gti = np.asarray(gti, np.float64).reshape(-1, 2)
    return fits.BinTableHDU.from_columns(
        [fits.Column(name="START", format="D", unit="s", array=gti[:, 0]),
         fits.Column(name="STOP", format="D", unit="s", array=gti[:, 1])], name="GTI")


def write_lightcurve(lc: Lightcurve, path: str | Path, overwrite: bool = True) -> Path:
    """Write ``lc`` as a ``_curve.fits`` file (see the module docstring); returns the path."""
    meta = lc.meta
    primary = fits.PrimaryHDU()
    for name, key in _PRIMARY.items():
        if meta.get(name) is not None:
            set_card(primary.header, key, meta[name])
    for key, value, comment in software_cards():
        set_card(primary.header, key, value, comment)
    table = table_hdu(lc.columns(), provenance_cards(meta))
    for line in DEFINITIONS:
        table.header.add_comment(line)
    hdus = [primary, table] + ([gti_hdu(meta["gti"])] if meta.get("gti") is not None else [])
    return write_fits(hdus, path, overwrite=overwrite)


def _meta_from_headers(primary: fits.Header, header: fits.Header) -> dict[str, Any]:
    meta: dict[str, Any] = {name: primary[key] for name, key in _PRIMARY.items()
                            if key in primary}
    meta.update({name: header[key] for name, (key, _) in _TABLE.items() if key in header})
    meta["airglow"] = [[header[f"AGLO{n}"], header[f"AGHI{n}"]]
                       for n in range(1, 100) if f"AGLO{n}" in header]
    if "SDQFLAGS" in header:
        meta["sdqflags"] = [header["SDQFLAGS"]]
    files, sha = [], {}
    for n in range(1, 100):
        if f"INFILE{n:02d}" not in header:
            break
        name = header[f"INFILE{n:02d}"]
        files.append(name)
        if f"INSHA{n:02d}" in header:
            sha[name] = header[f"INSHA{n:02d}"]
    meta["input_files"], meta["input_sha256"] = files, sha
    meta["fluxcal_files"] = header["FLUXFILE"].split(",") if "FLUXFILE" in header else []
    meta["software"] = {key.lower(): primary[key] for key in ("LC_VER", "NP_VER", "AP_VER")
                        if key in primary}
    return meta


def read_lightcurve(path: str | Path) -> Lightcurve:
    """Read a ``_curve.fits`` (or the LIGHTCURVE table of a composite) as a Lightcurve.

    Raises
    ------
    UnreadableFileError
        The file is not a lightcurve file.
    """
    path = Path(path)
    try:
        with fits.open(path) as hdul:
            table = hdul["LIGHTCURVE"] if "LIGHTCURVE" in hdul else hdul[1]
            data = table.data
            present = set(data.columns.names)
            columns = {name: np.asarray(data[name]) for name in (*COLUMNS, *OPTIONAL_COLUMNS)
                       if name in COLUMNS or name in present}
            meta = _meta_from_headers(hdul[0].header, table.header)
            if "opt_elem" not in meta and "FILTER" in hdul[0].header:  # a composite (HLSP)
                meta["opt_elem"] = hdul[0].header["FILTER"]
            if "MEMBERS" in hdul:  # a composite's members, in dataset order
                members = hdul["MEMBERS"].data
                order = np.argsort(members["DATASET"], kind="stable")
                meta["members"] = [str(name).strip() for name in members["ROOTNAME"][order]]
            if "GTI" in hdul:
                gti = hdul["GTI"].data
                meta["gti"] = np.column_stack([gti["START"], gti["STOP"]]).tolist()
    except (OSError, KeyError, IndexError, TypeError) as error:
        raise UnreadableFileError(f"{path.name}: not a lightcurve file ({error})",
                                  filename=path.name) from error
    return Lightcurve(meta=meta, **columns)


__all__ = ["COLUMNS", "OPTIONAL_COLUMNS", "TIMEREF", "Lightcurve", "derive_columns", "lightcurve_filename",
           "read_lightcurve", "write_lightcurve"]
