"""The synthetic-file builders write realistic, complete and truthful files."""

from __future__ import annotations

import contextlib
import hashlib
import io
import time
import warnings
from pathlib import Path

import builders as b
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

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


@pytest.fixture(scope="module")
def fuv(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return b.build_cos_fuv_pair(tmp_path_factory.mktemp("fuv"), seed=3,
                                flare=b.Flare(400.0, 50.0, 800))


# ----------------------------------------------------------------------------- COS FUV
def test_fuv_pair_opens_with_every_column_and_keyword(fuv: dict) -> None:
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
            assert p["FLUXTAB"].startswith("lref$") and p["TDSTAB"].startswith("lref$")
            assert e["EXPFLAG"] == "NORMAL" and e["NEVENTS"] == e["NEVENTSA"] + e["NEVENTSB"]
            time_col = hdul["EVENTS"].data["TIME"]
            assert time_col.dtype == np.dtype(">f4") and np.all(np.diff(time_col) >= 0)
        table = Table.read(fuv[key], hdu="EVENTS")
        assert len(table) == len(fuv["truth"].component[key])


def test_fuv_x1d_matches_real_layout_and_calibration(fuv: dict) -> None:
    truth = fuv["truth"]
    with fits.open(fuv["x1d"]) as hdul:
        assert hdul[1].name == "SCI" and hdul[0].header["SEGMENT"] == "BOTH"
        data = hdul[1].data
        assert list(data["SEGMENT"]) == ["FUVA", "FUVB"]
        for row in data:
            seg = truth.segments[row["SEGMENT"][-1]]
            assert row["WAVELENGTH"].shape == (16384,)
            good = row["NET"] > 0
            assert np.allclose(row["FLUX"][good], truth.flat_flux, rtol=1e-5)
            assert np.allclose(row["NET"][good] / row["FLUX"][good], seg.sensitivity[good],
                               rtol=1e-5)
            assert np.allclose(row["WAVELENGTH"], seg.wavelength_at(np.arange(16384)))


def test_fuv_injected_truth(fuv: dict) -> None:
    truth = fuv["truth"]
    assert truth.n_flare == 800
    for key in ("corrtag_a", "corrtag_b"):
        seg = truth.segments[key[-1].upper()]
        comp = truth.component[key]
        with fits.open(fuv[key]) as hdul:
            ev = hdul["EVENTS"].data
            t, y, x = ev["TIME"], ev["YCORR"], ev["XCORR"]
            src = comp == b.SOURCE
            assert src.sum() == seg.n_source and (comp == b.FLARE).sum() == seg.n_flare
            assert _within(seg.n_source, seg.source_rate * truth.live_time)
            # every source and flare event inside the box, in either edge convention
            lo, hi = seg.source_box.legacy_rows
            assert np.all((y[comp > 0] >= lo) & (y[comp > 0] < hi))
            flare_t = t[comp == b.FLARE]
            assert flare_t.min() >= 400.0 - b.COS_TICK and flare_t.max() <= 450.0
            # background: uniform per row, so a box of height h holds rate * h * T
            for box in (seg.background1, seg.background2, seg.source_box):
                r0, r1 = box.rows
                n = np.count_nonzero((comp == b.BACKGROUND) & (y >= r0) & (y < r1))
                assert _within(n, seg.background_rate * box.height * truth.live_time)
            # wavelength follows the linear dispersion of XCORR
            assert np.allclose(ev["WAVELENGTH"], seg.wavelength_at(x), atol=1e-3)
            bad = (ev["DQ"] & truth.sdqflags) != 0
            assert 0.005 < bad.mean() < 0.02
            assert np.any((ev["DQ"] != 0) & ~bad)  # benign flags exist too
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
    s1 = b.build_stis_tag(tmp_path / "4", mode="echelle", seed=5)
    s2 = b.build_stis_tag(tmp_path / "5", mode="echelle", seed=5)
    assert _sha(s1["tag"]) == _sha(s2["tag"]) and _sha(s1["x1d"]) == _sha(s2["x1d"])


def test_sinusoid_amplitude_and_gti(tmp_path: Path) -> None:
    gti = [[0.0, 400.0], [600.0, 2000.0]]
    out = b.build_cos_fuv_pair(tmp_path, segments=("A",), source_rate=200.0, gti=gti,
                               exptime=2000.0, sinusoid=b.Sinusoid(period=250.0, amplitude=0.4),
                               with_x1d=False)
    truth = out["truth"]
    with fits.open(out["corrtag_a"]) as hdul:
        t = hdul["EVENTS"].data["TIME"].astype(float)
        assert hdul["EVENTS"].header["EXPTIME"] == pytest.approx(1800.0)
        assert np.allclose(hdul["GTI"].data["START"], [0.0, 600.0])
    assert not np.any((t >= 400.0 + b.COS_TICK) & (t < 600.0 - b.COS_TICK))
    src = t[truth.component["corrtag_a"] == b.SOURCE]
    amplitude = 2 * np.mean(np.sin(2 * np.pi * src / 250.0))
    assert amplitude == pytest.approx(0.4, abs=0.03)
    assert truth.live_time == pytest.approx(1800.0)


def test_flare_must_lie_in_a_gti(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="GTI"):
        b.build_cos_fuv_pair(tmp_path, gti=[[0, 100], [200, 1000]], flare=b.Flare(90, 50, 10))


def test_header_overrides_set_and_delete(tmp_path: Path) -> None:
    out = b.build_cos_fuv_pair(tmp_path, segments=("B",), SP_LOC_B=480.0, EXPFLAG="INTERRUPTED",
                               TARDESCR="STAR;M V", SP_HGT_A=None, **{"DATE-OBS": "2017-01-02"})
    assert out["corrtag_a"] is None
    with fits.open(out["corrtag_b"]) as hdul:
        e = hdul[1].header
        assert e["SP_LOC_B"] == 480.0 and e["EXPFLAG"] == "INTERRUPTED"
        assert e["DATE-OBS"] == "2017-01-02" and "SP_HGT_A" not in e
        assert hdul[0].header["TARDESCR"] == "STAR;M V"


# ----------------------------------------------------------------------------- COS NUV
@pytest.mark.parametrize(("opt_elem", "cenwave", "stripes"),
                         [("G185M", 1882, "ABC"), ("G230L", 2950, "AB")])
def test_nuv(tmp_path: Path, opt_elem: str, cenwave: int, stripes: str) -> None:
    out = b.build_cos_nuv(tmp_path, opt_elem=opt_elem, cenwave=cenwave)
    truth = out["truth"]
    assert sorted(truth.segments) == list(stripes)
    with fits.open(out["corrtag"]) as hdul:
        p, e = hdul[0].header, hdul[1].header
        assert (p["DETECTOR"], p["SEGMENT"], p["OPT_ELEM"]) == ("NUV", "N/A", opt_elem)
        assert _columns(hdul["EVENTS"]) == COS_COLUMNS
        assert {k.format(x) for k in BOX_KEYS for x in stripes} <= set(e)
        assert "SP_LOC_C" not in e if stripes == "AB" else "SP_LOC_C" in e
        ev = hdul["EVENTS"].data
        comp = truth.component["corrtag"]
        for name, seg in truth.segments.items():
            lo, hi = seg.source_box.legacy_rows
            in_box = (ev["YCORR"] >= lo) & (ev["YCORR"] < hi) & (comp > 0)
            assert in_box.sum() == seg.n_source + seg.n_flare, name
            assert np.allclose(ev["WAVELENGTH"][in_box], seg.wavelength_at(ev["XCORR"][in_box]),
                               atol=1e-3)
            assert np.all((ev["WAVELENGTH"][in_box] > 915) & (ev["WAVELENGTH"][in_box] < 3200))
    with fits.open(out["x1d"]) as hdul:
        assert list(hdul[1].data["SEGMENT"]) == [f"NUV{x}" for x in stripes]
        assert hdul[1].data["WAVELENGTH"].shape == (len(stripes), 1274)


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
        assert p["PFLTFILE"].startswith("oref$") and "IMAGETYP" not in p
        assert p["OPT_ELEM"].startswith("E" if mode == "echelle" else "G")
        ev = hdul["EVENTS"].data
        t, a1, a2 = ev["TIME"], ev["AXIS1"], ev["AXIS2"]
        assert np.all(np.diff(t) >= 0) and a1.min() >= 0 and a1.max() <= 2047
        assert a2.min() >= 0 and a2.max() <= 2047
    with fits.open(out["x1d"]) as hdul:
        sci = hdul["SCI"]
        assert STIS_X1D_COLUMNS <= set(sci.columns.names)
        assert sci.data["WAVELENGTH"].shape == (n_rows, 1024)
        assert sci.header["SHIFTA2"] == 1.5
        centres = np.sort(sci.data["A2CENTER"])
        assert np.all(np.diff(centres) > sci.data["EXTRSIZE"].max() + 2 * sci.data["BK2SIZE"].max())
        assert np.allclose(sci.data["FLUX"], truth.flat_flux, rtol=1e-5)
    # every source/flare event lies in the order truth names, within EXTRSIZE/2 (low-res)
    assert truth.n_flare == 300
    for sporder, order in truth.orders.items():
        mine = truth.event_order == sporder
        assert np.all(truth.component[mine] > 0)
        row = a2[mine] / 2.0
        assert np.all(np.abs(row - (order.a2center + truth.shifta2)) <= order.extrsize / 2)
        assert _within(np.count_nonzero(truth.component[mine] == b.SOURCE),
                       order.source_rate * truth.live_time)
    n_bkg = np.count_nonzero(truth.component == b.BACKGROUND)
    assert n_bkg == truth.n_background
    assert _within(n_bkg, truth.background_rate * 1024 * truth.live_time)


def test_stis_imaging(tmp_path: Path) -> None:
    out = b.build_stis_tag(tmp_path, mode="imaging")
    assert out["x1d"] is None and out["truth"].orders == {}
    with fits.open(out["tag"]) as hdul:
        assert hdul[0].header["OBSTYPE"] == "IMAGING" and "CENWAVE" not in hdul[0].header


# ----------------------------------------------------------------------------- bad files
@pytest.mark.parametrize("instrument", ["cos", "stis"])
@pytest.mark.parametrize("kind", sorted(b.BAD_KINDS))
def test_bad_files(tmp_path: Path, kind: str, instrument: str) -> None:
    if kind == "lampflash" and instrument == "stis":
        pytest.skip("a lamp-flash file is a COS product")
    path = b.build_bad(tmp_path, kind, instrument=instrument,
                       keyword="SP_LOC_A" if instrument == "cos" else "EXPSTART")
    assert path.exists()
    if kind in ("not_fits", "truncated"):
        with pytest.raises((OSError, fits.verify.VerifyWarning, ValueError)):
            with fits.open(path) as hdul:
                hdul.verify("exception")
                _ = hdul[1].data
        return
    with fits.open(path) as hdul:
        p, e = hdul[0].header, hdul[1].header
        if kind == "accum":
            assert p["OBSMODE"] == "ACCUM"
            return
        if kind == "lampflash":
            assert p["OBSMODE"] == "TIME-TAG" and hdul[1].name == "LAMPFLASH"
            return
        t = hdul["EVENTS"].data["TIME"]
        checks = {
            "bad_expflag": lambda: e["EXPFLAG"] != "NORMAL",
            "nonmonotonic_time": lambda: np.any(np.diff(t) < 0),
            "no_events": lambda: len(t) == 0,
            "singular_time": lambda: len(t) > 1 and len(set(t)) == 1,
            "short_exposure": lambda: e["EXPTIME"] < 1,
            "bad_proposal": lambda: p["PROPOSID"] == 99999,
            "missing_keyword": lambda: ("SP_LOC_A" if instrument == "cos" else "EXPSTART")
            not in (set(p) | set(e)),
        }
        assert checks[kind]()
        if kind != "nonmonotonic_time" and len(t):
            assert np.all(np.diff(t) >= 0)


def test_bad_kind_reasons_are_hstlc_reasons() -> None:
    from hstlc import errors

    assert set(b.BAD_KINDS.values()) <= set(errors.BAD_DATA_REASONS)
    with pytest.raises(ValueError, match="unknown bad-file kind"):
        b.build_bad(Path("/nonexistent"), "nope")


# ----------------------------------------------------------------------------- reference files
def test_reference_files(tmp_path: Path, fuv: dict) -> None:
    path, image = b.build_stis_flat(tmp_path / "oref", shape=(2048, 2048), seed=1)
    with fits.open(path) as hdul:
        assert np.array_equal(hdul["SCI"].data, image) and image.shape == (2048, 2048)
    bpx = b.build_stis_bpixtab(tmp_path / "oref")
    assert Table.read(bpx).colnames == ["PIX1", "PIX2", "LENGTH", "AXIS", "VALUE"]
    refs = b.build_cos_reference_files(tmp_path / "lref", fuv["truth"])
    with fits.open(refs["fluxtab"]) as hdul:
        assert list(hdul[1].data["SEGMENT"]) == ["FUVA", "FUVB"]
        assert np.allclose(hdul[1].data["SENSITIVITY"][0], fuv["truth"].segments["A"].sensitivity,
                           rtol=1e-6)
    with fits.open(refs["tdstab"]) as hdul:
        assert hdul[1].data["SLOPE"].shape == (2, 2, 5) and "REF_TIME" in hdul[1].header


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
