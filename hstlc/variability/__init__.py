"""Variability statistics of individual and composite lightcurves.

One entry point, :func:`compute_stats`, gives one :class:`LightcurveStats` row (the
``stats`` table's columns) per :class:`~hstlc.io.lightcurve_file.Lightcurve`;
:func:`unusable_stats` gives the row of a lightcurve that has none (unreadable, too few
bins), with the reason.  The science is in functions of arrays:

* :mod:`~hstlc.variability.legacy` -- the 2016 statistics and periodogram rule;
* :mod:`~hstlc.variability.periodogram` -- Lomb-Scargle per period range, Baluev
  false-alarm probabilities, visits summed incoherently on a grid tied to the visit length;
* :mod:`~hstlc.variability.flares` -- Bayesian blocks per exposure;
* :mod:`~hstlc.variability.excess` -- normalised excess variance and chi-square;

The times are barycentric: the ``bjd_tdb`` column of the lightcurve
(:mod:`hstlc.extraction.barycentre`), computed here for older files that lack it.

Reading the file stays with the caller::

    try:
        row = compute_stats(read_lightcurve(path), config, composite=is_hlsp)
    except UnreadableFileError as error:
        row = unusable_stats(f"{error.reason}: {error}")
"""

from hstlc.variability.stats import LightcurveStats, StatsConfig, compute_stats, unusable_stats

__all__ = ["LightcurveStats", "StatsConfig", "compute_stats", "unusable_stats"]
