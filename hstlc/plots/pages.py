"""The site's own pages: one per target, the list of targets, the tables, the summary
charts and ``index.html`` (what :mod:`hstlc.plots.site` plans and renders)."""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hstlc.catalogue.engine import engine_for, session_scope
from hstlc.catalogue.queries import catalogue_updated, refusal_counts
from hstlc.errors import HstlcError, UnreadableFileError
from hstlc.plots.html import embed, escape, install_static, link, page, table, write_page
from hstlc.plots.site import (
    Entry,
    PageJob,
    SiteConfig,
    digest,
    key_of,
    page_links,
    read_entries,
    read_manifest,
    target_page,
    update_manifest,
)

logger = logging.getLogger(__name__)

#: The site-level pages, relative to the site's root.
INDEX, CATALOGUE, INTERESTING, SUMMARY, TARGETS = (
    "index.html", "catalogue.html", "interesting.html", "summary.html", "targets.html")


@dataclass(frozen=True)
class SiteSummary:
    """What a site update found and wrote (``written``: site-level pages re-rendered)."""

    index: Path
    lightcurves: int
    targets: int
    interesting: int
    written: tuple[str, ...]


def _cell(value: Any, form: str = "{}") -> str:
    if value is None:
        return "&ndash;"
    return escape(form.format(value))


def write_target_page(path: Path, entries: Sequence[Entry], *, site: Path) -> Path:
    """One target's page: its lightcurves and composites (table with links), then each
    composite's interactive plot."""
    from hstlc.io.lightcurve_file import read_lightcurve
    from hstlc.plots.lightcurve_page import lightcurve_layout

    targname = " / ".join(sorted({entry.targname for entry in entries}))
    rows = []
    for entry in sorted(entries, key=lambda e: (e.kind != "composite", e.curve.name)):
        values = entry.values()
        # Every lightcurve whose file is there has its quicklook by the time this page is
        # read: the ingest writes it, or this run's first wave (a failure is named and the
        # next run writes it), so the page's digest need not depend on it.
        thumb = (f'<img class="thumb" loading="lazy" src="{escape(link(path, entry.quicklook))}" alt="">'
                 if entry.sha256 is not None else "")
        rows.append([
            thumb, f'<a href="{escape(link(path, entry.page(site)))}">{escape(entry.curve.name)}</a>',
            escape(entry.kind), _cell(values["instrume"]), _cell(values["detector"]),
            _cell(values["opt_elem"]), _cell(values["cenwave"]), _cell(values["aperture"]),
            _cell(values["exptime"], "{:.0f}"), _cell(values["poisson_factor"], "{:.2f}"),
            _cell(values["fap"], "{:.1e}"), _cell(values["n_flares"]),
            f'<a href="{escape(link(path, entry.periodogram(site)))}">periodogram</a> '
            f'<a href="{escape(link(path, entry.curve))}">FITS</a>'])
    body = [table(["", "lightcurve", "kind", "instrument", "detector", "grating", "cenwave",
                   "aperture", "exptime (s)", "poisson_factor", "FAP", "flares", "files"], rows)]
    layouts, names = [], []
    for entry in entries:
        if entry.kind != "composite" or entry.sha256 is None:
            continue
        try:
            layouts.append(lightcurve_layout(read_lightcurve(entry.curve), entry.curve.name))
        except (UnreadableFileError, OSError) as error:
            body.append(f'<p class="note">{escape(entry.curve.name)}: {escape(str(error))}</p>')
            continue
        names.append(entry.curve.name)
    head = ""
    if layouts:
        script, divs = embed(layouts)
        head = script
        for name, div in zip(names, divs, strict=True):
            body.append(f"<h2>Composite {escape(name)}</h2>\n{div}")
    else:
        body.append('<p class="note">No composite lightcurve for this target.</p>')
    return write_page(path, page(f"Target {targname}", "\n".join(body), path=path, site=site,
                                 bokeh=bool(layouts), head=head))


def render(job: PageJob, config: SiteConfig) -> None:
    """Write the page or picture of one job."""
    site = config.plot_dir
    (entry, *_) = job.entries
    if job.kind == "lightcurve":
        from hstlc.plots.lightcurve_page import write_lightcurve_page

        write_lightcurve_page(entry.curve, job.output, site=site, links=page_links(entry, site))
    elif job.kind == "periodogram":
        from hstlc.plots.periodogram_plot import plot_periodogram

        plot_periodogram(entry.curve, job.output, config.stats)
    elif job.kind == "quicklook":
        from hstlc.plots.quicklook import plot_quicklook

        plot_quicklook(entry.curve, job.output)
    else:
        write_target_page(job.output, job.entries, site=site)


def render_batch(jobs: Sequence[PageJob], config: SiteConfig) -> dict[str, Any]:
    """Render the jobs; ``{"written": {page: digest}, "failed": {page: error}}`` (pages
    relative to the site).  A page that fails is named with its error; the others go on."""
    written: dict[str, str] = {}
    failed: dict[str, str] = {}
    for job in jobs:
        key = key_of(config.plot_dir, job.output)
        try:
            render(job, config)
        except (HstlcError, OSError, ValueError) as error:
            if isinstance(error, OSError) and _disk_full(error):
                raise
            logger.warning("%s: %s", key, error)
            failed[key] = f"{type(error).__name__}: {error}"
        else:
            written[key] = job.digest
    return {"written": written, "failed": failed}


def _disk_full(error: OSError) -> bool:
    from hstlc.fs import full_disk_error

    return full_disk_error(error) is not None



def table_rows(entries: Sequence[Entry], page_path: Path, site: Path) -> list[dict[str, Any]]:
    """The catalogue table's rows: each entry's values and its links from ``page_path``."""
    rows = []
    for entry in entries:
        present = entry.sha256 is not None
        rows.append({**entry.values(),
                     "thumbnail": link(page_path, entry.quicklook) if entry.quicklook.exists() else None,
                     "page": link(page_path, entry.page(site)) if present else None,
                     "periodogram": link(page_path, entry.periodogram(site)) if present else None,
                     "fits": link(page_path, entry.curve) if present else None})
    return rows


def summary_inputs(entries: Sequence[Entry], refusals: Mapping[str, int]) -> Any:
    """The summary charts' inputs: exposure per target and lightcurves per setup (the
    individual lightcurves: one per dataset), refusals by reason."""
    from hstlc.plots.charts import SummaryInputs

    exposure: dict[str, float] = {}
    names: dict[str, str] = {}  # a target's name in the chart: its first spelling
    for entry in entries:
        names[entry.target] = min(names.get(entry.target, entry.targname), entry.targname)
    setups: Counter[tuple[str, str, str, int]] = Counter()
    for entry in entries:
        if entry.kind != "individual":
            continue
        seconds = float(entry.setup.get("exptime") or 0.0)
        name = names[entry.target]
        exposure[name] = exposure.get(name, 0.0) + seconds
        setups[(entry.setup["instrume"], entry.setup["detector"], entry.setup["opt_elem"],
                int(entry.setup["cenwave"]))] += 1
    return SummaryInputs(exposure_by_target=exposure,
                         configurations=[(*key, count) for key, count in sorted(setups.items())],
                         refusals=dict(refusals))


def write_site(database_url: str, config: SiteConfig, written: Mapping[str, str],
               entries: Sequence[Entry] | None = None) -> SiteSummary:
    """Write the site-level pages whose inputs changed (tables, summary, targets, index),
    copy the static files, and record ``written`` (the pages just rendered) and these in
    the manifest.  ``entries``: the catalogue's, when just read (else read here)."""
    from hstlc.plots.charts import write_summary_page
    from hstlc.plots.table_page import interesting, write_table_page

    site = config.plot_dir
    install_static(site)
    entries = read_entries(database_url) if entries is None else entries
    with session_scope(engine_for(database_url)) as session:
        refusals = refusal_counts(session)
        updated = catalogue_updated(session)
    manifest = {**read_manifest(site), **written}
    done: dict[str, str] = {}

    def needed(name: str, *parts: Any) -> str | None:
        key = digest(name, *parts)
        if (site / name).exists() and manifest.get(name) == key:
            return None
        done[name] = key
        return key

    rows = table_rows(entries, site / CATALOGUE, site)
    chosen = interesting(rows, poisson_factor_min=config.poisson_factor_min,
                         fap_max=config.fap_max, flares_min=config.flares_min)
    thresholds = (f"poisson_factor &ge; {config.poisson_factor_min:g}, or FAP &le; "
                  f"{config.fap_max:g}, or at least {config.flares_min} flare(s)")
    if needed(CATALOGUE, rows):
        write_table_page(site / CATALOGUE, rows, site=site, title="All lightcurves",
                         intro="Every lightcurve of the catalogue with its statistics.")
    if needed(INTERESTING, chosen, thresholds):
        write_table_page(site / INTERESTING, chosen, site=site, title="Interesting lightcurves",
                         intro=f"Lightcurves with {thresholds} (settings interesting_*).")
    inputs = summary_inputs(entries, refusals)
    if needed(SUMMARY, repr(inputs), config.top_targets):
        write_summary_page(site / SUMMARY, inputs, site=site, top_n=config.top_targets)
    targets: dict[str, list[Entry]] = {}
    for entry in entries:
        targets.setdefault(entry.target, []).append(entry)
    if needed(TARGETS, sorted((key, sorted(e.curve.name for e in group)) for key, group in targets.items())):
        _write_targets(site, targets)
    counts = _counts(entries, refusals, len(chosen), updated)
    if needed(INDEX, counts):
        _write_index(site, counts, thresholds)
    update_manifest(site, {**written, **done})
    return SiteSummary(site / INDEX, len(entries), len(targets), len(chosen), tuple(sorted(done)))


def _write_targets(site: Path, targets: Mapping[str, Sequence[Entry]]) -> Path:
    path = site / TARGETS
    rows = []
    for key, group in sorted(targets.items()):
        names = " / ".join(sorted({entry.targname for entry in group}))
        kinds = Counter(entry.kind for entry in group)
        rows.append([f'<a href="{escape(link(path, target_page(site, key)))}">{escape(names)}</a>',
                     str(kinds["individual"]), str(kinds["composite"])])
    body = (table(["target", "lightcurves", "composites"], rows) if rows
            else "<p>No lightcurve yet.</p>")
    return write_page(path, page(f"Targets ({len(targets)})", body, path=path, site=site))


def _counts(entries: Sequence[Entry], refusals: Mapping[str, int], interesting: int,
            updated: dt.datetime | None) -> dict[str, Any]:
    kinds = Counter(entry.kind for entry in entries)
    return {"catalogue updated": f"{updated:%Y-%m-%d %H:%M} UTC" if updated else "never",
            "individual lightcurves": kinds["individual"],
            "composite lightcurves": kinds["composite"],
            "targets": len({entry.target for entry in entries}),
            "with statistics": sum(entry.stats is not None and entry.stats.get("reason") is None
                                   for entry in entries),
            "interesting": interesting, "refused files": sum(refusals.values())}


def _write_index(site: Path, counts: Mapping[str, Any], thresholds: str) -> Path:
    path = site / INDEX
    facts = "\n".join(f"<dt>{escape(name)}</dt><dd>{escape(str(value))}</dd>"
                      for name, value in counts.items())
    links = [(CATALOGUE, "All lightcurves", "every lightcurve with its statistics: sort, filter"),
             (INTERESTING, "Interesting lightcurves", thresholds),
             (SUMMARY, "Summary charts", "exposure per target, gratings and cenwaves, refusals"),
             (TARGETS, "Targets", "one page per target, with its composites' plots")]
    items = "\n".join(f'<li><a href="{name}">{escape(label)}</a>: {note}</li>'
                      for name, label, note in links)
    body = f'<dl class="facts">\n{facts}\n</dl>\n<ul class="site-links">\n{items}\n</ul>'
    return write_page(path, page("hstlc lightcurves", body, path=path, site=site))


__all__ = ["CATALOGUE", "INDEX", "INTERESTING", "SUMMARY", "TARGETS", "SiteSummary", "render", "render_batch",
           "summary_inputs", "table_rows", "write_site", "write_target_page"]
