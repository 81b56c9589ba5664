"""Variability statistics (hstlc.variability): physics checks on synthetic HST-like lightcurves.

The lightcurves are built here from numpy, seeded: visits of 96-min orbits with 50 min
exposed each (HST's Earth occultations in between), Poisson counts in bins of 5-30 s, with
injected sinusoids and flares.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import EarthLocation, SkyCoord
from astropy.stats import bayesian_blocks
from astropy.time import Time
from astropy.timeseries import LombScargle
from scipy import signal, stats

from hstlc.errors import UnreadableFileError
from hstlc.extraction.barycentre import barycentric_times
from hstlc.io.lightcurve_file import Lightcurve, read_lightcurve
from hstlc.variability import LightcurveStats, StatsConfig, compute_stats, unusable_stats
from hstlc.variability.excess import measure_scatter
from hstlc.variability.flares import block_starts, find_flares, split_segments
from hstlc.variability.legacy import LEGACY_MIN_POWER, legacy_periodogram
from hstlc.variability.periodogram import multivisit_fap, search_periods

ORBIT = 5760.0  # s, HST's orbital period
EXPOSED = 3000.0  # s exposed per orbit
MJD0 = 58000.0
YEAR = 365.25 * 86400.0


def visit(n_orbits: int = 5, step: float = 5.0, start: float = 0.0) -> np.ndarray:
    """Bin start times (s) of one visit."""
    return np.concatenate([start + k * ORBIT + np.arange(0.0, EXPOSED, step)
                           for k in range(n_orbits)])


def sinusoid_counts(rng: np.random.Generator, t: np.ndarray, step: float, rate: float,
                    amplitude: float, period: float, phase: float | np.ndarray = 0.0) -> np.ndarray:
    """Poisson counts of a source whose rate varies by ``amplitude`` (fraction) at ``period``."""
    mean = rate * step * (1 + amplitude * np.sin(2 * np.pi * (t + step / 2) / period + phase))
    return rng.poisson(mean).astype(float)


def make_lightcurve(t: np.ndarray, gross: np.ndarray, step: float, *,
                    background: np.ndarray | None = None, dataset: np.ndarray | None = None,
                    meta: dict | None = None) -> Lightcurve:
    """A Lightcurve of bins starting at ``t`` (s after MJD0) with ``gross`` counts each."""
    background = np.zeros(t.size) if background is None else background
    bins = np.full(t.size, step)
    counts = gross - background
    nan = np.full(t.size, np.nan)
    return Lightcurve(bins=bins, times=t - t[0], mjd=MJD0 + t / 86400.0, gross=gross,
                      counts=counts, net=counts / bins, flux=nan, flux_error=nan,
                      background=background, error=np.sqrt(gross + background),
                      dataset=np.ones(t.size, int) if dataset is None else dataset,
                      meta=meta or {})


def orbit_numbers(t: np.ndarray) -> np.ndarray:
    """One dataset (exposure) per orbit, as in a composite of a visit's exposures."""
    return (np.floor(t / ORBIT) - np.floor(t[0] / ORBIT)).astype(int) + 1


# ----------------------------------------------------------------------------- periods
@pytest.mark.parametrize(("period", "name", "step"), [
    (60.0, "short", 5.0), (300.0, "short", 5.0), (1800.0, "medium", 5.0), (7200.0, "long", 10.0)])
def test_injected_sinusoid_recovered(period, name, step):
    rng = np.random.default_rng(int(period))
    t = visit(5, step)
    counts = sinusoid_counts(rng, t, step, rate=20.0, amplitude=0.05, period=period)
    search = search_periods(t, counts / step, np.full(t.size, step))
    peak = search.peak(name)
    assert peak.period == pytest.approx(period, rel=0.01)
    assert peak.fap < 1e-6
    assert search.fap < 1e-6
    assert search.n_visits == 1


def test_2016_rule_misses_the_1800s_period_that_the_search_finds():
    rng = np.random.default_rng(1800)
    step = 5.0
    t = visit(5, step)
    weak = sinusoid_counts(rng, t, step, rate=20.0, amplitude=0.05, period=1800.0)
    row = compute_stats(make_lightcurve(t, weak, step, dataset=orbit_numbers(t)))
    assert row.reason is None
    assert not row.periodogram  # 2016: power ~0.1 < 0.30
    assert row.period_medium == pytest.approx(1800.0, rel=0.01)
    assert row.fap_medium < 1e-6 and row.periodic
    assert row.power_medium < LEGACY_MIN_POWER
    # the 2016 rule is no constant False: a signal three times stronger passes it
    strong = sinusoid_counts(rng, t, step, rate=20.0, amplitude=0.15, period=1800.0)
    flags = legacy_periodogram(MJD0 + t / 86400.0, strong / step).flags
    assert flags == (False, True, False)


@pytest.mark.parametrize("phases", ["coherent", "random"])
def test_composite_of_20_visits_over_two_years(phases):
    rng = np.random.default_rng(20)
    step = 10.0
    starts = np.sort(rng.uniform(0.0, 2 * YEAR, 20))
    t = np.concatenate([visit(5, step, s) for s in starts])
    phase = (np.zeros(t.size) if phases == "coherent"
             else np.repeat(rng.uniform(0, 2 * np.pi, 20), t.size // 20))
    counts = sinusoid_counts(rng, t, step, rate=20.0, amplitude=0.05, period=1800.0, phase=phase)
    exposure = np.full(t.size, step)
    tracemalloc.start()
    search = search_periods(t, counts / step, exposure)
    peak_bytes = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert search.peak("medium").period == pytest.approx(1800.0, rel=0.01)
    assert search.peak("medium").fap < 1e-6
    assert search.n_visits == 20
    # bounded: the grid is one visit's (not the 2-year baseline's), memory a few MB
    one = search_periods(t[: t.size // 20], counts[: t.size // 20] / step, exposure[: t.size // 20])
    assert search.n_frequencies == one.n_frequencies < 20_000
    assert peak_bytes < 64e6  # the time is bench/stats.py's (no timed unit test)
    # the 2016 rule's grid is tied to the visit length too
    tracemalloc.start()
    legacy_periodogram(MJD0 + t / 86400.0, counts / step)
    legacy_bytes = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert legacy_bytes < 64e6


def test_composite_row_on_barycentric_times():
    rng = np.random.default_rng(21)
    step = 10.0
    starts = np.sort(rng.uniform(0.0, 2 * YEAR, 20))
    t = np.concatenate([visit(5, step, s) for s in starts])
    counts = sinusoid_counts(rng, t, step, rate=20.0, amplitude=0.05, period=1800.0)
    dataset = np.cumsum(np.concatenate([[1], np.diff(t) > 600.0]))
    lc = make_lightcurve(t, counts, step, dataset=dataset,
                         meta={"ra_targ": 175.55, "dec_targ": 26.70})
    row = compute_stats(lc, composite=True)
    assert row.n_visits == 20 and row.n_flares == 0
    assert row.period_medium == pytest.approx(1800.0, rel=0.01)
    assert row.fap_medium < 1e-6 and row.periodic and row.deliver


def test_visits_months_apart_give_the_grid_of_visits_days_apart():
    rng = np.random.default_rng(3)
    step = 10.0
    for spacing in (2 * 86400.0, 0.5 * YEAR):
        t = np.concatenate([visit(3, step, k * spacing) for k in range(4)])
        counts = rng.poisson(50.0, t.size).astype(float)
        sizes = search_periods(t, counts / step, np.full(t.size, step)).n_frequencies
        assert sizes == search_periods(t[: t.size // 4], counts[: t.size // 4] / step,
                                       np.full(t.size // 4, step)).n_frequencies


def test_pure_poisson_noise_rarely_false_alarms_or_flares():
    step = 10.0
    t = visit(3, step)
    exposure = np.full(t.size, step)
    dataset = orbit_numbers(t)
    faps, flared = [], []
    for seed in range(200):
        counts = np.random.default_rng(seed).poisson(5.0 * step, t.size).astype(float)
        faps.append(search_periods(t, counts / step, exposure).fap)
        flared.append(len(find_flares(t, counts, counts, exposure, dataset).flares) > 0)
    assert np.mean(np.array(faps) < 0.05) <= 0.08
    assert np.mean(flared) <= 0.05


def test_pure_poisson_composites_rarely_false_alarm():
    # the multi-visit false-alarm probability (visits summed incoherently) is calibrated too
    step = 10.0
    t = np.concatenate([visit(2, step, k * 40 * 86400.0) for k in range(4)])
    exposure = np.full(t.size, step)
    faps = [search_periods(t, np.random.default_rng(seed).poisson(50.0, t.size) / step,
                           exposure).fap for seed in range(1000, 1100)]
    assert np.mean(np.array(faps) < 0.05) <= 0.08


def test_multivisit_fap_reduces_to_astropy_baluev_for_one_visit():
    rng = np.random.default_rng(5)
    t = visit(4, 10.0)
    dy = rng.uniform(0.5, 2.0, t.size)
    model = LombScargle(t, rng.normal(0, 1, t.size), dy, normalization="psd")
    weights = dy ** -2 / np.sum(dy ** -2)
    t_eff = np.sqrt(4 * np.pi * np.sum(weights * (t - np.sum(weights * t)) ** 2))
    for z in (8.0, 12.0, 20.0):
        expected = model.false_alarm_probability(z, method="baluev", maximum_frequency=0.05)
        assert multivisit_fap(z, 1, 0.05, t_eff) == pytest.approx(float(expected), rel=1e-9)
    # more visits at the same summed Z are less surprising
    assert multivisit_fap(20.0, 5, 0.05, t_eff) > multivisit_fap(20.0, 1, 0.05, t_eff)


# ----------------------------------------------------------------------------- flares
def flare_counts(rng: np.random.Generator, t: np.ndarray, step: float, rate: float,
                 start: float, rise: float = 60.0, decay: float = 300.0) -> np.ndarray:
    """Poisson counts of a quiescent source with a flare to 5x its rate (linear rise,
    exponential decay), the rate integrated over each bin."""
    sub = t[:, None] + (np.arange(20) + 0.5)[None, :] * step / 20
    since = sub - start
    shape = np.where(since < 0, 0.0,
                     np.where(since < rise, since / rise, np.exp(-(since - rise) / decay)))
    return rng.poisson(rate * step * (1 + 4 * shape).mean(axis=1)).astype(float)


@pytest.mark.parametrize("rate", [20.0, 5.0])
@pytest.mark.parametrize("seed", range(4))
def test_injected_flare_found_with_its_start(rate, seed):
    rng = np.random.default_rng(seed)
    step = 10.0
    t = visit(4, step)
    start = 2 * ORBIT + 1200.0 + rng.uniform(0, step)
    gross = flare_counts(rng, t, step, rate, start)
    background = np.full(t.size, 0.05 * rate * step)
    row = compute_stats(make_lightcurve(t, gross + background, step, background=background,
                                        dataset=orbit_numbers(t)))
    assert row.n_flares == 1
    true_bin = np.searchsorted(t, start, side="right") - 1
    found_bin = np.flatnonzero(np.isclose(MJD0 + t / 86400.0, row.flare_start_mjd, rtol=0,
                                          atol=1e-9))[0]
    assert abs(found_bin - true_bin) <= 2
    assert 3.0 < row.flare_peak_ratio < 6.0


def _steps(seed: int) -> np.ndarray:
    rates = np.repeat([3.0, 9.0, 3.0, 6.0, 3.0], [40, 15, 50, 30, 40])
    return np.random.default_rng(seed).poisson(rates).astype(float)


@pytest.mark.parametrize("seed", [10, 11, 12, 13])
def test_blocks_agree_with_astropy_bayesian_blocks(seed):
    counts = _steps(seed)
    ours = block_starts(counts, np.ones(counts.size), 6.0)
    edges = bayesian_blocks(np.arange(counts.size) + 0.5, counts, fitness="events", ncp_prior=6.0)
    assert list(ours[1:-1]) == np.round(edges[1:-1]).astype(int).tolist()
    assert np.abs(ours[1:-1] - [40, 55, 105, 135]).max() <= 3


def test_blocks_give_end_bins_their_full_width():
    # astropy's cell edges lie halfway between the times given: its first bin is half as
    # wide, so 8 counts there look like 16/s against 3/s and open a block of one bin
    counts = _steps(9)
    edges = bayesian_blocks(np.arange(counts.size) + 0.5, counts, fitness="events", ncp_prior=6.0)
    assert edges[1] == 1.0
    assert block_starts(counts, np.ones(counts.size), 6.0)[1] == 40


def test_segments_follow_exposures_and_stay_bounded():
    t = visit(3, 2.0)
    pieces = split_segments(t, orbit_numbers(t), 600.0, 700)
    assert all(p.stop - p.start <= 700 for p in pieces)
    assert len(pieces) == 3 * 3  # 1500 bins an orbit: three pieces of 500
    assert sum(p.stop - p.start for p in pieces) == t.size


# ----------------------------------------------------------------------------- 2016 statistics
def test_2016_statistics_equal_numpy_and_scipy():
    rng = np.random.default_rng(2016)
    step = 5.0
    t = visit(2, step)
    background = rng.uniform(0.5, 2.0, t.size)
    gross = rng.poisson(30.0 + 10 * np.sin(t / 900.0), t.size).astype(float) + background
    lc = make_lightcurve(t, gross, step, background=background)
    row = compute_stats(lc)
    counts, mjd = lc.counts, lc.mjd
    assert row.total == pytest.approx(np.sum(counts), rel=1e-12)
    assert row.mean == pytest.approx(np.mean(counts), rel=1e-12)
    assert row.mu == pytest.approx(np.sqrt(np.mean(counts)), rel=1e-12)
    assert row.stdev == pytest.approx(np.std(counts, ddof=0), rel=1e-12)
    assert row.poisson_factor == pytest.approx(np.std(counts) / np.sqrt(np.mean(counts)), rel=1e-12)
    r, p = stats.pearsonr(counts, mjd)
    assert row.pearson_r == pytest.approx(r, rel=1e-6)
    assert row.pearson_p == pytest.approx(p, rel=1e-4)
    flag, peaks = _scipy_2016_rule(mjd, lc.net)
    legacy = legacy_periodogram(mjd, lc.net)
    assert row.periodogram == legacy.flag == flag
    assert legacy.peak_powers == pytest.approx(peaks, abs=1e-6)


def _scipy_2016_rule(mjd: np.ndarray, net: np.ndarray) -> tuple[bool, list[float]]:
    """The 2016 rule with scipy's generalised Lomb-Scargle (floating mean, normalised) on
    the documented grid: regular in frequency up to the Nyquist frequency, step 1 / (5 * span)."""
    seconds = (mjd - mjd[0]) * 86400.0
    step = 1.0 / (5.0 * np.ptp(seconds))
    nyquist = 0.5 / np.median(np.diff(seconds))
    flagged, peaks = False, []
    for pmin, pmax in ((5.0, 600.0), (600.0, 3600.0), (3600.0, 36000.0)):
        high = min(1.0 / pmin, nyquist)
        frequency = 1.0 / pmax + step * np.arange(int((high - 1.0 / pmax) / step) + 1)
        power = signal.lombscargle(seconds, net - net.mean(), 2 * np.pi * frequency,
                                   normalize=True, floating_mean=True)
        local = power[1:-1][(power[1:-1] > power[:-2]) & (power[1:-1] > power[2:])]
        flagged |= bool(np.any((local > power.mean() + 3 * power.std()) & (local >= 0.30)))
        peaks.append(float(power.max()))
    return flagged, peaks


def test_deliver_rule():
    rng = np.random.default_rng(4)
    t = visit(2, 10.0)
    lc = make_lightcurve(t, rng.poisson(20.0, t.size).astype(float), 10.0)
    total = float(lc.counts.sum())
    assert compute_stats(lc, composite=True).deliver
    assert not compute_stats(lc, composite=True, members_ok=False).deliver
    assert not compute_stats(lc).deliver  # individual lightcurves are not delivered
    assert not compute_stats(lc, StatsConfig(deliver_min_counts=total + 1), composite=True).deliver


# ----------------------------------------------------------------------------- scatter
def test_excess_variance_and_chi2_of_constant_and_varying_sources():
    rng = np.random.default_rng(7)
    step = 10.0
    t = visit(4, step)
    constant = rng.poisson(40.0 * step, t.size).astype(float)
    flat = measure_scatter(constant / step, np.sqrt(constant) / step)
    assert abs(flat.excess_variance) < 3 * flat.excess_variance_error
    assert flat.chi2_dof == pytest.approx(1.0, abs=0.15)
    varying = sinusoid_counts(rng, t, step, rate=40.0, amplitude=0.2, period=2000.0)
    wave = measure_scatter(varying / step, np.sqrt(varying) / step)
    assert wave.excess_variance == pytest.approx(0.2 ** 2 / 2, abs=3 * wave.excess_variance_error)
    assert wave.chi2_dof > 5


# ----------------------------------------------------------------------------- barycentre
def test_barycentric_correction_follows_the_annual_light_travel_curve():
    days = 59000.0 + np.arange(0.0, 366.0, 1.0)
    ecliptic = barycentric_times(days, ra=90.0, dec=23.4393)  # ecliptic longitude 90 deg
    pole = barycentric_times(days, ra=270.0, dec=66.5607)  # north ecliptic pole
    assert 480.0 < ecliptic.correction.max() < 510.0
    assert 480.0 < -ecliptic.correction.min() < 510.0
    assert np.abs(pole.correction).max() < 10.0
    tdb = Time(days, format="mjd", scale="utc").tdb
    assert np.allclose((ecliptic.bjd_tdb - tdb.jd) * 86400.0, ecliptic.correction, atol=1e-4)


def test_barycentric_times_equal_astropy_light_travel_time():
    mjd = 58108.76458802 + np.arange(0.0, 0.3, 0.0123)
    ours = barycentric_times(mjd, ra=175.5512327871, dec=26.7025076803)
    times = Time(mjd, format="mjd", scale="utc")
    travel = times.light_travel_time(SkyCoord(175.5512327871 * u.deg, 26.7025076803 * u.deg),
                                     kind="barycentric", ephemeris="builtin",
                                     location=EarthLocation.from_geocentric(0, 0, 0, unit=u.m))
    reference = times.tdb + travel
    assert np.abs(ours.correction - travel.to_value(u.s)).max() < 1e-5
    assert np.abs(ours.seconds - (reference - reference[0]).to_value(u.s)).max() < 1e-5


def test_barycentric_times_read_no_iers_table_and_download_nothing(monkeypatch):
    from astropy.utils import data, iers

    def refuse(*args, **kwargs):
        raise AssertionError("barycentric_times must not need Earth orientation or the network")

    for table in (iers.IERS_Auto, iers.IERS_A, iers.IERS_B):
        monkeypatch.setattr(table, "open", classmethod(refuse))
    monkeypatch.setattr(data, "download_file", refuse)
    bary = barycentric_times([61000.0, 61000.5], ra=10.0, dec=-30.0)
    assert np.all(np.isfinite(bary.bjd_tdb))


# ----------------------------------------------------------------------------- rows
def test_too_few_bins_and_unreadable_files_give_a_reason(tmp_path):
    t = visit(1, 10.0)[:5]
    row = compute_stats(make_lightcurve(t, np.full(5, 10.0), 10.0))
    assert row.reason == "fewer than 20 exposed bins (5)"
    assert row.n_bins == 5 and np.isnan(row.total) and row.row()["total"] is None
    bad = tmp_path / "x_curve.fits"
    bad.write_bytes(b"not a FITS file")
    with pytest.raises(UnreadableFileError) as caught:
        read_lightcurve(bad)
    unreadable = unusable_stats(f"{caught.value.reason}: {caught.value}")
    assert unreadable.reason.startswith("Unreadable file: x_curve.fits")
    assert set(unreadable.row()) == set(LightcurveStats.columns())


def test_row_names_match_the_stats_table_plan():
    columns = LightcurveStats.columns()
    assert columns[:9] == ("total", "mean", "mu", "stdev", "poisson_factor", "pearson_r",
                           "pearson_p", "periodogram", "deliver")
    for name in ("short", "medium", "long"):
        assert {f"period_{name}", f"power_{name}", f"fap_{name}"} <= set(columns)
    assert columns[-1] == "reason"



def test_rows_use_barycentric_times_when_the_target_is_known(monkeypatch):
    import hstlc.variability.stats as module

    calls = []

    def spy(mjd, ra, dec, **kwargs):
        calls.append((ra, dec))
        return barycentric_times(mjd, ra, dec, **kwargs)

    monkeypatch.setattr(module, "barycentric_times", spy)
    rng = np.random.default_rng(12)
    t = visit(2, 10.0)
    counts = sinusoid_counts(rng, t, 10.0, rate=20.0, amplitude=0.1, period=300.0)
    placed = compute_stats(make_lightcurve(t, counts, 10.0, meta={"ra_targ": 175.55,
                                                                   "dec_targ": 26.70}))
    assert calls == [(175.55, 26.70)]
    assert placed.period_short == pytest.approx(300.0, rel=0.01)
    compute_stats(make_lightcurve(t, counts, 10.0, meta={"ra_targ": None}))
    assert len(calls) == 1  # no target: UTC times


def test_members_observed_at_the_same_times_are_searched_without_error():
    """A composite whose members share their bin times (stacked) has no zero step."""
    rng = np.random.default_rng(5)
    t = np.tile(np.arange(0.0, 600.0, 2.0), 4)
    search = search_periods(t, rng.poisson(20.0, t.size) / 2.0, np.full(t.size, 2.0))
    assert search.n_visits in (0, 1) and (np.isnan(search.fap) or 0 <= search.fap <= 1)
    members = np.repeat(np.arange(1, 5), t.size // 4)
    row = compute_stats(make_lightcurve(t, rng.poisson(40.0, t.size).astype(float), 2.0,
                                        dataset=members), composite=True)
    assert row.reason is None and row.n_bins == t.size and not row.periodogram


def test_no_barycentric_column_for_times_before_hst():
    from hstlc.extraction.barycentre import bjd_column

    assert bjd_column(np.array([0.0, 0.1]), {"ra_targ": 10.0, "dec_targ": 20.0}) is None
    assert bjd_column(np.array([58108.7]), {"ra_targ": 10.0, "dec_targ": 20.0}) is not None
    assert bjd_column(np.array([58108.7]), {}) is None
