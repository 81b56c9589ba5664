"""Lightcurve extraction on synthetic files with injected signals (physics checks)."""

from __future__ import annotations

import builders as b
import numpy as np
import pytest
from astropy.io import fits
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hstlc.errors import MissingKeywordError, UnsupportedProductError
from hstlc.extraction.accumulate import accumulate_boxes
from hstlc.extraction.boxes import (
    BACKGROUND,
    SOURCE,
    Box,
    BoxSums,
    Selection,
    common_gti,
    gti_exposure,
    time_grid,
)
from hstlc.extraction.calibrate import Response, fit_dispersion, nuv_column_wavelengths
from hstlc.extraction.extract import (
    AIRGLOW_WINDOWS,
    COS_FUV_WLIM,
    EventHeader,
    band_pixels,
    bin_columns,
    cos_boxes,
    extract_lightcurve,
)
from hstlc.io.events import open_event_table
from hstlc.io.x1d import X1dRow

BAD_DQ = 0.01  # the builders' default fraction of events with a bit in SDQFLAGS


def _survival(segment: b.SegmentTruth, source: bool = True) -> float:
    """Expected fraction of a segment's source (or background) events that are selected."""
    fraction = (segment.source_fraction if source else segment.background_fraction)(
        *COS_FUV_WLIM, AIRGLOW_WINDOWS)
    return fraction * (1.0 - BAD_DQ)


def _background_estimate(lc) -> tuple[float, float]:
    """Scaled background and its Poisson sigma from the per-box sums in the metadata."""
    boxes = [x for x in lc.meta["boxes"] if x["role"] == "background"]
    value = sum(x["scale"] * x["gross"] for x in boxes)
    sigma = np.sqrt(sum(x["scale"] ** 2 * x["gross"] for x in boxes))
    return value, sigma


@pytest.fixture(scope="module")
def flare_pair(tmp_path_factory):
    return b.build_cos_fuv_pair(tmp_path_factory.mktemp("flare"), seed=11, exptime=2000.0,
                                source_rate=15.0, background_rate=0.4,
                                flare=b.Flare(1000.0, 100.0, 3000))


@pytest.fixture(scope="module")
def flare_lc(flare_pair):
    return extract_lightcurve(flare_pair["corrtag_a"])


@pytest.fixture(scope="module")
def constant_pair(tmp_path_factory):
    return b.build_cos_fuv_pair(tmp_path_factory.mktemp("constant"), seed=12, exptime=2400.0,
                                source_rate=20.0, background_rate=0.3, epsilon_scatter=0.25)


def test_both_segments_and_x1d_are_used(flare_pair, flare_lc):
    assert flare_lc.meta["input_files"] == [flare_pair["corrtag_a"].name,
                                            flare_pair["corrtag_b"].name,
                                            flare_pair["x1d"].name]
    assert {x["group"] for x in flare_lc.meta["boxes"]} == {"FUVA", "FUVB"}
    assert flare_lc.meta["fluxcal"] == "X1D"
    assert len(flare_lc) == 1000 and np.all(flare_lc.bins == 2.0)
    assert np.all(flare_lc.dataset == 1)


def test_flare_counts_match_injection_within_3_sigma(flare_pair, flare_lc):
    truth = flare_pair["truth"]
    inside = (flare_lc.times >= 1000.0) & (flare_lc.times < 1100.0)
    quiet = (flare_lc.times < 900.0) | (flare_lc.times >= 1200.0)
    baseline = flare_lc.gross[quiet].mean()
    excess = flare_lc.gross[inside].sum() - baseline * inside.sum()
    expected = sum(s.n_flare * _survival(s) for s in truth.segments.values())
    sigma = np.sqrt(flare_lc.gross[inside].sum()
                    + inside.sum() ** 2 * flare_lc.gross[quiet].var() / quiet.sum())
    assert truth.n_flare == 3000
    assert abs(excess - expected) < 3 * sigma, (excess, expected, sigma)


def test_background_matches_injection_within_3_sigma(flare_pair, flare_lc):
    truth = flare_pair["truth"]
    expected = sum(s.background_rate * s.source_box.height * truth.live_time
                   * _survival(s, source=False) for s in truth.segments.values())
    value, sigma = _background_estimate(flare_lc)
    assert flare_lc.background.sum() == pytest.approx(value)
    assert abs(value - expected) < 3 * sigma, (value, expected, sigma)


def test_background_is_scaled_by_source_over_background_height(flare_lc):
    for box in flare_lc.meta["boxes"]:
        if box["role"] == "background":
            assert box["scale"] == pytest.approx(39 / (35 + 35))
        assert box["y1"] - box["y0"] in (39, 35)  # LOC -/+ HGT/2, not HGT//2


def test_constant_source_has_reduced_chi2_near_one(constant_pair):
    lc = extract_lightcurve(constant_pair["corrtag_a"])
    assert len(lc) >= 1000
    chi2 = np.sum((lc.counts - lc.counts.mean()) ** 2 / lc.error**2) / (len(lc) - 1)
    assert 0.8 <= chi2 <= 1.2, chi2


def test_flat_spectrum_flux_comes_back_within_5_percent(constant_pair):
    lc = extract_lightcurve(constant_pair["corrtag_a"])
    flat = constant_pair["truth"].flat_flux
    assert lc.meta["fluxcal"] == "X1D"
    assert np.mean(lc.flux) == pytest.approx(flat, rel=0.05)
    # a bright source: the exact flux_error is close to error * |mean flux / mean counts|
    approximate = lc.error * abs(np.mean(lc.flux) / np.mean(lc.counts))
    assert np.median(lc.flux_error / approximate) == pytest.approx(1.0, abs=0.1)


def test_derived_columns(flare_lc):
    lc = flare_lc
    np.testing.assert_allclose(lc.counts, lc.gross - lc.background)
    np.testing.assert_allclose(lc.net, lc.counts / lc.bins)
    assert np.all(lc.error >= 0)
    assert np.all(lc.mjd == lc.meta["expstart"] + lc.times / 86400.0)
    assert lc.meta["timeref"] == "START" and lc.times[0] == 0.0


def test_gti_gaps_drop_events_and_bins(tmp_path):
    gti = [[0.0, 501.0], [700.5, 1000.0]]
    pair = b.build_cos_fuv_pair(tmp_path, seed=5, exptime=1000.0, gti=gti)
    lc = extract_lightcurve(pair["corrtag_a"], step=2.0)
    assert lc.bins.sum() == pytest.approx(501.0 + 299.5)
    assert not np.any((lc.times >= 502.0) & (lc.times < 700.0)), "bins without exposure"
    partial = {float(t): float(e) for t, e in zip(lc.times, lc.bins, strict=True) if e < 2.0}
    assert partial == {500.0: 1.0, 700.0: 1.5}
    np.testing.assert_allclose(gti_exposure(np.array(gti), 0.0, 2.0, 500)[[250, 350]],
                               [1.0, 1.5])
    assert lc.meta["dropped_bins"] == 99


def test_events_outside_the_gti_are_not_counted(tmp_path):
    pair = b.build_cos_fuv_pair(tmp_path, seed=6, exptime=1000.0)
    for key in ("corrtag_a", "corrtag_b"):
        with fits.open(pair[key], mode="update") as hdul:
            hdul["GTI"].data["STOP"][0] = 600.0
    lc = extract_lightcurve(pair["corrtag_a"])
    assert lc.times.max() == 598.0 and lc.bins.sum() == 600.0
    full = extract_lightcurve(pair["corrtag_a"], origin=0.0)
    assert full.gross.sum() == lc.gross.sum()


def test_missing_b_segment(tmp_path):
    pair = b.build_cos_fuv_pair(tmp_path, seed=7, segments=("A",))
    lc = extract_lightcurve(pair["corrtag_a"])
    assert lc.meta["input_files"] == [pair["corrtag_a"].name, pair["x1d"].name]
    assert {x["group"] for x in lc.meta["boxes"]} == {"FUVA"}
    assert np.mean(lc.flux) == pytest.approx(pair["truth"].flat_flux, rel=0.1)


def test_parameters_step_airglow_wlim_sdqflags(flare_pair, flare_lc):
    path = flare_pair["corrtag_a"]
    coarse = extract_lightcurve(path, step=5.0, checksums=False)
    assert np.all(coarse.bins == 5.0) and coarse.gross.sum() == pytest.approx(flare_lc.gross.sum())
    with_airglow = extract_lightcurve(path, airglow=(), checksums=False)
    assert with_airglow.gross.sum() > flare_lc.gross.sum()
    narrow = extract_lightcurve(path, wlim=(1300.0, 1400.0), checksums=False)
    assert narrow.gross.sum() < flare_lc.gross.sum() and narrow.meta["wmin"] == 1300.0
    all_dq = extract_lightcurve(path, sdqflags=0, checksums=False)
    assert all_dq.gross.sum() == pytest.approx(flare_lc.gross.sum() / (1 - BAD_DQ), rel=0.01)
    no_flux = extract_lightcurve(path, x1d=None, checksums=False)
    assert no_flux.meta["fluxcal"] == "NONE" and np.all(np.isnan(no_flux.flux))
    assert np.all(np.isnan(no_flux.flux_error))
    np.testing.assert_array_equal(no_flux.gross, flare_lc.gross)


def test_blocks_and_threads_do_not_change_the_result(flare_pair, flare_lc):
    other = extract_lightcurve(flare_pair["corrtag_a"], block_rows=4099, threads=2,
                               checksums=False)
    for name in ("gross", "background", "error"):
        np.testing.assert_allclose(getattr(other, name), getattr(flare_lc, name), rtol=1e-12)
    np.testing.assert_allclose(other.flux, flare_lc.flux, rtol=1e-9)


def test_checksums_recorded(flare_pair, flare_lc):
    import hashlib

    digest = hashlib.sha256(flare_pair["x1d"].read_bytes()).hexdigest()
    assert flare_lc.meta["input_sha256"][flare_pair["x1d"].name] == digest


def test_nuv_stripes_and_shared_background(tmp_path):
    nuv = b.build_cos_nuv(tmp_path, seed=8, exptime=1500.0, source_rate=10.0,
                          background_rate=0.05)
    lc = extract_lightcurve(nuv["corrtag"])
    truth = nuv["truth"]
    groups = {x["group"] for x in lc.meta["boxes"]}
    assert groups == {"NUVA", "NUVB", "NUVC"}
    # the three stripes share their background rows: each scales the same events
    expected = sum(s.background_rate * s.source_box.height * truth.live_time
                   * s.background_fraction(915.0, 3200.0) * (1 - BAD_DQ)
                   for s in truth.segments.values())
    value, _ = _background_estimate(lc)
    # EPSILON = 1 and the source rows are apart from the background rows: the variance of
    # the counts is gross + Var(background), the shared events counted once per stripe
    sigma = np.sqrt(np.sum(lc.error**2) - np.sum(lc.gross))
    assert sigma > np.sqrt(2.5) * _background_estimate(lc)[1]  # box by box: 1/3 of it
    assert abs(value - expected) < 3 * sigma, (value, expected, sigma)
    assert np.mean(lc.flux) == pytest.approx(truth.flat_flux, rel=0.05)


#: COS NUV boxes whose background rows (8 + 8) are shared by the three stripes: scale 0.5.
SHARED_BACKGROUND = {k: (loc, 8, 150.0, 8, 470.0, 8, loc)
                     for k, loc in (("A", 187.62), ("B", 290.35), ("C", 431.18))}


def test_constant_nuv_source_with_shared_background_has_reduced_chi2_near_one(tmp_path):
    """Each background event is subtracted by the three stripes: its weight is -3 * scale."""
    nuv = b.build_cos_nuv(tmp_path, seed=83, exptime=2000.0, source_rate=10.0,
                          background_rate=1.25, epsilon_scatter=0.2, boxes=SHARED_BACKGROUND)
    lc = extract_lightcurve(nuv["corrtag"], checksums=False)
    assert len(lc) >= 1000
    assert lc.background.sum() > 0.4 * lc.gross.sum()
    chi2 = np.sum((lc.counts - lc.counts.mean()) ** 2 / lc.error**2) / (len(lc) - 1)
    assert 0.8 <= chi2 <= 1.2, chi2  # the box-by-box variance gave 1.40


@pytest.mark.parametrize(("opt_elem", "cenwave"), [("G185M", 1882), ("G230L", 2950)])
def test_nuv_flux_with_a_heavy_background_comes_back_within_5_percent(tmp_path, opt_elem,
                                                                       cenwave):
    """Background events carry the nearest stripe's WAVELENGTH: each stripe needs its own."""
    nuv = b.build_cos_nuv(tmp_path, seed=84, exptime=1500.0, source_rate=10.0,
                          background_rate=1.66, opt_elem=opt_elem, cenwave=cenwave)
    lc = extract_lightcurve(nuv["corrtag"], checksums=False)
    assert lc.background.sum() > 0.55 * lc.gross.sum()
    # with the events' WAVELENGTH for the background: 0.44 (G185M), 0.59 (G230L)
    assert np.mean(lc.flux) == pytest.approx(nuv["truth"].flat_flux, rel=0.05)


def test_nuv_stripe_wavelengths_are_fitted_to_their_source_box_events(tmp_path):
    nuv = b.build_cos_nuv(tmp_path, seed=85, exptime=300.0, background_rate=0.5)
    table = open_event_table(nuv["corrtag"])
    boxes = [box for letter in "ABC" for box in cos_boxes(EventHeader(table), letter, f"NUV{letter}")]
    sources = {box.group: (box.y0, box.y1) for box in boxes if box.role == SOURCE}
    columns = nuv_column_wavelengths(table, sources, block_rows=10_000)
    assert columns is not None and set(columns) == {"NUVA", "NUVB", "NUVC"}
    for letter in "ABC":
        truth = nuv["truth"].segments[letter].wavelength_at(np.arange(1024) + 0.5)
        np.testing.assert_allclose(columns[f"NUV{letter}"], truth, rtol=0, atol=2e-3)


def test_nuv_without_source_box_events_keeps_the_wavelength_column(tmp_path, caplog):
    nuv = b.build_cos_nuv(tmp_path, seed=86, exptime=200.0, source_rate=0.0,
                          background_rate=0.0005, with_x1d=False)
    lc = extract_lightcurve(nuv["corrtag"], checksums=False)
    assert "too few events in the NUV" in caplog.text
    assert len(lc) == 100


def test_nuv_g230l_has_two_stripes(tmp_path):
    nuv = b.build_cos_nuv(tmp_path, seed=9, opt_elem="G230L", cenwave=2950, exptime=500.0)
    lc = extract_lightcurve(nuv["corrtag"], checksums=False)
    assert {x["group"] for x in lc.meta["boxes"]} == {"NUVA", "NUVB"}


def test_missing_box_keyword_names_file_and_keyword(tmp_path):
    pair = b.build_cos_fuv_pair(tmp_path, seed=10, segments=("A",), SP_LOC_A=None)
    with pytest.raises(MissingKeywordError, match="lb1c01abq_corrtag_a.fits: ext 1 has no SP_LOC_A"):
        extract_lightcurve(pair["corrtag_a"])


# ----------------------------------------------------------------------------- arrays
def _sums(gross: list[list[float]], flux: list[list[float]], variance: list[float],
          flux_variance: list[float]) -> BoxSums:
    return BoxSums(np.array(gross), np.array(flux), np.array(variance), np.array(flux_variance),
                   {}, {})


def test_bin_columns_propagate_poisson_errors():
    """Unit-weight events: Var(counts) = n_src + scale^2 n_bkg = gross + scale * background."""
    scale = 0.25
    boxes = [Box("FUVA", SOURCE, 0, 10), Box("FUVA", BACKGROUND, 20, 30, scale),
             Box("FUVA", BACKGROUND, 40, 50, scale),
             Box("FUVB", SOURCE, 0, 10), Box("FUVB", BACKGROUND, 20, 40, 0.5)]
    a_src, a_bkg1, a_bkg2 = np.array([12.0, 30, 7, 0]), np.array([4.0, 8, 0, 0]), np.array([8.0, 0, 4, 0])
    b_src, b_bkg = np.array([5.0, 9, 1, 0]), np.array([2.0, 2, 6, 0])
    # one event's conversion c: 2 (source), 3 (background) in erg s-1 cm-2 A-1 per count s-1
    a = _sums([a_src, a_bkg1, a_bkg2], [2 * a_src, 3 * a_bkg1, 3 * a_bkg2],
              a_src + scale**2 * (a_bkg1 + a_bkg2), 4 * a_src + 9 * scale**2 * (a_bkg1 + a_bkg2))
    b = _sums([b_src, b_bkg], [2 * b_src, 3 * b_bkg], b_src + 0.25 * b_bkg,
              4 * b_src + 9 * 0.25 * b_bkg)
    exposure = np.array([2.0, 2.0, 0.5, 0.0])  # a partial bin, then one outside the GTIs
    keep, columns = bin_columns(boxes, [a, b], exposure, npix=10, calibrated=True)
    assert keep.tolist() == [True, True, True, False]
    gross = (a_src + b_src)[:3]
    background = (scale * (a_bkg1 + a_bkg2) + 0.5 * b_bkg)[:3]
    np.testing.assert_allclose(columns["gross"], gross)
    np.testing.assert_allclose(columns["background"], background)
    np.testing.assert_allclose(columns["counts"], gross - background)
    np.testing.assert_allclose(columns["net"], (gross - background) / exposure[:3])
    np.testing.assert_allclose(columns["bins"], exposure[:3])
    # the segments' variances add; no two boxes share an event, so per segment
    # Var = gross + scale * background (the 2016 gross + background only for scale 1)
    background_a, background_b = (scale * (a_bkg1 + a_bkg2))[:3], (0.5 * b_bkg)[:3]
    np.testing.assert_allclose(columns["error"] ** 2,
                               gross + scale * background_a + 0.5 * background_b)
    net_flux = 2 * gross - 3 * background
    np.testing.assert_allclose(columns["flux"], net_flux / exposure[:3] / 10)
    flux_var = 4 * gross + 9 * (scale**2 * (a_bkg1 + a_bkg2) + 0.25 * b_bkg)[:3]
    np.testing.assert_allclose(columns["flux_error"], np.sqrt(flux_var) / exposure[:3] / 10)
    for calibrated, npix in ((False, 10), (True, 0)):  # uncalibrated, or no pixel: NaN
        _, plain = bin_columns(boxes, [a, b], exposure, npix=npix, calibrated=calibrated)
        assert np.all(np.isnan(plain["flux"])) and np.all(np.isnan(plain["flux_error"]))
        np.testing.assert_array_equal(plain["error"], columns["error"])


def test_bin_exposure_with_a_gti_gap_and_two_segments():
    segment_a = np.array([[0.0, 100.0], [130.0, 200.0]])
    segment_b = np.array([[3.0, 190.0]])  # B starts late and stops early
    gti, origin, nbins = common_gti([segment_a, segment_b], 10.0)
    assert gti.tolist() == [[3.0, 100.0], [130.0, 190.0]] and (origin, nbins) == (3.0, 19)
    exposure = gti_exposure(gti, origin, 10.0, nbins)
    assert exposure.sum() == pytest.approx(97.0 + 60.0)
    edges = origin + 10.0 * np.arange(nbins + 1)
    assert exposure[9] == pytest.approx(100.0 - edges[9])  # the gap starts inside bin 9
    assert np.all(exposure[10:12] == 0.0) and exposure[12] == pytest.approx(edges[13] - 130.0)
    assert exposure[-1] == pytest.approx(190.0 - edges[-2]) and np.all(exposure[:9] == 10.0)
    # an explicit origin cuts the earlier time off; one that is too late is refused
    gti, origin, nbins = common_gti([segment_a], 7.0, origin=50.0)
    assert gti.tolist() == [[50.0, 100.0], [130.0, 200.0]] and nbins == time_grid(gti, 7.0)[1]
    with pytest.raises(ValueError, match="after the last GTI"):
        common_gti([segment_a], 7.0, origin=250.0, filename="x_corrtag_a.fits")
    with pytest.raises(UnsupportedProductError, match="do not overlap"):
        common_gti([segment_a, np.array([[100.0, 130.0]])], 7.0)


def test_band_pixels_count_the_good_x1d_pixels_the_events_cover():
    wavelength = 1200.0 + np.arange(300.0)  # 1 A per pixel, 1200-1499 A
    good = np.ones(300, bool)
    good[250:260] = False  # DQ_WGT = 0
    row = X1dRow("FUVA", wavelength, np.ones(300), np.ones(300), good)
    sums = BoxSums(np.zeros((1, 1)), np.zeros((1, 1)), np.zeros(1), np.zeros(1),
                   {"FUVA": (1210.0, 1480.0)}, {"FUVA": (10.2, 283.4)})
    selection = Selection(0, (0.0, 16384.0), (1205.0, 1490.0), AIRGLOW_WINDOWS,
                          np.array([[0.0, 1.0]]), 0.0, 1.0, 1)
    # 1210..1480 inclusive (271), minus Lyman-alpha 1210-1225 (16), O I 1298-1312 (15), 10 bad
    assert band_pixels(sums, "FUVA", selection, row) == 271 - 16 - 15 - 10
    # without x1d: the columns of the events' XCORR span (ends rounded to a column);
    # STIS events are in high-res columns, the x1d in low-res ones (x_scale 0.5)
    assert band_pixels(sums, "FUVA", selection) == 283 - 10 + 1
    assert band_pixels(sums, "FUVA", selection, x_scale=0.5) == 142 - 5 + 1
    assert band_pixels(sums, "FUVB", selection, row) == 0  # no counted event


def test_dispersion_fit_ignores_stray_events():
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 1024, 2000)
    truth = np.polynomial.Polynomial([1700.0, 0.035, 2e-6, -1e-9])
    wave = truth(x).astype(np.float32)
    stray = rng.random(x.size) < 0.05  # another stripe's wavelengths
    wave[stray] += 110.0
    fit = fit_dispersion(x, wave)
    columns = np.arange(1024) + 0.5
    np.testing.assert_allclose(fit(columns), truth(columns), rtol=0, atol=1e-3)
    assert fit_dispersion(x[:9], wave[:9]) is None  # too few events
    assert fit_dispersion(x[x < 200], wave[x < 200]) is None  # a fifth of the detector


# ----------------------------------------------------------------------------- STIS
@pytest.fixture(scope="module")
def stis(tmp_path_factory):
    from hstlc.extraction.stis_corrtag import tag_to_corrtag

    folder = tmp_path_factory.mktemp("stis")
    out = {}
    for mode, root in (("first_order", "oc5r01abq"), ("echelle", "oc5r02abq")):
        built = b.build_stis_tag(folder, rootname=root, mode=mode, seed=41, exptime=1500.0,
                                 source_rate=20.0, background_rate=0.3, shifta2=1.7)
        corrtag = tag_to_corrtag(built["tag"], built["x1d"])
        out[mode] = (built, corrtag, extract_lightcurve(corrtag, built["x1d"]))
    return out


def _in_band(wave: np.ndarray, lc) -> np.ndarray:
    ok = (wave > lc.meta["wmin"]) & (wave < lc.meta["wmax"])
    for lo, hi in lc.meta["airglow"]:
        ok &= (wave < lo) | (wave > hi)
    return ok


@pytest.mark.parametrize("mode", ["first_order", "echelle"])
def test_stis_background_and_flux(stis, mode):
    built, _, lc = stis[mode]
    truth = built["truth"]
    assert lc.meta["instrument"] == "STIS" and lc.meta["fluxcal"] == "X1D"
    expected = sum(truth.background_rate * o.geometry.extrsize * truth.live_time
                   * np.mean(_in_band(o.wavelength, lc)) for o in truth.orders.values())
    value, sigma = _background_estimate(lc)
    assert abs(value - expected) < 3 * sigma, (value, expected, sigma)
    assert np.mean(lc.flux) == pytest.approx(truth.flat_flux, rel=0.05)


def test_stis_boxes_come_from_the_x1d(stis):
    built, _, lc = stis["first_order"]
    order = built["truth"].orders[1]
    source = next(x for x in lc.meta["boxes"] if x["role"] == "source")
    centre = 2 * (order.geometry.a2center + 1.7)  # high-res rows; SHIFTA2 = 1.7
    assert source["y0"] == pytest.approx(centre - order.geometry.extrsize, abs=1e-4)
    assert source["y1"] == pytest.approx(centre + order.geometry.extrsize, abs=1e-4)
    assert source["y1"] - source["y0"] < 2048  # not the whole detector


def test_stis_events_land_in_their_echelle_order(stis):
    built, corrtag, lc = stis["echelle"]
    truth = built["truth"]
    with fits.open(corrtag) as hdul:
        y = np.asarray(hdul[1].data["YCORR"], np.float64)
    sources = {x["group"]: x for x in lc.meta["boxes"] if x["role"] == "source"}
    assert set(sources) == {str(k) for k in truth.orders}
    for sporder, order in truth.orders.items():
        box = sources[str(sporder)]
        background = (truth.component == b.BACKGROUND) & (y >= box["y0"]) & (y < box["y1"])
        expected = np.count_nonzero(truth.event_order == sporder) + np.count_nonzero(background)
        assert box["gross"] == expected, sporder
        assert order.n_source + order.n_flare == np.count_nonzero(truth.event_order == sporder)


def test_stis_needs_its_x1d(stis):
    _, corrtag, _ = stis["first_order"]
    with pytest.raises(MissingKeywordError, match="needs the x1d"):
        extract_lightcurve(corrtag, x1d=None)


# ----------------------------------------------------------------------------- the kernel
EDGES = [10.0, 20.5, 20.25, 33.3, 47.0, 61.7, 75.0, 90.1, 5.5, 12.0, 15.3, 25.0, 28.7, 38.1,
         41.0, 52.25, 55.5, 66.6, 70.0, 81.3, 84.0, 95.5]
WAVE_EDGES = [915.0, 1208.0, 1225.0, 1298.0, 1312.0, 1350.5]


def _events(seed: int, n: int) -> dict[str, np.ndarray]:
    """Random events; a third of the values sit exactly on box, band or GTI edges."""
    rng = np.random.default_rng(seed)

    def column(low: float, high: float, specials: list[float]) -> np.ndarray:
        values = rng.uniform(low, high, n)
        special = rng.random(n) < 0.33
        values[special] = rng.choice(specials, int(special.sum()))
        return values.astype(np.float32)

    return {"TIME": np.sort(column(0.0, 100.0, [0.0, 25.0, 50.0, 99.5, 30.5])),
            "XCORR": column(-5.0, 105.0, [0.0, 100.0]),
            "YCORR": column(0.0, 100.0, EDGES),
            "WAVELENGTH": column(900.0, 1400.0, WAVE_EDGES),
            "EPSILON": column(0.5, 2.0, [1.0]),
            "DQ": rng.choice(np.array([0, 1, 8, 16], np.int16), n)}


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_selected_event_is_counted_once_per_box(tmp_path, data):
    draw = data.draw
    events = _events(draw(st.integers(0, 2**32 - 1)), draw(st.integers(0, 300)))
    boxes = []
    for _ in range(draw(st.integers(1, 12))):  # > 8 boxes: the searchsorted path
        y0, y1 = sorted(draw(st.lists(st.sampled_from(EDGES), min_size=2, max_size=2,
                                      unique=True)))
        boxes.append(Box(draw(st.sampled_from(["A", "B"])),
                         draw(st.sampled_from([SOURCE, BACKGROUND])), y0, y1,
                         draw(st.floats(0.1, 2.0))))
    gti = np.array(draw(st.sampled_from([[[0.0, 100.0]], [[0.0, 25.0], [50.0, 99.5]],
                                         [[10.0, 30.0], [30.5, 40.0], [60.0, 80.0]]])))
    step = draw(st.sampled_from([0.7, 1.0, 2.5]))
    origin = float(gti[0, 0])
    nbins = int(np.ceil((gti[-1, 1] - origin) / step))
    selection = Selection(8, (0.0, 100.0), (915.0, 1400.0), AIRGLOW_WINDOWS, gti, origin, step,
                          nbins)
    path = tmp_path / "events.fits"
    fits.BinTableHDU.from_columns(
        [fits.Column(name=k, format="I" if k == "DQ" else "E", array=v)
         for k, v in events.items()], name="EVENTS").writeto(path, overwrite=True)
    groups = list(dict.fromkeys(box.group for box in boxes))
    wave = np.linspace(900.0, 1400.0, 50)
    response = Response("X1D", {g: wave for g in groups},
                        {g: (1.0 + i) * 1e-12 * (1 + wave / 1e3) for i, g in enumerate(groups)})
    lookup = response.indexed(groups)
    # STIS: wavelength of the event's column, per group; COS NUV: so for background rows
    by_column = draw(st.sampled_from([False, True, "background"]))
    column_wavelength = ({g: np.linspace(900.0 + 7 * i, 1400.0, 40 + 5 * i)
                          for i, g in enumerate(groups)} if by_column else None)
    mapped = "background" if by_column == "background" else "all"
    sums = accumulate_boxes(open_event_table(path), boxes, selection, conversion=lookup,
                            column_wavelength=column_wavelength,
                            column_wavelength_boxes=mapped, x_scale=0.5,
                            block_rows=draw(st.integers(1, 64)),
                            threads=draw(st.sampled_from([1, 2])))

    t, x, y, w = (events[k].astype(np.float64) for k in ("TIME", "XCORR", "YCORR", "WAVELENGTH"))
    eps = events["EPSILON"].astype(np.float64)
    good = ((events["DQ"] & 8) == 0) & (x >= 0.0) & (x < 100.0)
    good &= np.any([(t >= a) & (t < z) for a, z in gti], axis=0)
    edges = origin + step * np.arange(nbins + 1)
    k = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, nbins - 1)
    total = np.zeros(t.size)  # each event's weight in the counts, over the boxes counting it
    converted = np.zeros(t.size)  # and in the flux sum (weight * conversion)
    magnitude = np.zeros(t.size)  # sum of |weight * conversion|: the scale of rounding errors
    for j, box in enumerate(boxes):
        g = groups.index(box.group)
        wave_j = events["WAVELENGTH"]
        own = np.ones(t.size, bool)  # events whose WAVELENGTH this box uses
        if by_column:
            table = column_wavelength[box.group]
            by_x = table[np.clip((x * 0.5).astype(int), 0, table.size - 1)]
            own[:] = False
            if by_column == "background":  # rows that a source box of the group holds
                for other in boxes:
                    if other.group == box.group and other.role == SOURCE:
                        own |= (y >= other.y0) & (y < other.y1)
            wave_j = np.where(own, wave_j, by_x)
        band = (wave_j > 915.0) & (wave_j < 1400.0)
        for lo, hi in AIRGLOW_WINDOWS:
            band &= (wave_j < lo) | (wave_j > hi)
        mine = good & band & (y >= box.y0) & (y < box.y1)
        # the lookup works in the wavelength's type: float32 for the WAVELENGTH column
        factor = np.zeros(mine.sum())
        if mine.any():
            factor = np.where(own[mine], lookup(np.full(mine.sum(), g), events["WAVELENGTH"][mine]),
                              lookup(np.full(mine.sum(), g), wave_j[mine]))
        np.testing.assert_allclose(sums.gross[j], np.bincount(k[mine], eps[mine], nbins),
                                   rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(sums.flux[j], np.bincount(k[mine], eps[mine] * factor, nbins),
                                   rtol=1e-6, atol=1e-30)
        weight = 1.0 if box.role == SOURCE else -box.scale
        total[mine] += weight
        converted[mine] += weight * factor
        magnitude[mine] += np.abs(weight * factor)
    np.testing.assert_allclose(sums.count_variance, np.bincount(k, (eps * total) ** 2, nbins),
                               rtol=1e-12, atol=1e-12)
    # the conversion is float32: terms of opposite signs may cancel
    bound = 1e-5 * np.bincount(k, (eps * magnitude) ** 2, nbins) + 1e-60
    assert np.all(np.abs(sums.flux_variance - np.bincount(k, (eps * converted) ** 2, nbins))
                  <= bound)


def test_known_checksums_are_reused(flare_pair, flare_lc):
    known = {flare_pair["corrtag_a"].name: "0" * 64}
    lc = extract_lightcurve(flare_pair["corrtag_a"], checksums=known)
    assert lc.meta["input_sha256"][flare_pair["corrtag_a"].name] == "0" * 64
    assert lc.meta["input_sha256"][flare_pair["x1d"].name] == flare_lc.meta["input_sha256"][
        flare_pair["x1d"].name]
    assert extract_lightcurve(flare_pair["corrtag_a"], checksums=False).meta["input_sha256"] == {}


def test_no_source_events_in_any_bin_is_refused(tmp_path):
    from hstlc.errors import NO_SOURCE_EVENTS, QualityError

    files = b.build_cos_fuv_pair(tmp_path, seed=3, exptime=200.0, segments=("A",))
    path = files["corrtag_a"]
    with fits.open(path, mode="update") as hdulist:
        header = hdulist["EVENTS"].header
        events = hdulist["EVENTS"].data
        events["YCORR"][:] = header["B_BKG1_A"]  # every event in a background box
    with pytest.raises(QualityError) as info:
        extract_lightcurve(path)
    assert info.value.reason == NO_SOURCE_EVENTS and info.value.filename == path.name
    assert info.value.detail.startswith(f"{path.name}: ") and "source" in info.value.detail


def test_a_time_grid_beyond_any_exposure_is_refused_before_allocating(tmp_path):
    from hstlc.errors import LONG_TIME_SPAN, QualityError

    path = b.build_cos_fuv_pair(tmp_path, seed=4, exptime=200.0, segments=("A",))["corrtag_a"]
    with fits.open(path, mode="update") as hdulist:
        hdulist["GTI"].data["STOP"][-1] = 1e7  # 5e6 bins of 2 s
    with pytest.raises(QualityError) as info:
        extract_lightcurve(path, checksums=False)
    assert info.value.reason == LONG_TIME_SPAN and info.value.filename == path.name
    assert "the time grid spans" in info.value.detail
    with pytest.raises(QualityError, match="EXPTIME spans"):
        extract_lightcurve(path, checksums=False, max_time_span_s=100.0)


def test_an_empty_segment_keyword_takes_the_segment_from_the_file_name(flare_pair, tmp_path):
    import shutil

    path = tmp_path / flare_pair["corrtag_a"].name
    shutil.copyfile(flare_pair["corrtag_a"], path)
    with fits.open(path, mode="update") as hdulist:
        hdulist[0].header["SEGMENT"] = ""
    lc = extract_lightcurve(path, x1d=None, find_partner=False, checksums=False)
    assert {box["group"] for box in lc.meta["boxes"]} == {"FUVA"}


@pytest.mark.parametrize("key, value, detail", [
    ("SP_HGT_A", 0, "keyword SP_HGT_A=0 is not a finite number >= "),
    ("SP_LOC_A", "", "keyword SP_LOC_A='' is not a finite number"),
    ("B_HGT1_A", -3.0, "keyword B_HGT1_A=-3.0 is not a finite number >= "),
    ("SDQFLAGS", -1e12, "keyword SDQFLAGS=-1000000000000.0 is not a finite number >= 0"),
    ("SDQFLAGS", 2.5, "keyword SDQFLAGS=2.5 is not a DQ bit mask"),
])
def test_unusable_box_and_dq_keywords_are_missing_keywords(flare_pair, tmp_path, key, value,
                                                           detail):
    import shutil

    path = tmp_path / flare_pair["corrtag_a"].name
    shutil.copyfile(flare_pair["corrtag_a"], path)
    with fits.open(path, mode="update") as hdulist:
        hdulist["EVENTS"].header[key] = value
    with pytest.raises(MissingKeywordError) as info:
        extract_lightcurve(path, x1d=None, find_partner=False, checksums=False)
    assert info.value.detail.startswith(f"{path.name}: ext 1 ") and detail in info.value.detail


# ----------------------------------------------------------------------------- checksums in the pass
_COLUMNS = ("times", "mjd", "bjd_tdb", "bins", "gross", "counts", "net", "flux", "flux_error",
            "background", "error", "dataset")


def _same_lightcurve(one, other) -> None:
    """Bit for bit the same columns, and the same metadata but the checksums."""
    for name in _COLUMNS:
        np.testing.assert_array_equal(getattr(one, name), getattr(other, name), strict=True)
    assert ({k: v for k, v in one.meta.items() if k != "input_sha256"}
            == {k: v for k, v in other.meta.items() if k != "input_sha256"})


def _hashed_apart(monkeypatch) -> list[str]:
    """The names of the files hstlc.fs.sha256_file is called on from now on."""
    import hstlc.fs

    calls: list[str] = []
    original = hstlc.fs.sha256_file

    def counting(path, *args, **kwargs):
        calls.append(path.name)
        return original(path, *args, **kwargs)

    monkeypatch.setattr(hstlc.fs, "sha256_file", counting)
    return calls


@pytest.mark.parametrize(("engine", "threads", "block_rows"),
                         [("auto", None, 1 << 16), ("kernel", 1, 4099), ("numpy", 2, 1000),
                          ("kernel", 4, 333)])
def test_event_files_are_hashed_in_the_extraction_pass(flare_pair, monkeypatch, engine, threads,
                                                        block_rows):
    import hashlib

    plain = extract_lightcurve(flare_pair["corrtag_a"], checksums=False, engine=engine,
                               threads=threads, block_rows=block_rows)
    calls = _hashed_apart(monkeypatch)
    lc = extract_lightcurve(flare_pair["corrtag_a"], engine=engine, threads=threads,
                            block_rows=block_rows)
    expected = {flare_pair[k].name: hashlib.sha256(flare_pair[k].read_bytes()).hexdigest()
                for k in ("corrtag_a", "corrtag_b", "x1d")}
    assert lc.meta["input_sha256"] == expected
    assert calls == [flare_pair["x1d"].name]  # the event files' bytes were read once
    _same_lightcurve(lc, plain)


def test_known_checksums_leave_the_others_to_the_pass(flare_pair, flare_lc, monkeypatch):
    calls = _hashed_apart(monkeypatch)
    known = {flare_pair["corrtag_b"].name: "1" * 64}
    lc = extract_lightcurve(flare_pair["corrtag_a"], checksums=known)
    assert calls == [flare_pair["x1d"].name]
    assert lc.meta["input_sha256"] == {**flare_lc.meta["input_sha256"],
                                       flare_pair["corrtag_b"].name: "1" * 64}
    _same_lightcurve(lc, flare_lc)


def test_nuv_corrtag_is_hashed_in_the_pass(tmp_path, monkeypatch):
    from hstlc.fs import sha256_file

    nuv = b.build_cos_nuv(tmp_path, seed=86, exptime=600.0, source_rate=10.0)
    plain = extract_lightcurve(nuv["corrtag"], checksums=False)
    calls = _hashed_apart(monkeypatch)
    lc = extract_lightcurve(nuv["corrtag"])
    assert calls == [nuv["x1d"].name]
    assert lc.meta["input_sha256"] == {p.name: sha256_file(p) for p in (nuv["corrtag"], nuv["x1d"])}
    _same_lightcurve(lc, plain)


@pytest.mark.parametrize("root", ["ld9m10ujq", "ld9m10uyq"])
def test_real_corrtag_is_hashed_in_the_pass(real_data, monkeypatch, root):
    from hstlc.fs import sha256_file

    path = real_data / "cos_fuv_g130m_gj436" / f"{root}_corrtag_a.fits"
    plain = extract_lightcurve(path, checksums=False)
    calls = _hashed_apart(monkeypatch)
    for block_rows in (1 << 16, 4096):  # neither divides the table
        lc = extract_lightcurve(path, block_rows=block_rows)
        assert lc.meta["input_sha256"][path.name] == sha256_file(path)
        if block_rows == 1 << 16:
            _same_lightcurve(lc, plain)
    assert calls == [f"{root}_x1d.fits"] * 2
