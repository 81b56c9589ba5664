"""The plots subflow: the pages of the lightcurves that changed, then the site's index."""

from __future__ import annotations

from typing import Any

from prefect import flow

from tasks.plots import gather_pages, plan_pages, render_pages, with_site, write_site, written_in
from tasks.progress import run_name

#: Pages per task (an interactive page or a periodogram takes 0.1-1 s).
PAGES_BATCH = 20


@flow(name="plots", flow_run_name=run_name("plots"))
def plots(everything: bool = False, target: str | None = None) -> dict[str, Any]:
    """Render the pages whose inputs changed (every page with ``everything``), of every
    target or of ``target``; then the tables, charts and ``index.html``.  Returns how many
    pages were rendered, those that failed, and where the index is."""
    waves = []
    for jobs in plan_pages(everything, target):  # a target page after the pictures it shows
        batches = [jobs[i : i + PAGES_BATCH] for i in range(0, len(jobs), PAGES_BATCH)]
        futures = render_pages.map(batches, batch_len=[len(batch) for batch in batches])
        waves.append(gather_pages(futures, [batch[0].output.name for batch in batches]))
    return with_site(waves, write_site(written_in(waves)))
