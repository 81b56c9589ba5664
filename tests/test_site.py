"""The exploration site of a pipeline run: every page and chart, reachable from the index,
no broken link, re-rendered only where its inputs changed; the run's artifacts."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest

pytestmark = pytest.mark.usefixtures("prefect_harness")

#: (TARGNAME, the target's folder in the site, rootname) of each dataset.
INDIVIDUAL = {("GJ-436", "GJ436", "ld9m10ujq"), ("GJ-436", "GJ436", "ld9m10uyq"),
              ("NUV-STAR", "NUVSTAR", "lb1c02nuq"), ("STIS-STAR", "STISSTAR", "oc5r01abq"),
              ("STIS-STAR", "STISSTAR", "oc5r02abq")}
COMPOSITES = {("GJ436", "hlsp_hstlc_hst_cos-fuv_gj436_g130m_1291_psa_v1_sci"),
              ("NUVSTAR", "hlsp_hstlc_hst_cos-nuv_nuvstar_g185m_1882_psa_v1_sci"),
              ("STISSTAR", "hlsp_hstlc_hst_stis-nuv-mama_stisstar_g230l_2376_52x0.2_v1_sci"),
              ("STISSTAR", "hlsp_hstlc_hst_stis-fuv-mama_stisstar_g140l_1425_52x0.2_v1_sci")}


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.found.append(value)


def links_of(path: Path) -> list[Path]:
    """The local files a page (or a table's data script) links to."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".js":
        data = json.loads(text[text.index("{"): text.rindex("}") + 1])
        places = [data["keys"].index(key) for key in data["links"]]
        urls = [row[i] for row in data["rows"] for i in places if row[i] is not None]
    else:
        parser = _Links()
        parser.feed(text)
        urls = parser.found
    found = []
    for url in urls:
        parsed = urlparse(url)
        assert parsed.scheme in ("", "file"), f"{path.name} links off the disk: {url}"
        if parsed.path:
            found.append((path.parent / unquote(parsed.path)).resolve())
    return found


def crawl(index: Path) -> set[Path]:
    """Every local file reachable from ``index``; each link must lead to an existing file."""
    seen, todo = set(), [index.resolve()]
    while todo:
        page = todo.pop()
        if page in seen:
            continue
        seen.add(page)
        assert page.is_file(), f"broken link to {page}"
        if page.suffix == ".html" or page.name.endswith("-data.js"):
            todo.extend(links_of(page))
    return seen


def test_the_pipeline_writes_every_page_and_the_index_reaches_them(built_site):
    settings, summary = built_site
    site = Path(settings.plot_dir)
    assert summary["failed"] == {} and summary["plots"]["failed"] == {}
    assert summary["plots"]["index"] == str(site / "index.html")
    reached = crawl(site / "index.html")

    pages = {p.resolve() for p in site.rglob("*") if p.is_file()
             and not p.name.startswith(".") and p.parent.name != "static"}
    assert pages - reached == set(), "pages the index does not lead to"
    for targname, folder, root in INDIVIDUAL:
        curve = Path(settings.outputs_dir) / targname / f"{root}_curve.fits"
        for path in (curve, curve.with_suffix(".png"),
                     site / "lightcurves" / folder / f"{root}_curve.html",
                     site / "lightcurves" / folder / f"{root}_curve_periodogram.png"):
            assert path.resolve() in reached, path
    for target, stem in COMPOSITES:
        composite = Path(settings.composite_dir) / f"{stem}.fits"
        for path in (composite, composite.with_suffix(".png"),
                     site / "lightcurves" / target / f"{stem}.html",
                     site / "lightcurves" / target / f"{stem}_periodogram.png",
                     site / "targets" / f"{target}.html"):
            assert path.resolve() in reached, path
    for target, stem in COMPOSITES:  # a target page shows its composites' quicklooks
        assert f"{stem}.png" in (site / "targets" / f"{target}.html").read_text()
    for name in ("catalogue.html", "interesting.html", "summary.html", "targets.html"):
        assert (site / name).resolve() in reached

    # The catalogue table: one row per lightcurve, with its statistics.
    text = (site / "catalogue-data.js").read_text()
    data = json.loads(text[text.index("{"): text.rindex("}") + 1])
    keys = data["keys"]
    rows = [dict(zip(keys, row, strict=False)) for row in data["rows"]]
    assert len(rows) == len(INDIVIDUAL) + len(COMPOSITES)
    nuv = next(row for row in rows if row["lightcurve"] == "lb1c02nuq_curve.fits")
    assert nuv["targname"] == "NUV-STAR"  # as written; the folders use the normalised name
    assert nuv["instrume"] == "COS" and nuv["detector"] == "NUV" and nuv["exptime"] == pytest.approx(600.0)
    assert nuv["poisson_factor"] > 1.5  # the injected 60 s sinusoid, 50 % amplitude
    assert abs(nuv["period_best"] - 60.0) < 1.0 and nuv["fap"] < 1e-3
    flared = next(row for row in rows if row["lightcurve"] == "oc5r01abq_curve.fits")
    assert flared["n_flares"] >= 1

    # The summary charts: the four instrument donuts, exposure, gratings and refusals.
    summary_page = (site / "summary.html").read_text()
    for title in ("COS FUV", "COS NUV", "STIS FUV-MAMA", "STIS NUV-MAMA", "Unsupported product"):
        assert title in summary_page
    index = (site / "index.html").read_text()
    assert re.search(r"individual lightcurves</dt><dd>5<", index)
    assert re.search(r"composite lightcurves</dt><dd>4<", index)
    assert re.search(r"refused files</dt><dd>3<", index)


def test_a_second_run_renders_nothing_and_a_changed_lightcurve_only_its_pages(built_site, monkeypatch):
    from flows.plots import plots
    from hstlc.io.lightcurve_file import read_lightcurve, write_lightcurve

    settings, _ = built_site
    monkeypatch.setenv("HSTLC_HOME_DIR", str(settings.home_dir))
    site = Path(settings.plot_dir)
    before = {p: p.stat().st_mtime_ns for p in site.rglob("*") if p.is_file()}

    again = plots()
    assert again["rendered"] == 0 and again["site_pages"] == [] and again["failed"] == {}
    assert {p: p.stat().st_mtime_ns for p in site.rglob("*") if p.is_file()} == before

    curve = Path(settings.outputs_dir) / "NUV-STAR" / "lb1c02nuq_curve.fits"
    lc = read_lightcurve(curve)
    write_lightcurve(replace(lc, counts=lc.counts + 5.0 * (np.arange(lc.counts.size) < 10)), curve)
    changed = plots()
    assert changed["rendered"] == 3  # its page, its periodogram, its target's page
    assert changed["site_pages"] == []  # the tables show statistics, which did not change
    after = {p: p.stat().st_mtime_ns for p in site.rglob("*") if p.is_file()}
    rewritten = {p.relative_to(site).as_posix() for p in before if after.get(p) != before[p]}
    assert {"lightcurves/NUVSTAR/lb1c02nuq_curve.html",
            "lightcurves/NUVSTAR/lb1c02nuq_curve_periodogram.png",
            "targets/NUVSTAR.html"} <= rewritten
    assert not any(name.startswith(("lightcurves/GJ436", "lightcurves/STISSTAR", "targets/GJ"))
                   for name in rewritten)


def test_the_run_publishes_its_outcomes_the_most_variable_and_the_site(built_site):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    settings, summary = built_site
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(
            any_=["hstlc-run-outcomes", "hstlc-most-variable", "hstlc-site"])))
    # The latest of each key: the pipeline's (its ingest subflow published one before it).
    found = {artifact.key: artifact for artifact in sorted(artifacts, key=lambda a: a.created)}
    outcomes = found["hstlc-run-outcomes"].data
    outcomes = json.loads(outcomes) if isinstance(outcomes, str) else outcomes
    refused = {row["name"]: row["detail"] for row in outcomes if row["outcome"] == "refused"}
    assert set(refused) == set(summary["rejected"])
    assert {row["name"] for row in outcomes if row["outcome"] == "ingested"} == set(summary["ingested"])
    assert any(row["outcome"] == "stats computed" for row in outcomes)
    variable = found["hstlc-most-variable"].data
    variable = json.loads(variable) if isinstance(variable, str) else variable
    assert variable[0]["lightcurve"] in {"lb1c02nuq_curve.fits", "oc5r01abq_curve.fits"} or \
        variable[0]["poisson_factor"] >= max(row["poisson_factor"] or 0 for row in variable)
    assert found["hstlc-site"].data.startswith("file://") or "index.html" in str(found["hstlc-site"].data)


def test_many_pages_render_on_the_runs_cluster_to_the_same_site(built_site, monkeypatch):
    """From CLUSTER_WORK_S of pages on, the plots subflow renders on a local cluster of
    processes, to the same pages; fewer pages stay on threads."""
    from flows.plots import plots
    from hstlc.config import load_settings
    from hstlc.plots.site import read_manifest
    from tasks.runner import CLUSTER_WORK_S, PAGE_S, run_cluster, task_runner_for, work_of

    settings, _ = built_site
    monkeypatch.setenv("HSTLC_HOME_DIR", str(settings.home_dir))
    monkeypatch.setenv("HSTLC_WORKERS", "2")
    settings = load_settings()
    site = Path(settings.plot_dir)
    manifest = read_manifest(site)
    page = site / "lightcurves" / "GJ436" / "ld9m10ujq_curve.html"
    before = page.read_text()
    few = int(CLUSTER_WORK_S / PAGE_S) - 1
    with run_cluster(settings, work_of(pages=few)) as address:
        assert address is None
    with run_cluster(settings, work_of(pages=few + 2)) as address:
        assert address is not None
        again = plots.with_options(task_runner=task_runner_for(settings, address))(everything=True)
    assert again["failed"] == {} and again["rendered"] == len(manifest) - 5  # all but the site pages
    assert read_manifest(site) == manifest  # the same inputs, the same digests
    assert page.read_text().count("Bokeh") == before.count("Bokeh")
