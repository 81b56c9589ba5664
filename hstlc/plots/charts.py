"""The summary charts of the catalogue: exposure, configurations, gratings, refusals.

Four Bokeh charts on one page (:func:`write_summary_page`), drawn from plain numbers
(:class:`SummaryInputs`) that the caller reads from the catalogue:

1. the cumulative exposure time of the top N targets (horizontal bars, in hours);
2. a donut of the grating/cenwave settings of each instrument and detector (COS FUV,
   COS NUV, STIS FUV-MAMA, STIS NUV-MAMA always, others after them);
3. the lightcurves of each grating, stacked by instrument;
4. the files refused, by ``bad_data`` reason.

Every chart says so when it has nothing to show ("no lightcurves", "no refusals").
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bokeh.embed import components
from bokeh.layouts import column, row
from bokeh.models import ColumnDataSource, DataRange1d, FactorRange, HoverTool, LayoutDOM, Range1d
from bokeh.models.annotations import Legend
from bokeh.models.renderers import DataRenderer
from bokeh.palettes import Category10, Category20, turbo
from bokeh.plotting import figure
from bokeh.transform import cumsum

from hstlc.plots import html

#: The (instrument, detector) donuts always drawn, in order, with their titles.
DONUT_PANELS: tuple[tuple[str, str], ...] = (
    ("COS", "FUV"), ("COS", "NUV"), ("STIS", "FUV-MAMA"), ("STIS", "NUV-MAMA"))
#: Seconds in an hour (the exposure chart is in hours).
HOUR = 3600.0
_NOTE_COLOUR = "#777777"
_BAR_COLOUR = "#1d3557"
_REFUSAL_COLOUR = "#c1121f"


@dataclass(frozen=True)
class SummaryInputs:
    """The numbers the summary charts show.

    Attributes
    ----------
    exposure_by_target : mapping of str to float
        Seconds of exposure per target (summed over its lightcurves).
    configurations : sequence of (str, str, str, int, int)
        ``(instrume, detector, opt_elem, cenwave, number of lightcurves)``.
    refusals : mapping of str to int
        ``bad_data`` reason -> number of files refused for it.
    """

    exposure_by_target: Mapping[str, float]
    configurations: Sequence[tuple[str, str, str, int, int]]
    refusals: Mapping[str, int]


def colours(n: int) -> list[str]:
    """``n`` distinct colours (Category10, Category20, then Turbo for more).

    Examples
    --------
    >>> len(colours(3)), len(colours(30)), colours(0)
    (3, 30, [])
    """
    if n <= 0:
        return []
    if n <= 10:
        return list(Category10[10][:n])
    if n <= 20:
        return list(Category20[20][:n])
    return list(turbo(n))


def _note(title: str, text: str, *, width: int, height: int, name: str) -> figure:
    """A chart with nothing to show: its title and ``text`` in the middle."""
    plot = figure(title=title, width=width, height=height, x_range=Range1d(start=-1, end=1),
                  y_range=Range1d(start=-1, end=1),
                  tools="", toolbar_location=None, name=name)
    plot.text(x=[0], y=[0], text=[text], text_align="center", text_baseline="middle",
              text_color=_NOTE_COLOUR, text_font_size="14px")
    plot.axis.visible = False
    plot.grid.grid_line_color = None
    return plot


def exposure_chart(exposure_by_target: Mapping[str, float], *, top_n: int = 25) -> figure:
    """Horizontal bars: the cumulative exposure (hours) of the ``top_n`` targets, the
    longest on top; the hover gives the exact seconds."""
    ranked = sorted(((str(target), float(seconds)) for target, seconds in exposure_by_target.items()
                     if math.isfinite(float(seconds)) and float(seconds) > 0),
                    key=lambda pair: (-pair[1], pair[0]))
    shown = ranked[:max(0, top_n)]
    title = f"Exposure time per target (top {len(shown)} of {len(ranked)})"
    if not shown:
        return _note(title, "no lightcurves", width=800, height=200, name="exposure")
    targets = [target for target, _ in shown]
    source = ColumnDataSource({"target": targets, "seconds": [seconds for _, seconds in shown],
                               "hours": [seconds / HOUR for _, seconds in shown]})
    plot = figure(title=title, x_range=DataRange1d(start=0), y_range=FactorRange(factors=targets[::-1]),
                  width=800, height=80 + 22 * len(shown), x_axis_label="exposure (hours)", tools="",
                  toolbar_location=None, name="exposure")
    bars = plot.hbar(y="target", right="hours", height=0.8, source=source, color=_BAR_COLOUR)
    plot.add_tools(HoverTool(renderers=[bars], tooltips=[
        ("target", "@target"), ("exposure", "@hours{0,0.00} h"), ("seconds", "@seconds{0,0.000} s")]))
    plot.ygrid.grid_line_color = None
    return plot


def donut_wedges(configurations: Sequence[tuple[str, str, str, int, int]]
                 ) -> dict[tuple[str, str], list[tuple[str, int]]]:
    """The wedges of each donut: ``(instrume, detector) -> [("grating/cenwave", count)]``.

    The four panels of :data:`DONUT_PANELS` come first (empty lists when they have no
    lightcurves), other pairs after them in alphabetical order.  Wedges are sorted by
    grating then cenwave; repeated settings are summed and empty ones dropped.

    Examples
    --------
    >>> wedges = donut_wedges([("COS", "FUV", "G130M", 1291, 3), ("COS", "FUV", "G130M", 1291, 1),
    ...                        ("COS", "FUV", "G160M", 1577, 2), ("ACS", "SBC", "F125LP", 0, 1)])
    >>> wedges[("COS", "FUV")], wedges[("STIS", "NUV-MAMA")], list(wedges)[-1]
    ([('G130M/1291', 4), ('G160M/1577', 2)], [], ('ACS', 'SBC'))
    """
    counts: dict[tuple[str, str], dict[tuple[str, int], int]] = defaultdict(lambda: defaultdict(int))
    for instrume, detector, opt_elem, cenwave, number in configurations:
        if number > 0:
            panel = (str(instrume).upper(), str(detector).upper())
            counts[panel][(str(opt_elem), int(cenwave))] += int(number)
    panels = list(DONUT_PANELS) + sorted(set(counts) - set(DONUT_PANELS))
    return {panel: [(f"{grating}/{cenwave}", number)
                    for (grating, cenwave), number in sorted(counts.get(panel, {}).items())]
            for panel in panels}


def donut_chart(title: str, wedges: Sequence[tuple[str, int]]) -> figure:
    """A donut of the ``(label, count)`` wedges; the hover gives the count and share."""
    name = f"donut {title}"
    total = sum(count for _, count in wedges)
    if total <= 0:
        return _note(title, "no lightcurves", width=420, height=320, name=name)
    source = ColumnDataSource({
        "label": [label for label, _ in wedges], "count": [count for _, count in wedges],
        "share": [count / total for _, count in wedges],
        "angle": [2 * math.pi * count / total for _, count in wedges],
        "colour": colours(len(wedges))})
    plot = figure(title=title, width=420, height=320, x_range=Range1d(start=-1.05, end=1.05),
                  y_range=Range1d(start=-1.05, end=1.05),
                  tools="", toolbar_location=None, match_aspect=True, name=name)
    plot.add_layout(Legend(label_text_font_size="9pt", spacing=0), "right")  # before the glyph: used by it
    ring = plot.annular_wedge(x=0, y=0, inner_radius=0.5, outer_radius=0.95,
                              start_angle=cumsum("angle", include_zero=True), end_angle=cumsum("angle"),
                              fill_color="colour", line_color="white", source=source, legend_field="label")
    plot.text(x=[0], y=[0], text=[f"{total:,}"], text_align="center", text_baseline="middle",
              text_font_size="16px")
    plot.add_tools(HoverTool(renderers=[ring], tooltips=[
        ("setting", "@label"), ("lightcurves", "@count{0,0}"), ("share", "@share{0.0%}")]))
    plot.axis.visible = False
    plot.grid.grid_line_color = None
    return plot


def gratings_chart(configurations: Sequence[tuple[str, str, str, int, int]]) -> figure:
    """Vertical bars: the lightcurves of each grating, stacked by instrument."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for instrume, _detector, opt_elem, _cenwave, number in configurations:
        if number > 0:
            counts[str(instrume).upper()][str(opt_elem)] += int(number)
    title = "Lightcurves per grating"
    instruments = sorted(counts)
    gratings = sorted({grating for by_grating in counts.values() for grating in by_grating})
    if not gratings:
        return _note(title, "no lightcurves", width=800, height=250, name="gratings")
    data: dict[str, list[str] | list[int]] = {"grating": gratings}
    data.update({instrume: [counts[instrume].get(grating, 0) for grating in gratings]
                 for instrume in instruments})
    plot = figure(title=title, x_range=FactorRange(factors=gratings), y_range=DataRange1d(start=0),
                  width=800, height=360, y_axis_label="lightcurves", tools="", toolbar_location=None,
                  name="gratings")
    bars = plot.vbar_stack(instruments, x="grating", width=0.8, source=ColumnDataSource(data),
                           color=colours(len(instruments)), legend_label=instruments)
    stacked: list[DataRenderer] = list(bars)
    plot.add_tools(HoverTool(renderers=stacked, tooltips="$name @grating: @$name{0,0} lightcurves"))
    plot.xgrid.grid_line_color = None
    plot.xaxis.major_label_orientation = 0.8
    plot.legend.location = "top_left"
    plot.legend.orientation = "horizontal"
    return plot


def refusals_chart(refusals: Mapping[str, int]) -> figure:
    """Horizontal bars: the files refused for each ``bad_data`` reason, most first."""
    ranked = sorted(((str(reason), int(files)) for reason, files in refusals.items() if files > 0),
                    key=lambda pair: (-pair[1], pair[0]))
    title = "Files refused, by reason"
    if not ranked:
        return _note(title, "no refusals", width=800, height=160, name="refusals")
    reasons = [reason for reason, _ in ranked]
    source = ColumnDataSource({"reason": reasons, "files": [files for _, files in ranked]})
    plot = figure(title=title, x_range=DataRange1d(start=0), y_range=FactorRange(factors=reasons[::-1]),
                  width=800, height=80 + 24 * len(ranked), x_axis_label="files", tools="",
                  toolbar_location=None, name="refusals")
    bars = plot.hbar(y="reason", right="files", height=0.8, source=source, color=_REFUSAL_COLOUR)
    plot.add_tools(HoverTool(renderers=[bars], tooltips="@reason: @files{0,0} files"))
    plot.ygrid.grid_line_color = None
    return plot


def summary_layout(inputs: SummaryInputs, *, top_n: int = 25) -> LayoutDOM:
    """The four summary charts in one column (the donuts two to a row).

    Each chart is a figure named ``exposure``, ``donut <INSTRUME> <DETECTOR>``,
    ``gratings`` or ``refusals`` (``layout.select(name=...)`` finds it).
    """
    donuts = [donut_chart(f"{instrume} {detector}", wedges)
              for (instrume, detector), wedges in donut_wedges(inputs.configurations).items()]
    donut_rows = [row(*donuts[start:start + 2]) for start in range(0, len(donuts), 2)]
    return column(exposure_chart(inputs.exposure_by_target, top_n=top_n), *donut_rows,
                  gratings_chart(inputs.configurations), refusals_chart(inputs.refusals))


def _facts(inputs: SummaryInputs) -> str:
    seconds = sum(float(value) for value in inputs.exposure_by_target.values() if math.isfinite(float(value)))
    facts = (("targets", f"{len(inputs.exposure_by_target):,}"),
             ("exposure", f"{seconds / HOUR:,.1f} hours"),
             ("lightcurves", f"{sum(max(0, int(entry[4])) for entry in inputs.configurations):,}"),
             ("files refused", f"{sum(max(0, int(n)) for n in inputs.refusals.values()):,}"))
    items = "".join(f"<dt>{html.escape(term)}</dt><dd>{html.escape(text)}</dd>" for term, text in facts)
    return f'<dl class="facts">{items}</dl>'


def write_summary_page(path: Path, inputs: SummaryInputs, *, site: Path, top_n: int = 25) -> Path:
    """Write the summary page (the charts of :func:`summary_layout`) atomically.

    Parameters
    ----------
    path : Path
        The page to write.
    inputs : SummaryInputs
        The numbers to show.
    site : Path
        The site's root (Bokeh's script is loaded from ``<site>/static/``).
    top_n : int
        How many targets the exposure chart shows.
    """
    script, div = components(summary_layout(inputs, top_n=top_n))
    body = f"{_facts(inputs)}\n{div}\n{script}\n"
    return html.write_page(Path(path), html.page("Summary of the catalogue", body, path=Path(path),
                                                 site=site, bokeh=True))


__all__ = ["DONUT_PANELS", "SummaryInputs", "colours", "donut_chart", "donut_wedges", "exposure_chart",
           "gratings_chart", "refusals_chart", "summary_layout", "write_summary_page"]
