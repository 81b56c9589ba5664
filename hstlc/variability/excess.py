"""Excess variance and chi-square against a constant, from the ``error`` column.

Both work on rates, ``x = net = counts / bins`` with ``sigma = error / bins`` (count/s), so
that partial bins (at GTI edges) count with their true uncertainty.  Bins whose error is
zero (no event and no background: ``error = sqrt(gross + background) = 0``) carry no
Gaussian weight and are left out; with few counts per bin (below ~20) Gaussian statistics
are biased anyway (Mighell 1999), and wider bins are the cure.

* Normalised excess variance (Vaughan et al. 2003, eqs. 8-11, Nandra et al. 1997):
  ``nxs = (S^2 - <sigma^2>) / xbar^2`` with ``S^2`` the sample variance (N - 1) and
  ``<sigma^2>`` the mean squared error; its error
  ``sqrt((sqrt(2/N) <sigma^2> / xbar^2)^2 + (sqrt(<sigma^2>/N) 2 F_var / xbar)^2)``,
  ``F_var = sqrt(max(nxs, 0))``.  It is ~0 (within its error) for a constant source and
  ``A^2 / 2`` for a sinusoid of fractional amplitude ``A``; it is negative when the scatter
  is below the errors.  NaN when the mean rate is not positive.
* ``chi2_dof``: ``sum ((x - c) / sigma)^2 / (N - 1)`` with ``c`` the error-weighted mean;
  ~1 for a constant source whose errors are right.

References
----------
Vaughan, S., Edelson, R., Warwick, R. S. & Uttley, P. 2003, MNRAS 345, 1271: "On
characterizing the variability properties of X-ray light curves from active galaxies".
Nandra, K. et al. 1997, ApJ 476, 70.
Mighell, K. J. 1999, ApJ 518, 380.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Scatter:
    """Excess variance and chi-square of a lightcurve's rates.

    Attributes
    ----------
    excess_variance : float
        Normalised excess variance (dimensionless).
    excess_variance_error : float
        Its 1-sigma error (Vaughan et al. 2003, eq. 11).
    chi2_dof : float
        Chi-square per degree of freedom against the error-weighted constant.
    n : int
        Bins used (error > 0).
    """

    excess_variance: float
    excess_variance_error: float
    chi2_dof: float
    n: int


def measure_scatter(rate: np.ndarray, sigma: np.ndarray) -> Scatter:
    """Excess variance with its error, and chi^2/dof against a constant.

    Parameters
    ----------
    rate : array_like
        Rates (count/s), e.g. ``net``.
    sigma : array_like
        Their 1-sigma errors (count/s), e.g. ``error / bins``; bins with ``sigma <= 0`` or
        non-finite values are left out.

    Returns
    -------
    Scatter

    Examples
    --------
    >>> s = measure_scatter(np.array([9.0, 11.0, 9.0, 11.0]), np.full(4, 1.0))
    >>> round(s.excess_variance, 6), round(s.chi2_dof, 6), s.n
    (0.003333, 1.333333, 4)
    """
    rate = np.asarray(rate, float).reshape(-1)
    sigma = np.asarray(sigma, float).reshape(-1)
    use = np.isfinite(rate) & np.isfinite(sigma) & (sigma > 0)
    x, s = rate[use], sigma[use]
    n = int(x.size)
    if n < 2:
        return Scatter(float("nan"), float("nan"), float("nan"), n)
    weights = s ** -2.0
    constant = np.sum(weights * x) / np.sum(weights)
    chi2 = float(np.sum(weights * (x - constant) ** 2) / (n - 1))
    mean = float(np.mean(x))
    if mean <= 0:
        return Scatter(float("nan"), float("nan"), chi2, n)
    noise = float(np.mean(s ** 2))
    nxs = (float(np.var(x, ddof=1)) - noise) / mean ** 2
    f_var = np.sqrt(max(nxs, 0.0))
    error = np.hypot(np.sqrt(2.0 / n) * noise / mean ** 2, np.sqrt(noise / n) * 2.0 * f_var / mean)
    return Scatter(float(nxs), float(error), chi2, n)


__all__ = ["Scatter", "measure_scatter"]
