"""Period search: Lomb-Scargle power per period range, with Baluev false-alarm probabilities.

What is searched
----------------
The rates of the exposed bins (``net``, count/s, bins with exposure > 0) against their
times (s; barycentric, :mod:`hstlc.extraction.barycentre`), each bin weighted by its
exposure (``dy = exposure**-0.5``: the Poisson variance of a rate measured over
``exposure`` seconds of a constant source; the scale cancels in the standard
normalisation, and an empty bin is no infinitely precise one, as ``error = 0`` would make
it).  The three 2016 ranges (:data:`PERIOD_RANGES`): short 5 s-10 min, medium 10 min-1 h,
long 1-10 h.  Periods shorter than two bin steps (beyond the Nyquist frequency of the
binning) or longer than the longest visit are not searched.

The grid rule
-------------
1. The bins are cut into *visits*: a new visit starts after a gap longer than
   ``visit_gap`` (default 12 h; HST's Earth occultations last ~45 min, a program's
   visits are usually days apart), and a visit longer than ``max_visit_span`` (default
   24 h) is cut into pieces of at most that length.
2. One frequency grid serves all visits, regular in frequency with spacing
   ``df = 1 / (samples_per_peak * T)``, ``T`` the span of the longest visit.  It resolves
   every visit's peak (width ``1 / T_visit >= 1 / T``), and its size,
   ``(f_max - f_min) * samples_per_peak * T``, does not depend on how far apart the visits
   lie: at most 0.2 Hz * 5 * 86400 s = 86400 frequencies, whatever the baseline.
3. Each visit gets its own Lomb-Scargle (astropy, its own mean, the O(N log N) method of
   Press & Rybicki 1989, :data:`FASPER`) on that grid, and the visits are summed
   incoherently:
   ``Z(f) = sum_v z_v(f)``, ``z_v = -(N_v - 3) / 2 * ln(1 - P_v(f))`` with ``P_v`` the
   standard-normalised power of visit ``v`` (``N_v`` bins).  For white noise ``z_v`` is
   exactly exponential at one frequency (the tail of ``P_v`` is ``(1 - P)^((N - 3)/2)``), so
   ``Z`` is Gamma(K, 1) distributed for K visits.
4. Per range, the three highest local maxima of ``Z`` are refined on 21 frequencies
   spanning two grid steps around each (exact method); the best is the range's period.
   Its *power* is the visits' standard powers averaged with weights ``N_v`` (for one
   visit: the standard power).

Why this rule: a coherent periodogram of visits two years apart has peaks 1/(2 yr) wide.
Resolving them needs (baseline / T) times more frequencies -- 6e7 per range for eight-hour
visits over two years -- and a coarser grid samples the fringes that the gaps between
visits make at arbitrary phases and can lose the peak.  The incoherent sum keeps the
evidence of every visit (the signal-to-noise ratio adds up), is indifferent to phase
drifts between visits (spotted stars, quasi-periodic oscillations, a period known too
poorly to be phase-connected over years), and costs K periodograms of one visit's size:
time O(N log N + K N_f), memory O(N + N_f).  It gives up the coherent precision
1/baseline, which a catalogue ranking does not need: the incoherent peak of eight-hour
visits places a 30-min period to a few tenths of a percent.

False-alarm probabilities
-------------------------
One visit: astropy's ``LombScargle.false_alarm_probability(method="baluev")`` with the
range's highest frequency: Baluev's (2008, eq. 6) alias-free upper bound,
``1 - (1 - FAP_single) exp(-tau)`` with ``tau`` the expected number of upcrossings of the
peak's level.  K visits: the same bound for the sum (:func:`multivisit_fap`): the
single-frequency tail of Gamma(K, 1) and the Rice upcrossing count of a chi-square process
with 2K degrees of freedom, ``tau = f_max T_eff Z^(K - 1/2) e^-Z / Gamma(K)``, with
``T_eff = sqrt(4 pi mean_v D_v)`` and ``D_v`` the weighted variance of visit ``v``'s times.
For K = 1 this is Baluev's formula (psd normalisation, tested against astropy's); with
visits of unequal length the mean ``D_v`` makes it an upper bound (Jensen's inequality).
The lightcurve's :attr:`PeriodSearch.fap` is the smallest range FAP times the number of
ranges searched (Bonferroni), capped at 1.  The inverse, the level a peak must reach for a
given FAP (the lines of a plot): :meth:`Periodogram.power_level` (astropy's Baluev level
for one visit) and :func:`multivisit_false_alarm_level` (the ``Z`` of K visits).

The curve and the peaks
-----------------------
:func:`periodogram` computes steps 1-3 (the :class:`Periodogram`: grid, ``Z``, mean
power); :func:`search_periodogram` refines its peaks (step 4) and gives their
false-alarm probabilities; :func:`search_periods` is the two in a row, so a plot of the
curve shows what the statistics were computed from.

References
----------
Baluev, R. V. 2008, MNRAS 385, 1279: "Assessing the statistical significance of
periodogram peaks".
Press, W. H. & Rybicki, G. B. 1989, ApJ 338, 277.
Scargle, J. D. 1982, ApJ 263, 835.
VanderPlas, J. T. 2018, ApJS 236, 16: "Understanding the Lomb-Scargle periodogram".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from astropy.timeseries import LombScargle
from scipy.optimize import brentq
from scipy.special import gammaincc, gammaln

#: The 2016 period ranges: (name, shortest period, longest period), seconds.
PERIOD_RANGES: tuple[tuple[str, float, float], ...] = (
    ("short", 5.0, 600.0), ("medium", 600.0, 3600.0), ("long", 3600.0, 36000.0))
#: Fewest bins a visit needs to take part (Baluev's statistics use N - 3 degrees of freedom).
MIN_VISIT_BINS = 8
#: astropy's fast Lomb-Scargle by Press & Rybicki's algorithm, grid oversampled 10 times,
#: 8-point extirpolation: ~1e-7 from the exact sums in O(N + N_f) memory (astropy's
#: default low-rank NUFFT needs ~1.5 kB per bin; fasper's own defaults err by up to 5e-3).
FASPER = {"algorithm": "fasper", "trig_sum_kwds": {"oversampling": 10, "Mfft": 8}}
_CANDIDATES = 3
_REFINE_POINTS = 21


@dataclass(frozen=True)
class RangePeak:
    """The best peak of one period range.

    Attributes
    ----------
    name : str
        ``short``, ``medium`` or ``long``.
    period : float
        Period of the highest peak (s); NaN when the range was not searched.
    power : float
        Standard-normalised Lomb-Scargle power there (averaged over visits, weights N_v).
    fap : float
        Its false-alarm probability (Baluev 2008); NaN when the range was not searched.
    """

    name: str
    period: float
    power: float
    fap: float


@dataclass(frozen=True)
class PeriodSearch:
    """The period search of one lightcurve.

    Attributes
    ----------
    peaks : tuple of RangePeak
        One per range of :data:`PERIOD_RANGES`, in order.
    fap : float
        The lightcurve's false-alarm probability: min of the ranges' FAPs times the number
        of ranges searched, capped at 1 (NaN when no range could be searched).
    n_visits : int
        Visits that took part.
    n_frequencies : int
        Size of the shared frequency grid.
    span : float
        Span of the longest visit (s), which sets the grid step (NaN without visits).
    """

    peaks: tuple[RangePeak, ...]
    fap: float
    n_visits: int
    n_frequencies: int
    span: float

    def peak(self, name: str) -> RangePeak:
        """The peak of range ``name``."""
        for found in self.peaks:
            if found.name == name:
                return found
        raise KeyError(f"no period range named {name!r}")


def split_visits(times: np.ndarray, visit_gap: float, max_visit_span: float) -> list[slice]:
    """Cut sorted ``times`` (s) into visits: gaps above ``visit_gap`` end one, and none
    spans more than ``max_visit_span``.

    Examples
    --------
    >>> split_visits(np.array([0.0, 10.0, 20.0, 1000.0, 1010.0]), 100.0, 1e9)
    [slice(0, 3, None), slice(3, 5, None)]
    >>> split_visits(np.arange(0.0, 50.0, 10.0), 100.0, 25.0)
    [slice(0, 3, None), slice(3, 5, None)]
    """
    times = np.asarray(times, float)
    if times.size == 0:
        return []
    starts = np.flatnonzero(np.diff(times) > visit_gap) + 1
    bounds = np.concatenate([[0], starts, [times.size]])
    pieces = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        cuts = lo + np.flatnonzero(np.diff(np.floor((times[lo:hi] - times[lo]) / max_visit_span))) + 1
        edges = np.concatenate([[lo], cuts, [hi]])
        pieces += [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]
    return pieces


def multivisit_fap(z: float, n_visits: int, fmax: float, t_eff: float) -> float:
    """Baluev-type false-alarm probability of the incoherent sum of K periodograms.

    Parameters
    ----------
    z : float
        The summed statistic ``Z = sum_v z_v`` at the peak (each ``z_v`` exponential under
        the null hypothesis).
    n_visits : int
        K, the number of visits summed.
    fmax : float
        Highest frequency searched (Hz).
    t_eff : float
        Effective time span ``sqrt(4 pi mean_v D_v)`` (s).

    Returns
    -------
    float
        ``1 - (1 - Q(K, Z)) exp(-tau)``, ``tau = fmax t_eff Z^(K-1/2) e^-Z / Gamma(K)``.

    Examples
    --------
    For one visit this is Baluev's bound, ``1 - (1 - e^-z) exp(-W sqrt(z) e^-z)``:

    >>> z, w = 20.0, 1000.0
    >>> expected = 1 - (1 - np.exp(-z)) * np.exp(-w * np.sqrt(z) * np.exp(-z))
    >>> bool(np.isclose(multivisit_fap(z, 1, w, 1.0), expected, rtol=1e-10))
    True
    """
    if not z > 0:
        return 1.0
    single = float(gammaincc(n_visits, z))
    log_tau = np.log(fmax * t_eff) + (n_visits - 0.5) * np.log(z) - z - gammaln(n_visits)
    tau = float(np.exp(min(log_tau, 700.0)))
    return float(min(1.0, -np.expm1(-tau) + single * np.exp(-tau)))


@dataclass(frozen=True)
class Visit:
    """One visit of the period search.

    Attributes
    ----------
    model : LombScargle
        The visit's Lomb-Scargle model (its own mean; weights ``exposure**-0.5``).
    size : int
        Its bins, ``N_v``.
    spread : float
        Weighted variance of its times, ``D_v`` (s^2).
    """

    model: LombScargle
    size: int
    spread: float


@dataclass(frozen=True)
class Periodogram:
    """The periodogram of one lightcurve on the shared grid (see the module docstring).

    Attributes
    ----------
    frequency : ndarray
        The grid (Hz), regular, covering every searched range; empty when no range could
        be searched.
    z : ndarray
        The summed statistic ``Z = sum_v z_v`` at each grid frequency.
    power : ndarray
        The visits' standard Lomb-Scargle powers averaged with weights ``N_v`` (the
        ``power_*`` of :class:`RangePeak`; for one visit its standard power).
    visits : tuple of Visit
        The visits that took part.
    ranges : tuple of (name, min_period, max_period)
        The ranges asked for (s).
    limits : tuple of (name, min_frequency, max_frequency)
        The ranges searched (Hz), in the order of ``ranges``: a range shorter than two bin
        steps or longer than the longest visit is left out.
    t_eff : float
        Effective time span ``sqrt(4 pi mean_v D_v)`` (s; NaN without visits).
    span : float
        Span of the longest visit (s), which sets the grid step (NaN without visits).
    step : float
        Median bin step of the visits (s; NaN without visits).
    """

    frequency: np.ndarray
    z: np.ndarray
    power: np.ndarray
    visits: tuple[Visit, ...]
    ranges: tuple[tuple[str, float, float], ...]
    limits: tuple[tuple[str, float, float], ...]
    t_eff: float
    span: float
    step: float

    @property
    def visit_sizes(self) -> tuple[int, ...]:
        """``N_v`` of each visit."""
        return tuple(v.size for v in self.visits)

    def z_level(self, fap: float, fmax: float) -> float:
        """The ``Z`` whose false-alarm probability, searching up to ``fmax`` (Hz), is ``fap``
        (:func:`multivisit_false_alarm_level`; Baluev's for one visit)."""
        if not self.visits:
            return float("nan")
        return multivisit_false_alarm_level(fap, len(self.visits), fmax, self.t_eff)

    def power_level(self, fap: float, fmax: float) -> float:
        """The mean power whose false-alarm probability, searching up to ``fmax`` (Hz), is
        ``fap``.

        One visit: astropy's ``LombScargle.false_alarm_level(method="baluev")``, exactly
        the inverse of :attr:`RangePeak.fap`.  K visits: the ``Z`` level
        (:meth:`z_level`) as the power every visit would have if all had the same one,
        ``1 - exp(-2 Z / sum_v (N_v - 3))``; a peak whose visits' powers differ reaches
        that ``Z`` at a somewhat different mean power (an approximation for display).
        """
        if not self.visits:
            return float("nan")
        if len(self.visits) == 1:
            return float(self.visits[0].model.false_alarm_level(
                fap, method="baluev", maximum_frequency=fmax))
        dof = sum(v.size - 3 for v in self.visits)
        return float(-np.expm1(-2.0 * self.z_level(fap, fmax) / dof))


def multivisit_false_alarm_level(fap: float, n_visits: int, fmax: float, t_eff: float) -> float:
    """The summed statistic ``Z`` at which :func:`multivisit_fap` equals ``fap``.

    Solved with Brent's method on ``Z >= K``, where the false-alarm probability decreases
    monotonically (``Q(K, Z)`` and the upcrossing count both fall there); a level above
    the probability at ``Z = K`` (about one half) is sought below ``K``.

    Examples
    --------
    >>> z = multivisit_false_alarm_level(0.01, 4, 0.1, 3e4)
    >>> bool(np.isclose(multivisit_fap(z, 4, 0.1, 3e4), 0.01, rtol=1e-9))
    True
    """
    if not 0.0 < fap < 1.0:
        raise ValueError(f"a false-alarm probability between 0 and 1 is needed, not {fap}")

    def excess(z: float) -> float:
        return multivisit_fap(z, n_visits, fmax, t_eff) - fap

    low = float(n_visits)
    if excess(low) <= 0:
        return float(brentq(excess, 1e-9, low, xtol=1e-12))
    high = 2.0 * low
    while excess(high) > 0:
        low, high = high, 2.0 * high
    return float(brentq(excess, low, high, xtol=1e-12))


def _visits(times: np.ndarray, rate: np.ndarray, exposure: np.ndarray, visit_gap: float,
            max_visit_span: float) -> tuple[list[Visit], float, float]:
    """The usable visits, the longest span (s) and the bin step (s)."""
    visits, spans, steps = [], [], []
    for piece in split_visits(times, visit_gap, max_visit_span):
        t, y, w = times[piece], rate[piece], exposure[piece]
        gaps = np.diff(t)
        gaps = gaps[gaps > 0]  # members observed at the same times stack bins on one time
        if t.size < MIN_VISIT_BINS or np.ptp(y) == 0 or gaps.size == 0:
            continue
        step = float(np.median(gaps))
        weights = w / w.sum()
        spread = float(np.sum(weights * (t - np.sum(weights * t)) ** 2))
        visits.append(Visit(LombScargle(t, y, w ** -0.5), t.size, spread))
        spans.append(float(t[-1] - t[0]) + step)
        steps.append(step)
    if not visits:
        return [], float("nan"), float("nan")
    return visits, max(spans), float(np.median(steps))


def _statistic(visits: Sequence[Visit], frequency: np.ndarray, method: str
               ) -> tuple[np.ndarray, np.ndarray]:
    """Summed ``Z`` and the N-weighted mean power of the visits at ``frequency``."""
    total = np.zeros(frequency.size)
    power = np.zeros(frequency.size)
    for visit in visits:
        kwargs = ({"assume_regular_frequency": True, "method_kwds": FASPER}
                  if method == "fast" else {})
        p = np.clip(visit.model.power(frequency, method=method, **kwargs), 0.0, 1.0 - 1e-15)
        total -= 0.5 * (visit.size - 3) * np.log1p(-p)
        power += visit.size * p
    return total, power / sum(v.size for v in visits)


def _windows(grid: np.ndarray, z: np.ndarray, fmin: float, fmax: float
             ) -> list[tuple[float, float]]:
    """Frequency windows to refine: two grid steps around each of the highest local maxima
    of ``z`` between ``fmin`` and ``fmax`` (the whole range when no grid point falls in it)."""
    index = np.flatnonzero((grid >= fmin) & (grid <= fmax))
    if index.size == 0:
        return [(fmin, fmax)]
    padded = np.concatenate([[-np.inf], z, [-np.inf]])
    peaks = index[(padded[index + 1] >= padded[index]) & (padded[index + 1] >= padded[index + 2])]
    if peaks.size == 0:
        peaks = index[[int(np.argmax(z[index]))]]
    df = grid[1] - grid[0] if grid.size > 1 else fmax - fmin
    return [(max(grid[k] - df, fmin), min(grid[k] + df, fmax))
            for k in peaks[np.argsort(z[peaks])[::-1][:_CANDIDATES]]]


def _best_in_range(visits: Sequence[Visit], grid: np.ndarray, z: np.ndarray, fmin: float,
                   fmax: float) -> tuple[float, float, float]:
    """Refined (frequency, Z, power) of the best peak between ``fmin`` and ``fmax``."""
    best = (float("nan"), -np.inf, float("nan"))
    for lo, hi in _windows(grid, z, fmin, fmax):
        fine = np.linspace(lo, hi, _REFINE_POINTS)
        fine_z, fine_power = _statistic(visits, fine, "cython")
        i = int(np.argmax(fine_z))
        if fine_z[i] > best[1]:
            best = (float(fine[i]), float(fine_z[i]), float(fine_power[i]))
    return best


def periodogram(times: np.ndarray, rate: np.ndarray, exposure: np.ndarray, *,
                ranges: Sequence[tuple[str, float, float]] = PERIOD_RANGES,
                samples_per_peak: float = 5.0, visit_gap: float = 43200.0,
                max_visit_span: float = 86400.0) -> Periodogram:
    """The statistic ``Z`` and the mean power on the shared grid (steps 1-3 of the rule).

    Parameters are those of :func:`search_periods`, which refines this curve's peaks
    (:func:`search_periodogram`).

    Returns
    -------
    Periodogram
    """
    times, rate, exposure = (np.asarray(a, float).reshape(-1) for a in (times, rate, exposure))
    keep = (exposure > 0) & np.isfinite(times) & np.isfinite(rate)
    order = np.argsort(times[keep], kind="stable")
    times, rate, exposure = times[keep][order], rate[keep][order], exposure[keep][order]
    visits, span, step = _visits(times, rate, exposure, visit_gap, max_visit_span)
    limits = [(name, 1.0 / min(pmax, span), min(1.0 / pmin, 0.5 / step))
              for name, pmin, pmax in ranges] if visits else []
    searched = tuple((name, lo, hi) for name, lo, hi in limits if hi > lo)
    t_eff = (float(np.sqrt(4 * np.pi * np.mean([v.spread for v in visits])))
             if visits else float("nan"))
    empty = np.zeros(0)
    if not searched:
        return Periodogram(empty, empty, empty, tuple(visits), tuple(ranges), (), t_eff, span,
                           step)
    df = 1.0 / (samples_per_peak * span)
    f0 = min(lo for _, lo, _ in searched)
    grid = f0 + df * np.arange(int(np.floor((max(hi for _, _, hi in searched) - f0) / df)) + 1)
    z, power = _statistic(visits, grid, "fast" if grid.size > 1 else "cython")
    return Periodogram(grid, z, power, tuple(visits), tuple(ranges), searched, t_eff, span, step)


def search_periodogram(curve: Periodogram) -> PeriodSearch:
    """The best peak of each range of ``curve``, refined, with its false-alarm probability
    (step 4 of the rule and the false-alarm probabilities of the module docstring)."""
    visits = curve.visits
    found = {}
    for name, lo, hi in curve.limits:
        frequency, z_best, power = _best_in_range(visits, curve.frequency, curve.z, lo, hi)
        if len(visits) == 1:
            fap = float(visits[0].model.false_alarm_probability(
                power, method="baluev", maximum_frequency=hi))
        else:
            fap = multivisit_fap(z_best, len(visits), hi, curve.t_eff)
        found[name] = RangePeak(name, 1.0 / frequency, power, fap)
    peaks = tuple(found.get(name, RangePeak(name, np.nan, np.nan, np.nan))
                  for name, _, _ in curve.ranges)
    overall = min(1.0, len(found) * min(p.fap for p in found.values())) if found else float("nan")
    return PeriodSearch(peaks, overall, len(visits), int(curve.frequency.size), curve.span)


def search_periods(times: np.ndarray, rate: np.ndarray, exposure: np.ndarray, *,
                   ranges: Sequence[tuple[str, float, float]] = PERIOD_RANGES,
                   samples_per_peak: float = 5.0, visit_gap: float = 43200.0,
                   max_visit_span: float = 86400.0) -> PeriodSearch:
    """Best period, power and false-alarm probability per range (see the module docstring).

    Parameters
    ----------
    times : array_like
        Bin times (s, any origin; barycentric for composites).
    rate : array_like
        Count rate of each bin (count/s), e.g. the ``net`` column.
    exposure : array_like
        Exposure of each bin (s); bins without exposure are left out.
    ranges : sequence of (name, min_period, max_period)
        Period ranges (s).
    samples_per_peak : float
        Grid frequencies per peak width of the longest visit.
    visit_gap, max_visit_span : float
        The visit rule (s).

    Returns
    -------
    PeriodSearch
        ``search_periodogram(periodogram(...))``: the curve :func:`periodogram` gives,
        its peaks refined.
    """
    return search_periodogram(periodogram(times, rate, exposure, ranges=ranges,
                                          samples_per_peak=samples_per_peak, visit_gap=visit_gap,
                                          max_visit_span=max_visit_span))


__all__ = ["FASPER", "MIN_VISIT_BINS", "PERIOD_RANGES", "PeriodSearch", "Periodogram", "RangePeak",
           "Visit", "multivisit_false_alarm_level", "multivisit_fap", "periodogram",
           "search_periodogram", "search_periods", "split_visits"]
