"""The periodogram PNG of a lightcurve: what its ``stats`` row's period columns come from.

One panel per period range (:data:`~hstlc.variability.periodogram.PERIOD_RANGES`: short
5 s-10 min, medium 10 min-1 h, long 1-10 h), period (s, log scale) against the power the
row's ``power_*`` columns hold: the visits' standard Lomb-Scargle powers averaged with
weights ``N_v`` (:class:`~hstlc.variability.periodogram.Periodogram`).  The input is the
statistics' own (:func:`~hstlc.variability.stats.period_search_input`: exposed bins,
barycentric seconds) with the same search settings (:class:`StatsConfig`), and the marked
best period is :func:`~hstlc.variability.periodogram.search_periodogram`'s, the row's
``period_*``/``fap_*``.

On each panel:

* the 2016 threshold ``max(mean + 3 sigma of the power in the range, 0.30)``
  (:mod:`hstlc.variability.legacy`), here on the curve shown;
* the false-alarm levels 10 %, 1 %, 0.1 % (:data:`FAP_LEVELS`): for one visit Baluev's
  levels (exact inverses of the FAP); for K visits the level of the summed statistic ``Z``
  shown as the power every visit would share at it (said in the legend);
* the best period, a vertical line annotated ``P = ... s, FAP = ...``.

A range that was not searched (a visit shorter than its shortest period, periods under two
bin steps, no usable visit) says so instead.  A lightcurve with fewer exposed bins than
``StatsConfig.min_bins`` has no statistics; its PNG says so (the site links a periodogram
for every lightcurve), in the words of the row's ``reason``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from hstlc.plots.quicklook import curve_title, read_curve, save_png
from hstlc.variability.legacy import LEGACY_MIN_POWER, LEGACY_SIGMA
from hstlc.variability.periodogram import (
    MIN_VISIT_BINS,
    Periodogram,
    RangePeak,
    periodogram,
    search_periodogram,
)
from hstlc.variability.stats import StatsConfig, period_search_input, too_few_bins

#: False-alarm probabilities drawn as levels.
FAP_LEVELS = (0.1, 0.01, 0.001)
#: The best period's line and label carry these gids (matplotlib ``Artist.get_gid``).
BEST_GID = "best_period"
_LEVEL_STYLES = ("dotted", "dashdot", "dashed")
_DPI = 90


def legacy_threshold(power: np.ndarray) -> float:
    """The 2016 rule's level on ``power``: ``max(mean + 3 sigma, 0.30)``.

    Examples
    --------
    >>> legacy_threshold(np.array([0.1, 0.1, 0.1]))
    0.3
    """
    power = np.asarray(power, float)
    return float(max(power.mean() + LEGACY_SIGMA * power.std(), LEGACY_MIN_POWER))


def _not_searched(curve: Periodogram, min_period: float, max_period: float) -> str:
    """Why a range was not searched."""
    if not curve.visits:
        return (f"not searched: no visit of {MIN_VISIT_BINS} or more exposed bins with a "
                "varying rate")
    if min_period >= curve.span:
        return (f"not searched: the longest visit ({curve.span:.0f} s) is shorter than "
                f"{min_period:g} s")
    if max_period <= 2 * curve.step:
        return (f"not searched: periods up to {max_period:g} s are under two bin steps "
                f"(Nyquist; bins of {curve.step:g} s)")
    return "not searched"


def _fap_text(fap: float) -> str:
    """``= 0.0012``, or ``< 1e-300`` where the probability underflows.

    Examples
    --------
    >>> _fap_text(0.00123), _fap_text(0.0)
    ('= 0.0012', '< 1e-300')
    """
    return f"= {fap:.2g}" if fap > 0 else "< 1e-300"


def _level_legend(curve: Periodogram) -> str:
    """How the false-alarm levels were made."""
    if len(curve.visits) == 1:
        return "FAP levels: Baluev (2008), one visit"
    return (f"FAP levels: Z of {len(curve.visits)} visits summed, drawn as the power "
            "all visits would share (equal-visit approximation)")


def _draw_range(axis: Axes, curve: Periodogram, peak: RangePeak, fmin: float,
                fmax: float) -> None:
    """The curve of one searched range, its threshold, levels and best period."""
    inside = (curve.frequency >= fmin) & (curve.frequency <= fmax)
    period, power = 1.0 / curve.frequency[inside], curve.power[inside]
    shown = [peak.power]
    if power.size:
        axis.plot(period, power, lw=0.6, color="k", label="mean power")
        threshold = legacy_threshold(power)
        axis.axhline(threshold, color="tab:orange", lw=1.0,
                     label=f"2016 threshold max(mean + {LEGACY_SIGMA:g}\u03c3, {LEGACY_MIN_POWER:g})")
        shown += [float(power.max()), threshold]
    for fap, style in zip(FAP_LEVELS, _LEVEL_STYLES, strict=True):
        level = curve.power_level(fap, fmax)
        axis.axhline(level, color="tab:blue", lw=0.9, ls=style, label=f"FAP {100 * fap:g}%")
        shown.append(level)
    axis.axvline(peak.period, color="tab:red", lw=1.0, gid=BEST_GID)
    right = np.log(fmax * peak.period) > 0.6 * np.log(fmax / fmin)  # label left of the line
    axis.annotate(f"P = {peak.period:.5g} s, FAP {_fap_text(peak.fap)}", xy=(peak.period, 1.0),
                  xycoords=("data", "axes fraction"), xytext=(-4 if right else 4, -4),
                  textcoords="offset points", ha="right" if right else "left", va="top",
                  color="tab:red", fontsize="small", gid=BEST_GID)
    axis.set_xscale("log")
    axis.set_yscale("log")
    positive = power[power > 0]
    bottom = 0.2 * float(np.median(positive)) if positive.size else 1e-4
    axis.set_ylim(bottom, 1.5 * max(s for s in shown if np.isfinite(s)))
    axis.set_xlim(1.0 / fmax, 1.0 / fmin)


def draw_periodogram(curve: Periodogram, title: str) -> Figure:
    """The periodogram figure of ``curve``, one panel per range (see the module docstring).

    Parameters
    ----------
    curve : Periodogram
        As :func:`~hstlc.variability.periodogram.periodogram` gives it; its best periods
        and false-alarm probabilities are :func:`search_periodogram`'s.
    title : str
        The figure's title.
    """
    search = search_periodogram(curve)
    # Fixed margins: a constrained layout measures every log-axis tick label (~0.5 s a PNG).
    figure = Figure(figsize=(10, 9))
    figure.subplots_adjust(left=0.08, right=0.97, top=0.9, bottom=0.14, hspace=0.4)
    axes = figure.subplots(len(curve.ranges), 1, squeeze=False)[:, 0]
    limits = {name: (lo, hi) for name, lo, hi in curve.limits}
    legend_drawn = False
    for axis, (name, pmin, pmax) in zip(axes, curve.ranges, strict=True):
        # y given: an automatic title position measures every y tick label again at each
        # draw (a sixth of a PNG) to land where it is anyway (the x ticks are below).
        axis.set_title(f"{name}: {pmin:g}-{pmax:g} s", loc="left", fontsize="medium", y=1.0)
        if name not in limits:
            axis.text(0.5, 0.5, _not_searched(curve, pmin, pmax), transform=axis.transAxes,
                      ha="center", va="center")
            axis.set_xticks([])
            axis.set_yticks([])
            continue
        _draw_range(axis, curve, search.peak(name), *limits[name])
        axis.set_ylabel("power")
        if not legend_drawn:
            figure.legend(*axis.get_legend_handles_labels(), loc="lower center",
                          ncols=3, fontsize="small", title=_level_legend(curve),
                          title_fontsize="small")
            legend_drawn = True
    axes[-1].set_xlabel("period (s)")
    sizes = curve.visit_sizes
    figure.suptitle(f"{title}\n{len(sizes)} visit(s), {sum(sizes)} bins; power: standard "
                    "Lomb-Scargle, visits averaged with weights N", fontsize="medium")
    return figure


def draw_message(title: str, message: str) -> Figure:
    """A figure that only says ``message`` (a lightcurve without a periodogram)."""
    figure = Figure(figsize=(10, 3), layout="constrained")
    axis = figure.subplots()
    axis.set_axis_off()
    axis.text(0.5, 0.5, message, ha="center", va="center", transform=axis.transAxes)
    figure.suptitle(title, fontsize="medium")
    return figure


def plot_periodogram(curve: Path, png: Path, config: StatsConfig | None = None) -> Path:
    """Write ``png``, the periodogram of the lightcurve file ``curve`` (atomically).

    Parameters
    ----------
    curve : Path
        A lightcurve or composite file.
    png : Path
        The picture to write.
    config : StatsConfig, optional
        The statistics' settings (``min_bins`` and the search settings), so that the
        picture shows what the ``stats`` row was computed from.

    Raises
    ------
    UnreadableFileError
        ``curve`` cannot be read.
    """
    config = config or StatsConfig()
    curve, png = Path(curve), Path(png)
    lc = read_curve(curve)
    title = curve_title(curve.name, lc.meta)
    seconds, net, exposure = period_search_input(lc)
    if seconds.size < config.min_bins:
        figure = draw_message(title, f"No periodogram: {too_few_bins(seconds.size, config)}.")
    else:
        figure = draw_periodogram(periodogram(
            seconds, net, exposure, samples_per_peak=config.samples_per_peak,
            visit_gap=config.visit_gap_s, max_visit_span=config.max_visit_span_s), title)
    return save_png(figure, png, _DPI)


__all__ = ["BEST_GID", "FAP_LEVELS", "draw_message", "draw_periodogram", "legacy_threshold",
           "plot_periodogram"]
