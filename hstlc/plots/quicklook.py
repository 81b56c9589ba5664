"""Quicklook PNG of a lightcurve: counts and flux against time, gaps left visible."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table
from matplotlib.figure import Figure

from hstlc.errors import UnreadableFileError
from hstlc.fs import atomic_path


def break_gaps(times: np.ndarray, values: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Insert NaN between bins further apart than 1.5 steps, so lines do not bridge gaps.

    Examples
    --------
    >>> t, v = break_gaps(np.array([0.0, 2.0, 10.0]), np.array([1.0, 2.0, 3.0]), 2.0)
    >>> t.tolist(), int(np.isnan(v).sum())
    ([0.0, 2.0, 6.0, 10.0], 1)
    """
    times = np.asarray(times, dtype=float)
    values = np.asarray(values, dtype=float)
    if times.size < 2:
        return times, values
    gaps = np.flatnonzero(np.diff(times) > 1.5 * step)
    mid = (times[gaps] + times[gaps + 1]) / 2
    return np.insert(times, gaps + 1, mid), np.insert(values, gaps + 1, np.nan)


def draw_quicklook(columns: Mapping[str, np.ndarray], title: str) -> Figure:
    """The quicklook figure: counts (top) and flux (bottom) against seconds since EXPSTART.

    Parameters
    ----------
    columns : mapping
        Lightcurve columns ``times``, ``bins``, ``counts``, ``error``, ``flux`` and
        ``flux_error`` (as in a ``_curve.fits`` file).
    title : str
        The figure's title.

    Lines and error bands stop at every gap in the time grid (an orbit or GTI gap
    leaves no bin), so nothing is drawn where there was no exposure.
    """
    times = np.asarray(columns["times"], dtype=float)
    bins = np.asarray(columns["bins"], dtype=float)
    step = float(np.median(np.diff(times))) if times.size > 1 else 1.0
    figure = Figure(figsize=(10, 6), layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True)
    for axis, column, error_column, label in (
        (top, "counts", "error", "net counts per bin"),
        (bottom, "flux", "flux_error", r"flux (erg s$^{-1}$ cm$^{-2}$ $\AA^{-1}$)"),
    ):
        values = np.asarray(columns[column], dtype=float)
        errors = np.asarray(columns[error_column], dtype=float)
        x, y = break_gaps(times, values, step)
        axis.plot(x, y, drawstyle="steps-post", lw=0.8, color="k")
        valid = np.isfinite(values) & np.isfinite(errors) & (bins > 0)
        _, low_band = break_gaps(times[valid], (values - errors)[valid], step)
        band_x, high_band = break_gaps(times[valid], (values + errors)[valid], step)
        axis.fill_between(band_x, low_band, high_band, step="post", alpha=0.25,
                          color="tab:blue", lw=0)
        axis.set_ylabel(label)
        if valid.any():  # a few huge error bars (near-zero counts) must not flatten the plot
            low, high = np.nanpercentile(values[valid], [0.5, 99.5])
            pad = float(np.nanmedian(errors[valid])) + 0.05 * (high - low)
            if np.isfinite(low) and np.isfinite(high) and high + pad > low - pad:
                axis.set_ylim(low - pad, high + pad)
    bottom.set_xlabel("time since EXPSTART (s)")
    figure.suptitle(title)
    return figure


def plot_quicklook(curve: Path, png: Path) -> Path:
    """Write ``png``, the quicklook of the lightcurve file ``curve`` (atomically)."""
    curve, png = Path(curve), Path(png)
    try:
        table = Table.read(curve, hdu=1)
        primary = fits.getheader(curve, 0)
    except (OSError, ValueError) as error:
        raise UnreadableFileError(f"{curve.name}: cannot read lightcurve: {error}",
                                  filename=curve.name) from error
    meta = {**primary, **table.meta}
    title = " ".join(str(meta.get(key, "")) for key in ("TARGNAME", "INSTRUME", "DETECTOR",
                                                        "OPT_ELEM", "CENWAVE", "APERTURE"))
    figure = draw_quicklook({name: table[name] for name in table.colnames},
                            f"{curve.name}  {title}".strip())
    with atomic_path(png) as temporary:
        figure.savefig(temporary, format="png", dpi=90)
    return png
