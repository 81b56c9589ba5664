"""The 2016 statistics (the ``stats`` table of the 2016 hstlc), same names and meanings.

From ``/work/shared/LEGACY.md``, on the ``counts`` column of the exposed bins:

* ``total`` = sum; ``mean``; ``mu = sqrt(mean)`` (the Poisson standard deviation a constant
  source of that mean would have); ``stdev`` = population standard deviation (ddof 0);
  ``poisson_factor = stdev / mu`` (~1 for a constant source, larger when it varies);
* ``pearson_r``, ``pearson_p``: Pearson's correlation of counts with ``mjd`` and its
  two-sided p-value (a trend);
* ``periodogram``: Lomb-Scargle (standard normalisation) of ``net`` against ``mjd``, one
  range at a time (5 s-10 min, 10 min-1 h, 1-10 h); set when, in any range, a local maximum
  of the power exceeds the grid's mean power plus 3 standard deviations *and* is at least
  0.30;
* ``deliver``: whether a composite is delivered as an HLSP (:func:`deliver`).

``mu`` and ``poisson_factor`` are NaN when the mean is not positive, the correlation when
counts or times are constant.

The periodogram rule is kept as 2016 stated it -- its threshold depends on the grid's own
power (a strong broad peak raises mean + 3 sigma above itself), it has no false-alarm
probability, and 0.30 of the variance is a high bar for a faint source, so
:mod:`hstlc.variability.periodogram` replaces it for ranking -- but not its grid, which
LEGACY.md lists among the defects not to reproduce: one trial period per bin, linear in
period (O(N^2) time and memory, out of memory above ~2e4 bins; too coarse at short periods
to sample a peak of a long visit).  Here each range has a grid regular in frequency, from
``f_min = 1 / max_period`` to ``f_max = 1 / min_period`` or the Nyquist frequency of the
binning (``0.5 / median bin spacing``; beyond it regular bins only mirror lower
frequencies -- 1800 s seen in 5-s bins reappears at 5.01 s; 2016 binned at 2 s, inside
its 5-s limit), in steps ``df = 1 / (samples_per_peak * span)`` with ``span`` the longest
visit (the visit rule of :mod:`~hstlc.variability.periodogram`): frequencies
``f_min + k * df``, ``k = 0 .. floor((f_max - f_min) / df)``.  The power, of all bins
together as in 2016, comes from astropy's fast method (Press & Rybicki 1989,
:data:`~hstlc.variability.periodogram.FASPER`): O(N log N + N_f) time and O(N + N_f)
memory (~30 MB for 150000 bins), ``N_f`` bounded by the visit length, not the baseline.
For visits days apart the grid does not resolve the fine fringes of that coherent power:
the rule stays a screening flag.
``bench/stats.py`` times the 2016 grid as the baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.timeseries import LombScargle
from scipy import stats

from hstlc.variability.periodogram import FASPER, PERIOD_RANGES, split_visits

#: The 2016 periodogram rule: power at least this, and above mean + LEGACY_SIGMA * std.
LEGACY_MIN_POWER = 0.30
LEGACY_SIGMA = 3.0
_DAY = 86400.0


@dataclass(frozen=True)
class LegacyStats:
    """The 2016 statistics of the ``counts`` column (see the module docstring).

    Attributes
    ----------
    total, mean, mu, stdev, poisson_factor : float
        Sum, mean, sqrt(mean), population standard deviation, stdev / mu (counts).
    pearson_r, pearson_p : float
        Pearson correlation of counts with MJD and its two-sided p-value.
    """

    total: float
    mean: float
    mu: float
    stdev: float
    poisson_factor: float
    pearson_r: float
    pearson_p: float


@dataclass(frozen=True)
class LegacyPeriodogram:
    """The 2016 periodogram rule.

    Attributes
    ----------
    flag : bool
        The ``periodogram`` column: any range flagged.
    flags : tuple of bool
        Per range of :data:`~hstlc.variability.periodogram.PERIOD_RANGES`.
    peak_powers : tuple of float
        Highest power per range (NaN when the range could not be computed).
    """

    flag: bool
    flags: tuple[bool, ...]
    peak_powers: tuple[float, ...]


def legacy_stats(counts: np.ndarray, mjd: np.ndarray) -> LegacyStats:
    """The 2016 statistics of ``counts`` (per bin) observed at ``mjd`` (days).

    Examples
    --------
    >>> s = legacy_stats(np.array([4.0, 4.0, 16.0, 16.0]), np.arange(4.0))
    >>> s.total, s.mean, s.mu, s.stdev, s.poisson_factor
    (40.0, 10.0, 3.1622776601683795, 6.0, 1.8973665961010275)
    """
    counts = np.asarray(counts, float)
    mjd = np.asarray(mjd, float)
    mean = float(np.mean(counts)) if counts.size else float("nan")
    stdev = float(np.std(counts)) if counts.size else float("nan")
    mu = float(np.sqrt(mean)) if mean > 0 else float("nan")
    factor = stdev / mu if mu > 0 else float("nan")
    if counts.size >= 2 and np.ptp(counts) > 0 and np.ptp(mjd) > 0:
        result = stats.pearsonr(counts, mjd - mjd[0])
        r, p = float(result.statistic), float(result.pvalue)
    else:
        r = p = float("nan")
    return LegacyStats(float(np.sum(counts)), mean, mu, stdev, factor, r, p)


def legacy_periodogram(mjd: np.ndarray, net: np.ndarray, *, samples_per_peak: float = 5.0,
                       visit_gap: float = 43200.0, max_visit_span: float = 86400.0
                       ) -> LegacyPeriodogram:
    """The 2016 periodogram rule on ``net`` (count/s) against ``mjd`` (days).

    Parameters
    ----------
    mjd, net : array_like
        Bin times (days, sorted) and rates.
    samples_per_peak : float
        Grid frequencies per peak width ``1 / span``, ``span`` the longest visit's.
    visit_gap, max_visit_span : float
        The visit rule of :func:`~hstlc.variability.periodogram.split_visits` (s).

    Returns
    -------
    LegacyPeriodogram
    """
    mjd = np.asarray(mjd, float)
    net = np.asarray(net, float)
    seconds = (mjd - mjd[0]) * _DAY if mjd.size else mjd
    span = max((float(np.ptp(seconds[piece]))
                for piece in split_visits(seconds, visit_gap, max_visit_span)), default=0.0)
    gaps = np.diff(np.sort(seconds))
    gaps = gaps[gaps > 0]  # members observed at the same times stack bins on one time
    if mjd.size < 3 or np.ptp(net) == 0 or span <= 0 or gaps.size == 0:
        nan = tuple(float("nan") for _ in PERIOD_RANGES)
        return LegacyPeriodogram(False, tuple(False for _ in PERIOD_RANGES), nan)
    model = LombScargle(seconds, net)
    step = 1.0 / (samples_per_peak * span)
    nyquist = 0.5 / float(np.median(gaps))
    flags, peaks = [], []
    for _, pmin, pmax in PERIOD_RANGES:
        low, high = 1.0 / pmax, min(1.0 / pmin, nyquist)
        if high <= low:
            flags.append(False)
            peaks.append(float("nan"))
            continue
        frequency = low + step * np.arange(int(np.floor((high - low) / step)) + 1)
        power = model.power(frequency, method="fast", assume_regular_frequency=True,
                            method_kwds=FASPER)
        inner = power[1:-1]
        local = inner[(inner > power[:-2]) & (inner > power[2:])]
        threshold = power.mean() + LEGACY_SIGMA * power.std()
        flags.append(bool(np.any((local > threshold) & (local >= LEGACY_MIN_POWER))))
        peaks.append(float(power.max()))
    return LegacyPeriodogram(any(flags), tuple(flags), tuple(peaks))


def deliver(total: float, members_ok: bool, min_counts: float) -> bool:
    """The ``deliver`` rule: a composite is delivered as an HLSP when it has at least
    ``min_counts`` counts and every member was ingested without error.

    Examples
    --------
    >>> deliver(5000.0, True, 1000.0), deliver(5000.0, False, 1000.0), deliver(10.0, True, 1000.0)
    (True, False, False)
    """
    return bool(members_ok and np.isfinite(total) and total >= min_counts)


__all__ = ["LEGACY_MIN_POWER", "LEGACY_SIGMA", "LegacyPeriodogram", "LegacyStats", "deliver",
           "legacy_periodogram", "legacy_stats"]
