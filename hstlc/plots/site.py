"""The exploration site: which pages the catalogue needs, which of them changed, writing them.

Layout under ``plot_dir``::

    index.html                      links to everything, run date and catalogue counts
    catalogue.html  interesting.html    the tables (their data beside: ``*-data.js``)
    summary.html  targets.html      the summary charts; every target
    targets/<TARGET>.html           one target: its lightcurves, its composites' plots
    lightcurves/<TARGET>/<stem>.html            interactive plot of one lightcurve
    lightcurves/<TARGET>/<stem>_periodogram.png
    static/                         Bokeh's JavaScript, the table's script, the style sheet

The quicklook PNG of a lightcurve sits beside its FITS file (``<stem>.png``), as the ingest
writes it for individual lightcurves; the site writes the composites' ones.

Incremental by content: every page is written from inputs whose digest (the lightcurve
file's sha256, the statistics shown, the links, :data:`SITE_VERSION`) is kept in
``.site-manifest.json``; a page is rendered again only when its digest changed or the
page is missing, so a nightly run over a large catalogue re-renders only what changed.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hstlc.catalogue.engine import engine_for, session_scope
from hstlc.catalogue.queries import lightcurve_setups, stats_rows
from hstlc.fs import atomic_path, safe_dirname
from hstlc.targets import normalize_targname
from hstlc.variability.stats import StatsConfig
from hstlc.variability.table import best_period, content_sha256

logger = logging.getLogger(__name__)

#: Bumped whenever a renderer changes what it writes: every page is then rendered again.
SITE_VERSION = "1"
MANIFEST = ".site-manifest.json"
#: The ``stats`` values the site shows (and whose change re-renders a page).
STATS_SHOWN = ("total", "mean", "poisson_factor", "pearson_r", "pearson_p", "fap", "n_flares",
               "excess_variance", "deliver", "n_bins", "reason", "period_short", "fap_short",
               "period_medium", "fap_medium", "period_long", "fap_long", "flare_peak_ratio",
               "chi2_dof")
#: What a page job renders.
PAGE_KINDS = ("lightcurve", "periodogram", "quicklook", "target")
#: The time of a lightcurve without a stats row (its file is read to know its sha256).
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class SiteConfig:
    """Where the site goes and what its 'interesting' view and charts select."""

    plot_dir: Path
    poisson_factor_min: float = 3.0
    fap_max: float = 1e-3
    flares_min: int = 1
    top_targets: int = 25
    stats: StatsConfig = field(default_factory=StatsConfig)

    @classmethod
    def from_settings(cls, settings: Any) -> SiteConfig:
        return cls(plot_dir=Path(settings.plot_dir), poisson_factor_min=settings.interesting_poisson_factor,
                   fap_max=settings.interesting_fap, flares_min=settings.interesting_flares,
                   top_targets=settings.site_top_targets, stats=StatsConfig.from_settings(settings))


@dataclass(frozen=True)
class Entry:
    """One lightcurve of the site: its file, setup, content hash and statistics."""

    curve: Path
    kind: str
    targname: str
    setup: Mapping[str, Any]
    sha256: str | None
    stats: Mapping[str, Any] | None

    @functools.cached_property
    def target(self) -> str:
        """The target's normalised name: one page and one folder per target, whatever the
        spellings of its TARGNAME."""
        return normalize_targname(self.targname)

    @property
    def stem(self) -> str:
        return self.curve.name.removesuffix(".fits")

    def folder(self, site: Path) -> Path:
        return Path(site) / "lightcurves" / safe_dirname(self.target)

    def page(self, site: Path) -> Path:
        return self.folder(site) / f"{self.stem}.html"

    def periodogram(self, site: Path) -> Path:
        return self.folder(site) / f"{self.stem}_periodogram.png"

    @property
    def quicklook(self) -> Path:
        return self.curve.with_suffix(".png")

    def values(self) -> dict[str, Any]:
        """The catalogue table's values of this lightcurve (None where unknown)."""
        stats = dict(self.stats or {})
        return {"lightcurve": self.curve.name, "kind": self.kind, "targname": self.targname,
                **{key: self.setup.get(key) for key in ("instrume", "detector", "opt_elem",
                                                        "cenwave", "aperture", "exptime")},
                **{key: _finite(stats.get(key)) for key in STATS_SHOWN},
                "period_best": best_period(stats) if stats else None}


def target_page(site: Path, target: str) -> Path:
    """The page of the target whose normalised name is ``target``."""
    return Path(site) / "targets" / f"{safe_dirname(target)}.html"


@dataclass(frozen=True)
class PageJob:
    """One page (or picture) to render: what, from which entries, where, and its digest."""

    kind: str
    output: Path
    digest: str
    entries: tuple[Entry, ...]

    def __post_init__(self) -> None:
        if self.kind not in PAGE_KINDS:
            raise ValueError(f"unknown page kind {self.kind!r}")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def digest(*parts: Any) -> str:
    """The sha256 of ``parts`` as canonical JSON (with :data:`SITE_VERSION`)."""
    text = json.dumps([SITE_VERSION, *parts], sort_keys=True, default=str, allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def read_entries(database_url: str) -> list[Entry]:
    """Every lightcurve the catalogue names, with its setup, statistics and the sha256 of
    its content now (a file not modified since its stats row is not read again)."""
    with session_scope(engine_for(database_url)) as session:
        setups = lightcurve_setups(session)
        rows = stats_rows(session)
        stats = {key: ({c.name: getattr(row, c.name) for c in row.__table__.c}, row.updated_at)
                 for key, row in rows.items()}
    entries = []
    for (folder, name), setup in sorted(setups.items(), key=lambda item: (item[1]["kind"], item[0])):
        values, written = stats.get((folder, name), (None, _EPOCH))
        curve = Path(folder) / name
        sha = content_sha256(curve, None if values is None else values["sha256"], written)
        entries.append(Entry(curve, setup["kind"], setup["targname"],
                             {k: v for k, v in setup.items() if k not in ("kind", "targname")},
                             sha, values))
    return entries




def plan_pages(entries: Sequence[Entry], config: SiteConfig, *, everything: bool = False,
               target: str | None = None) -> list[PageJob]:
    """The page jobs whose output is missing or whose digest changed (every one with
    ``everything``), for every target or the one named ``target``."""
    site = config.plot_dir
    manifest = read_manifest(site)
    wanted = None if target is None else normalize_targname(target)
    chosen = [e for e in entries if wanted is None or e.target == wanted]
    jobs = [*_lightcurve_jobs(chosen, config), *_target_jobs(chosen, site)]
    return [job for job in jobs if everything or not job.output.exists()
            or manifest.get(key_of(site, job.output)) != job.digest]


def _lightcurve_jobs(entries: Iterable[Entry], config: SiteConfig) -> Iterator[PageJob]:
    site = config.plot_dir
    for entry in entries:
        if entry.sha256 is None:
            continue  # the file is gone or unreadable: its stats row says why
        links = page_links(entry, site)
        yield PageJob("lightcurve", entry.page(site), digest(entry.sha256, links), (entry,))
        yield PageJob("periodogram", entry.periodogram(site),
                      digest(entry.sha256, repr(config.stats)), (entry,))
        if entry.kind == "composite" or not entry.quicklook.exists():
            yield PageJob("quicklook", entry.quicklook, digest(entry.sha256), (entry,))


def _target_jobs(entries: Sequence[Entry], site: Path) -> Iterator[PageJob]:
    by_target: dict[str, list[Entry]] = {}
    for entry in entries:
        by_target.setdefault(entry.target, []).append(entry)
    for target, members in sorted(by_target.items()):
        shown = [(e.curve.name, e.sha256, e.values()) for e in members]
        yield PageJob("target", target_page(site, target), digest(target, shown), tuple(members))


def in_waves(jobs: Sequence[PageJob]) -> list[list[PageJob]]:
    """The jobs in the order they may run: the lightcurves' pages and pictures first, then
    the target pages, which show those pictures (each wave's jobs in any order)."""
    waves = [[job for job in jobs if job.kind != "target"], [job for job in jobs if job.kind == "target"]]
    return [wave for wave in waves if wave]


def page_links(entry: Entry, site: Path) -> dict[str, str]:
    """The links of a lightcurve's page, relative to it: its FITS file, quicklook,
    periodogram and target page."""
    from hstlc.plots.html import link

    page = entry.page(site)
    return {"FITS file": link(page, entry.curve), "quicklook": link(page, entry.quicklook),
            "periodogram": link(page, entry.periodogram(site)),
            "target page": link(page, target_page(site, entry.target))}


def key_of(site: Path, output: Path) -> str:
    """The manifest's name of a page: its path relative to the site."""
    return Path(os.path.relpath(output, site)).as_posix()


def read_manifest(site: Path) -> dict[str, str]:
    """``page (relative to the site) -> digest`` of the pages written; empty when the
    manifest is missing or unreadable (then every page is rendered again)."""
    try:
        loaded = json.loads((Path(site) / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}


def update_manifest(site: Path, written: Mapping[str, str]) -> None:
    """Record the digests of the pages just written (relative keys), atomically."""
    if not written:
        return
    manifest = {**read_manifest(site), **written}
    with atomic_path(Path(site) / MANIFEST) as temporary:
        temporary.write_text(json.dumps(manifest, sort_keys=True, indent=0))


__all__ = ["MANIFEST", "SITE_VERSION", "Entry", "PageJob", "SiteConfig", "digest", "in_waves", "key_of",
           "page_links", "plan_pages", "read_entries", "read_manifest", "target_page", "update_manifest"]
