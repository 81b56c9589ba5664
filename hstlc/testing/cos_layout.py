"""COS geometry and file layout: extraction boxes, wavelength solutions, headers, x1d and TIMELINE.

The numbers are those of real files: the FUV boxes of the GJ-436 G130M corrtags
(SP_LOC_A/B, B_BKG1/2), the NUV stripes A, B, C (G230L: A, B) with their x1d arrays of
1274 elements offset by 125 pixels, and the header keywords in the extension where the
real files carry them (DATE-OBS, EXPSTART, EXPTIME, SDQFLAGS and the box keywords in
ext 1; the primary has no DATE-OBS). A FUV corrtag carries the box keywords of *both*
segments, as the real ``_a`` file does. No Doppler or wavecal shift is applied:
XDOPP = XFULL = XCORR, YFULL = YCORR and WAVELENGTH = ``wave0 + dispersion * XCORR``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from astropy.io import fits

from hstlc.testing.draws import column_pmf, rate_error, to_flux
from hstlc.testing.fitsutil import Card, header, table_hdu
from hstlc.testing.truth import Box, SegmentTruth

COS_TICK = 0.032
"""COS TIME-TAG time resolution (s); event times are multiples of it, stored as float32."""
DEFAULT_EXPSTART = 58108.51215764
COS_FUV_SDQFLAGS = 8346
COS_NUV_SDQFLAGS = 184

CORRTAG_COLUMNS = (
    ("TIME", ">f4", "s"), ("RAWX", ">i2", "pixel"), ("RAWY", ">i2", "pixel"),
    ("XCORR", ">f4", "pixel"), ("YCORR", ">f4", "pixel"), ("XDOPP", ">f4", "pixel"),
    ("XFULL", ">f4", "pixel"), ("YFULL", ">f4", "pixel"), ("WAVELENGTH", ">f4", "angstrom"),
    ("EPSILON", ">f4", ""), ("DQ", ">i2", ""), ("PHA", "u1", ""),
)
TIMELINE_COLUMNS = ("TIME", "LONGITUDE", "LATITUDE", "SUN_ALT", "SUN_ZD", "TARGET_ALT",
                    "RADIAL_VEL", "SHIFT1", "LY_ALPHA", "OI_1304", "OI_1356", "DARKRATE")


@dataclass(frozen=True)
class Stripe:
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
        """Probability of a source event in each active column ``xrange[0] + i``."""
        return column_pmf(self.xrange[1] - self.xrange[0])

    @property
    def x1d_pixels(self) -> np.ndarray:
        """XCORR pixel of each x1d element (``i - x1d_offset``)."""
        return np.arange(self.nelem) - self.x1d_offset

    @property
    def x1d_active(self) -> np.ndarray:
        """Which x1d elements are active columns (where the source and background fall)."""
        pix = self.x1d_pixels
        return (pix >= self.xrange[0]) & (pix < self.xrange[1])


# (SP_LOC, SP_HGT, B_BKG1, B_HGT1, B_BKG2, B_HGT2, SP_NOM) per segment / stripe
_FUV_BOXES = {
    "A": (425.1910656982463, 39, 367.0, 35, 570.0, 35, 425.7),
    "B": (485.6997976921326, 39, 426.0, 35, 629.0, 35, 486.51),
}
_FUV_DISPERSION = {"G130M": 0.009966, "G160M": 0.01223, "G140L": 0.0803}
_NUV_BOXES = {"A": (187.62, 8, 60.0, 40, 640.0, 40, 187.5),
              "B": (290.35, 8, 60.0, 40, 640.0, 40, 290.5),
              "C": (431.18, 8, 60.0, 40, 640.0, 40, 431.5)}
_NUV_DISPERSION = {"G185M": 0.037, "G225M": 0.033, "G285M": 0.040, "G230L": 0.39}


def fuv_stripes(opt_elem: str, cenwave: float, segments: Sequence[str],
                boxes: Mapping[str, Sequence[float]] | None) -> list[Stripe]:
    """Segments A/B of a FUV grating: 16384 columns, active 1000..14999, x1d offset 0."""
    disp = _FUV_DISPERSION.get(opt_elem, 0.01)
    span = 16384 * disp
    out = []
    for seg in segments:
        loc, hgt, b1, h1, b2, h2, nom = (boxes or {}).get(seg, _FUV_BOXES[seg])
        wave0 = max(cenwave - (0.078 if seg == "A" else 1.016) * span, 900.0)
        out.append(Stripe(seg, f"FUV{seg}", Box(loc, hgt), Box(b1, h1), Box(b2, h2),
                          (1000, 15000), wave0, disp, 0, 16384, nom))
    return out


def nuv_stripes(opt_elem: str, cenwave: float,
                boxes: Mapping[str, Sequence[float]] | None) -> list[Stripe]:
    """Stripes A, B, C (G230L: A, B) of a NUV grating: active 20..1003, x1d of 1274 offset 125."""
    disp = _NUV_DISPERSION.get(opt_elem, 0.037)
    span = 1024 * disp
    names = ("A", "B") if opt_elem == "G230L" else ("A", "B", "C")
    offsets = {"A": -2.75, "B": 0.0} if opt_elem == "G230L" else {"A": -1.9, "B": 0.0, "C": 1.9}
    out = []
    for name in names:
        loc, hgt, b1, h1, b2, h2, nom = (boxes or {}).get(name, _NUV_BOXES[name])
        centre = cenwave + offsets[name] * span
        out.append(Stripe(name, f"NUV{name}", Box(loc, hgt), Box(b1, h1), Box(b2, h2),
                          (20, 1004), centre - 511.5 * disp, disp, 125, 1274, nom))
    return out


def background_rows(stripes: Sequence[Stripe]) -> tuple[float, float]:
    """Rows of the uniform background: every box of ``stripes`` with 20 rows of margin."""
    lows = [b.rows[0] for s in stripes for b in (s.bkg1, s.bkg2, s.source)]
    highs = [b.rows[1] for s in stripes for b in (s.bkg1, s.bkg2, s.source)]
    return (max(min(lows) - 20.0, 0.0), min(max(highs) + 20.0, 1023.0))


def primary_cards(*, rootname: str, filename: str, detector: str, segment: str,
                  opt_elem: str, cenwave: int, aperture: str, targname: str,
                  proposid: int, fppos: int, nextend: int, filetype: str = "SCI",
                  imagetyp: str = "TIME-TAG", obsmode: str = "TIME-TAG",
                  exptype: str = "EXTERNAL/SCI") -> list[Card]:
    """The primary header of a COS product (FLUXTAB/TDSTAB name the synthetic ``lref$`` files)."""
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


def _box_cards(stripes: Sequence[Stripe]) -> list[Card]:
    cards: list[Card] = [("DISPAXIS", 1, "dispersion axis; 1 = axis 1")]
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


def ext1_cards(*, rootname: str, stripes: Sequence[Stripe], date_cards: list[Card],
               sdqflags: int, nevents: int, detector: str) -> list[Card]:
    """The EVENTS header: pointing, ``date_cards``, the box keywords of ``stripes``, SDQFLAGS."""
    head: list[Card] = [
        ("INHERIT", True, "inherit the primary header"),
        ("EXTNAME", "EVENTS", "extension name"), ("EXTVER", 1, "extension version number"),
        ("ROOTNAME", rootname, "rootname of the observation set"),
        ("EXPNAME", rootname, "exposure identifier"),
        ("ASN_MTYP", "EXP-FP", "Role of the Member in the Association"),
        ("RA_APER", 175.5512325935, "RA of reference aperture center"),
        ("DEC_APER", 26.70250783734, "Declination of reference aperture center"),
        ("PA_APER", 154.63, "Position Angle of reference aperture center (de"),
    ]
    tail: list[Card] = [
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
    return head + _box_cards(stripes) + tail


def timeline_hdu(exptime: float, rootname: str, rng: np.random.Generator) -> fits.BinTableHDU:
    """A TIMELINE extension sampled every second (orbit, Sun altitude, Lyman-alpha counts)."""
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
    hdr = header([("EXTNAME", "TIMELINE", "extension name"), ("EXTVER", 1, ""),
                  ("INHERIT", True, "inherit the primary header"),
                  ("ROOTNAME", rootname, "rootname of the observation set")])
    units = {"TIME": "s", "LONGITUDE": "degree", "LATITUDE": "degree", "SUN_ALT": "degree",
             "SUN_ZD": "degree", "TARGET_ALT": "degree", "RADIAL_VEL": "km /s",
             "SHIFT1": "pixel", "LY_ALPHA": "count /s", "OI_1304": "count /s",
             "OI_1356": "count /s", "DARKRATE": "count /s /pixel"}
    cols = tuple((n, ">f4", units[n]) for n in TIMELINE_COLUMNS)
    return table_hdu(cols, data, hdr, t.size)


def x1d_hdu(stripes: Sequence[Stripe], truths: Sequence[SegmentTruth], exptime: float,
            bkg_rate: float, ext_header: fits.Header) -> fits.BinTableHDU:
    """The x1d SCI table: one row per stripe, NET = source rate * pmf, FLUX = NET / sensitivity."""
    nel = stripes[0].nelem
    data: dict[str, Any] = {"SEGMENT": [s.label for s in stripes],
                            "EXPTIME": np.full(len(stripes), exptime),
                            "NELEM": np.full(len(stripes), nel)}
    arrays: dict[str, list[np.ndarray]] = {}
    for s, truth in zip(stripes, truths, strict=True):
        active = s.x1d_active
        net = np.zeros(nel)
        net[active] = truth.source_rate * s.pmf
        sens = truth.sensitivity
        bkg = np.where(active, bkg_rate * s.source.height / (s.xrange[1] - s.xrange[0]), 0.0)
        gross = net + bkg
        lo, hi = s.source.rows
        cols = {"WAVELENGTH": s.wave0 + s.disp * s.x1d_pixels, "FLUX": to_flux(net, sens),
                "ERROR": to_flux(rate_error(gross, exptime), sens),
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
    return table_hdu(columns, data, hdr, len(stripes))
