"""Quicklook PNG of a lightcurve: counts and flux against time, gaps left visible."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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


def plot_quicklook(curve: Path, png: Path) -> Path:
    """Write ``png``: counts (top) and flux (bottom) against seconds since EXPSTART."""
    curve, png = Path(curve), Path(png)
    try:
        table = Table.read(curve, hdu=1)
    except (OSError, ValueError) as error:
        raise UnreadableFileError(f"{curve.name}: cannot read lightcurve: {error}",
                                  filename=curve.name) from error
    times = np.asarray(table["times"], dtype=float)
    bins = np.asarray(table["bins"], dtype=float)
    step = float(np.median(np.diff(times))) if times.size > 1 else 1.0
    figure = Figure(figsize=(10, 6), layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True)
    for axis, column, label in (
        (top, "counts", "net counts per bin"),
        (bottom, "flux", r"flux (erg s$^{-1}$ cm$^{-2}$ $\AA^{-1}$)"),
    ):
        values = np.asarray(table[column], dtype=float)
        errors = np.asarray(table["error"] if column == "counts" else table["flux_error"], float)
        x, y = break_gaps(times, values, step)
        axis.plot(x, y, drawstyle="steps-post", lw=0.8, color="k")
        valid = np.isfinite(values) & np.isfinite(errors) & (bins > 0)
        axis.fill_between(times[valid], (values - errors)[valid], (values + errors)[valid],
                          step="post", alpha=0.25, color="tab:blue", lw=0)
        axis.set_ylabel(label)
        if valid.any():  # a few huge error bars (near-zero counts) must not flatten the plot
            low, high = np.nanpercentile(values[valid], [0.5, 99.5])
            pad = float(np.nanmedian(errors[valid])) + 0.05 * (high - low)
            if np.isfinite(low) and np.isfinite(high) and high + pad > low - pad:
                axis.set_ylim(low - pad, high + pad)
    bottom.set_xlabel("time since EXPSTART (s)")
    from astropy.io import fits

    meta = {**fits.getheader(curve, 0), **table.meta}
    title = " ".join(str(meta.get(key, "")) for key in ("TARGNAME", "INSTRUME", "DETECTOR",
                                                        "OPT_ELEM", "CENWAVE", "APERTURE"))
    figure.suptitle(f"{curve.name}  {title}".strip())
    with atomic_path(png) as temporary:
        figure.savefig(temporary, format="png", dpi=90)
    return png
