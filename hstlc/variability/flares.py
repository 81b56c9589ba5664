"""Flares: Bayesian blocks on the binned counts, one exposure at a time.

Method
------
1. *Segments.*  The exposed bins are cut at every change of ``dataset`` (the members of a
   composite) and at gaps longer than ``segment_gap`` (default 600 s): one exposure, or
   one orbit, each.  A segment of more than ``max_cells`` bins is cut into pieces of at
   most that many: Bayesian blocks cost O(n^2) in a segment's n bins, so a lightcurve of N
   bins costs at most O(N * max_cells) time and O(max_cells) memory.
2. *Blocks.*  Each segment's optimal partition into blocks of constant rate (Scargle et
   al. 2013; the dynamic program of Jackson et al. 2005) for binned Poisson counts: the
   fitness of astropy's ``Events``, ``N_k ln(N_k / T_k)`` (Scargle's eq. 19), with ``N_k``
   the block's ``gross`` counts (source counts before background subtraction, hence
   Poisson) and ``T_k`` its exposure (the ``bins`` column), and astropy's prior on the
   number of change points, ``ncp_prior = 4 - ln(73.53 p0 n^-0.478)`` (eq. 21).
3. *Quiescence.*  A segment's quiescent rate is the exposure-weighted median of its
   blocks' rates (a flare occupies a minority of the segment).
4. *Flares.*  A flare is a run of consecutive blocks above the quiescent gross rate whose
   highest block exceeds it by at least ``sigma`` Poisson standard deviations
   (``(N_k - q T_k) / sqrt(q T_k)``, ``q T_k`` at least 1 count) and reaches at least ``min_ratio`` times the
   quiescent net rate (when that is positive: the crests of a steady modulation of a few
   per cent are significant at high count rates, but no flares).  The run is trimmed to
   the blocks that rise at least :data:`EDGE_FRACTION` of the way from quiescence to the
   peak (a small step before a flare is not its start), and must start after the
   segment's first block (its rise is seen; a segment bright throughout is no flare).
   Its start is the first bin of its first block; its peak ratio is the highest block's
   net rate over the quiescent net rate (background subtracted; NaN when the quiescent
   net rate is not positive).  The strongest flare is the one with the largest excess net
   rate.

Why not ``astropy.stats.bayesian_blocks`` itself: it takes cell edges halfway between the
data times, so the first and last bins of a segment get half their width -- twice their
rate -- and for a bright source (100 counts a bin) that opens a spurious block at every
exposure edge; it also wants integer counts, and ``gross`` is EPSILON-weighted.  The
dynamic program below has the same fitness and astropy's prior, with the bins' exposures
as the widths; on equal bins it finds astropy's change points (tested).

The defaults (``p0`` = :data:`DEFAULT_P0`, ``sigma`` = :data:`DEFAULT_SIGMA`) were set by
simulation, as astropy's documentation advises for this fitness.  Over 200 Poisson
lightcurves of four 50-min orbits, for each of six count rates and bin sizes (0.2 to 300
counts a bin, 2-s to 30-s bins), no flare was reported at all (the tests require none in
at least 95 % of 200).  A flare to 5x the quiescent rate with a 60-s linear rise and an
exponential decay is found in all of 100 trials at 2 to 50 count/s; its start is the
first change point, which a linear rise delays: within two bins of the true start in
10-s and 30-s bins, 1-3 bins late (up to 6 at 2 s and 50 count/s) in finer bins, where
the first seconds of the rise are indistinguishable from quiescence.

References
----------
Jackson, B. et al. 2005, IEEE Signal Processing Letters 12, 105: "An algorithm for optimal
partitioning of data on an interval".
Scargle, J. D., Norris, J. P., Jackson, B. & Chiang, J. 2013, ApJ 764, 167: "Studies in
astronomical time series analysis. VI. Bayesian block representations".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.stats import Events
from scipy.special import xlogy

#: False-alarm probability per change point that sets the prior (Scargle et al. 2013, eq. 21).
DEFAULT_P0 = 1e-3
#: Poisson standard deviations a flare's peak block must rise above the quiescent rate.
DEFAULT_SIGMA = 5.0
#: Least ratio of a flare's peak net rate to the quiescent one (when that is positive).
DEFAULT_MIN_RATIO = 1.5
#: A flare's first and last blocks rise at least this fraction of the way to its peak.
EDGE_FRACTION = 0.1


@dataclass(frozen=True)
class Flare:
    """One flare.

    Attributes
    ----------
    start : int
        Index (in the arrays given) of its first bin.
    stop : int
        Index after its last bin.
    peak_ratio : float
        Peak block net rate / quiescent net rate (NaN when that is not positive).
    excess_rate : float
        Peak block net rate minus the quiescent net rate (count/s).
    """

    start: int
    stop: int
    peak_ratio: float
    excess_rate: float


@dataclass(frozen=True)
class FlareSearch:
    """The flares of one lightcurve.

    Attributes
    ----------
    flares : tuple of Flare
        In time order.
    n_segments : int
        Segments searched.
    """

    flares: tuple[Flare, ...]
    n_segments: int

    @property
    def strongest(self) -> Flare | None:
        """The flare with the largest excess rate (None without flares)."""
        return max(self.flares, key=lambda f: f.excess_rate) if self.flares else None


def block_starts(counts: np.ndarray, exposure: np.ndarray, ncp_prior: float) -> np.ndarray:
    """Bayesian-blocks partition of binned Poisson counts.

    Parameters
    ----------
    counts : array_like
        Counts per bin (non-negative, need not be integers).
    exposure : array_like
        Exposure per bin (s, positive): the cell widths.
    ncp_prior : float
        Penalty per block (Scargle et al. 2013).

    Returns
    -------
    ndarray
        Index of each block's first bin, then ``len(counts)``.

    Examples
    --------
    >>> block_starts(np.array([10.0] * 20 + [60.0] * 5 + [10.0] * 20), np.ones(45), 8.0)
    array([ 0, 20, 25, 45])
    """
    counts = np.asarray(counts, float)
    n = counts.size
    cum_counts = np.concatenate([[0.0], np.cumsum(counts)])
    cum_exposure = np.concatenate([[0.0], np.cumsum(np.asarray(exposure, float))])
    best = np.zeros(n)
    last = np.zeros(n, dtype=np.intp)
    for r in range(n):
        # every block ending at bin r: N_k ln(N_k / T_k) (0 for N_k = 0), plus the best
        # partition before it; cumulative sums of non-negative counts never decrease
        block_counts = cum_counts[r + 1] - cum_counts[: r + 1]
        score = xlogy(block_counts, block_counts / (cum_exposure[r + 1] - cum_exposure[: r + 1]))
        score[1:] += best[:r]
        last[r] = score.argmax()
        best[r] = score[last[r]] - ncp_prior
    starts = [n]
    while starts[-1] > 0:
        starts.append(int(last[starts[-1] - 1]))
    return np.array(starts[::-1])


def split_segments(times: np.ndarray, dataset: np.ndarray, segment_gap: float,
                   max_cells: int) -> list[slice]:
    """Cut time-sorted bins at dataset changes and gaps > ``segment_gap`` (s); no piece
    longer than ``max_cells`` bins.

    Examples
    --------
    >>> split_segments(np.array([0.0, 5, 10, 900, 905]), np.ones(5, int), 600.0, 100)
    [slice(0, 3, None), slice(3, 5, None)]
    """
    times = np.asarray(times, float)
    breaks = (np.diff(times) > segment_gap) | (np.diff(np.asarray(dataset)) != 0)
    bounds = np.concatenate([[0], np.flatnonzero(breaks) + 1, [times.size]])
    pieces = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        count = -(-(hi - lo) // max_cells)
        edges = np.linspace(lo, hi, count + 1).round().astype(int)
        pieces += [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]
    return [piece for piece in pieces if piece.stop > piece.start]


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, 0.5 * cumulative[-1])])


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of True in ``mask``."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(),
                    strict=True))


def _segment_flares(gross: np.ndarray, counts: np.ndarray, exposure: np.ndarray,
                    ncp_prior: float, sigma: float, min_ratio: float, offset: int
                    ) -> list[Flare]:
    starts = block_starts(gross, exposure, ncp_prior)
    if starts.size <= 2:
        return []
    block_exposure = np.add.reduceat(exposure, starts[:-1])
    rate = np.add.reduceat(gross, starts[:-1]) / block_exposure
    net = np.add.reduceat(counts, starts[:-1]) / block_exposure
    quiet = _weighted_median(rate, block_exposure)
    quiet_net = _weighted_median(net, block_exposure)
    flares = []
    for lo, hi in _runs(rate > quiet):
        peak = lo + int(np.argmax(rate[lo:hi]))
        expected = quiet * block_exposure[peak]
        if rate[peak] * block_exposure[peak] - expected < sigma * np.sqrt(max(expected, 1.0)):
            continue
        if quiet_net > 0 and net[peak] < min_ratio * quiet_net:
            continue  # a modulation, not a flare
        inside = lo + np.flatnonzero(rate[lo:hi] >= quiet + EDGE_FRACTION * (rate[peak] - quiet))
        first, last = int(inside[0]), int(inside[-1])
        if first == 0:
            continue  # bright from the segment's start: no rise seen
        ratio = net[peak] / quiet_net if quiet_net > 0 else float("nan")
        flares.append(Flare(offset + int(starts[first]), offset + int(starts[last + 1]),
                            float(ratio), float(net[peak] - quiet_net)))
    return flares


def find_flares(times: np.ndarray, gross: np.ndarray, counts: np.ndarray, exposure: np.ndarray,
                dataset: np.ndarray, *, p0: float = DEFAULT_P0, sigma: float = DEFAULT_SIGMA,
                min_ratio: float = DEFAULT_MIN_RATIO, segment_gap: float = 600.0,
                max_cells: int = 2000) -> FlareSearch:
    """Flares of a lightcurve (see the module docstring).

    Parameters
    ----------
    times : array_like
        Bin times (s, sorted; e.g. ``mjd * 86400``).
    gross, counts : array_like
        Gross and net (background-subtracted) counts per bin.
    exposure : array_like
        Exposure per bin (s); bins without exposure must be left out by the caller.
    dataset : array_like
        Member number per bin (1 for an individual lightcurve).
    p0 : float
        False-alarm probability per change point of the block prior.
    sigma : float
        Poisson standard deviations of a flare's peak above the quiescent rate.
    min_ratio : float
        Least ratio of a flare's peak net rate to the quiescent net rate.
    segment_gap : float
        A gap longer than this (s) starts a new segment.
    max_cells : int
        Most bins in one Bayesian-blocks segment.

    Returns
    -------
    FlareSearch
        Flare ``start``/``stop`` index the arrays given.
    """
    gross, counts, exposure = (np.asarray(a, float).reshape(-1) for a in (gross, counts, exposure))
    segments = split_segments(times, dataset, segment_gap, max_cells)
    flares: list[Flare] = []
    for piece in segments:
        prior = Events(p0=p0).compute_ncp_prior(piece.stop - piece.start)
        flares += _segment_flares(np.clip(gross[piece], 0.0, None), counts[piece],
                                  exposure[piece], prior, sigma, min_ratio, piece.start)
    return FlareSearch(tuple(flares), len(segments))


__all__ = ["DEFAULT_MIN_RATIO", "DEFAULT_P0", "DEFAULT_SIGMA", "EDGE_FRACTION", "Flare",
           "FlareSearch", "block_starts", "find_flares", "split_segments"]
