"""Quicklook PNG of a lightcurve: counts and flux against time, gaps left visible.

An individual lightcurve is drawn against its ``times`` (seconds since EXPSTART).  A
composite (more than one ``dataset``) is drawn against the time since its first bin, from
``mjd`` (hours; days when it spans more than :data:`DAYS_AFTER` hours), one colour per
member: its members' ``times`` each start at their own EXPSTART and would overlap.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hstlc.errors import UnreadableFileError
from hstlc.fs import atomic_path
from hstlc.io.lightcurve_file import Lightcurve, read_lightcurve

#: A composite spanning more hours than this is drawn in days.
DAYS_AFTER = 48.0
#: Members named in the legend of a composite's quicklook (beyond: colours only).
MAX_LEGEND = 12
#: The metadata of a title, in order (``Lightcurve.meta`` names).
_SETUP = ("targname", "instrument", "detector", "opt_elem", "cenwave", "aperture")
_FLUX_LABEL = r"flux (erg s$^{-1}$ cm$^{-2}$ $\AA^{-1}$)"


class _Canvases(threading.local):
    """Each thread's canvases, by figure size in inches (:func:`save_png`)."""

    def __init__(self) -> None:
        self.by_size: dict[tuple[float, ...], FigureCanvasAgg] = {}


_CANVASES = _Canvases()


def break_gaps(times: np.ndarray, values: np.ndarray, step: float, *,
               ends: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Insert NaN between bins further apart than 1.5 steps, so lines do not bridge gaps.

    With ``ends`` (the end of each bin, for bins of unequal length such as summed ones),
    a gap is where the next bin starts more than half a ``step`` after one ends (the same
    rule for bins one step long); the NaN goes halfway between the end and the next start.

    Examples
    --------
    >>> t, v = break_gaps(np.array([0.0, 2.0, 10.0]), np.array([1.0, 2.0, 3.0]), 2.0)
    >>> t.tolist(), int(np.isnan(v).sum())
    ([0.0, 2.0, 6.0, 10.0], 1)
    >>> t, v = break_gaps(np.array([0.0, 20.0, 26.0]), np.ones(3), 2.0,
    ...                   ends=np.array([20.0, 24.0, 46.0]))
    >>> t.tolist()
    [0.0, 20.0, 25.0, 26.0]
    """
    times = np.asarray(times, dtype=float)
    values = np.asarray(values, dtype=float)
    if times.size < 2:
        return times, values
    if ends is None:
        gaps = np.flatnonzero(np.diff(times) > 1.5 * step)
        mid = (times[gaps] + times[gaps + 1]) / 2
    else:
        ends = np.asarray(ends, dtype=float)
        gaps = np.flatnonzero(times[1:] - ends[:-1] > 0.5 * step)
        mid = (ends[gaps] + times[gaps + 1]) / 2
    return np.insert(times, gaps + 1, mid), np.insert(values, gaps + 1, np.nan)


def _draw_series(axis: Axes, times: np.ndarray, step: float, values: np.ndarray,
                 errors: np.ndarray, valid: np.ndarray, *, line: str, band: str,
                 label: str | None = None) -> None:
    """One line and its error band on ``axis``, both broken at every gap."""
    x, y = break_gaps(times, values, step)
    axis.plot(x, y, drawstyle="steps-post", lw=0.8, color=line, label=label)
    _, low_band = break_gaps(times[valid], (values - errors)[valid], step)
    band_x, high_band = break_gaps(times[valid], (values + errors)[valid], step)
    axis.fill_between(band_x, low_band, high_band, step="post", alpha=0.25, color=band, lw=0)


def _limit_y(axis: Axes, values: np.ndarray, errors: np.ndarray, valid: np.ndarray) -> None:
    """A few huge error bars (near-zero counts) must not flatten the plot."""
    if valid.any():
        low, high = np.nanpercentile(values[valid], [0.5, 99.5])
        pad = float(np.nanmedian(errors[valid])) + 0.05 * (high - low)
        if np.isfinite(low) and np.isfinite(high) and high + pad > low - pad:
            axis.set_ylim(low - pad, high + pad)


def _time_axis(columns: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, float, str]:
    """x of each bin, the members (``dataset``), the step in x units and the axis label."""
    times = np.asarray(columns["times"], dtype=float)
    dataset = np.asarray(columns.get("dataset", np.ones(times.size)), dtype=int)
    step = float(np.median(np.diff(times))) if times.size > 1 else 1.0
    if np.unique(dataset).size < 2:
        return times, dataset, step, "time since EXPSTART (s)"
    mjd = np.asarray(columns["mjd"], dtype=float)
    hours = (mjd - np.nanmin(mjd)) * 24.0
    member_steps = [np.diff(np.sort(times[dataset == d])) for d in np.unique(dataset)]
    diffs = np.concatenate(member_steps)
    step = float(np.median(diffs)) if diffs.size else 1.0
    if np.nanmax(hours) > DAYS_AFTER:
        return hours / 24.0, dataset, step / 86400.0, "time since the first bin (d)"
    return hours, dataset, step / 3600.0, "time since the first bin (h)"


def draw_quicklook(columns: Mapping[str, np.ndarray], title: str) -> Figure:
    """The quicklook figure: counts (top) and flux (bottom) against time.

    Parameters
    ----------
    columns : mapping
        Lightcurve columns ``times``, ``bins``, ``counts``, ``error``, ``flux`` and
        ``flux_error`` (as in a ``_curve.fits`` file); a composite also needs ``dataset``
        and ``mjd``.
    title : str
        The figure's title.

    Lines and error bands stop at every gap in the time grid (an orbit or GTI gap
    leaves no bin), so nothing is drawn where there was no exposure.  An individual
    lightcurve is drawn against seconds since EXPSTART; a composite against the time since
    its first bin (``mjd``), one colour per member (see the module docstring).
    """
    times, dataset, step, xlabel = _time_axis(columns)
    bins = np.asarray(columns["bins"], dtype=float)
    members = np.unique(dataset)
    composite = members.size > 1
    # Fixed margins: a constrained layout measures every tick label again (~half the time
    # of a quicklook, the costliest ingest step).
    figure = Figure(figsize=(10, 6))
    figure.subplots_adjust(left=0.1, right=0.98, top=0.92, bottom=0.09, hspace=0.12)
    top, bottom = figure.subplots(2, 1, sharex=True)
    for axis, column, error_column, label in (
        (top, "counts", "error", "net counts per bin"),
        (bottom, "flux", "flux_error", _FLUX_LABEL),
    ):
        values = np.asarray(columns[column], dtype=float)
        errors = np.asarray(columns[error_column], dtype=float)
        valid = np.isfinite(values) & np.isfinite(errors) & (bins > 0)
        for k, member in enumerate(members):
            rows = dataset == member
            order = np.argsort(times[rows], kind="stable")
            colour = f"C{k % 10}" if composite else "k"
            _draw_series(axis, times[rows][order], step, values[rows][order],
                         errors[rows][order], valid[rows][order], line=colour,
                         band=colour if composite else "tab:blue",
                         label=f"dataset {member}" if composite else None)
        axis.set_ylabel(label)
        _limit_y(axis, values, errors, valid)
    if composite and members.size <= MAX_LEGEND:
        top.legend(fontsize="small", ncols=min(members.size, 6), loc="upper right")
    bottom.set_xlabel(xlabel)
    figure.suptitle(title)
    return figure


def read_curve(curve: Path) -> Lightcurve:
    """Read the lightcurve file ``curve`` for a picture or a page.

    Raises
    ------
    UnreadableFileError
        ``<name>: cannot read lightcurve: ...``, naming the file.
    """
    curve = Path(curve)
    try:
        return read_lightcurve(curve)
    except (UnreadableFileError, OSError, ValueError) as error:
        raise UnreadableFileError(f"{curve.name}: cannot read lightcurve: {error}",
                                  filename=curve.name) from error


def curve_title(name: str, meta: Mapping[str, Any]) -> str:
    """``<file name>  <target> <instrument> <detector> <grating> <cenwave> <aperture>`` (the
    values the metadata have)."""
    setup = " ".join(str(meta[key]) for key in _SETUP if meta.get(key) not in (None, ""))
    return f"{name}  {setup}".strip()


def save_png(figure: Figure, png: Path, dpi: float) -> Path:
    """Write ``figure`` to ``png`` (atomically), drawn on this thread's canvas.

    A new canvas draws with a new Agg renderer, whose caches of text layouts and of parsed
    mathtext (the log axes' tick labels) start empty; one canvas per thread and figure size
    (a renderer is remade when the size changes) keeps them from picture to picture: the
    same bytes in a fifth less time.
    """
    size = tuple(figure.get_size_inches())
    canvas = _CANVASES.by_size.get(size)
    if canvas is None:
        _CANVASES.by_size[size] = FigureCanvasAgg(figure)
    else:
        canvas.figure = figure
        figure.set_canvas(canvas)
    with atomic_path(Path(png)) as temporary:
        figure.savefig(temporary, format="png", dpi=dpi)
    return Path(png)


def plot_quicklook(curve: Path, png: Path) -> Path:
    """Write ``png``, the quicklook of the lightcurve file ``curve`` (atomically)."""
    curve = Path(curve)
    lc = read_curve(curve)
    return save_png(draw_quicklook(lc.columns(), curve_title(curve.name, lc.meta)), png, 90)
