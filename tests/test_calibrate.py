"""Flux calibration: reference files (FLUXTAB, TDSTAB), the x1d response, the lookup."""

from __future__ import annotations

import logging
import shutil

import builders as b
import numpy as np
import pytest
from astropy.io import fits

from hstlc.errors import MissingKeywordError, UnreadableFileError
from hstlc.extraction.calibrate import (
    FLUXCAL_NONE,
    FLUXCAL_REFERENCE,
    FLUXCAL_X1D,
    Response,
    choose_response,
    response_from_spectra,
    tds_factors,
)
from hstlc.extraction.extract import extract_lightcurve
from hstlc.io.reference_files import TdsRow, read_tdstab, resolve_reference
from hstlc.io.x1d import X1dRow, read_x1d


def test_resolve_reference(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x_phot.fits").write_bytes(b"")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "y_tds.fits").write_bytes(b"")
    monkeypatch.setenv("lref", str(tmp_path / "b"))
    assert resolve_reference("lref$x_phot.fits", tmp_path / "a") == tmp_path / "a" / "x_phot.fits"
    assert resolve_reference("lref$y_tds.fits", tmp_path / "a") == tmp_path / "b" / "y_tds.fits"
    assert resolve_reference("lref$nowhere.fits", tmp_path / "a") is None
    assert resolve_reference("oref$y_tds.fits") is None
    assert resolve_reference("N/A") is None and resolve_reference("") is None


@pytest.fixture
def real_tds(real_data, tmp_path):
    """The real TDSTAB excerpt, with the REF_TIME keyword its publisher stripped."""
    copy = tmp_path / "test_tds.fits"
    shutil.copy(real_data / "reference" / "calcos_tests_test_tds.fits", copy)
    with fits.open(copy, mode="update") as hdul:
        hdul[1].header["REF_TIME"] = 52922.0
    return copy


def test_tds_factors_follow_calcos_on_the_real_table(real_tds):
    selection = {"SEGMENT": "FUVB", "OPT_ELEM": "G130M", "CENWAVE": 1055, "APERTURE": "PSA"}
    with fits.open(real_tds) as hdul:
        row = hdul[1].data[2]
        assert (row["SEGMENT"], row["CENWAVE"], row["APERTURE"]) == ("FUVB", 1055, "ANY")
        nwl, times = row["NWL"], row["TIME"][: row["NT"]]
        slope, intercept = row["SLOPE"], row["INTERCEPT"]  # [NT, NWL] via TDIM
    for t_obs, interval in ((56000.0, 5), (56600.0, 7), (52000.0, 0)):
        assert times[interval] <= t_obs or interval == 0
        wavelength, factor = tds_factors(read_tdstab(real_tds, selection), t_obs)
        expected = ((t_obs - 52922.0) / 365.25 * slope[interval, :nwl] / 100.0
                    + intercept[interval, :nwl])
        assert wavelength.size == nwl
        np.testing.assert_allclose(factor, expected[np.argsort(row["WAVELENGTH"][:nwl])])


def test_tds_without_ref_time_is_refused(real_data):
    path = real_data / "reference" / "calcos_tests_test_tds.fits"
    with pytest.raises(MissingKeywordError, match="no REF_TIME"):
        read_tdstab(path, {"SEGMENT": "FUVA", "OPT_ELEM": "G130M", "CENWAVE": 1055})


def test_tds_factor_drifts_from_the_interval_holding_the_time():
    # intervals from MJD 50000 and 51000; slopes in percent a year from REF_TIME 49635.25
    row = TdsRow(49635.25, np.array([50000.0, 51000.0]), np.array([1500.0, 1100.0, 1300.0]),
                 np.array([[-2.0, -4.0, -6.0], [-1.0, -3.0, -5.0]]),
                 np.array([[1.0, 0.9, 0.8], [0.98, 0.88, 0.78]]))
    for t_obs, interval in ((49000.0, 0), (50000.0, 0), (50999.0, 0), (51000.0, 1),
                            (53000.0, 1)):
        wavelength, factor = tds_factors(row, t_obs)
        years = (t_obs - 49635.25) / 365.25
        expected = years * row.slope[interval] / 100.0 + row.intercept[interval]
        np.testing.assert_array_equal(wavelength, [1100.0, 1300.0, 1500.0])  # sorted
        np.testing.assert_allclose(factor, expected[[1, 2, 0]], rtol=1e-15)
    # one year after REF_TIME in the first interval: 1 - 2 % at 1500 A
    assert tds_factors(row, 50000.25)[1][2] == pytest.approx(1.0 - 0.02 * (365.0 / 365.25))


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return b.build_cos_fuv_pair(tmp_path_factory.mktemp("cal"), seed=21, exptime=1200.0,
                                source_rate=25.0, background_rate=0.2)


def test_fluxtab_and_tdstab_are_preferred(pair, tmp_path):
    lref = tmp_path / "lref"
    b.build_cos_reference_files(lref, pair["truth"])
    lc = extract_lightcurve(pair["corrtag_a"], reference_dir=lref, checksums=False)
    assert lc.meta["fluxcal"] == FLUXCAL_REFERENCE
    assert lc.meta["fluxcal_files"] == ["synth_phot.fits", "synth_tds.fits"]
    assert np.mean(lc.flux) == pytest.approx(pair["truth"].flat_flux, rel=0.05)
    from_x1d = extract_lightcurve(pair["corrtag_a"], checksums=False)
    assert from_x1d.meta["fluxcal"] == FLUXCAL_X1D
    np.testing.assert_allclose(lc.flux, from_x1d.flux, rtol=2e-3)


def test_tds_slope_scales_the_flux(pair, tmp_path, monkeypatch):
    lref = tmp_path / "lref"
    b.build_cos_reference_files(lref, pair["truth"], tds_slope=-5.0)
    monkeypatch.setenv("lref", str(lref))  # found through $lref this time
    lc = extract_lightcurve(pair["corrtag_a"], checksums=False)
    flat = extract_lightcurve(pair["corrtag_a"], calibration=FLUXCAL_X1D, checksums=False)
    with fits.open(pair["corrtag_a"]) as hdul:
        t_obs = 0.5 * (hdul[1].header["EXPSTART"] + hdul[1].header["EXPEND"])
    ref_time = pair["truth"].expstart - 365.25
    factor = 1.0 + (t_obs - ref_time) / 365.25 * -5.0 / 100.0
    assert lc.meta["fluxcal"] == FLUXCAL_REFERENCE
    np.testing.assert_allclose(lc.flux, flat.flux / factor, rtol=2e-3)


def test_forced_sources(pair, caplog):
    lc = extract_lightcurve(pair["corrtag_a"], calibration="NONE", checksums=False)
    assert lc.meta["fluxcal"] == FLUXCAL_NONE and np.all(np.isnan(lc.flux))
    with caplog.at_level(logging.WARNING, logger="hstlc.extraction.calibrate"):
        forced = extract_lightcurve(pair["corrtag_a"], calibration="FLUXTAB+TDSTAB",
                                    checksums=False)
    assert forced.meta["fluxcal"] == FLUXCAL_NONE
    assert "unavailable" in caplog.text
    with pytest.raises(ValueError, match="calibration must be one of"):
        choose_response("PHOTTAB", reference=None, spectra=None)


def test_x1d_response_ignores_pixels_without_net(pair):
    spectra = {row.label: row for row in read_x1d(pair["x1d"])}
    assert set(spectra) == {"FUVA", "FUVB"}
    response = response_from_spectra(spectra, "x1d")
    for name, spectrum in spectra.items():
        ok = spectrum.net > 0
        assert response.wavelength[name].size == np.count_nonzero(ok)
        np.testing.assert_allclose(response.factor[name], spectrum.flux[ok] / spectrum.net[ok])
    empty = X1dRow("X", np.arange(3.0), np.zeros(3), np.zeros(3), np.ones(3, bool))
    assert not response_from_spectra({"X": empty}).calibrated


def test_read_x1d_cos_rows(pair):
    rows = read_x1d(pair["x1d"])
    with fits.open(pair["x1d"]) as hdul:
        data = hdul[1].data
        assert [row.label for row in rows] == [s.strip() for s in data["SEGMENT"]]
        for row, raw in zip(rows, data, strict=True):
            assert row.geometry is None
            np.testing.assert_array_equal(row.wavelength, raw["WAVELENGTH"])
            np.testing.assert_array_equal(row.flux, raw["FLUX"])
            np.testing.assert_array_equal(row.good, raw["DQ_WGT"] > 0)
            assert row.wavelength.dtype == np.float64 and not row.good.all()


def test_read_x1d_errors_name_the_file_and_the_problem(pair, tmp_path):
    with pytest.raises(MissingKeywordError, match=r"_x1d.fits: ext SCI has no column SPORDER"):
        read_x1d(pair["x1d"], need_geometry=True)  # a COS x1d has no STIS orders
    with pytest.raises(MissingKeywordError, match=r"_corrtag_a.fits: .*no column SEGMENT or "
                                                  r"SPORDER \(found \[.*'XCORR'"):
        read_x1d(pair["corrtag_a"])
    text = tmp_path / "lbad01abq_x1d.fits"
    text.write_text("not FITS")
    with pytest.raises(UnreadableFileError, match="lbad01abq_x1d.fits") as info:
        read_x1d(text)
    assert info.value.filename == text.name
    with pytest.raises(UnreadableFileError, match="no such file"):
        read_x1d(tmp_path / "missing_x1d.fits")


def test_conversion_lookup_matches_interpolation():
    rng = np.random.default_rng(1)
    wave = np.sort(rng.uniform(1100, 1450, 4000))
    factor = 1e-12 * (1.5 + np.sin(wave / 20.0))
    response = Response(FLUXCAL_X1D, {"FUVA": wave, "FUVB": wave + 10},
                        {"FUVA": factor, "FUVB": 2 * factor})
    lookup = response.indexed(["FUVA", "FUVB", "NOTABLE"])
    events = rng.uniform(1000, 1500, 20000).astype(np.float32)
    group = rng.integers(0, 2, events.size)
    got = lookup(group, events)
    expected = np.where(group == 0, response.conversion("FUVA", events),
                        response.conversion("FUVB", events))
    np.testing.assert_allclose(got, expected, rtol=2e-3)
    assert np.all(np.isnan(lookup(np.full(3, 2), np.array([1200.0, 1300.0, np.nan]))))
    single = Response(FLUXCAL_X1D, {"A": wave}, {"A": factor}).indexed(["A"])
    np.testing.assert_allclose(single(None, events), response.conversion("FUVA", events),
                               rtol=2e-3)
