"""Composite (HLSP) lightcurves: grouping, common range, ordering, robustness, the file."""

from __future__ import annotations

import hashlib
import logging
from types import SimpleNamespace

import builders as b
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from hstlc.errors import HstlcError
from hstlc.extraction.composite import (
    hlsp_filename,
    make_composite,
    safe_name,
    stack_lightcurves,
    wavelength_coverage,
)
from hstlc.io.headers import GroupKey
from hstlc.io.lightcurve_file import Lightcurve, read_lightcurve

HLSP = {"hlsp_name": "HSTLC", "hlsp_lead": "hstlc team", "proposid": "HSTLC"}


@pytest.fixture(scope="module")
def exposures(tmp_path_factory):
    """Three exposures of one configuration, written out of time order, one very faint."""
    folder = tmp_path_factory.mktemp("group")
    common = dict(exptime=300.0, background_rate=0.05)
    later = b.build_cos_fuv_pair(folder, rootname="lb1c01aaq", seed=51, expstart=58001.0,
                                 source_rate=20.0, **common)
    first = b.build_cos_fuv_pair(folder, rootname="lb1c01abq", seed=52, expstart=58000.0,
                                 source_rate=20.0, gti=[[0.0, 100.0], [160.0, 300.0]], **common)
    faint = b.build_cos_fuv_pair(folder, rootname="lb1c01acq", seed=53, expstart=58002.0,
                                 source_rate=0.05, exptime=300.0, background_rate=0.0005)
    return [later, first, faint]


@pytest.fixture(scope="module")
def result(exposures, tmp_path_factory):
    return make_composite([e["corrtag_a"] for e in exposures], tmp_path_factory.mktemp("out"),
                          step=2.0, **HLSP)


def test_members_are_numbered_in_time_order(result):
    assert [m["rootname"] for m in result.members] == ["lb1c01abq", "lb1c01aaq", "lb1c01acq"]
    assert [m["dataset"] for m in result.members] == [1, 2, 3]
    lc = result.lightcurve
    assert sorted(set(lc.dataset.tolist())) == [1, 2, 3]
    assert np.all(np.diff(lc.dataset) >= 0) and np.all(np.diff(lc.mjd) > 0)
    assert lc.mjd[lc.dataset == 1].min() == pytest.approx(58000.0)


def test_sparse_member_with_empty_bins_stays(result):
    lc = result.lightcurve
    faint = lc.dataset == 3
    assert np.count_nonzero(lc.gross[faint] == 0) > 10
    assert faint.sum() == 150 and not result.skipped


def test_common_wavelength_range_is_the_intersection(exposures, result):
    ranges = [wavelength_coverage([e["corrtag_a"], e["corrtag_b"]]) for e in exposures]
    assert result.wmin == max(r[0] for r in ranges)
    assert result.wmax == min(r[1] for r in ranges)
    with fits.open(result.path) as hdul:
        assert hdul[1].header["WMIN"] == result.wmin and hdul[1].header["WMAX"] == result.wmax


def test_hlsp_file(result):
    assert result.path.name == "hlsp_hstlc_hst_cos-fuv_test-star_g130m_1291_psa_v1_sci.fits"
    with fits.open(result.path) as hdul:
        primary = hdul[0].header
        for key in ("HLSPNAME", "HLSPLEAD", "PROPOSID", "TELESCOP", "INSTRUME", "DETECTOR",
                    "FILTER", "TARGNAME", "RA_TARG", "DEC_TARG", "EQUINOX", "DATE-OBS",
                    "EXPSTART", "EXPEND", "EXPTIME"):
            assert key in primary, key
        assert (primary["HLSPNAME"], primary["PROPOSID"]) == ("HSTLC", "HSTLC")
        assert primary["FILTER"] == "G130M" and primary["EXPSTART"] == pytest.approx(58000.0)
        assert primary["EXPTIME"] == pytest.approx(hdul[1].data["bins"].sum())
        assert primary["DATE-OBS"].startswith("2017-09-04")
        assert hdul[1].name == "LIGHTCURVE" and hdul[2].name == "MEMBERS"
        assert list(hdul[2].data["ROOTNAME"]) == ["lb1c01abq", "lb1c01aaq", "lb1c01acq"]
        assert list(hdul[2].data["FLUXCAL"]) == ["X1D"] * 3 and hdul[1].header["FLUXCAL"] == "X1D"
        assert all(hdul[2].data["NPIX"] > 0)
    table = Table.read(result.path, hdu="LIGHTCURVE")
    assert len(table) == len(result.lightcurve)
    assert read_lightcurve(result.path).dataset.max() == 3


def test_member_without_good_events_is_reported(exposures, tmp_path, caplog):
    empty = b.build_cos_fuv_pair(tmp_path / "bad", rootname="lb1c01adq", seed=54,
                                 exptime=300.0, bad_dq_fraction=1.0, benign_dq_fraction=0.0)
    members = [exposures[0]["corrtag_a"], empty["corrtag_a"]]
    with caplog.at_level(logging.WARNING, logger="hstlc.extraction.composite"):
        outcome = make_composite(members, tmp_path / "out", **HLSP)
    assert [m["rootname"] for m in outcome.members] == ["lb1c01aaq"]
    assert outcome.skipped[0][0] == "lb1c01adq_corrtag_a.fits"
    assert "lb1c01adq" in caplog.text and outcome.path.exists()
    nothing = make_composite([empty["corrtag_a"]], tmp_path / "none", **HLSP)
    assert nothing.path is None and nothing.lightcurve is None and len(nothing.skipped) == 1


def test_key_from_the_caller_and_mismatches(exposures, tmp_path):
    key = GroupKey("COS", "FUV", "TESTSTAR", "G130M", 1291, "PSA")
    outcome = make_composite([exposures[0]["corrtag_a"]], tmp_path, key=key, **HLSP)
    assert outcome.path.name == "hlsp_hstlc_hst_cos-fuv_teststar_g130m_1291_psa_v1_sci.fits"
    other = b.build_cos_fuv_pair(tmp_path / "other", rootname="lb1c01aeq", seed=55,
                                 exptime=200.0, cenwave=1300)
    with pytest.raises(HstlcError, match="members differ"):
        make_composite([exposures[0]["corrtag_a"], other["corrtag_a"]], tmp_path, key=key,
                       **HLSP)
    # another target in the same configuration is never stacked, with or without a key
    star = b.build_cos_fuv_pair(tmp_path / "star", rootname="lb1c01afq", seed=56,
                                exptime=200.0, targname="OTHER-STAR")
    for given in (key, None):
        with pytest.raises(HstlcError, match="members differ"):
            make_composite([exposures[0]["corrtag_a"], star["corrtag_a"]], tmp_path, key=given,
                           **HLSP)


def _member(rootname: str, expstart: float, rows: int, fluxcal: str, npix: int) -> Lightcurve:
    times = 10.0 * np.arange(rows)
    gross = np.full(rows, float(expstart - 57999.0))  # each member's rows are recognisable
    background = np.full(rows, 0.5)
    bins = np.full(rows, 10.0)
    return Lightcurve(bins=bins, times=times, mjd=expstart + times / 86400.0, gross=gross,
                      counts=gross - background, net=(gross - background) / bins,
                      flux=np.full(rows, 1e-14), flux_error=np.full(rows, 1e-15),
                      background=background, error=np.sqrt(gross + background),
                      dataset=np.ones(rows),
                      meta={"rootname": rootname, "expstart": expstart, "fluxcal": fluxcal,
                            "npix": npix, "dropped_bins": rows % 2, "targname": "TEST-STAR",
                            "input_files": [f"{rootname}_corrtag_a.fits"],
                            "input_sha256": {f"{rootname}_corrtag_a.fits": rootname}})


def test_stack_orders_members_by_expstart_and_numbers_them():
    curves = [_member("lb1c01ccq", 58003.0, 3, "X1D", 900),
              _member("lb1c01aaq", 58001.0, 5, "X1D", 900),
              _member("lb1c01bbq", 58002.0, 2, "FLUXTAB+TDSTAB", 900)]
    stacked, members = stack_lightcurves(curves, 1300.0, 1400.0)
    assert [m["rootname"] for m in members] == ["lb1c01aaq", "lb1c01bbq", "lb1c01ccq"]
    assert [m["dataset"] for m in members] == [1, 2, 3]
    assert [m["exptime"] for m in members] == [50.0, 20.0, 30.0]
    assert stacked.dataset.tolist() == [1] * 5 + [2] * 2 + [3] * 3
    assert stacked.gross.tolist() == [2.0] * 5 + [3.0] * 2 + [4.0] * 3  # rows follow dataset
    assert np.all(np.diff(stacked.mjd) > 0) and stacked.times[5] == 0.0  # times: per member
    meta = stacked.meta
    assert (meta["wmin"], meta["wmax"], meta["expstart"]) == (1300.0, 1400.0, 58001.0)
    assert meta["members"] == [m["rootname"] for m in members]
    assert meta["input_files"] == [f"{m['rootname']}_corrtag_a.fits" for m in members]
    assert meta["dropped_bins"] == 1 + 0 + 1 and len(meta["input_sha256"]) == 3
    assert (meta["fluxcal"], meta["npix"]) == ("MIXED", 900)  # what all members share
    same, _ = stack_lightcurves(curves[:2], 1300.0, 1400.0)
    assert same.meta["fluxcal"] == "X1D"
    wider, _ = stack_lightcurves([curves[0], _member("lb1c01ddq", 58004.0, 1, "X1D", 800)],
                                 1300.0, 1400.0)
    assert (wider.meta["fluxcal"], wider.meta["npix"]) == ("X1D", None)
    assert curves[0].dataset.tolist() == [1, 1, 1]  # the members are not changed


def test_file_names_are_safe():
    key = GroupKey("STIS", "FUV-MAMA", "HD 12_34/b", "E140M", 1425, "0.2X0.2")
    assert hlsp_filename(key) == (
        f"hlsp_hstlc_hst_stis-fuv-mama_hd-12-34-b-{sha8('HD 12_34/b')}_e140m_1425_0.2x0.2_v1_sci.fits")
    assert "/" not in safe_name("../..") and safe_name("") == "none"
    # an already-safe name keeps its 2016 file name
    gj436 = GroupKey("COS", "FUV", "GJ436", "G130M", 1291, "PSA")
    assert hlsp_filename(gj436) == "hlsp_hstlc_hst_cos-fuv_gj436_g130m_1291_psa_v1_sci.fits"


@pytest.mark.parametrize("names", [("../x", "X"), ("a/b", "a:b"), ("A/B", "A:B"), ("", "NONE"),
                                   ("/X", "X")])
def test_two_targets_never_share_a_composite_file(names):
    """Target names that safe_name maps to one text still give two file names."""
    keys = [GroupKey.of(SimpleNamespace(instrume="COS", detector="FUV", targname=name,
                                        opt_elem="G130M", cenwave=1291, aperture="PSA"))
            for name in names]
    assert keys[0] != keys[1]
    assert hlsp_filename(keys[0]) != hlsp_filename(keys[1])


def sha8(text):
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def test_real_gj436_composite(real_data, tmp_path):
    folder = real_data / "cos_fuv_g130m_gj436"
    members = [folder / "ld9m10uyq_corrtag_a.fits", folder / "ld9m10ujq_corrtag_a.fits"]
    outcome = make_composite(members, tmp_path, **HLSP)
    assert [m["rootname"] for m in outcome.members] == ["ld9m10ujq", "ld9m10uyq"]
    assert outcome.members[0]["expstart"] == pytest.approx(58108.512, abs=1e-3)
    assert outcome.members[1]["expstart"] == pytest.approx(58108.765, abs=1e-3)
    lc = outcome.lightcurve
    assert set(lc.dataset.tolist()) == {1, 2} and lc.meta["fluxcal"] == "X1D"
    assert outcome.path.name == "hlsp_hstlc_hst_cos-fuv_gj-436_g130m_1291_psa_v1_sci.fits"
    assert 1278 < outcome.wmin < outcome.wmax < 1441


def test_members_calibrated_differently_are_described_each(exposures, tmp_path):
    bare = b.build_cos_fuv_pair(tmp_path / "bare", rootname="lb1c01agq", seed=57, exptime=200.0,
                                expstart=58003.0, with_x1d=False)
    outcome = make_composite([exposures[0]["corrtag_a"], bare["corrtag_a"]], tmp_path, **HLSP)
    with fits.open(outcome.path) as hdul:
        assert list(hdul["MEMBERS"].data["FLUXCAL"]) == ["X1D", "NONE"]
        assert hdul["LIGHTCURVE"].header["FLUXCAL"] == "MIXED"
    second = outcome.lightcurve.dataset == 2
    assert np.all(np.isnan(outcome.lightcurve.flux[second]))
    assert np.all(np.isfinite(outcome.lightcurve.flux[~second]))
