"""The catalogue table page, its browser logic (under node) and the summary charts."""

from __future__ import annotations

import json
import logging
import math
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np
import pytest
from bokeh.embed import components
from bokeh.plotting import figure

from hstlc.plots import charts, table_page
from hstlc.plots.table_page import COLUMNS, LINKS, interesting, write_table_page

SCRIPT = Path(table_page.__file__).with_name("static") / "catalogue.js"


def _row(name: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {column.key: None for column in COLUMNS} | {key: None for key in LINKS}
    row.update(lightcurve=name, kind="individual", targname="GJ 436", instrume="COS", detector="FUV",
               opt_elem="G130M", cenwave=1291, aperture="PSA", exptime=1800.0, total=1.5e5,
               mean=83.2, poisson_factor=1.1, pearson_r=0.02, pearson_p=0.4, period_best=320.5,
               fap=0.3, n_flares=0, excess_variance=-1e-4, deliver=True,
               thumbnail=f"../outputs/GJ%20436/{name}.png", page=f"lightcurves/{name}.html",
               periodogram=f"periodograms/{name}.html", fits=f"../outputs/GJ%20436/{name}.fits")
    row.update(values)
    return row


ROWS = [
    _row("la1_curve"),
    _row("la2_curve", targname="<script>alert('x')</script> & co", fap=float("nan"),
         pearson_p=float("inf"), thumbnail=None, periodogram=None),
    _row("la3_curve", kind="composite", targname="AU MIC", mean=None, n_flares=3, deliver=False),
]


class _Links(HTMLParser):
    """The src and href attributes of a document."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls.extend((tag, name, value or "") for name, value in attrs if name in ("src", "href"))


def _urls(document: str) -> list[tuple[str, str, str]]:
    parser = _Links()
    parser.feed(document)
    return parser.urls


def _read_data(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8").strip()
    prefix = f"window.{table_page.DATA_GLOBAL} = "
    assert text.startswith(prefix) and text.endswith(";")
    return json.loads(text[len(prefix):-1])


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def test_table_page_writes_data_and_page(tmp_path: Path) -> None:
    site = tmp_path / "site"
    page = site / "tables" / "catalogue.html"
    written = write_table_page(page, ROWS, site=site, title="All lightcurves",
                               intro="poisson factor >= 3 & fap <= 1e-3")
    data_file = site / "tables" / "catalogue-data.js"
    assert written == [data_file, page]
    assert sorted(path.name for path in page.parent.iterdir()) == ["catalogue-data.js", "catalogue.html"]

    data = _read_data(data_file)
    assert [column["key"] for column in data["columns"]] == [column.key for column in COLUMNS]
    assert data["keys"] == [column.key for column in COLUMNS] + list(LINKS)
    assert [dict(zip(data["keys"], values, strict=True)) for values in data["rows"]] == [
        {key: _finite(value) for key, value in row.items()} for row in ROWS]

    document = page.read_text(encoding="utf-8")
    assert "<script>alert" not in document and "&lt;=" in document and "&amp; fap" in document
    assert "<noscript>" in document and 'id="catalogue-root"' in document
    urls = _urls(document)
    assert not [url for _, _, url in urls if url.lower().startswith(("http:", "https:", "//"))]
    scripts = [url for tag, _, url in urls if tag == "script"]
    assert scripts == ["./catalogue-data.js", "../static/catalogue.js"]
    assert (page.parent / unquote(scripts[0])).resolve() == data_file.resolve()
    assert (page.parent / scripts[1]).resolve() == (site / "static" / "catalogue.js").resolve()


def test_table_data_converts_numpy_and_refuses_objects() -> None:
    row = _row("la4_curve", cenwave=np.int64(1291), exptime=np.float32(12.5), fap=np.float64("nan"),
               deliver=np.bool_(True), lightcurve=np.str_("la4_curve"))
    values = dict(zip(table_page.table_data([row])["keys"], table_page.table_data([row])["rows"][0],
                      strict=True))
    assert [values[key] for key in ("cenwave", "exptime", "fap", "deliver")] == [1291, 12.5, None, True]
    assert type(values["cenwave"]) is int and type(values["deliver"]) is bool
    with pytest.raises(TypeError, match="'mean'"):
        table_page.table_data([_row("la5_curve", mean=object())])


def test_table_page_name_with_space(tmp_path: Path) -> None:
    page = tmp_path / "variable stars.html"
    write_table_page(page, ROWS[:1], site=tmp_path, title="Variable")
    assert (tmp_path / "variable stars-data.js").is_file()
    scripts = [url for tag, _, url in _urls(page.read_text()) if tag == "script"]
    assert scripts[0] == "./variable%20stars-data.js"


def _names(rows: list[Any]) -> list[str]:
    return [row["lightcurve"] for row in rows]


def test_interesting_thresholds_and_order() -> None:
    rows = [
        _row("quiet", poisson_factor=1.0, fap=0.5, n_flares=0),
        _row("variable", poisson_factor=4.0, fap=0.5, n_flares=0),
        _row("more_variable", poisson_factor=8.0, fap=None, n_flares=None),
        _row("periodic", poisson_factor=1.0, fap=1e-4, n_flares=0),
        _row("flaring", poisson_factor=1.0, fap=0.2, n_flares=2),
        _row("all_three", poisson_factor=3.0, fap=1e-3, n_flares=1),
        _row("missing", poisson_factor=None, fap=float("nan"), n_flares=None),
        _row("two", poisson_factor=5.0, fap=1e-6, n_flares=0),
    ]
    limits = {"poisson_factor_min": 3.0, "fap_max": 1e-3, "flares_min": 1}
    assert _names(interesting(rows, **limits)) == [
        "all_three", "two", "periodic", "flaring", "variable", "more_variable"]
    # each threshold alone
    assert set(_names(interesting(rows, poisson_factor_min=3.0, fap_max=-1.0, flares_min=99))) == {
        "variable", "more_variable", "all_three", "two"}
    assert _names(interesting(rows, poisson_factor_min=math.inf, fap_max=1e-3, flares_min=99)) == [
        "two", "periodic", "all_three"]
    assert _names(interesting(rows, poisson_factor_min=math.inf, fap_max=-1.0, flares_min=1)) == [
        "all_three", "flaring"]
    assert interesting([_row("none", poisson_factor=None, fap=None, n_flares=None)],
                       poisson_factor_min=-math.inf, fap_max=math.inf, flares_min=0) == []


SUMMARY = charts.SummaryInputs(
    exposure_by_target={f"TARGET-{i:02d}": 1000.0 * (i + 1) for i in range(40)} | {"GJ 436": 90000.0},
    configurations=[("COS", "FUV", "G130M", 1291, 120), ("COS", "FUV", "G130M", 1222, 30),
                    ("COS", "FUV", "G160M", 1577, 50), ("COS", "NUV", "G230L", 2950, 12),
                    ("STIS", "NUV-MAMA", "G230L", 2376, 8), ("STIS", "NUV-MAMA", "E230M", 2269, 2)],
    refusals={"too_few_counts": 4, "no_gti": 1})


def _figure(layout: Any, name: str) -> Any:
    (found,) = layout.select({"type": figure, "name": name})
    return found


def _wedges(plot: Any) -> dict[str, list[Any]]:
    sources = [renderer.data_source for renderer in plot.renderers if "angle" in renderer.data_source.data]
    return sources[0].data if sources else {}


def test_summary_layout_realistic(caplog: pytest.LogCaptureFixture) -> None:
    layout = charts.summary_layout(SUMMARY, top_n=10)
    names = {plot.name for plot in layout.select({"type": figure})}
    assert names == {"exposure", "gratings", "refusals", "donut COS FUV", "donut COS NUV",
                     "donut STIS FUV-MAMA", "donut STIS NUV-MAMA"}
    cos_fuv = _wedges(_figure(layout, "donut COS FUV"))
    assert cos_fuv["label"] == ["G130M/1222", "G130M/1291", "G160M/1577"]
    assert cos_fuv["count"] == [30, 120, 50]
    for name in ("donut COS FUV", "donut COS NUV", "donut STIS NUV-MAMA"):
        assert math.isclose(sum(_wedges(_figure(layout, name))["angle"]), 2 * math.pi)
    assert _wedges(_figure(layout, "donut STIS FUV-MAMA")) == {}
    assert "no lightcurves" in str(_figure(layout, "donut STIS FUV-MAMA").renderers[0].data_source.data)

    exposure = _figure(layout, "exposure").renderers[0].data_source.data
    assert exposure["target"] == ["GJ 436"] + [f"TARGET-{i:02d}" for i in range(39, 30, -1)]
    assert exposure["hours"][0] == 25.0
    gratings = _figure(layout, "gratings").renderers[0].data_source.data
    assert gratings["grating"] == ["E230M", "G130M", "G160M", "G230L"]
    assert (gratings["COS"], gratings["STIS"]) == ([0, 150, 50, 12], [2, 0, 0, 8])
    with caplog.at_level(logging.WARNING, logger="bokeh"):
        components(layout)
    assert not caplog.records


def test_summary_layout_empty_and_other_detectors() -> None:
    layout = charts.summary_layout(charts.SummaryInputs({}, [], {}))
    assert "no refusals" in str(_figure(layout, "refusals").renderers[0].data_source.data)
    assert "no lightcurves" in str(_figure(layout, "exposure").renderers[0].data_source.data)
    assert "no lightcurves" in str(_figure(layout, "gratings").renderers[0].data_source.data)
    other = charts.summary_layout(charts.SummaryInputs({}, [("ACS", "SBC", "F125LP", 0, 3)], {}))
    donuts = [plot.name for plot in other.select({"type": figure}) if plot.name.startswith("donut")]
    assert len(donuts) == 5 and "donut ACS SBC" in donuts


def test_summary_page_writes(tmp_path: Path) -> None:
    page = charts.write_summary_page(tmp_path / "summary.html", SUMMARY, site=tmp_path, top_n=5)
    document = page.read_text()
    scripts = [url for tag, _, url in _urls(document) if tag == "script"]
    assert scripts == [f"static/{name}" for name in charts.html.BOKEH_FILES]
    assert not [url for _, _, url in _urls(document) if url.lower().startswith(("http:", "https:"))]
    assert "top 5 of 41" in document and "<dt>files refused</dt><dd>5</dd>" in document
    assert [path.name for path in tmp_path.iterdir()] == ["summary.html"]


NODE_CHECK = r"""
const lib = require(process.argv[2]);
const out = {};
const columns = [{key: "name", heading: "name", kind: "text", format: ""},
                 {key: "x", heading: "x", kind: "number", format: ".2e"},
                 {key: "ok", heading: "ok", kind: "bool", format: ""}];
const keys = ["name", "x", "ok", "thumbnail", "page", "periodogram", "fits"];
const small = [["beta", 3, true], ["Alpha", null, false], ["gamma", 1e-4, null], ["delta", -2, true],
               [null, 10, true]].map((r) => r.concat([null, null, null, null]));
const m = new lib.TableModel({columns, keys, rows: small});
const names = () => m.visible.map((i) => small[i][0]);
m.sortBy("name"); out.textAsc = names();
m.sortBy("name"); out.textDesc = names(); out.desc = m.descending;
m.sortBy("x"); out.numAsc = names();
m.sortBy("x"); out.numDesc = names();
m.setSort(null);
const filters = {};
for (const f of [">3", ">=3", "<1e-3", "<=-2", "=3", "3", "-2..1", "1..-2", ">>3", "abc", "1..", "  "]) {
  out[f] = [m.setFilter("x", f), names()];
}
m.setFilter("x", "");
out.text = [m.setFilter("name", "ALP"), names()];
m.setFilter("name", "");
for (const f of ["yes", "No", "1", "false", "maybe"]) out["bool " + f] = [m.setFilter("ok", f), names()];
m.setFilter("ok", "");
out.format = [lib.formatNumber(0.000123456, ".2e"), lib.formatNumber(1234567, "d"),
              lib.formatNumber(2.5, ".1f"), lib.formatNumber(123456.7, ".4g"), lib.formatNumber(null, "d")];
out.safe = [lib.safeUrl("javascript:alert(1)"), lib.safeUrl("a%20b/c.html"), lib.safeUrl(null)];

const n = 50000;
const big = [];
for (let i = 0; i < n; i++) {
  big.push(["T" + ((i * 7919) % n), i % 97 === 0 ? null : Math.sin(i) * 1e3, i % 2 === 0,
            null, null, null, null]);
}
const b = new lib.TableModel({columns, keys, rows: big});
let t = Date.now();
b.sortBy("x"); b.sortBy("x"); b.sortBy("name");
out.sortMs = (Date.now() - t) / 3;
t = Date.now();
b.setFilter("x", "0..500");
out.filterMs = Date.now() - t;
out.filtered = b.visible.length;
out.pages = [b.pageCount(), b.pageRows().length];
b.setPageSize(500); b.setPage(3);
const hash = b.toHash();
const c = new lib.TableModel({columns, keys, rows: big});
c.fromHash("#" + hash);
out.hash = [hash, c.sortKey, c.descending, c.pageSize, c.page, c.visible.length === b.visible.length,
            c.pageRows()[0] === b.pageRows()[0]];
console.log(JSON.stringify(out));
"""


@pytest.mark.skipif(shutil.which("node") is None,
                    reason="node is not installed: the table's logic runs in browsers only")
def test_catalogue_js_logic_under_node(tmp_path: Path) -> None:
    check = tmp_path / "check.js"
    check.write_text(NODE_CHECK)
    done = subprocess.run([shutil.which("node") or "node", str(check), str(SCRIPT)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["textAsc"] == ["Alpha", "beta", "delta", "gamma", None]
    assert out["textDesc"] == ["gamma", "delta", "beta", "Alpha", None] and out["desc"] is True
    assert out["numAsc"] == ["delta", "gamma", "beta", None, "Alpha"]
    assert out["numDesc"] == [None, "beta", "gamma", "delta", "Alpha"]
    assert out[">3"] == ["ok", [None]] and out[">=3"] == ["ok", ["beta", None]]
    assert out["<1e-3"] == ["ok", ["gamma", "delta"]] and out["<=-2"] == ["ok", ["delta"]]
    assert out["=3"] == out["3"] == ["ok", ["beta"]]
    assert out["-2..1"] == out["1..-2"] == ["ok", ["gamma", "delta"]]
    all_rows = ["beta", "Alpha", "gamma", "delta", None]
    assert out[">>3"] == out["abc"] == out["1.."] == ["invalid", all_rows]
    assert out["  "] == ["none", all_rows]
    assert out["text"] == ["ok", ["Alpha"]]
    assert out["bool yes"] == out["bool 1"] == ["ok", ["beta", "delta", None]]
    assert out["bool No"] == out["bool false"] == ["ok", ["Alpha"]]
    assert out["bool maybe"] == ["invalid", all_rows]
    assert out["format"] == ["1.23e-4", "1,234,567", "2.5", "123500", ""]
    assert out["safe"] == [None, "a%20b/c.html", None]
    assert out["sortMs"] < 1000, out["sortMs"]
    assert out["filterMs"] < 500
    assert 0 < out["filtered"] < 50000 and out["pages"] == [math.ceil(out["filtered"] / 100), 100]
    assert out["hash"][1:] == ["name", False, 500, 3, True, True]
    assert "f-x=0..500" in out["hash"][0]
