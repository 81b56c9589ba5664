"""Random draws shared by the instruments: event times, positions and DQ flags, and the calibration.

Times are seconds since EXPSTART. Source events follow a Poisson process inside the good
time intervals, thinned by a :class:`~hstlc.testing.truth.Sinusoid` when one is given;
a :class:`~hstlc.testing.truth.Flare` adds exactly ``Flare.counts`` events, split over the
source boxes in proportion to their rates; the background is uniform in time inside the
GTIs. Every helper takes the builder's ``numpy.random.Generator`` and draws from it in a
fixed order, so that equal seeds give identical files.

The calibration helpers (:func:`sensitivity`, :func:`to_flux`) tie the events to the x1d:
where a box's NET is ``rate * pmf``, NET/FLUX is chosen so that FLUX is ``flat_flux``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from hstlc.testing.truth import FLARE, SOURCE, Flare, Sinusoid

Transform = Callable[[dict[str, np.ndarray], np.ndarray], tuple[dict[str, np.ndarray], np.ndarray]]
"""Rewrites a file's event columns and component labels before writing (used for bad files)."""

_T = TypeVar("_T")
_K = TypeVar("_K")


@dataclass(frozen=True)
class Exposure:
    """The time base of one exposure: its GTIs, live time and injected variability."""

    gti: np.ndarray
    live: float
    flare: Flare | None
    sinusoid: Sinusoid | None

    @classmethod
    def make(cls, exptime: float, gti: Sequence[Sequence[float]] | np.ndarray | None,
             flare: Flare | Mapping[str, Any] | None,
             sinusoid: Sinusoid | Mapping[str, Any] | None) -> Exposure:
        """Check and normalise a builder's arguments (dicts become Flare/Sinusoid).

        ``gti`` defaults to ``[[0, exptime]]``; a flare must lie inside one GTI.
        """
        gti_arr = as_gti(gti, exptime)
        flare_obj = _coerce(flare, Flare)
        if flare_obj is not None:
            inside = ((gti_arr[:, 0] <= flare_obj.start)
                      & (flare_obj.start + flare_obj.duration <= gti_arr[:, 1]))
            if not inside.any():
                raise ValueError(f"flare {flare_obj} must lie inside one GTI {gti_arr.tolist()}")
        live = float(np.sum(gti_arr[:, 1] - gti_arr[:, 0]))
        return cls(gti_arr, live, flare_obj, _coerce(sinusoid, Sinusoid))

    @property
    def flare_counts(self) -> int:
        """Events the flare adds (0 without a flare)."""
        return self.flare.counts if self.flare else 0

    def plan(self, rng: np.random.Generator, rates: list[float], background_rate: float,
             background_units: float, n_events: int | None
             ) -> tuple[list[float], float, np.ndarray]:
        """Source rates, background rate and the flare's split over the source boxes.

        With ``n_events`` the quiescent rates and the background (``background_rate`` per
        unit, ``background_units`` units) are scaled so that, with the flare, ``n_events``
        events are expected. The flare is split in proportion to the (scaled) rates.
        """
        if n_events is not None:
            expected = sum(rates) * self.live + background_rate * background_units * self.live
            wanted = max(n_events - self.flare_counts, 0)
            scale = wanted / expected if expected > 0 else 0.0
            rates, background_rate = [r * scale for r in rates], background_rate * scale
        weights = rates if sum(rates) > 0 else [1] * len(rates)
        return rates, background_rate, split_counts(rng, self.flare_counts, weights)

    def source_and_flare(self, rng: np.random.Generator, rate: float, n_flare: int
                         ) -> tuple[np.ndarray, np.ndarray]:
        """Unsorted times and labels of one source box: its SOURCE events, then its FLARE events."""
        t_src = source_times(rng, rate, self.gti, self.sinusoid)
        t_fl = flare_times(rng, self.flare, n_flare) if self.flare else np.empty(0)
        comp = np.concatenate([np.full(t_src.size, SOURCE, np.int8),
                               np.full(t_fl.size, FLARE, np.int8)])
        return np.concatenate([t_src, t_fl]), comp

    def background(self, rng: np.random.Generator, rate: float, units: float) -> np.ndarray:
        """Times of a Poisson number (mean ``rate * units * live``) of uniform background events."""
        n = int(rng.poisson(rate * units * self.live))
        return uniform_in_gti(rng, n, self.gti)


def folder_and_rng(directory: str | os.PathLike[str], seed: int) -> tuple[Path, np.random.Generator]:
    """A builder's output folder (created) and its seeded generator."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    return folder, np.random.default_rng(seed)


def _coerce(value: _T | Mapping[str, Any] | None, cls: type[_T]) -> _T | None:
    return cls(**value) if isinstance(value, Mapping) else value


def rates_for(source_rate: float | Mapping[_K, float], keys: Sequence[_K]) -> list[float]:
    """One rate per source box: a float for every box, or a mapping (missing keys are 0)."""
    if isinstance(source_rate, Mapping):
        return [float(source_rate.get(k, 0.0)) for k in keys]
    return [float(source_rate)] * len(keys)


def as_gti(gti: Sequence[Sequence[float]] | np.ndarray | None, exptime: float) -> np.ndarray:
    """GTIs as an ``(n, 2)`` float array, ``[[0, exptime]]`` by default; checked sorted."""
    arr = np.array([[0.0, exptime]] if gti is None else gti, dtype=float).reshape(-1, 2)
    if np.any(arr[:, 1] <= arr[:, 0]) or np.any(arr[1:, 0] < arr[:-1, 1]):
        raise ValueError(f"GTI must be sorted, non-overlapping [start, stop] pairs: {arr.tolist()}")
    return arr


def uniform_in_gti(rng: np.random.Generator, n: int, gti: np.ndarray) -> np.ndarray:
    """``n`` times uniform over the union of the GTIs."""
    cum = np.concatenate([[0.0], np.cumsum(gti[:, 1] - gti[:, 0])])
    u = rng.random(n) * cum[-1]
    idx = np.clip(np.searchsorted(cum, u, side="right") - 1, 0, len(gti) - 1)
    return gti[idx, 0] + (u - cum[idx])


def source_times(rng: np.random.Generator, rate: float, gti: np.ndarray,
                 sinusoid: Sinusoid | None) -> np.ndarray:
    """A Poisson process of ``rate`` inside the GTIs, modulated by ``sinusoid`` (thinning)."""
    live = float(np.sum(gti[:, 1] - gti[:, 0]))
    peak = rate * (1.0 + abs(sinusoid.amplitude)) if sinusoid else rate
    t = uniform_in_gti(rng, int(rng.poisson(peak * live)), gti)
    if sinusoid:
        model = 1.0 + sinusoid.amplitude * np.sin(2 * np.pi * t / sinusoid.period + sinusoid.phase)
        t = t[rng.random(t.size) * (1.0 + abs(sinusoid.amplitude)) < model]
    return t


def flare_times(rng: np.random.Generator, flare: Flare, n: int) -> np.ndarray:
    """``n`` times of the flare's profile (boxcar, or exponential decay truncated at the end)."""
    if flare.profile == "boxcar":
        return flare.start + rng.random(n) * flare.duration
    if flare.profile == "exponential":
        tau = flare.duration / 5.0
        u = rng.random(n) * (1.0 - np.exp(-flare.duration / tau))
        return flare.start - tau * np.log1p(-u)
    raise ValueError(f"unknown flare profile {flare.profile!r}")


def split_counts(rng: np.random.Generator, total: int, weights: Sequence[float]) -> np.ndarray:
    """``total`` split at random (multinomial) in proportion to ``weights``."""
    w = np.asarray(weights, dtype=float)
    return rng.multinomial(total, w / w.sum()) if w.sum() > 0 else np.zeros(len(w), int)


def column_pmf(n: int) -> np.ndarray:
    """Probability of each of ``n`` columns: a smooth blaze, 1 at the centre, 0.5 at the ends.

    Examples
    --------
    >>> np.round(column_pmf(3) / column_pmf(3).max(), 2)
    array([0.5, 1. , 0.5])
    """
    u = (np.arange(n) - (n - 1) / 2) / ((n - 1) / 2)
    shape = 1.0 - 0.5 * u**2
    return shape / shape.sum()


def sample_pmf(rng: np.random.Generator, pmf: np.ndarray, n: int) -> np.ndarray:
    """``n`` indices drawn with probabilities ``pmf``."""
    cdf = np.cumsum(pmf)
    return np.minimum(np.searchsorted(cdf / cdf[-1], rng.random(n), side="right"), pmf.size - 1)


def sensitivity(rate: float, pmf: np.ndarray, flat_flux: float) -> np.ndarray:
    """NET/FLUX that makes FLUX = ``flat_flux`` where NET = ``rate * pmf`` (rate 0 counts as 1)."""
    return (rate if rate > 0 else 1.0) * pmf / flat_flux


def truncated_normal(rng: np.random.Generator, n: int, sigma: float, half: float) -> np.ndarray:
    """``n`` draws of N(0, sigma) redrawn until ``|y| < half``."""
    y = rng.normal(0.0, sigma, n)
    bad = np.abs(y) >= half
    while bad.any():
        y[bad] = rng.normal(0.0, sigma, int(bad.sum()))
        bad = np.abs(y) >= half
    return y


def dq_flags(rng: np.random.Generator, n: int, sdqflags: int, bad_fraction: float,
             benign_fraction: float) -> np.ndarray:
    """DQ of ``n`` events: a bit inside SDQFLAGS for ``bad_fraction``, outside for ``benign_fraction``."""
    bits = np.array([1 << k for k in range(15)])
    bad_bits = bits[(bits & sdqflags) != 0]
    benign_bits = np.array([b for b in (4, 512, 1024) if not b & sdqflags] or [0])
    u = rng.random(n)
    dq = np.zeros(n, dtype=np.int16)
    bad = u < bad_fraction
    benign = ~bad & (u < bad_fraction + benign_fraction)
    dq[bad] = bad_bits[rng.integers(0, bad_bits.size, int(bad.sum()))]
    dq[benign] = benign_bits[rng.integers(0, benign_bits.size, int(benign.sum()))]
    return dq


def to_flux(rate: np.ndarray, sens: np.ndarray) -> np.ndarray:
    """A count rate divided by the sensitivity NET/FLUX where it is positive, 0 elsewhere."""
    return np.divide(rate, sens, out=np.zeros(sens.size), where=sens > 0)


def rate_error(gross: np.ndarray, exptime: float) -> np.ndarray:
    """Poisson error (counts/s) of a gross rate over ``exptime`` seconds."""
    return np.sqrt(gross * exptime) / exptime
