"""Per-lightcurve pictures and pages: the periodogram PNG, the interactive Bokeh page and the
quicklook of composites, on synthetic files with injected signals."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest
from bokeh.core.validation.check import check_integrity
from bokeh.embed import components
from bokeh.models import GlyphRenderer, HoverTool, Legend, SaveTool, ToolProxy
from bokeh.models.glyphs import Line, Patches
from builders import build_cos_nuv
from matplotlib.image import imread

from hstlc.errors import UnreadableFileError
from hstlc.extraction.composite import make_composite
from hstlc.extraction.extract import extract_lightcurve
from hstlc.io.lightcurve_file import read_lightcurve, write_lightcurve
from hstlc.plots.html import BOKEH_JS, embed
from hstlc.plots.lightcurve_page import display_bins, lightcurve_layout, write_lightcurve_page
from hstlc.plots.periodogram_plot import BEST_GID, FAP_LEVELS, draw_periodogram, plot_periodogram
from hstlc.plots.quicklook import draw_quicklook, plot_quicklook
from hstlc.variability import compute_stats
from hstlc.variability.periodogram import (
    multivisit_false_alarm_level,
    multivisit_fap,
    periodogram,
    search_periodogram,
    search_periods,
)
from hstlc.variability.stats import period_search_input

PERIOD = 120.0  # s, the injected sinusoid
GAP = (1400.0, 1600.0)  # s since EXPSTART, the GTI gap of the files below
HLSP = {"hlsp_name": "HSTLC", "hlsp_lead": "hstlc team", "proposid": "HSTLC"}


def _curve(folder, rootname, seed, **options):
    files = build_cos_nuv(folder, rootname=rootname, seed=seed, exptime=3000.0, source_rate=30.0,
                          gti=[(0.0, GAP[0]), (GAP[1], 3000.0)], **options)
    return write_lightcurve(extract_lightcurve(files["corrtag"], x1d=files["x1d"]),
                            folder / f"{rootname}_curve.fits")


@pytest.fixture(scope="module")
def periodic(tmp_path_factory):
    """A COS NUV lightcurve (2 s bins, a GTI gap) of a source varying by 30 % at 120 s."""
    return _curve(tmp_path_factory.mktemp("periodic"), "lb1c02nuq", 3,
                  sinusoid={"period": PERIOD, "amplitude": 0.3})


@pytest.fixture(scope="module")
def constant(tmp_path_factory):
    """The same exposure of a constant source."""
    return _curve(tmp_path_factory.mktemp("constant"), "lb1c03nuq", 4)


@pytest.fixture(scope="module")
def composite(tmp_path_factory):
    """A composite of two NUV exposures half a day apart (in memory: members named)."""
    folder = tmp_path_factory.mktemp("members")
    members = [build_cos_nuv(folder, rootname=root, seed=seed, exptime=600.0, expstart=start,
                             source_rate=20.0)["corrtag"]
               for root, seed, start in (("lb1c04nuq", 5, 58000.5), ("lb1c05nuq", 6, 58000.0))]
    return make_composite(members, folder / "out", step=2.0, **HLSP)


# ----------------------------------------------------------------------------- periodogram
def _visits_of(seed: int, n_visits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bins of 5 s, three 50-min orbits per visit, visits 10 days apart, a 300 s sinusoid."""
    rng = np.random.default_rng(seed)
    t = np.concatenate([v * 864000.0 + k * 5760.0 + np.arange(0.0, 3000.0, 5.0)
                        for v in range(n_visits) for k in range(3)])
    mean = 20.0 * 5.0 * (1 + 0.05 * np.sin(2 * np.pi * t / 300.0))
    return t, rng.poisson(mean) / 5.0, np.full(t.size, 5.0)


@pytest.mark.parametrize("n_visits", [1, 3])
def test_periodogram_is_the_curve_search_periods_refines(n_visits):
    times, rate, exposure = _visits_of(n_visits, n_visits)
    search = search_periods(times, rate, exposure)
    curve = periodogram(times, rate, exposure)
    assert repr(search_periodogram(curve)) == repr(search)  # one implementation, same numbers
    assert len(curve.visits) == search.n_visits == n_visits
    assert curve.frequency.size == search.n_frequencies
    step = curve.frequency[1] - curve.frequency[0]
    for name, fmin, fmax in curve.limits:
        inside = np.flatnonzero((curve.frequency >= fmin) & (curve.frequency <= fmax))
        z = curve.z[inside]
        local = inside[1:-1][(z[1:-1] >= z[:-2]) & (z[1:-1] >= z[2:])]
        highest = curve.frequency[local[np.argsort(curve.z[local])[::-1][:3]]]
        frequency = 1.0 / search.peak(name).period
        # refined within a grid step of one of the curve's highest maxima (in noise the
        # exact refinement can prefer the second or third)
        assert np.min(np.abs(highest - frequency)) <= step
        if n_visits == 1:  # one visit: Z grows with the power, so the peak tops the curve
            assert search.peak(name).power >= curve.power[inside].max() - 1e-6
    short = search.peak("short")  # the signal: at the curve's maximum
    inside = np.flatnonzero(curve.frequency <= 0.2)
    top = curve.frequency[inside[np.argmax(curve.z[inside])]]
    assert abs(1.0 / short.period - top) <= step
    assert short.period == pytest.approx(300.0, rel=0.005)


@pytest.mark.parametrize("n_visits", [1, 4, 20])
def test_false_alarm_levels_invert_the_probabilities(n_visits):
    for fap in FAP_LEVELS:
        z = multivisit_false_alarm_level(fap, n_visits, 0.1, 3e4)
        assert multivisit_fap(z, n_visits, 0.1, 3e4) == pytest.approx(fap, rel=1e-8)
    times, rate, exposure = _visits_of(7, 1)
    curve = periodogram(times, rate, exposure)
    model = curve.visits[0].model
    for fap in FAP_LEVELS:  # one visit: astropy's Baluev level, the inverse of the row's FAP
        level = curve.power_level(fap, 0.1)
        found = model.false_alarm_probability(level, method="baluev", maximum_frequency=0.1)
        assert float(found) == pytest.approx(fap, rel=1e-4)


def _marks(figure):
    """Per panel: (best period marked, FAP text, plotted periods and powers, level lines)."""
    marks = []
    for axis in figure.axes:
        best = [line for line in axis.get_lines() if line.get_gid() == BEST_GID]
        if not best:
            continue
        (label,) = [text for text in axis.texts if text.get_gid() == BEST_GID]
        (curve,) = [line for line in axis.get_lines() if line.get_label() == "mean power"]
        levels = {line.get_label(): line.get_ydata()[0] for line in axis.get_lines()
                  if line.get_label().startswith("FAP")}
        marks.append((best[0].get_xdata()[0], label.get_text(), curve.get_ydata(), levels))
    return marks


def _fap(text: str) -> float:
    found = re.search(r"FAP ([=<]) (\S+)$", text)
    assert found, text
    return float(found.group(2))


def test_marked_period_of_an_injected_sinusoid_is_the_stats_row(periodic):
    lc = read_lightcurve(periodic)
    figure = draw_periodogram(periodogram(*period_search_input(lc)), "sinusoid")
    (short, medium) = _marks(figure)  # the long range (1-10 h) is longer than the visit
    assert any("not searched" in text.get_text() for axis in figure.axes for text in axis.texts)
    period, text, power, levels = short
    assert period == pytest.approx(PERIOD, rel=0.02)
    assert _fap(text) < 1e-3
    assert power.max() > levels["FAP 0.1%"]
    row = compute_stats(lc)  # the plot shows what the stats row was computed from
    assert period == row.period_short and medium[0] == row.period_medium


def test_marked_periods_of_a_constant_source_are_no_alarms(constant):
    lc = read_lightcurve(constant)
    for _period, text, power, levels in _marks(draw_periodogram(
            periodogram(*period_search_input(lc)), "constant")):
        assert _fap(text) > 0.01
        assert power.max() < levels["FAP 1%"]  # the curve stays under its own 1 % level


def test_periodogram_png_of_files_with_and_without_enough_bins(periodic, tmp_path):
    png = plot_periodogram(periodic, tmp_path / "p.png")
    image = imread(png)
    assert image.shape[1] >= 850 and image[..., :3].std() > 0.05
    files = build_cos_nuv(tmp_path, rootname="lb1c06nuq", seed=8, exptime=30.0)
    short = write_lightcurve(extract_lightcurve(files["corrtag"], x1d=files["x1d"]),
                             tmp_path / "lb1c06nuq_curve.fits")
    assert compute_stats(read_lightcurve(short)).reason is not None  # too few bins
    assert imread(plot_periodogram(short, tmp_path / "short.png")).shape[0] > 200
    (tmp_path / "bad_curve.fits").write_bytes(b"not FITS")
    with pytest.raises(UnreadableFileError, match="bad_curve.fits: cannot read lightcurve"):
        plot_periodogram(tmp_path / "bad_curve.fits", tmp_path / "bad.png")
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".png") == ["p.png", "short.png"]


# ----------------------------------------------------------------------------- the page
def _renderers(layout, glyph):
    return [r for r in layout.select({"type": GlyphRenderer}) if isinstance(r.glyph, glyph)]


def test_page_lines_and_bands_break_in_the_gti_gap(periodic):
    lc = read_lightcurve(periodic)
    start = float(lc.meta["expstart"])
    low, high = (start + s / 86400.0 for s in GAP)
    layout = lightcurve_layout(lc, "gap")
    lines = _renderers(layout, Line)
    assert len(lines) == 4  # gross, background, net, flux: one member
    for line in lines:
        x = np.asarray(line.data_source.data["x"])
        y = np.asarray(line.data_source.data[line.glyph.y], float)
        inside = (x > low) & (x < high)
        assert inside.sum() == 1 and np.isnan(y[inside]).all()  # the break
        finite = np.isfinite(y)
        pairs = finite[:-1] & finite[1:]
        assert not np.any(pairs & (x[:-1] < low) & (x[1:] > high))  # no segment spans it
    bands = _renderers(layout, Patches)
    assert sorted(band.glyph.ys for band in bands) == ["flux_ys", "net_ys"]
    for band in bands:  # the error bands (net, flux)
        (xs,) = band.data_source.data[band.glyph.xs]
        (ys,) = band.data_source.data[band.glyph.ys]
        finite = np.isfinite(xs) & np.isfinite(ys)
        pairs = finite[:-1] & finite[1:]
        assert not np.any(pairs & (np.minimum(xs[:-1], xs[1:]) < low)
                          & (np.maximum(xs[:-1], xs[1:]) > high))
        assert not np.any(finite & (xs > low) & (xs < high))
    nan = np.full(len(lc), np.nan)  # uncalibrated: no flux panel, a note instead
    bare = lightcurve_layout(replace(lc, flux=nan, flux_error=nan, bjd_tdb=None), "bare")
    assert sorted(r.glyph.y for r in _renderers(bare, Line)) == ["background", "gross", "net"]
    assert "not flux-calibrated" in bare.children[1].text
    (hover, *_) = bare.select({"type": HoverTool})
    assert ("BJD (TDB)", "n/a") in hover.tooltips


def test_composite_page_has_one_colour_per_member(composite):
    lc = composite.lightcurve
    layout = lightcurve_layout(lc, "composite")
    plots = [child[0] for child in layout.children[-1].children]  # the panels, top down
    assert len(plots) == 4
    for plot in plots:
        lines = [r for r in plot.renderers if isinstance(r.glyph, Line)]
        assert len(lines) == 2  # one renderer per member, each its own colour and bins
        assert lines[0].glyph.line_color != lines[1].glyph.line_color
        assert lines[0].data_source is not lines[1].data_source
    lines = [r for r in plots[0].renderers if isinstance(r.glyph, Line)]
    (legend,) = layout.select({"type": Legend})
    assert legend.click_policy == "hide"
    labels = [item.label.value for item in legend.items]
    assert labels == ["1: lb1c05nuq", "2: lb1c04nuq"]  # EXPSTART order
    for line, dataset in zip(lines, (1, 2), strict=True):  # each member's own bins
        x = np.asarray(line.data_source.data["x"])
        member = lc.mjd[lc.dataset == dataset]
        assert np.nanmin(x) == member.min() and np.nanmax(x) == member.max()


def test_long_lightcurve_is_summed_for_display_and_keeps_its_counts(periodic):
    lc = read_lightcurve(periodic)
    shown = display_bins(lc, max_points=300)
    assert shown.factor == 5 and shown.gross.size <= 300
    assert "10 s bins (the file has 2 s bins)" in shown.note
    assert shown.gross.sum() == pytest.approx(lc.gross.sum(), rel=1e-12)
    assert shown.exposure.sum() == pytest.approx(lc.bins.sum(), rel=1e-12)
    assert np.sum(shown.net * shown.exposure) == pytest.approx(lc.counts.sum(), rel=1e-9)
    start = float(lc.meta["expstart"])
    low, high = (start + s / 86400.0 for s in GAP)
    assert not np.any((shown.start < low) & (shown.end > high))  # no sum across the gap
    layout = lightcurve_layout(lc, "summed", max_points=300)
    (gross,) = [r for r in _renderers(layout, Line) if r.glyph.y == "gross"]
    drawn = np.asarray(gross.data_source.data["gross"], float)
    assert np.isfinite(drawn).sum() == shown.gross.size
    assert np.nansum(drawn) == pytest.approx(lc.gross.sum(), rel=1e-6)
    assert "shown in 10 s bins" in layout.children[0].text.lower()  # the page says so


def test_written_page_is_offline_and_escapes_links(periodic, tmp_path):
    site = tmp_path / "site"
    page = site / "lightcurves" / "TEST-STAR" / "lb1c02nuq_curve.html"
    links = {"FITS file": "../../x&y.fits", "periodogram <png>": 'p"q.png'}
    written = write_lightcurve_page(periodic, page, site=site, links=links)
    text = written.read_text()
    assert f'<script src="../../static/{BOKEH_JS}"></script>' in text
    assert "http://" not in text and "https://" not in text
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:[a-z]+:)?//""", text, re.IGNORECASE)
    assert '<a href="../../x&amp;y.fits">FITS file</a>' in text
    assert '<a href="p&quot;q.png">periodogram &lt;png&gt;</a>' in text
    assert "Bokeh.embed.embed_items" in text and "<dt>grating</dt><dd>G185M</dd>" in text
    assert written.stat().st_size < 2e6
    (tmp_path / "bad_curve.fits").write_bytes(b"")
    with pytest.raises(UnreadableFileError, match="bad_curve.fits"):
        write_lightcurve_page(tmp_path / "bad_curve.fits", site / "bad.html", site=site)
    assert not (site / "bad.html").exists()


def _ids_renamed(text: str) -> str:
    """``text`` with Bokeh's model ids and uuids numbered in order of appearance."""
    ids: dict[str, str] = {}
    return re.sub(r"\bp\d+\b|[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}",
                  lambda found: ids.setdefault(found.group(0), f"id{len(ids)}"), text)


def test_pages_embed_what_components_would_and_pass_bokeh_validation(periodic, composite):
    # embed() skips Bokeh's document validation: the layouts must pass it here
    layouts = [lightcurve_layout(read_lightcurve(periodic), "one"),
               lightcurve_layout(composite.lightcurve, "two")]
    for layout in layouts:
        issues = check_integrity(layout.references())
        assert issues.error == [] and issues.warning == []
    script, divs = components([lightcurve_layout(read_lightcurve(periodic), "one"),
                               lightcurve_layout(composite.lightcurve, "two")])
    ours, our_divs = embed(layouts)
    assert len(our_divs) == 2 and 'data-root-id="p' in our_divs[0]
    assert _ids_renamed(ours) == _ids_renamed(script)
    assert [_ids_renamed(div) for div in our_divs] == [_ids_renamed(div) for div in divs]


def test_one_toolbar_drives_every_panel_and_the_legend_every_member(composite):
    layout = lightcurve_layout(composite.lightcurve, "composite")
    grid = layout.children[-1]
    plots = [child[0] for child in grid.children]
    tools = grid.toolbar.tools
    assert [type(tool) for tool in tools] == [ToolProxy] * 4 + [SaveTool] + [ToolProxy] * 4
    for proxy in tools[:4]:  # pan, wheel zoom, box zoom, reset: one proxy for all panels
        assert [plot.toolbar.tools.index(tool) for plot, tool in zip(plots, proxy.tools, strict=True)
                ] == [tools.index(proxy)] * 4
    for plot, proxy in zip(plots, tools[5:], strict=True):  # a hover per panel
        (hover,) = proxy.tools
        assert hover in plot.toolbar.tools and isinstance(hover, HoverTool)
    assert grid.toolbar.active_drag is tools[0] and grid.toolbar.active_scroll is tools[1]
    assert {plot.toolbar_location for plot in plots} == {None}
    (legend,) = layout.select({"type": Legend})
    for item in legend.items:  # clicking an entry hides the member's lines and bands everywhere
        member = item.renderers[0].name
        hidden = set(item.renderers)
        for renderer in item.renderers:
            for callback in renderer.js_property_callbacks["change:visible"]:
                hidden.update(callback.args["others"])
        drawn = [r for plot in plots for r in plot.renderers
                 if r.name == member or r.data_source in {x.data_source for x in hidden}]
        assert hidden == set(drawn) and len(drawn) == 6  # 4 lines, 2 bands


# ----------------------------------------------------------------------------- quicklook
def test_composite_quicklook_members_do_not_overlap(composite, tmp_path):
    figure = draw_quicklook(composite.lightcurve.columns(), "composite")
    for axis in figure.axes:
        spans = sorted((np.nanmin(line.get_xdata()), np.nanmax(line.get_xdata()))
                       for line in axis.get_lines())
        assert len(spans) == 2
        assert spans[0][1] < spans[1][0]  # the second member starts after the first ends
        assert spans[1][0] == pytest.approx(12.0, abs=0.1)  # hours since the first bin
    assert figure.axes[-1].get_xlabel() == "time since the first bin (h)"
    png = plot_quicklook(composite.path, tmp_path / "composite.png")
    assert imread(png)[..., :3].std() > 0.05
