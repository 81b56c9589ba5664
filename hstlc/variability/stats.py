"""One row of variability statistics per lightcurve: :func:`compute_stats`.

The row (:class:`LightcurveStats`) names its fields as the ``stats`` table names its
columns: the 2016 statistics verbatim (:mod:`hstlc.variability.legacy`), then the period
search (:mod:`~hstlc.variability.periodogram`), the flares (:mod:`~hstlc.variability.flares`),
the excess variance and chi-square (:mod:`~hstlc.variability.excess`), and ``reason``: None
for a computed row, else why nothing could be computed (a file that could not be read, too
few bins).  A lightcurve never makes the computation raise for what its data are.

Which bins: the exposed ones (``bins > 0``) with finite ``mjd``, ``counts`` and ``net``.
Which times: barycentric: the lightcurve's ``bjd_tdb`` column, computed here
(:mod:`~hstlc.extraction.barycentre`) for a file written before the column existed when
its metadata give RA_TARG and DEC_TARG; else its ``mjd`` (UTC).  Both are one function each
(:func:`exposed_bins`, :func:`period_search_input`), so that a plot of the periodogram
shows what the row was computed from.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from hstlc.config import Settings
from hstlc.extraction.barycentre import barycentric_times, target_of
from hstlc.io.lightcurve_file import Lightcurve
from hstlc.variability.excess import measure_scatter
from hstlc.variability.flares import (
    DEFAULT_MIN_RATIO,
    DEFAULT_P0,
    DEFAULT_SIGMA,
    FlareSearch,
    find_flares,
)
from hstlc.variability.legacy import deliver, legacy_periodogram, legacy_stats
from hstlc.variability.periodogram import PeriodSearch, search_periods

_NAN = float("nan")
_DAY = 86400.0


@dataclass(frozen=True)
class StatsConfig:
    """Settings of the statistics (their defaults become ``Settings`` fields).

    Attributes
    ----------
    min_bins : int
        Fewest exposed bins a lightcurve needs for statistics.
    fap_threshold : float
        A lightcurve is ``periodic`` when its ``fap`` is below this.
    deliver_min_counts : float
        Fewest total counts of a delivered composite.
    samples_per_peak : float
        Frequency grid points per peak width of the longest visit.
    visit_gap_s, max_visit_span_s : float
        The visit rule of the period search (s).
    flare_p0 : float
        False-alarm probability per change point of the Bayesian-blocks prior.
    flare_sigma : float
        Poisson standard deviations a flare's peak must rise above the quiescent rate.
    flare_min_ratio : float
        Least ratio of a flare's peak net rate to the quiescent net rate.
    segment_gap_s : float
        A gap longer than this (s) starts a new flare-search segment.
    max_segment_bins : int
        Most bins in one Bayesian-blocks segment.
    """

    min_bins: int = 20
    fap_threshold: float = 1e-3
    deliver_min_counts: float = 1000.0
    samples_per_peak: float = 5.0
    visit_gap_s: float = 43200.0
    max_visit_span_s: float = 86400.0
    flare_p0: float = DEFAULT_P0
    flare_sigma: float = DEFAULT_SIGMA
    flare_min_ratio: float = DEFAULT_MIN_RATIO
    segment_gap_s: float = 600.0
    max_segment_bins: int = 2000

    @classmethod
    def from_settings(cls, settings: Settings) -> StatsConfig:
        """The thresholds an operator sets (``stats_min_bins``, ``fap_threshold``,
        ``deliver_min_counts``); the search settings keep their defaults."""
        return cls(min_bins=settings.stats_min_bins, fap_threshold=settings.fap_threshold,
                   deliver_min_counts=settings.deliver_min_counts)


@dataclass(frozen=True)
class LightcurveStats:
    """The ``stats`` row of one lightcurve.  Floats are NaN where undefined.

    Attributes
    ----------
    total, mean, mu, stdev, poisson_factor, pearson_r, pearson_p : float
        The 2016 statistics of ``counts`` (:class:`~hstlc.variability.legacy.LegacyStats`).
    periodogram : bool
        The 2016 periodogram rule.
    deliver : bool
        The composite is delivered as an HLSP (always False for an individual lightcurve).
    n_bins : int
        Exposed bins.
    n_visits : int
        Visits of the period search.
    period_short, power_short, fap_short : float
        Best period (s), its power and false-alarm probability in 5 s-10 min; likewise
        ``_medium`` (10 min-1 h) and ``_long`` (1-10 h).
    fap : float
        The lightcurve's false-alarm probability (the ranges together).
    periodic : bool
        ``fap`` below the threshold.
    n_flares : int
        Flares found.
    flare_peak_ratio : float
        Peak-to-quiescent net rate ratio of the strongest flare.
    flare_start_mjd : float
        Start (MJD, bin start) of the strongest flare.
    excess_variance, excess_variance_error : float
        Normalised excess variance of ``net`` and its error.
    chi2_dof : float
        Chi-square per degree of freedom against a constant.
    reason : str or None
        Why the row holds no statistics (None when computed).
    """

    total: float = _NAN
    mean: float = _NAN
    mu: float = _NAN
    stdev: float = _NAN
    poisson_factor: float = _NAN
    pearson_r: float = _NAN
    pearson_p: float = _NAN
    periodogram: bool = False
    deliver: bool = False
    n_bins: int = 0
    n_visits: int = 0
    period_short: float = _NAN
    power_short: float = _NAN
    fap_short: float = _NAN
    period_medium: float = _NAN
    power_medium: float = _NAN
    fap_medium: float = _NAN
    period_long: float = _NAN
    power_long: float = _NAN
    fap_long: float = _NAN
    fap: float = _NAN
    periodic: bool = False
    n_flares: int = 0
    flare_peak_ratio: float = _NAN
    flare_start_mjd: float = _NAN
    excess_variance: float = _NAN
    excess_variance_error: float = _NAN
    chi2_dof: float = _NAN
    reason: str | None = None

    @classmethod
    def columns(cls) -> tuple[str, ...]:
        """The field names, in table order."""
        return tuple(f.name for f in fields(cls))

    def row(self) -> dict[str, Any]:
        """The fields as a dict, NaN as None (SQL NULL)."""
        return {k: None if isinstance(v, float) and math.isnan(v) else v
                for k, v in asdict(self).items()}


def unusable_stats(reason: str, n_bins: int = 0) -> LightcurveStats:
    """The row of a lightcurve that has no statistics, saying why.

    Examples
    --------
    >>> unusable_stats("Unreadable file: x_curve.fits: not a lightcurve file").row()["total"] is None
    True
    """
    return LightcurveStats(n_bins=n_bins, reason=reason)


def exposed_bins(lc: Lightcurve) -> np.ndarray:
    """Indices of the bins the statistics use, in time order: exposed (``bins > 0``), with
    finite ``mjd``, ``counts`` and ``net``, sorted by ``mjd`` (stable).

    Examples
    --------
    >>> nan = np.full(3, np.nan)
    >>> lc = Lightcurve(bins=[2.0, 0.0, 2.0], times=[4.0, 2.0, 0.0], mjd=[1.0, 0.5, 0.0],
    ...                 gross=[1.0, 0.0, 3.0], counts=[1.0, 0.0, 3.0], net=[0.5, nan[0], 1.5],
    ...                 flux=nan, flux_error=nan, background=[0.0] * 3, error=[1.0] * 3,
    ...                 dataset=[1] * 3)
    >>> exposed_bins(lc).tolist()
    [2, 0]
    """
    use = (lc.bins > 0) & np.isfinite(lc.mjd) & np.isfinite(lc.counts) & np.isfinite(lc.net)
    picked = np.flatnonzero(use)
    return picked[np.argsort(lc.mjd[use], kind="stable")]


def too_few_bins(n_bins: int, config: StatsConfig) -> str:
    """The ``reason`` of a lightcurve with fewer than ``config.min_bins`` exposed bins."""
    return f"fewer than {config.min_bins} exposed bins ({n_bins})"


def period_search_input(lc: Lightcurve) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the period search of :func:`compute_stats` is given: the exposed bins
    (:func:`exposed_bins`) as barycentric seconds, net rates and exposures.

    The times are the ``bjd_tdb`` column; for a file written before it existed, computed
    here (:func:`~hstlc.extraction.barycentre.barycentric_times`) when the metadata give
    RA_TARG and DEC_TARG; else ``mjd`` (UTC).  Seconds since the first bin.

    Returns
    -------
    seconds, net, exposure : ndarray
        Times (s), rates (count/s) and exposures (s), sorted by time.
    """
    index = exposed_bins(lc)
    mjd, net, exposure = lc.mjd[index], lc.net[index], lc.bins[index]
    target = target_of(lc.meta)
    if index.size == 0:
        seconds = np.zeros(0)
    elif lc.bjd_tdb is not None:
        bjd = lc.bjd_tdb[index]
        seconds = (bjd - bjd[0]) * _DAY
    elif target is not None:  # a file written before the bjd_tdb column existed
        seconds = barycentric_times(mjd, *target).seconds
    else:
        seconds = (mjd - mjd[0]) * _DAY
    return seconds, net, exposure


def compute_stats(lc: Lightcurve, config: StatsConfig | None = None, *, composite: bool = False,
                  members_ok: bool = True) -> LightcurveStats:
    """Variability statistics of one individual or composite lightcurve.

    Parameters
    ----------
    lc : Lightcurve
        As :func:`hstlc.io.lightcurve_file.read_lightcurve` returns it.
    config : StatsConfig, optional
        Thresholds and search settings (defaults: :class:`StatsConfig`).
    composite : bool
        The lightcurve is a composite (HLSP); only composites can be delivered.
    members_ok : bool
        Every member of the composite was ingested without error.

    Returns
    -------
    LightcurveStats
        With ``reason`` set, and no statistics, when fewer than ``config.min_bins`` bins
        are exposed.
    """
    config = config or StatsConfig()
    index = exposed_bins(lc)
    n_bins = int(index.size)
    if n_bins < config.min_bins:
        return unusable_stats(too_few_bins(n_bins, config), n_bins)
    mjd, counts = lc.mjd[index], lc.counts[index]
    exposure, error = lc.bins[index], lc.error[index]
    basic = legacy_stats(counts, mjd)
    seconds, net, _ = period_search_input(lc)
    search = search_periods(seconds, net, exposure, samples_per_peak=config.samples_per_peak,
                            visit_gap=config.visit_gap_s, max_visit_span=config.max_visit_span_s)
    legacy = legacy_periodogram(mjd, net, samples_per_peak=config.samples_per_peak,
                                visit_gap=config.visit_gap_s,
                                max_visit_span=config.max_visit_span_s)
    flares = find_flares(mjd * _DAY, lc.gross[index], counts, exposure,
                         lc.dataset[index], p0=config.flare_p0, sigma=config.flare_sigma,
                         min_ratio=config.flare_min_ratio, segment_gap=config.segment_gap_s,
                         max_cells=config.max_segment_bins)
    scatter = measure_scatter(net, error / exposure)
    return LightcurveStats(
        **asdict(basic), periodogram=legacy.flag,
        deliver=composite and deliver(basic.total, members_ok, config.deliver_min_counts),
        n_bins=n_bins, n_visits=search.n_visits, **_period_columns(search),
        periodic=bool(search.fap < config.fap_threshold), **_flare_columns(flares, mjd),
        excess_variance=scatter.excess_variance,
        excess_variance_error=scatter.excess_variance_error, chi2_dof=scatter.chi2_dof)


def _period_columns(search: PeriodSearch) -> dict[str, Any]:
    """period_/power_/fap_ of each range, and fap."""
    columns: dict[str, Any] = {"fap": search.fap}
    for peak in search.peaks:
        columns.update({f"period_{peak.name}": peak.period, f"power_{peak.name}": peak.power,
                        f"fap_{peak.name}": peak.fap})
    return columns


def _flare_columns(flares: FlareSearch, mjd: np.ndarray) -> dict[str, Any]:
    """n_flares and the strongest flare's peak ratio and start (MJD)."""
    strongest = flares.strongest
    return {"n_flares": len(flares.flares),
            "flare_peak_ratio": strongest.peak_ratio if strongest else _NAN,
            "flare_start_mjd": float(mjd[strongest.start]) if strongest else _NAN}


__all__ = ["LightcurveStats", "StatsConfig", "compute_stats", "exposed_bins",
           "period_search_input", "too_few_bins", "unusable_stats"]
