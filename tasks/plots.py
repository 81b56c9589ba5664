"""Prefect tasks of the plots subflow: plan the pages that changed, render them in
batches, then write the site's own pages and its manifest.

The catalogue's URL and the site's folder come from each worker's settings, never
through task parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prefect import task

from hstlc.config import load_settings
from hstlc.plots import pages, site
from hstlc.plots.site import PageJob, SiteConfig
from tasks.retry import RETRY_OPTIONS


@task(name="plan-pages", **RETRY_OPTIONS)
def plan_pages(everything: bool, target: str | None) -> list[list[PageJob]]:
    """The pages whose inputs changed (every page with ``everything``), of every target or
    of ``target``, in waves: a target page after the pictures it shows."""
    settings = load_settings()
    return site.in_waves(site.plan_pages(site.read_entries(settings.database_url),
                                         SiteConfig.from_settings(settings),
                                         everything=everything, target=target))


@task(name="pages", task_run_name="pages-{jobs[0].output.name}+{batch_len}", **RETRY_OPTIONS)
def render_pages(jobs: list[PageJob], batch_len: int = 0) -> dict[str, Any]:
    """Render a batch of pages: the digests of those written, and those that failed."""
    return pages.render_batch(jobs, SiteConfig.from_settings(load_settings()))


@task(name="site-index", **RETRY_OPTIONS)
def write_site(written: Mapping[str, str]) -> dict[str, Any]:
    """The tables, summary charts, target list and index, where their inputs changed;
    the manifest records every page written."""
    settings = load_settings()
    summary = pages.write_site(settings.database_url, SiteConfig.from_settings(settings), written)
    return {"index": str(summary.index), "lightcurves": summary.lightcurves,
            "targets": summary.targets, "interesting": summary.interesting,
            "site_pages": list(summary.written)}


def gather_pages(futures: list[Any], labels: list[str]) -> dict[str, Any]:
    """The pages written (page -> digest) and those that failed: pages by name, or a
    whole batch (by its first page), with the error."""
    written: dict[str, str] = {}
    failed: dict[str, str] = {}
    for future, label in zip(futures, labels, strict=True):
        future.wait()
        if future.state.is_completed():
            result = future.result()
            written.update(result["written"])
            failed.update(result["failed"])
        else:
            failed[f"batch of {label}"] = future.state.message or future.state.name
    return {"written": written, "failed": failed}


def with_site(waves: list[dict[str, Any]], finished: dict[str, Any]) -> dict[str, Any]:
    """The subflow's summary: pages rendered (count), pages that failed, and the site."""
    return {**finished, "rendered": sum(len(wave["written"]) for wave in waves),
            "failed": {name: why for wave in waves for name, why in wave["failed"].items()}}


def written_in(waves: list[dict[str, Any]]) -> dict[str, str]:
    """Every page the waves wrote, with its digest."""
    return {name: key for wave in waves for name, key in wave["written"].items()}
