"""The synthetic-file builders write realistic, complete and truthful files."""

from __future__ import annotations

import contextlib
import hashlib
import io
import time
import warnings
from dataclasses import astuple
from pathlib import Path

import builders as b
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.time import Time

# What the 2016 library (lightcurve 0.6.2, lightcurve-pipeline 1.0) read from a corrtag.
LEGACY_PRIMARY_KEYS = {
    "TELESCOP", "INSTRUME", "DETECTOR", "OBSTYPE", "OBSMODE", "OPT_ELEM", "CENWAVE", "APERTURE",
    "SEGMENT", "FLUXTAB", "TDSTAB", "RA_TARG", "DEC_TARG", "EQUINOX", "TARGNAME", "TARDESCR",
    "TARDESC2", "CAL_VER", "FPPOS", "PROPOSID",
}
LEGACY_EXT1_KEYS = {"EXPTIME", "EXPSTART", "EXPFLAG", "SDQFLAGS"}
NEW_PRIMARY_KEYS = {"IMAGETYP", "FILETYPE", "EXPTYPE", "ROOTNAME", "CENTRWV"}
COS_PRIMARY_KEYS = {"FPOFFSET"}  # selects the FLUXTAB rows (hstlc.extraction.extract)
NEW_EXT1_KEYS = {"EXPEND", "DATE-OBS", "TIME-OBS", "NEVENTS"}
BOX_KEYS = ("SP_LOC_{}", "SP_HGT_{}", "B_BKG1_{}", "B_HGT1_{}", "B_BKG2_{}", "B_HGT2_{}",
            "SP_SLP_{}", "SP_OFF_{}", "SP_NOM_{}")
COS_COLUMNS = [("TIME", "1E"), ("RAWX", "1I"), ("RAWY", "1I"), ("XCORR", "1E"), ("YCORR", "1E"),
               ("XDOPP", "1E"), ("XFULL", "1E"), ("YFULL", "1E"), ("WAVELENGTH", "1E"),
               ("EPSILON", "1E"), ("DQ", "1I"), ("PHA", "1B")]
STIS_TAG_COLUMNS = [("TIME", "1J"), ("AXIS1", "1I"), ("AXIS2", "1I"), ("DETAXIS1", "1I")]
STIS_PRIMARY_KEYS = {"TELESCOP", "INSTRUME", "DETECTOR", "OBSTYPE", "OBSMODE", "OPT_ELEM",
                     "CENWAVE", "APERTURE", "ROOTNAME", "TARGNAME", "RA_TARG", "DEC_TARG",
                     "EQUINOX", "PROPOSID", "CAL_VER", "FILETYPE", "PFLTFILE", "LFLTFILE",
                     "BPIXTAB", "SCLAMP", "TDSTAB", "CENTRWV", "TEXPSTRT", "TDATEOBS"}
STIS_X1D_COLUMNS = {"SPORDER", "NELEM", "WAVELENGTH", "GROSS", "BACKGROUND", "NET", "FLUX",
                    "ERROR", "NET_ERROR", "DQ", "A2CENTER", "EXTRSIZE", "BK1SIZE", "BK2SIZE",
                    "BK1OFFST", "BK2OFFST", "EXTRLOCY", "OFFSET"}
REAL_COS = "cos_fuv_g130m_gj436"


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _columns(hdu: fits.BinTableHDU) -> list[tuple[str, str]]:
    return [(c.name, c.format) for c in hdu.columns]


def _within(count: float, expected: float, sigmas: float = 5.0) -> bool:
    return abs(count - expected) <= sigmas * np.sqrt(max(expected, 1.0))


def _fraction_within(hits: int, n: int, p: float, sigmas: float = 5.0) -> bool:
    """``hits`` of ``n`` agrees with probability ``p`` within binomial errors."""
    return abs(hits - n * p) <= sigmas * np.sqrt(max(n * p * (1 - p), 1.0))


def _gti_sum(hdul: fits.HDUList) -> float:
    gti = hdul["GTI"].data
    return float(np.sum(gti["STOP"] - gti["START"]))


def _in_gtis(t: np.ndarray, gti: np.ndarray, tick: float) -> np.ndarray:
    """Events inside a GTI, allowing the instrument's quantisation (times are floored)."""
    return np.any((t[:, None] >= gti[None, :, 0] - tick - 1e-3)
                  & (t[:, None] < gti[None, :, 1] + 1e-3), axis=1)


def _binned_counts_match(values: np.ndarray, edges: np.ndarray, expected: np.ndarray) -> bool:
    """Histogram of ``values`` agrees with ``expected`` counts in every bin (5 sigma)."""
    counts, _ = np.histogram(values, edges)
    return bool(np.all(np.abs(counts - expected) <= 5 * np.sqrt(np.maximum(expected, 1.0))))


@pytest.fixture(scope="module")
def fuv(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return b.build_cos_fuv_pair(tmp_path_factory.mktemp("fuv"), seed=3,
                                flare=b.Flare(400.0, 50.0, 800))


# ----------------------------------------------------------------------------- COS FUV
def test_fuv_pair_opens_with_every_column_and_keyword(fuv: dict) -> None:
    truth = fuv["truth"]
    for key, label in (("corrtag_a", "FUVA"), ("corrtag_b", "FUVB")):
        assert fuv[key].name == f"lb1c01abq_{key}.fits"
        with fits.open(fuv[key]) as hdul:
            assert [h.name for h in hdul] == ["PRIMARY", "EVENTS", "GTI", "TIMELINE"]
            p, e = hdul[0].header, hdul[1].header
            assert _columns(hdul["EVENTS"]) == COS_COLUMNS
            assert hdul["GTI"].columns.names == ["START", "STOP"]
            missing = (LEGACY_PRIMARY_KEYS | NEW_PRIMARY_KEYS | COS_PRIMARY_KEYS) - set(p)
            assert not missing, f"{key} primary lacks {sorted(missing)}"
            missing = LEGACY_EXT1_KEYS | NEW_EXT1_KEYS | {k.format(x) for k in BOX_KEYS
                                                          for x in "AB"}
            assert not missing - set(e), f"{key} ext 1 lacks {sorted(missing - set(e))}"
            assert (p["TELESCOP"], p["INSTRUME"], p["DETECTOR"], p["SEGMENT"]) == (
                "HST", "COS", "FUV", label)
            assert (p["OBSMODE"], p["OBSTYPE"], p["FILETYPE"]) == ("TIME-TAG", "SPECTROSCOPIC",
                                                                   "SCI")
            assert (p["ROOTNAME"], p["FILENAME"]) == ("lb1c01abq", fuv[key].name)
            assert (p["OPT_ELEM"], p["CENWAVE"], p["FPPOS"], p["FPOFFSET"]) == ("G130M", 1291, 3, 0)
            assert p["FLUXTAB"] == "lref$synth_phot.fits" and p["TDSTAB"] == "lref$synth_tds.fits"
            # NEVENTS counts the rows written, per segment and in total
            n_rows = len(hdul["EVENTS"].data)
            assert e[f"NEVENTS{label[-1]}"] == n_rows == len(truth.component[key])
            assert e["EXPFLAG"] == "NORMAL" and e["NEVENTS"] == e["NEVENTSA"] + e["NEVENTSB"]
            assert e["SDQFLAGS"] == truth.sdqflags == b.COS_FUV_SDQFLAGS
            # EXPTIME is the live time: the sum of the GTIs (here the whole exposure)
            assert e["EXPTIME"] == e["EXPTIMEA"] == e["EXPTIMEB"] == _gti_sum(hdul) == 1000.0
            time_col = hdul["EVENTS"].data["TIME"]
            assert time_col.dtype == np.dtype(">f4") and np.all(np.diff(time_col) >= 0)
            ticks = time_col / b.COS_TICK
            assert np.allclose(ticks, np.round(ticks), atol=0.01)  # 32 ms quantisation
        table = Table.read(fuv[key], hdu="EVENTS")
        assert len(table) == len(truth.component[key])


def test_fuv_x1d_matches_real_layout_and_calibration(fuv: dict) -> None:
    truth = fuv["truth"]
    with fits.open(fuv["x1d"]) as hdul:
        assert hdul[1].name == "SCI" and hdul[0].header["SEGMENT"] == "BOTH"
        data = hdul[1].data
        assert list(data["SEGMENT"]) == ["FUVA", "FUVB"]
        for row in data:
            seg = truth.segments[row["SEGMENT"][-1]]
            assert row["WAVELENGTH"].shape == (16384,)
            pix = np.arange(16384)
            lo, hi = seg.xcorr_range
            active = (pix >= lo) & (pix < hi)
            assert row["EXPTIME"] == truth.live_time
            # NET is the injected source rate spread as the column pmf; FLUX is flat
            assert np.allclose(row["NET"][active], seg.source_rate * seg.source_pmf, rtol=1e-5)
            assert row["NET"].sum() == pytest.approx(seg.source_rate, rel=1e-5)
            assert np.all(row["NET"][~active] == 0) and np.all(row["FLUX"][~active] == 0)
            assert np.allclose(row["FLUX"][active], truth.flat_flux, rtol=1e-5)
            assert np.allclose(row["NET"][active] / row["FLUX"][active], seg.sensitivity[active],
                               rtol=1e-5)
            # BACKGROUND: the per-row background rate over the box height, spread over columns
            assert np.allclose(row["BACKGROUND"][active],
                               seg.background_rate * seg.source_box.height / (hi - lo), rtol=1e-5)
            assert np.allclose(row["GROSS"], row["NET"] + row["BACKGROUND"], rtol=1e-5)
            assert np.array_equal(row["DQ_WGT"], active * 1.0)
            assert np.allclose(row["WAVELENGTH"], seg.wavelength_at(pix))


def test_fuv_injected_truth(fuv: dict) -> None:
    truth = fuv["truth"]
    assert truth.n_flare == 800
    for key in ("corrtag_a", "corrtag_b"):
        seg = truth.segments[key[-1].upper()]
        comp = truth.component[key]
        with fits.open(fuv[key]) as hdul:
            ev = hdul["EVENTS"].data
            t, y, x = ev["TIME"].astype(float), ev["YCORR"], ev["XCORR"]
            src = comp == b.SOURCE
            assert src.sum() == seg.n_source and (comp == b.FLARE).sum() == seg.n_flare
            assert (comp == b.BACKGROUND).sum() == seg.n_background
            assert _within(seg.n_source, seg.source_rate * truth.live_time)
            # every source and flare event inside the box, in either edge convention
            lo, hi = seg.source_box.legacy_rows
            assert np.all((y[comp > 0] >= lo) & (y[comp > 0] < hi))
            # the boxcar flare: uniform in its window, and seen in the events without labels
            flare_t = t[comp == b.FLARE]
            assert flare_t.min() >= 400.0 - b.COS_TICK and flare_t.max() <= 450.0
            assert _binned_counts_match(flare_t, np.linspace(400.0 - b.COS_TICK, 450.0, 6),
                                        np.full(5, seg.n_flare / 5))
            box = (y >= lo) & (y < hi)
            during = box & (t >= 400.0 - b.COS_TICK) & (t < 450.0)
            quiescent = np.count_nonzero(box & ~during) / (truth.live_time - 50.0) * 50.0
            excess = np.count_nonzero(during) - quiescent
            assert abs(excess - seg.n_flare) <= 5 * np.sqrt(np.count_nonzero(during))
            # source columns follow the column pmf (16 bins over the active columns)
            edges = np.linspace(seg.xcorr_range[0] - 0.5, seg.xcorr_range[1] - 0.5, 15)
            per_bin = np.add.reduceat(seg.source_pmf, np.arange(0, seg.source_pmf.size, 1000))
            assert _binned_counts_match(x[src], edges, per_bin * seg.n_source)
            # background: uniform per row, so a box of height h holds rate * h * T
            for box_ in (seg.background1, seg.background2, seg.source_box):
                r0, r1 = box_.rows
                n = np.count_nonzero((comp == b.BACKGROUND) & (y >= r0) & (y < r1))
                assert _within(n, seg.background_rate * box_.height * truth.live_time)
            # wavelength follows the linear dispersion of XCORR
            assert np.allclose(ev["WAVELENGTH"], seg.wavelength_at(x), atol=1e-3)
            bad = (ev["DQ"] & truth.sdqflags) != 0
            assert _fraction_within(bad.sum(), len(ev), 0.01)
            assert _fraction_within(np.count_nonzero((ev["DQ"] != 0) & ~bad), len(ev), 0.03)
            assert np.all(ev["EPSILON"] == 1.0)


def test_fuv_events_give_back_the_flat_flux(fuv: dict) -> None:
    """Per-event calibration with the x1d sensitivity recovers ``flat_flux``."""
    truth = fuv["truth"]
    for key in ("corrtag_a", "corrtag_b"):
        seg = truth.segments[key[-1].upper()]
        with fits.open(fuv[key]) as hdul:
            ev = hdul["EVENTS"].data
        src = truth.component[key] == b.SOURCE
        sens = np.interp(ev["WAVELENGTH"][src], seg.wavelength_at(np.arange(16384)),
                         seg.sensitivity)
        n_pixels = seg.xcorr_range[1] - seg.xcorr_range[0]
        flux = np.sum(1.0 / (truth.live_time * sens)) / n_pixels
        assert flux == pytest.approx(truth.flat_flux, rel=0.03)


def test_cos_event_columns_dq_and_epsilon(tmp_path: Path) -> None:
    """DQ, EPSILON, PHA and the RAW/FULL/DOPP columns have the values the builder documents."""
    out = b.build_cos_fuv_pair(tmp_path, segments=("A",), seed=9, exptime=300.0,
                               epsilon_scatter=0.1, bad_dq_fraction=0.2, benign_dq_fraction=0.1,
                               with_x1d=False)
    truth = out["truth"]
    with fits.open(out["corrtag_a"]) as hdul:
        ev = hdul["EVENTS"].data
        assert hdul["EVENTS"].header["SDQFLAGS"] == truth.sdqflags
        n = len(ev)
        dq = ev["DQ"].astype(int)
        bad = (dq & truth.sdqflags) != 0
        assert _fraction_within(bad.sum(), n, 0.2)
        assert _fraction_within(np.count_nonzero((dq != 0) & ~bad), n, 0.1)
        assert np.all(dq & (dq - 1) == 0)  # a flagged event carries one bit
        eps = ev["EPSILON"].astype(float)
        assert eps.mean() == pytest.approx(1.0, abs=5 * 0.1 / np.sqrt(n))
        assert eps.std() == pytest.approx(0.1, rel=0.05)
        assert eps.min() >= 0.5 and eps.max() <= 2.0
        assert ev["PHA"].max() <= 31 and ev["PHA"].mean() == pytest.approx(12.0, abs=0.2)
        for column in ("XDOPP", "XFULL"):
            assert np.array_equal(ev[column], ev["XCORR"])
        assert np.array_equal(ev["YFULL"], ev["YCORR"])
        assert np.all(np.abs(ev["RAWX"] - (ev["XCORR"].astype(float) + 32.0)) <= 0.5 + 1e-3)
        assert np.all(np.abs(ev["RAWY"] - (ev["YCORR"].astype(float) - 4.0)) <= 0.5 + 1e-3)


@pytest.mark.parametrize("detector", ["FUV", "NUV"])
def test_cos_header_values_are_those_asked_for(tmp_path: Path, detector: str) -> None:
    asked = dict(seed=2, exptime=600.0, targname="AU-MIC", proposid=15071, aperture="BOA",
                 fppos=1, expstart=58000.25)
    if detector == "FUV":
        box = (430.5, 35, 370.0, 30, 560.0, 30, 431.0)
        rootname, opt_elem, cenwave, dispersion = "lq7x01ffq", "G160M", 1577, 0.01223
        out = b.build_cos_fuv_pair(tmp_path, rootname, opt_elem=opt_elem, cenwave=cenwave,
                                   boxes={"A": box}, **asked)
        files = [out["corrtag_a"], out["corrtag_b"], out["x1d"]]
    else:
        box = (190.0, 10, 70.0, 30, 650.0, 30, 188.0)
        rootname, opt_elem, cenwave, dispersion = "lq7x02ffq", "G225M", 2010, 0.033
        out = b.build_cos_nuv(tmp_path, rootname, opt_elem=opt_elem, cenwave=cenwave,
                              boxes={"A": box}, **asked)
        files = [out["corrtag"], out["x1d"]]
    iso = Time(58000.25, format="mjd", scale="utc").isot
    loc, hgt, bkg1, hgt1, bkg2, hgt2, nominal = box
    for path in files:
        with fits.open(path) as hdul:
            p, e = hdul[0].header, hdul[1].header
            assert (p["ROOTNAME"], p["FILENAME"], p["DETECTOR"]) == (rootname, path.name, detector)
            assert (p["TARGNAME"], p["PROPOSID"]) == ("AU-MIC", 15071)
            assert (p["APERTURE"], p["PROPAPER"]) == ("BOA", "BOA")
            assert (p["OPT_ELEM"], p["CENWAVE"], p["CENTRWV"]) == (opt_elem, cenwave, float(cenwave))
            assert (p["FPPOS"], p["FPOFFSET"]) == (1, -2)
            assert (e["EXPSTART"], e["EXPTIME"], e["EXPFLAG"]) == (58000.25, 600.0, "NORMAL")
            assert (e["DATE-OBS"], e["TIME-OBS"]) == (iso[:10], iso[11:19])
            assert e["EXPEND"] == pytest.approx(58000.25 + 600.0 / 86400.0, abs=1e-9)
            assert (e["SP_LOC_A"], e["SP_HGT_A"], e["B_BKG1_A"], e["B_HGT1_A"], e["B_BKG2_A"],
                    e["B_HGT2_A"], e["SP_NOM_A"]) == box
            assert e["SP_OFF_A"] == pytest.approx(loc - nominal)
    seg = out["truth"].segments["A"]
    assert (seg.source_box, seg.background1, seg.background2) == (
        b.Box(loc, hgt), b.Box(bkg1, hgt1), b.Box(bkg2, hgt2))
    with fits.open(out["x1d"]) as hdul:
        wave = hdul["SCI"].data["WAVELENGTH"]
    assert np.allclose(np.diff(wave, axis=1), dispersion)  # the grating's dispersion


def test_fuv_matches_the_real_gj436_headers(tmp_path: Path, real_data: Path) -> None:
    real = real_data / REAL_COS / "ld9m10ujq_corrtag_a.fits"
    out = b.build_cos_fuv_pair(tmp_path, segments=("A",))
    with fits.open(real) as r, fits.open(out["corrtag_a"]) as s:
        assert _columns(s["EVENTS"]) == _columns(r["EVENTS"])
        assert [h.name for h in s] == [h.name for h in r]
        assert _columns(s["GTI"]) == _columns(r["GTI"])
        assert set(s["TIMELINE"].columns.names) == set(r["TIMELINE"].columns.names)
        wanted = ({k.format(x) for k in BOX_KEYS for x in "AB"} | LEGACY_EXT1_KEYS
                  | NEW_EXT1_KEYS | {"EXPTIMEA", "EXPTIMEB", "NEVENTSA", "NEVENTSB",
                                     "SHIFT1A", "SHIFT2A", "DISPAXIS", "SDQOUTER"})
        in_real = wanted & set(r[1].header)
        assert in_real, "the real file should carry the box keywords"
        assert not in_real - set(s[1].header), sorted(in_real - set(s[1].header))
        primary_real = (LEGACY_PRIMARY_KEYS | NEW_PRIMARY_KEYS | COS_PRIMARY_KEYS) & set(r[0].header)
        assert COS_PRIMARY_KEYS <= primary_real
        assert not primary_real - set(s[0].header)
        # keyword placement follows the real file: no DATE-OBS in the primary
        for key in ("DATE-OBS", "EXPSTART", "EXPTIME"):
            assert (key in s[0].header) == (key in r[0].header)
        for key in ("OBSMODE", "OBSTYPE", "FILETYPE", "IMAGETYP", "EXPTYPE", "TELESCOP"):
            assert s[0].header[key] == r[0].header[key]
    with fits.open(real_data / REAL_COS / "ld9m10ujq_x1d.fits") as r, \
            fits.open(out["x1d"]) as s:
        assert _columns(s["SCI"]) == _columns(r["SCI"])


def test_legacy_2016_library_reads_the_synthetic_files(fuv: dict, tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import lightcurve.cos
        import lightcurve.io

        stis = b.build_stis_tag(tmp_path)
        assert lightcurve.io.check_filetype(str(fuv["corrtag_a"])) == "cos_corrtag"
        assert lightcurve.io.check_filetype(str(stis["tag"])) == "stis_tag"
        with contextlib.redirect_stdout(io.StringIO()):
            data, meta = lightcurve.cos.extract(str(fuv["corrtag_a"]), step=10)
    assert len(data["gross"]) > 0 and data["gross"].sum() > 0
    assert set(meta) >= {"ylima", "ylimb"}


def test_seeded_determinism(tmp_path: Path) -> None:
    one = b.build_cos_fuv_pair(tmp_path / "1", seed=7, sinusoid={"period": 100, "amplitude": 0.3})
    two = b.build_cos_fuv_pair(tmp_path / "2", seed=7, sinusoid={"period": 100, "amplitude": 0.3})
    other = b.build_cos_fuv_pair(tmp_path / "3", seed=8)
    for key in ("corrtag_a", "corrtag_b", "x1d"):
        assert _sha(one[key]) == _sha(two[key])
    assert _sha(one["corrtag_a"]) != _sha(other["corrtag_a"])
    for key in ("corrtag_a", "corrtag_b"):
        assert np.array_equal(one["truth"].component[key], two["truth"].component[key])
    s1 = b.build_stis_tag(tmp_path / "4", mode="echelle", seed=5)
    s2 = b.build_stis_tag(tmp_path / "5", mode="echelle", seed=5)
    assert _sha(s1["tag"]) == _sha(s2["tag"]) and _sha(s1["x1d"]) == _sha(s2["x1d"])
    assert np.array_equal(s1["truth"].event_order, s2["truth"].event_order)


def test_sinusoid_amplitude_and_gti(tmp_path: Path) -> None:
    gti = [[0.0, 400.0], [600.0, 2000.0]]
    rate, period, amplitude = 200.0, 250.0, 0.4
    out = b.build_cos_fuv_pair(tmp_path, segments=("A",), source_rate=rate, gti=gti,
                               exptime=2000.0, sinusoid=b.Sinusoid(period, amplitude),
                               with_x1d=False)
    truth = out["truth"]
    with fits.open(out["corrtag_a"]) as hdul:
        t = hdul["EVENTS"].data["TIME"].astype(float)
        assert hdul["EVENTS"].header["EXPTIME"] == pytest.approx(1800.0)
        assert np.allclose(hdul["GTI"].data["START"], [0.0, 600.0])
    assert not np.any((t >= 400.0 + b.COS_TICK) & (t < 600.0 - b.COS_TICK))
    src = t[truth.component["corrtag_a"] == b.SOURCE]
    assert 2 * np.mean(np.sin(2 * np.pi * src / period)) == pytest.approx(amplitude, abs=0.03)
    assert truth.live_time == pytest.approx(1800.0)
    # the source count is the modulated rate integrated over the GTIs
    omega = 2 * np.pi / period
    expected = rate * sum(stop - start + amplitude * (np.cos(omega * start) - np.cos(omega * stop))
                          / omega for start, stop in gti)
    assert _within(src.size, expected)


def test_flare_must_lie_in_a_gti(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="GTI"):
        b.build_cos_fuv_pair(tmp_path, gti=[[0, 100], [200, 1000]], flare=b.Flare(90, 50, 10))


def test_header_overrides_set_and_delete(tmp_path: Path) -> None:
    out = b.build_cos_fuv_pair(tmp_path, segments=("B",), SP_LOC_B=480.0, EXPFLAG="INTERRUPTED",
                               TARDESCR="STAR;M V", SP_HGT_A=None, **{"DATE-OBS": "2017-01-02"})
    assert out["corrtag_a"] is None
    for key in ("corrtag_b", "x1d"):  # the x1d headers carry the same overrides
        with fits.open(out[key]) as hdul:
            e = hdul[1].header
            assert e["SP_LOC_B"] == 480.0 and e["EXPFLAG"] == "INTERRUPTED"
            assert e["DATE-OBS"] == "2017-01-02" and "SP_HGT_A" not in e
            assert hdul[0].header["TARDESCR"] == "STAR;M V"
            assert all("SP_HGT_A" not in h.header for h in hdul)


GAPPY_GTI = [[0.0, 150.0], [400.0, 700.0], [800.0, 1000.0]]


@pytest.mark.parametrize("product", ["fuv", "nuv", "stis"])
def test_exptime_is_the_gti_sum(tmp_path: Path, product: str) -> None:
    kwargs: dict = dict(seed=11, gti=GAPPY_GTI, exptime=1000.0)
    if product == "fuv":
        out = b.build_cos_fuv_pair(tmp_path, **kwargs)
        events, tick = [out["corrtag_a"], out["corrtag_b"]], b.COS_TICK
    elif product == "nuv":
        out = b.build_cos_nuv(tmp_path, **kwargs)
        events, tick = [out["corrtag"]], b.COS_TICK
    else:
        out = b.build_stis_tag(tmp_path, **kwargs)
        events, tick = [out["tag"]], b.STIS_TICK
    truth = out["truth"]
    assert truth.live_time == 650.0 and np.array_equal(truth.gti, GAPPY_GTI)
    for path in events:
        with fits.open(path) as hdul:
            p, e = hdul[0].header, hdul[1].header
            gti = np.column_stack([hdul["GTI"].data["START"], hdul["GTI"].data["STOP"]])
            assert np.array_equal(gti, GAPPY_GTI)
            assert e["EXPTIME"] == _gti_sum(hdul) == 650.0
            assert (e["EXPEND"] - e["EXPSTART"]) * 86400.0 == pytest.approx(1000.0, abs=1e-3)
            if product == "fuv":
                assert e["EXPTIMEA"] == e["EXPTIMEB"] == 650.0
            if product == "stis":
                assert p["TEXPTIME"] == 650.0
            t = hdul["EVENTS"].data["TIME"].astype(float)
            assert np.all(_in_gtis(t, gti, tick))
    with fits.open(out["x1d"]) as hdul:
        if product != "stis":
            assert np.all(hdul["SCI"].data["EXPTIME"] == 650.0)
        assert hdul["SCI"].header["EXPTIME"] == 650.0
    # the background accumulates over the live time, not the span
    if product == "stis":
        assert _within(truth.n_background, truth.background_rate * 1024 * 650.0)
    else:
        rows = truth.background_rows[1] - truth.background_rows[0]
        seg = next(iter(truth.segments.values()))
        assert _within(seg.n_background, seg.background_rate * rows * 650.0)


@pytest.mark.parametrize("instrument", ["cos", "stis"])
def test_flare_split_follows_the_source_rates(tmp_path: Path, instrument: str) -> None:
    flare = b.Flare(100.0, 20.0, 4000)
    if instrument == "cos":
        out = b.build_cos_fuv_pair(tmp_path, seed=6, exptime=300.0, flare=flare,
                                   source_rate={"A": 30.0, "B": 10.0}, with_x1d=False)
        truth = out["truth"]
        boxes = {name: (s.source_rate, s.n_source, s.n_flare,
                        np.count_nonzero(truth.component[f"corrtag_{name.lower()}"] == b.FLARE))
                 for name, s in truth.segments.items()}
    else:
        out = b.build_stis_tag(tmp_path, mode="echelle", seed=6, exptime=300.0, flare=flare,
                               source_rate={116: 30.0, 117: 10.0}, with_x1d=False)
        truth = out["truth"]
        boxes = {m: (o.source_rate, o.n_source, o.n_flare,
                     np.count_nonzero((truth.event_order == m) & (truth.component == b.FLARE)))
                 for m, o in truth.orders.items()}
    assert sum(box[2] for box in boxes.values()) == truth.n_flare == 4000
    total_rate = sum(box[0] for box in boxes.values())
    assert total_rate == 40.0
    for rate, n_source, n_flare, written in boxes.values():
        assert written == n_flare
        assert _fraction_within(n_flare, 4000, rate / total_rate)
        assert _within(n_source, rate * 300.0)
        if rate == 0:
            assert n_source == n_flare == 0


@pytest.mark.parametrize("product", ["fuv", "nuv", "stis"])
def test_n_events_sets_the_expected_total(tmp_path: Path, product: str) -> None:
    kwargs: dict = dict(seed=12, exptime=200.0, n_events=150_000, with_x1d=False,
                        flare=b.Flare(50.0, 10.0, 5000))
    if product == "stis":
        truth = b.build_stis_tag(tmp_path, **kwargs)["truth"]
        total = len(truth.component)
        ratios = [o.source_rate / truth.background_rate for o in truth.orders.values()]
        default_ratio = 20.0 / 0.005
    else:
        build = b.build_cos_fuv_pair if product == "fuv" else b.build_cos_nuv
        truth = build(tmp_path, **kwargs)["truth"]
        total = sum(len(c) for c in truth.component.values())
        ratios = [s.source_rate / s.background_rate for s in truth.segments.values()]
        default_ratio = 20.0 / 0.05 if product == "fuv" else 10.0 / 0.01
    assert _within(total, 150_000)
    assert truth.n_flare == 5000
    assert ratios == pytest.approx([default_ratio] * len(ratios))  # one scale for all rates


# ----------------------------------------------------------------------------- COS NUV
@pytest.mark.parametrize(("opt_elem", "cenwave", "stripes"),
                         [("G185M", 1882, "ABC"), ("G230L", 2950, "AB")])
def test_nuv(tmp_path: Path, opt_elem: str, cenwave: int, stripes: str) -> None:
    out = b.build_cos_nuv(tmp_path, opt_elem=opt_elem, cenwave=cenwave)
    truth = out["truth"]
    assert sorted(truth.segments) == list(stripes)
    comp = truth.component["corrtag"]
    with fits.open(out["corrtag"]) as hdul:
        p, e = hdul[0].header, hdul[1].header
        assert (p["DETECTOR"], p["SEGMENT"], p["OPT_ELEM"]) == ("NUV", "N/A", opt_elem)
        assert (p["CENWAVE"], e["SDQFLAGS"]) == (cenwave, b.COS_NUV_SDQFLAGS)
        assert _columns(hdul["EVENTS"]) == COS_COLUMNS
        assert {k.format(x) for k in BOX_KEYS for x in stripes} <= set(e)
        assert "SP_LOC_C" not in e if stripes == "AB" else "SP_LOC_C" in e
        assert e["NEVENTS"] == len(comp) == len(hdul["EVENTS"].data)
        ev = hdul["EVENTS"].data
        assert np.all(ev["PHA"] == 0)
        for name, seg in truth.segments.items():
            lo, hi = seg.source_box.legacy_rows
            in_box = (ev["YCORR"] >= lo) & (ev["YCORR"] < hi) & (comp > 0)
            assert in_box.sum() == seg.n_source + seg.n_flare, name
            assert _within(seg.n_source, seg.source_rate * truth.live_time), name
            assert np.allclose(ev["WAVELENGTH"][in_box], seg.wavelength_at(ev["XCORR"][in_box]),
                               atol=1e-3)
            assert np.all((ev["WAVELENGTH"][in_box] > 915) & (ev["WAVELENGTH"][in_box] < 3200))
            # per-event calibration with this stripe's sensitivity gives back flat_flux
            src = in_box & (comp == b.SOURCE)
            grid = seg.wavelength_at(np.arange(1274) - seg.x1d_offset)
            sens = np.interp(ev["WAVELENGTH"][src], grid, seg.sensitivity)
            n_pixels = seg.xcorr_range[1] - seg.xcorr_range[0]
            flux = np.sum(1.0 / (truth.live_time * sens)) / n_pixels
            assert flux == pytest.approx(truth.flat_flux, rel=0.05), name
    # one background field shared by the stripes, uniform over truth.background_rows
    n_bkg = np.count_nonzero(comp == b.BACKGROUND)
    rows = truth.background_rows[1] - truth.background_rows[0]
    for seg in truth.segments.values():
        assert seg.n_background == n_bkg
        assert _within(n_bkg, seg.background_rate * rows * truth.live_time)
    with fits.open(out["x1d"]) as hdul:
        data = hdul[1].data
        assert list(data["SEGMENT"]) == [f"NUV{x}" for x in stripes]
        assert data["WAVELENGTH"].shape == (len(stripes), 1274)
        for row in data:
            seg = truth.segments[row["SEGMENT"][-1]]
            assert np.allclose(row["WAVELENGTH"], seg.wavelength_at(np.arange(1274) - 125))
            assert row["NET"].sum() == pytest.approx(seg.source_rate, rel=1e-5)
            good = row["NET"] > 0
            assert np.count_nonzero(good) == seg.xcorr_range[1] - seg.xcorr_range[0]
            assert np.allclose(row["FLUX"][good], truth.flat_flux, rtol=1e-5)


# ----------------------------------------------------------------------------- STIS
@pytest.mark.parametrize(("mode", "detector", "n_rows"),
                         [("first_order", "FUV-MAMA", 1), ("first_order", "NUV-MAMA", 1),
                          ("echelle", "FUV-MAMA", 8), ("echelle", "NUV-MAMA", 8)])
def test_stis_tag_and_x1d(tmp_path: Path, mode: str, detector: str, n_rows: int) -> None:
    out = b.build_stis_tag(tmp_path, mode=mode, detector=detector, shifta2=1.5,
                           flare={"start": 100, "duration": 20, "counts": 300})
    truth = out["truth"]
    assert out["tag"].name == "oc5r01abq_tag.fits" and out["x1d"].name == "oc5r01abq_x1d.fits"
    with fits.open(out["tag"]) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "EVENTS", "GTI"]
        assert _columns(hdul["EVENTS"]) == STIS_TAG_COLUMNS
        assert hdul["EVENTS"].header["TSCAL1"] == b.STIS_TICK
        p, e = hdul[0].header, hdul[1].header
        assert not STIS_PRIMARY_KEYS - set(p), sorted(STIS_PRIMARY_KEYS - set(p))
        assert {"EXPSTART", "EXPEND", "EXPTIME", "EXPFLAG", "DATE-OBS", "SDQFLAGS"} <= set(e)
        assert (p["INSTRUME"], p["DETECTOR"], p["OBSMODE"]) == ("STIS", detector, "TIME-TAG")
        assert p["PFLTFILE"] == "oref$synth_pfl.fits" and "IMAGETYP" not in p
        assert p["OPT_ELEM"].startswith("E" if mode == "echelle" else "G")
        assert (e["SDQFLAGS"], e["NEVENTS"]) == (b.STIS_SDQFLAGS, len(truth.component))
        assert e["EXPTIME"] == p["TEXPTIME"] == _gti_sum(hdul) == truth.live_time
        assert "SHIFTA2" not in e  # SHIFTA2 is an x1d keyword
        ev = hdul["EVENTS"].data
        t, a1, a2 = ev["TIME"], ev["AXIS1"], ev["AXIS2"]
        assert np.all(np.diff(t) >= 0) and a1.min() >= 0 and a1.max() <= 2047
        assert a2.min() >= 0 and a2.max() <= 2047
        assert np.allclose(t / b.STIS_TICK, np.round(t / b.STIS_TICK), atol=1e-6)
        assert np.all(np.abs(ev["DETAXIS1"].astype(int) - a1) <= 3)  # the onboard Doppler shift
    with fits.open(out["x1d"]) as hdul:
        sci = hdul["SCI"]
        assert STIS_X1D_COLUMNS <= set(sci.columns.names)
        assert sci.data["WAVELENGTH"].shape == (n_rows, 1024)
        assert sci.header["SHIFTA2"] == 1.5
        centres = np.sort(sci.data["A2CENTER"])
        assert np.all(np.diff(centres) > sci.data["EXTRSIZE"].max() + 2 * sci.data["BK2SIZE"].max())
        assert np.allclose(sci.data["FLUX"], truth.flat_flux, rtol=1e-5)
        # every x1d row is the order the truth names
        assert sorted(sci.data["SPORDER"]) == sorted(truth.orders)
        for row in sci.data:
            order = truth.orders[int(row["SPORDER"])]
            assert np.allclose([row[k] for k in ("A2CENTER", "EXTRSIZE", "BK1SIZE", "BK2SIZE",
                                                 "BK1OFFST", "BK2OFFST")],
                               astuple(order.geometry)[:6])
            assert np.allclose(row["EXTRLOCY"], order.geometry.a2center + 1.5)
            assert np.allclose(row["WAVELENGTH"], order.wavelength)
            assert np.allclose(row["NET"], order.source_rate * order.source_pmf, rtol=1e-5)
            assert np.allclose(row["NET"] / row["FLUX"], order.sensitivity, rtol=1e-5)
    # every source/flare event lies in the order truth names, within EXTRSIZE/2 (low-res)
    assert truth.n_flare == 300 == sum(o.n_flare for o in truth.orders.values())
    t = t.astype(float)
    flare_t = t[truth.component == b.FLARE]
    assert flare_t.min() >= 100.0 - b.STIS_TICK and flare_t.max() <= 120.0
    for sporder, order in truth.orders.items():
        mine = truth.event_order == sporder
        assert np.all(truth.component[mine] > 0)
        assert np.count_nonzero(truth.component[mine] == b.FLARE) == order.n_flare
        row = a2[mine] / 2.0
        assert np.all(np.abs(row - (order.geometry.a2center + truth.shifta2)) <= order.geometry.extrsize / 2)
        src = mine & (truth.component == b.SOURCE)
        assert src.sum() == order.n_source
        assert _within(order.n_source, order.source_rate * truth.live_time)
        # columns follow the order's pmf, and calibrate back to flat_flux
        column = a1[src] // 2
        per_bin = np.add.reduceat(order.source_pmf, np.arange(0, 1024, 64)) * order.n_source
        assert _binned_counts_match(column, np.arange(0, 1025, 64), per_bin)
        flux = np.sum(1.0 / (truth.live_time * order.sensitivity[column])) / 1024
        assert flux == pytest.approx(truth.flat_flux, rel=0.05)
    n_bkg = np.count_nonzero(truth.component == b.BACKGROUND)
    assert n_bkg == truth.n_background
    assert _within(n_bkg, truth.background_rate * 1024 * truth.live_time)


def test_stis_header_values_are_those_asked_for(tmp_path: Path) -> None:
    refs = dict(pfltfile="oref$abc_pfl.fits", lfltfile="oref$abc_lfl.fits",
                bpixtab="oref$abc_bpx.fits")
    out = b.build_stis_tag(tmp_path, "o6b201xxq", mode="echelle", detector="NUV-MAMA", seed=1,
                           exptime=400.0, targname="GJ-581", proposid=13650, expstart=57000.5,
                           cenwave=2269, aperture="0.2X0.06", shifta2=-2.25, n_orders=5,
                           order_spacing=60.0, **refs)
    iso = Time(57000.5, format="mjd", scale="utc").isot
    for key in ("tag", "x1d"):
        with fits.open(out[key]) as hdul:
            p, e = hdul[0].header, hdul[1].header
            assert (p["ROOTNAME"], p["FILENAME"]) == ("o6b201xxq", out[key].name)
            assert (p["TARGNAME"], p["PROPOSID"], p["DETECTOR"], p["OPT_ELEM"]) == (
                "GJ-581", 13650, "NUV-MAMA", "E230M")
            assert (p["CENWAVE"], p["CENTRWV"]) == (2269, 2269.0)
            assert (p["APERTURE"], p["PROPAPER"]) == ("0.2X0.06", "0.2X0.06")
            assert {k.upper(): p[k.upper()] for k in refs} == {k.upper(): v for k, v in refs.items()}
            assert (p["TEXPSTRT"], p["TDATEOBS"], p["TTIMEOBS"], p["TEXPTIME"]) == (
                57000.5, iso[:10], iso[11:19], 400.0)
            assert p["TEXPEND"] == pytest.approx(57000.5 + 400.0 / 86400.0, abs=1e-9)
            assert (e["EXPSTART"], e["EXPTIME"], e["DATE-OBS"], e["TIME-OBS"]) == (
                57000.5, 400.0, iso[:10], iso[11:19])
            assert e["NEVENTS"] == len(out["truth"].component)
    with fits.open(out["x1d"]) as hdul:
        sci = hdul["SCI"]
        assert sci.header["SHIFTA2"] == -2.25
        assert np.allclose(np.diff(np.sort(sci.data["A2CENTER"])), 60.0)
        centre = sci.data["WAVELENGTH"][:, 511:513].mean(axis=1)
        middle = list(sci.data["SPORDER"]).index(83)  # E230M's middle order
        assert centre[middle] == pytest.approx(2269.0)
        # the grating equation: order * central wavelength is the same for every order
        assert np.allclose(sci.data["SPORDER"] * centre, 83 * 2269.0)


def test_stis_sinusoid_folds_to_the_injected_curve(tmp_path: Path) -> None:
    rate, period, amplitude, phase = 100.0, 125.0, 0.5, 1.0
    out = b.build_stis_tag(tmp_path, seed=13, source_rate=rate, background_rate=0.0,
                           sinusoid=b.Sinusoid(period, amplitude, phase), with_x1d=False)
    truth = out["truth"]
    assert truth.n_background == 0 and truth.sinusoid == b.Sinusoid(period, amplitude, phase)
    with fits.open(out["tag"]) as hdul:
        t = hdul["EVENTS"].data["TIME"].astype(float)
    assert np.all(truth.component == b.SOURCE)
    # 8 whole periods: folded counts follow rate * (1 + A sin(2 pi phi + phase))
    edges = np.linspace(0.0, 1.0, 11)
    angle = 2 * np.pi * edges + phase
    expected = rate * 1000.0 * (np.diff(edges) - amplitude / (2 * np.pi) * np.diff(np.cos(angle)))
    assert _binned_counts_match((t / period) % 1.0, edges, expected)
    assert 2 * np.mean(np.sin(2 * np.pi * t / period)) == pytest.approx(
        amplitude * np.cos(phase), abs=0.02)
    assert 2 * np.mean(np.cos(2 * np.pi * t / period)) == pytest.approx(
        amplitude * np.sin(phase), abs=0.02)


def test_exponential_flare_profile(tmp_path: Path) -> None:
    flare = b.Flare(200.0, 100.0, 20000, "exponential")
    out = b.build_cos_nuv(tmp_path, seed=14, exptime=500.0, source_rate=1.0, flare=flare,
                          with_x1d=False)
    truth = out["truth"]
    comp = truth.component["corrtag"]
    with fits.open(out["corrtag"]) as hdul:
        t = hdul["EVENTS"].data["TIME"].astype(float)
    dt = t[comp == b.FLARE] - flare.start
    assert dt.size == truth.n_flare == 20000
    assert dt.min() >= -b.COS_TICK and dt.max() <= flare.duration
    tau = flare.duration / 5
    norm = 1 - np.exp(-flare.duration / tau)
    edges = np.arange(0.0, flare.duration + 1, 10.0)
    expected = 20000 * -np.diff(np.exp(-edges / tau)) / norm
    edges[0] = -b.COS_TICK  # times are floored to 32 ms ticks
    assert _binned_counts_match(dt, edges, expected)
    mean = tau - flare.duration * np.exp(-flare.duration / tau) / norm
    assert dt.mean() == pytest.approx(mean, abs=5 * tau / np.sqrt(20000))


def test_stis_imaging(tmp_path: Path) -> None:
    out = b.build_stis_tag(tmp_path, mode="imaging", source_rate=50.0)
    truth = out["truth"]
    assert out["x1d"] is None and truth.orders == {}
    assert truth.source_position == (1024.0, 1024.0)
    with fits.open(out["tag"]) as hdul:
        p = hdul[0].header
        assert p["OBSTYPE"] == "IMAGING" and "CENWAVE" not in p
        assert (p["OPT_ELEM"], p["APERTURE"]) == ("25MAMA", "25MAMA")
        ev = hdul["EVENTS"].data
        a1, a2 = ev["AXIS1"].astype(float), ev["AXIS2"].astype(float)
    src = truth.component > 0
    assert np.all(truth.event_order == 0)
    assert _within(src.sum(), 50.0 * truth.live_time)
    for axis in (a1, a2):  # a point source at the centre, 3 high-res pixels wide
        assert axis[src].mean() == pytest.approx(1024.0, abs=0.1)
        assert axis[src].std() == pytest.approx(3.0, rel=0.05)
    assert _within(np.count_nonzero(~src), truth.background_rate * 1024 * truth.live_time)


# ----------------------------------------------------------------------------- bad files
BAD_CASES = [(kind, instrument) for kind in sorted(b.BAD_KINDS)
             for instrument in b.BAD_INSTRUMENTS[kind]]
REMOVED_KEYWORD = {"cos": "SP_LOC_A", "stis": "EXPSTART"}


@pytest.mark.parametrize(("kind", "instrument"), BAD_CASES)
def test_bad_files(tmp_path: Path, kind: str, instrument: str) -> None:
    path = b.build_bad(tmp_path, kind, instrument=instrument, keyword=REMOVED_KEYWORD[instrument])
    assert path.exists()
    cos = instrument == "cos"
    suffix = {"accum": "_rawacq.fits" if cos else "_raw.fits",
              "lampflash": "_lampflash.fits"}.get(kind, "_corrtag_a.fits" if cos else "_tag.fits")
    assert path.name.endswith(suffix)
    if kind == "not_fits":
        assert path.read_text().startswith("SIMPLE = this is not a FITS file")
    if kind == "truncated":  # an intact file, cut in the middle of the EVENTS header
        root = path.name.split("_")[0]
        intact = (b.build_cos_fuv_pair(tmp_path / "intact", root, segments=("A",),
                                       with_x1d=False)["corrtag_a"] if cos else
                  b.build_stis_tag(tmp_path / "intact", root, with_x1d=False)["tag"])
        cut, whole = path.read_bytes(), intact.read_bytes()
        with fits.open(intact) as hdul:
            info = hdul.fileinfo(1)
        assert whole.startswith(cut) and info["hdrLoc"] < len(cut) < info["datLoc"]
    if kind in ("not_fits", "truncated"):
        with pytest.raises((OSError, fits.verify.VerifyWarning, ValueError)):
            with fits.open(path) as hdul:
                hdul.verify("exception")
                _ = hdul[1].data
        return
    with fits.open(path) as hdul:
        p, e = hdul[0].header, hdul[1].header
        assert p["INSTRUME"] == instrument.upper()
        if kind == "accum":
            assert p["OBSMODE"] == "ACCUM" and "EVENTS" not in hdul
            return
        if kind == "lampflash":
            assert p["OBSMODE"] == "TIME-TAG" and hdul[1].name == "LAMPFLASH"
            assert "EVENTS" not in hdul and list(hdul[1].data["SEGMENT"]) == ["FUVA"]
            return
        t = hdul["EVENTS"].data["TIME"].astype(float)
        assert e["NEVENTS"] == len(t)
        if kind == "bad_expflag":
            assert e["EXPFLAG"] == "INTERRUPTED"
        elif kind == "nonmonotonic_time":  # one block of 50 events moved 100 s back
            drops = np.flatnonzero(np.diff(t) < 0)
            assert drops.size == 1
            i0 = drops[0] + 1
            assert 99.0 < t[i0 - 1] - t[i0] <= 100.0 + 1e-3
            assert 100.0 - 1e-3 <= t[i0 + 50] - t[i0 + 49] < 101.0
        elif kind == "no_events":
            assert len(t) == 0
        elif kind == "singular_time":
            assert len(t) == 20 and np.allclose(t, 5.0)
        elif kind == "short_exposure":
            assert e["EXPTIME"] == _gti_sum(hdul) == 0.5
        elif kind == "bad_proposal":
            assert p["PROPOSID"] == 99999
        elif kind == "missing_keyword":
            assert all(REMOVED_KEYWORD[instrument] not in h.header for h in hdul)
            assert cos == ("SP_LOC_B" in e)  # only the asked keyword is gone
        else:
            raise AssertionError(f"no check for {kind!r}")
        # the other values stay those of a good file
        if kind != "bad_expflag":
            assert e["EXPFLAG"] == "NORMAL"
        if kind != "bad_proposal":
            assert p["PROPOSID"] == 12345
        if kind not in ("short_exposure", "missing_keyword"):
            assert e["EXPTIME"] == _gti_sum(hdul) == 1000.0
        if kind != "nonmonotonic_time" and len(t):
            assert np.all(np.diff(t) >= 0)


def test_bad_kind_reasons_are_hstlc_reasons() -> None:
    from hstlc import errors

    assert set(b.BAD_KINDS.values()) <= set(errors.BAD_DATA_REASONS)
    assert set(b.BAD_INSTRUMENTS) == set(b.BAD_KINDS)
    with pytest.raises(ValueError, match="unknown bad-file kind"):
        b.build_bad(Path("/nonexistent"), "nope")
    with pytest.raises(ValueError, match="instrument"):
        b.build_bad(Path("/nonexistent"), "no_events", instrument="acs")


def test_a_lampflash_is_a_cos_product(tmp_path: Path) -> None:
    assert b.BAD_INSTRUMENTS["lampflash"] == ("cos",)
    with pytest.raises(ValueError, match="lampflash"):
        b.build_bad(tmp_path / "stis", "lampflash", instrument="stis")
    assert not (tmp_path / "stis").exists()
    path = b.build_bad(tmp_path / "cos", "lampflash")
    with fits.open(path) as hdul:
        assert (hdul[0].header["INSTRUME"], hdul[1].name) == ("COS", "LAMPFLASH")


# ----------------------------------------------------------------------------- reference files
def test_stis_reference_files(tmp_path: Path) -> None:
    path, image = b.build_stis_flat(tmp_path / "oref", shape=(2048, 2048), seed=1)
    with fits.open(path) as hdul:
        assert np.array_equal(hdul["SCI"].data, image) and image.shape == (2048, 2048)
        assert np.all(hdul["ERR"].data == np.float32(0.01)) and np.all(hdul["DQ"].data == 0)
        p = hdul[0].header
        assert (p["FILENAME"], p["FILETYPE"], p["INSTRUME"]) == (
            "synth_pfl.fits", "PIXEL-TO-PIXEL FLAT", "STIS")
    assert 0.8 <= image.min() and image.max() <= 1.2 + 1e-6  # 1 + U(-0.2, 0.2)
    assert image.mean() == pytest.approx(1.0, abs=1e-3)
    assert np.array_equal(b.build_stis_flat(tmp_path / "again", shape=(2048, 2048), seed=1)[1],
                          image)
    lfl, low = b.build_stis_flat(tmp_path / "oref", "synth_lfl.fits", shape=(512, 1024), seed=2,
                                 spread=0.05, filetype="LOW ORDER FLAT")
    assert low.shape == (512, 1024) and 0.95 <= low.min() and low.max() <= 1.05 + 1e-6
    assert fits.getval(lfl, "FILETYPE") == "LOW ORDER FLAT"

    rows = [(11, 21, 5, 1, 4), (31, 41, 7, 2, 16), (1, 1024, 1, 1, 512)]
    for name, asked in (("synth_bpx.fits", ((101, 201, 10, 1, 4), (301, 401, 20, 2, 16))),
                        ("custom_bpx.fits", rows)):
        bpx = (b.build_stis_bpixtab(tmp_path / "oref") if name == "synth_bpx.fits" else
               b.build_stis_bpixtab(tmp_path / "oref", name, rows=rows))
        table = Table.read(bpx)
        assert table.colnames == ["PIX1", "PIX2", "LENGTH", "AXIS", "VALUE"]
        assert [tuple(int(v) for v in row) for row in table] == [tuple(r) for r in asked]


@pytest.mark.parametrize("detector", ["FUV", "NUV"])
def test_cos_reference_files_match_the_x1d(tmp_path: Path, fuv: dict, detector: str) -> None:
    out = fuv if detector == "FUV" else b.build_cos_nuv(tmp_path / "nuv", seed=2, expstart=57500.0)
    truth = out["truth"]
    opt_elem, cenwave = ("G130M", 1291) if detector == "FUV" else ("G185M", 1882)
    refs = b.build_cos_reference_files(tmp_path / "lref", truth, opt_elem=opt_elem,
                                       cenwave=cenwave, tds_slope=-1.5)
    with fits.open(out["x1d"]) as hdul:
        x1d = Table(hdul["SCI"].data)
    with fits.open(refs["fluxtab"]) as hdul:
        phot = hdul["PHOT"].data
        assert list(phot["SEGMENT"]) == list(x1d["SEGMENT"])
        assert set(phot["OPT_ELEM"]) == {opt_elem} and set(phot["CENWAVE"]) == {cenwave}
        assert set(phot["APERTURE"]) == {"PSA"}
        for ref, row in zip(phot, x1d, strict=True):
            seg = truth.segments[row["SEGMENT"][-1]]
            assert np.allclose(ref["WAVELENGTH"], row["WAVELENGTH"])
            good = row["FLUX"] > 0
            assert np.allclose(ref["SENSITIVITY"][good], row["NET"][good] / row["FLUX"][good],
                               rtol=1e-5)
            assert np.allclose(ref["SENSITIVITY"], seg.sensitivity, rtol=1e-6)
    with fits.open(refs["tdstab"]) as hdul:
        tds = hdul["TDS"].data
        ref_time = hdul["TDS"].header["REF_TIME"]
        assert ref_time == pytest.approx(truth.expstart - 365.25)
        assert tds["SLOPE"].shape == (len(x1d), 2, 5) and np.all(tds["SLOPE"] == -1.5)
        assert np.all(tds["INTERCEPT"] == 1.0)
        assert np.all(tds["NWL"] == 5) and np.all(tds["NT"] == 2)
        assert np.allclose(tds["TIME"], [ref_time - 1000.0, ref_time])
        for waves, row in zip(tds["WAVELENGTH"], x1d, strict=True):
            assert waves[0] < row["WAVELENGTH"].min() and waves[-1] > row["WAVELENGTH"].max()


# ----------------------------------------------------------------------------- scale
@pytest.mark.slow
def test_ten_million_events_in_well_under_a_minute(tmp_path: Path) -> None:
    start = time.perf_counter()
    out = b.build_cos_fuv_pair(tmp_path, n_events=10_000_000, with_x1d=False)
    elapsed = time.perf_counter() - start
    total = sum(len(c) for c in out["truth"].component.values())
    assert _within(total, 10_000_000)
    assert elapsed < 40.0, f"{elapsed:.1f} s"
    size = sum(out[k].stat().st_size for k in ("corrtag_a", "corrtag_b"))
    assert 350e6 < size < 450e6
