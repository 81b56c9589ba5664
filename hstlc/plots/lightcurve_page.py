"""The interactive page of one lightcurve (individual or composite): Bokeh, offline.

Four panels on one linked time axis (MJD; zoom and pan move them together): gross and
background counts per bin, the net rate with its 1-sigma band (``error / bins``) and the
flux with its band (a note instead when the lightcurve is not flux-calibrated).  Hovering
shows the bin's MJD and BJD (TDB) (bin starts, as in the file) and the value with its unit.
A composite draws one colour per member (``dataset``), named in a legend whose entries
hide a member in every panel when clicked.

Gaps stay gaps: every line and band is broken with NaN where the bins stop (orbit and
visit gaps, :func:`~hstlc.plots.quicklook.break_gaps`); nothing is drawn across one.

Size: a page embeds its data, so a lightcurve of more than ``max_points`` bins is shown in
summed bins (:func:`display_bins`): runs of consecutive bins of one member, never across a
gap, ``factor`` bins each (1, 2, 5, 10, 20, 50, ...: the smallest that keeps the bins
shown under ``max_points``); rates are summed counts over summed exposure, fluxes weighted
by exposure; the page says so.  20 000 points make a page of about 2 MB.

No network: Bokeh's script is the site's copy in ``static/``
(:func:`hstlc.plots.html.page`); the plot is embedded with :func:`hstlc.plots.html.embed`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from bokeh.layouts import column
from bokeh.model import Model
from bokeh.models.annotations import Legend, LegendItem
from bokeh.models.callbacks import CustomJS
from bokeh.models.glyphs import Line, Patches
from bokeh.models.plots import GridPlot
from bokeh.models.ranges import DataRange1d
from bokeh.models.renderers import DataRenderer, GlyphRenderer
from bokeh.models.sources import ColumnDataSource
from bokeh.models.tools import HoverTool, SaveTool, Toolbar, ToolProxy
from bokeh.models.ui import UIElement
from bokeh.models.widgets import Div
from bokeh.palettes import Category10_10
from bokeh.plotting import figure

from hstlc.io.lightcurve_file import Lightcurve
from hstlc.plots import html
from hstlc.plots.quicklook import break_gaps, curve_title, read_curve

#: Most bins a page shows before summing them (:func:`display_bins`).
MAX_POINTS = 20_000
_DAY = 86400.0
#: Each panel's tools (the grid's toolbar adds a save tool, :func:`_grid`).
_TOOLS = "xpan,xwheel_zoom,box_zoom,reset"
_HEIGHT = 200
_FLUX_UNIT = "erg/s/cm\u00b2/\u00c5"


@dataclass(frozen=True)
class DisplayBins:
    """The bins a page shows: the file's, or sums of ``factor`` consecutive ones.

    Attributes
    ----------
    factor : int
        File bins per shown bin (1: the file's own bins).
    step : float
        The file's bin step (s).
    dataset : ndarray
        Member of each shown bin.
    start, end : ndarray
        MJD of the start of each shown bin and of the end of its last file bin.
    bjd : ndarray or None
        BJD (TDB) of each shown bin's start (None: the file has no ``bjd_tdb``).
    gross, background : ndarray
        Counts per shown bin.
    exposure : ndarray
        Exposure of each shown bin (s).
    net, net_error : ndarray
        Net rate (count/s) and its 1-sigma error.
    flux, flux_error : ndarray
        Flux (erg/s/cm2/A) and its error (NaN when uncalibrated).
    """

    factor: int
    step: float
    dataset: np.ndarray
    start: np.ndarray
    end: np.ndarray
    bjd: np.ndarray | None
    gross: np.ndarray
    background: np.ndarray
    exposure: np.ndarray
    net: np.ndarray
    net_error: np.ndarray
    flux: np.ndarray
    flux_error: np.ndarray

    @property
    def width(self) -> float:
        """Length of a shown bin (s; the last one before a gap can be shorter)."""
        return self.factor * self.step

    @property
    def note(self) -> str:
        """What the page says about its bins."""
        if self.factor == 1:
            return f"Shown in the file's {self.step:g} s bins."
        return (f"Shown in {self.width:g} s bins (the file has {self.step:g} s bins): sums of "
                f"{self.factor} consecutive bins, never across a gap.")


def bin_step(lc: Lightcurve) -> float:
    """The file's bin step (s): STEPSIZE, else the median spacing of a member's bins."""
    step = lc.meta.get("step")
    if step:
        return float(step)
    spacings = [np.diff(np.sort(lc.times[lc.dataset == d])) for d in np.unique(lc.dataset)]
    positive = np.concatenate([np.zeros(0), *spacings])
    positive = positive[positive > 0]
    return float(np.median(positive)) if positive.size else 1.0


def _factor(run_lengths: np.ndarray, max_points: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, ... that leaves at most ``max_points`` bins (or one
    bin per run, when there are more runs than that)."""
    if run_lengths.sum() <= max_points:
        return 1
    factor, scale = 1, 1
    while True:
        for mantissa in (1, 2, 5):
            factor = mantissa * scale
            shown = int(np.sum(-(-run_lengths // factor)))
            if shown <= max_points or factor >= run_lengths.max():
                return factor
        scale *= 10


def display_bins(lc: Lightcurve, max_points: int = MAX_POINTS) -> DisplayBins:
    """The bins to show for ``lc``: its own, or sums within runs (see the module docstring).

    Examples
    --------
    >>> nan = np.full(6, np.nan)
    >>> lc = Lightcurve(bins=[2.0] * 6, times=[0, 2, 4, 100, 102, 104],
    ...                 mjd=58000 + np.array([0, 2, 4, 100, 102, 104]) / 86400,
    ...                 gross=[1.0] * 6, counts=[1.0] * 6, net=[0.5] * 6, flux=nan,
    ...                 flux_error=nan, background=[0.0] * 6, error=[1.0] * 6, dataset=[1] * 6,
    ...                 meta={"step": 2.0})
    >>> shown = display_bins(lc, max_points=4)
    >>> shown.factor, shown.gross.tolist(), shown.net.tolist()
    (2, [2.0, 1.0, 2.0, 1.0], [0.5, 0.5, 0.5, 0.5])
    """
    step = bin_step(lc)
    order = np.lexsort((lc.mjd, lc.dataset))
    mjd, dataset = lc.mjd[order], lc.dataset[order]
    new_run = np.concatenate([[True], (dataset[1:] != dataset[:-1])
                              | ((mjd[1:] - mjd[:-1]) * _DAY > 1.5 * step)])
    run_starts = np.flatnonzero(new_run)
    lengths = np.diff(np.append(run_starts, mjd.size))
    factor = _factor(lengths, max_points) if mjd.size else 1
    position = np.arange(mjd.size) - np.repeat(run_starts, lengths)
    starts = np.flatnonzero(position % factor == 0)
    last = np.append(starts[1:], mjd.size)[: starts.size] - 1  # last file bin of each
    bins, error = lc.bins[order], lc.error[order]
    flux, flux_error = lc.flux[order], lc.flux_error[order]

    def total(values: np.ndarray) -> np.ndarray:
        return np.add.reduceat(values, starts) if starts.size else values[:0]

    exposure = total(bins)
    with np.errstate(divide="ignore", invalid="ignore"):
        if factor == 1:
            net, net_error = lc.net[order], np.where(bins > 0, error / bins, np.nan)
        else:
            net = np.where(exposure > 0, total(lc.counts[order]) / exposure, np.nan)
            net_error = np.where(exposure > 0, np.sqrt(total(error ** 2)) / exposure, np.nan)
            flux = np.where(exposure > 0, total(flux * bins) / exposure, np.nan)
            flux_error = np.where(exposure > 0,
                                  np.sqrt(total((flux_error * bins) ** 2)) / exposure, np.nan)
    bjd = lc.bjd_tdb[order][starts] if lc.bjd_tdb is not None else None
    return DisplayBins(factor, step, dataset[starts], mjd[starts], mjd[last] + step / _DAY, bjd,
                       total(lc.gross[order]), total(lc.background[order]), exposure, net,
                       net_error, flux, flux_error)


def _member_data(shown: DisplayBins, rows: np.ndarray) -> dict[str, np.ndarray]:
    """The columns of one member, broken with NaN at every gap (x: MJD of bin starts)."""
    start, end = shown.start[rows], shown.end[rows]
    values = {name: getattr(shown, name)[rows]
              for name in ("gross", "background", "net", "net_error", "flux", "flux_error")}
    if shown.bjd is not None:
        values["bjd"] = shown.bjd[rows]
    data: dict[str, np.ndarray] = {}
    x = start
    for name, column_values in values.items():
        x, broken = break_gaps(start, column_values, shown.step / _DAY, ends=end)
        data[name] = broken if name == "bjd" else broken.astype(np.float32)
    data["x"] = x
    return data


def _band(x: np.ndarray, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One polygon per stretch of finite values, separated by NaN (where Bokeh's patches
    split): its x and y."""
    finite = np.isfinite(x) & np.isfinite(low) & np.isfinite(high)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], finite.astype(np.int8), [0]])))
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        xs += [x[a:b], x[a:b][::-1], np.array([np.nan])]
        ys += [low[a:b], high[a:b][::-1], np.array([np.nan])]
    if not xs:
        return np.zeros(0), np.zeros(0, np.float32)
    return np.concatenate(xs)[:-1], np.concatenate(ys)[:-1].astype(np.float32)


def _bands(columns: Mapping[str, np.ndarray],
           specs: tuple[tuple[str, str, str, str | None], ...]) -> ColumnDataSource:
    """A member's error bands, one patch each: ``<name>_xs``, ``<name>_ys`` for the panels
    with an error column (one source for all: a source is three models on the page)."""
    data: dict[str, list[np.ndarray]] = {}
    for name, _, _, error in specs:
        if error is not None:
            x, y = _band(columns["x"], columns[name] - columns[error],
                         columns[name] + columns[error])
            data[f"{name}_xs"], data[f"{name}_ys"] = [x], [y]
    return ColumnDataSource(data)


def member_label(dataset: int, meta: Mapping[str, object]) -> str:
    """``<dataset>: <rootname>`` when the metadata list the members, else ``dataset <n>``.

    Examples
    --------
    >>> member_label(2, {"members": ["lb1c01abq", "lb1c01aaq"]}), member_label(2, {})
    ('2: lb1c01aaq', 'dataset 2')
    """
    members = meta.get("members")
    if isinstance(members, (list, tuple)) and 0 < dataset <= len(members):
        return f"{dataset}: {members[dataset - 1]}"
    return f"dataset {dataset}"


#: The panels: (column, y label, hover text, error column).
_PANELS = (
    ("gross", "gross (counts per bin)", "@gross{%.1f} counts", None),
    ("background", "background (counts per bin)", "@background{%.2f} counts", None),
    ("net", "net (count/s)", "@net{%.4g} \u00b1 @net_error{%.2g} count/s", "net_error"),
    ("flux", f"flux ({_FLUX_UNIT})", f"@flux{{%.3e}} \u00b1 @flux_error{{%.2e}} {_FLUX_UNIT}",
     "flux_error"),
)


def _hover(name: str, text: str, renderers: list[GlyphRenderer], bjd: bool,
           composite: bool) -> HoverTool:
    """The hover tool of one panel: member, MJD, BJD (TDB) and the value with its unit."""
    tooltips = ([("member", "$name")] if composite else []) + [
        ("MJD (bin start)", "@x{%.6f}"), ("BJD (TDB)", "@bjd{%.6f}" if bjd else "n/a"),
        (name, text)]
    formatters: dict[str, Any] = {f"@{field}": "printf"
                                  for field in ("x", "bjd", name, f"{name}_error")}
    hovered: list[DataRenderer] = list(renderers)
    return HoverTool(tooltips=tooltips, formatters=formatters, renderers=hovered, mode="vline",
                     description=f"Hover: {name}")


def _panel(spec: tuple[str, str, str, str | None], sources: list[tuple[str, ColumnDataSource]],
           bands: list[ColumnDataSource], x_range: DataRange1d, bjd: bool,
           ) -> tuple[figure, list[list[GlyphRenderer]]]:
    """One panel: a line per member (and its error band); the renderers per member.

    Glyphs are added with ``add_glyph``: ``plot.line`` would also make a non-selection and
    a muted glyph each, which no page can show (no selection tool; legends hide).
    """
    name, label, text, error = spec
    y_range = DataRange1d(only_visible=True)
    plot = figure(x_range=x_range, y_range=y_range, height=_HEIGHT,
                  sizing_mode="stretch_width", tools=_TOOLS, active_drag="xpan",
                  active_scroll="xwheel_zoom", y_axis_label=label)
    lines: list[GlyphRenderer] = []
    per_member: list[list[GlyphRenderer]] = []
    composite = len(sources) > 1
    for k, ((member, source), band) in enumerate(zip(sources, bands, strict=True)):
        colour = Category10_10[k % 10] if composite else "black"
        drawn: list[GlyphRenderer] = []
        if error is not None:
            drawn.append(plot.add_glyph(band, Patches(
                xs=f"{name}_xs", ys=f"{name}_ys", fill_color=colour if composite else "steelblue",
                fill_alpha=0.25, line_alpha=0.0)))
        line = plot.add_glyph(source, Line(x="x", y=name, line_color=colour, line_width=1.0),
                              name=member)
        lines.append(line)
        drawn.append(line)
        per_member.append(drawn)
    ranged: list[Model] = list(lines)
    y_range.renderers = ranged  # the bands (huge near empty bins) do not set the y range
    plot.add_tools(_hover(name, text, lines, bjd, composite))
    plot.toolbar.logo = None
    return plot, per_member


def _grid(panels: list[figure]) -> GridPlot:
    """The panels in one column under one toolbar, as ``bokeh.layouts.gridplot`` makes it:
    a proxy per tool for all panels, a hover per panel, one save tool.

    Built here because ``gridplot`` searches every model of each panel for toolbars and
    compares every property of every tool, a tenth of a page.
    """
    *shared, hovers = zip(*(plot.toolbar.tools for plot in panels), strict=True)
    proxies = [ToolProxy(tools=list(tools)) for tools in shared]
    toolbar = Toolbar(tools=[*proxies, SaveTool(), *(ToolProxy(tools=[hover]) for hover in hovers)],
                      logo=None, active_drag=proxies[0], active_scroll=proxies[1])
    for plot in panels:
        plot.toolbar_location = None
    return GridPlot(children=[(plot, row, 0) for row, plot in enumerate(panels)], toolbar=toolbar,
                    toolbar_location="right", sizing_mode="stretch_width")


def lightcurve_layout(lc: Lightcurve, title: str, *, max_points: int = MAX_POINTS) -> UIElement:
    """The interactive plot of ``lc`` (see the module docstring).

    Parameters
    ----------
    lc : Lightcurve
        An individual or composite lightcurve.
    title : str
        Shown above the panels.
    max_points : int
        Most bins drawn; more are summed (:func:`display_bins`).

    Returns
    -------
    bokeh layout
        A column: the title and the note on the bins, then the panels in a grid with one
        toolbar.
    """
    shown = display_bins(lc, max_points)
    members = [int(d) for d in np.unique(shown.dataset)]
    data = [_member_data(shown, shown.dataset == d) for d in members]
    sources = [(member_label(d, lc.meta), ColumnDataSource(columns))
               for d, columns in zip(members, data, strict=True)]
    calibrated = bool(np.isfinite(lc.flux).any())
    specs = _PANELS[:4 if calibrated else 3]
    bands = [_bands(columns, specs) for columns in data]
    x_range = DataRange1d(range_padding=0.01)
    panels, renderers = [], []
    for spec in specs:
        plot, drawn = _panel(spec, sources, bands, x_range, shown.bjd is not None)
        panels.append(plot)
        renderers.append(drawn)
    panels[-1].xaxis.axis_label = "MJD (bin start)"
    grid = _grid(panels)
    if len(members) > 1:
        _legend(panels[0], [label for label, _ in sources], renderers)
    header = [Div(text=f"<b>{html.escape(title)}</b><br>{html.escape(shown.note)}")]
    if not calibrated:
        header.append(Div(text="Flux: none, this lightcurve is not flux-calibrated."))
    return column(*header, grid, sizing_mode="stretch_width")


def _legend(plot: figure, labels: list[str], renderers: list[list[list[GlyphRenderer]]]) -> None:
    """A click-to-hide legend on ``plot`` whose entries hide the member in every panel."""
    items = []
    for k, label in enumerate(labels):
        own = renderers[0][k]
        others = [other for panel in renderers[1:] for other in panel[k]]
        for source_renderer in own:
            # One callback per member for all its other renderers (``js_link`` makes one
            # model per pair).
            source_renderer.js_on_change("visible", CustomJS(
                args={"others": others}, code="for (const other of others) other.visible = this.visible"))
        items.append(LegendItem(label=label, renderers=own))
    legend = Legend(items=items, click_policy="hide", orientation="horizontal",
                    ncols=min(len(items), 6), label_text_font_size="8pt")
    plot.add_layout(legend, "above")


def _facts(lc: Lightcurve) -> str:
    """The facts list of a page (HTML)."""
    meta = lc.meta
    members = np.unique(lc.dataset)
    facts = [(label, meta.get(key)) for label, key in (
        ("target", "targname"), ("instrument", "instrument"), ("detector", "detector"),
        ("grating", "opt_elem"), ("cenwave", "cenwave"), ("aperture", "aperture"),
        ("flux calibration", "fluxcal"))]
    facts += [("bins", f"{len(lc)} ({float(np.sum(lc.bins)):.1f} s exposed)"),
              ("step", f"{bin_step(lc):g} s")]
    if members.size > 1:
        names = meta.get("members")
        listed = ", ".join(map(str, names)) if isinstance(names, (list, tuple)) else ""
        facts.append(("members", f"{members.size}" + (f": {listed}" if listed else "")))
    if len(lc):
        end = float(np.max(lc.mjd + lc.bins / _DAY))
        facts.append(("MJD", f"{float(np.min(lc.mjd)):.5f} \u2013 {end:.5f}"))
    rows = "\n".join(f"<dt>{html.escape(label)}</dt><dd>{html.escape(str(value))}</dd>"
                     for label, value in facts if value not in (None, ""))
    return f'<dl class="facts">\n{rows}\n</dl>'


def _links(links: Mapping[str, str]) -> str:
    """The caller's links (label -> URL relative to the page), escaped."""
    if not links:
        return ""
    items = "\n".join(f'<li><a href="{html.escape(url)}">{html.escape(label)}</a></li>'
                      for label, url in links.items())
    return f'<ul class="links">\n{items}\n</ul>'


def write_lightcurve_page(curve: Path, page_path: Path, *, site: Path,
                          links: Mapping[str, str] | None = None) -> Path:
    """Write the interactive page of the lightcurve file ``curve`` (atomically).

    Parameters
    ----------
    curve : Path
        A lightcurve or composite file.
    page_path : Path
        The page to write, inside the site.
    site : Path
        The site's root (its ``static/`` holds Bokeh's script).
    links : mapping, optional
        Label -> URL relative to the page ("FITS file", "periodogram", ...).

    Raises
    ------
    UnreadableFileError
        ``curve`` cannot be read.
    """
    curve, page_path = Path(curve), Path(page_path)
    lc = read_curve(curve)
    title = curve_title(curve.name, lc.meta)
    script, (div,) = html.embed([lightcurve_layout(lc, title)])
    body = "\n".join([_facts(lc), _links(links or {}), div, script])
    name = str(lc.meta.get("targname") or "").strip()
    document = html.page(f"{name}: {curve.name}" if name else curve.name, body, path=page_path,
                         site=Path(site), bokeh=True)
    return html.write_page(page_path, document)


__all__ = ["MAX_POINTS", "DisplayBins", "bin_step", "display_bins", "lightcurve_layout",
           "member_label", "write_lightcurve_page"]
