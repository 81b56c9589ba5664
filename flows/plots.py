"""The plots subflow: the pages of the lightcurves that changed, then the site's index."""

from __future__ import annotations

from typing import Any

from prefect import flow

from hstlc.config import load_settings
from tasks.plots import gather_pages, plan_pages, render_pages, with_site, write_site, written_in
from tasks.progress import run_name
from tasks.runner import active_cluster, batch_length

#: Pages per task, fewest and most (an interactive page or a periodogram takes 0.1-1 s).
PAGES_BATCH = 20
PAGES_BATCH_MOST = 50


@flow(name="plots", flow_run_name=run_name("plots"))
def plots(everything: bool = False, target: str | None = None) -> dict[str, Any]:
    """Render the pages whose inputs changed (every page with ``everything``), of every
    target or of ``target``; then the tables, charts and ``index.html``.  Returns how many
    pages were rendered, those that failed, and where the index is."""
    settings, address = load_settings(), active_cluster()
    waves = []
    for jobs in plan_pages(everything, target):  # a target page after the pictures it shows
        size = batch_length(len(jobs), settings, address, least=PAGES_BATCH, most=PAGES_BATCH_MOST)
        batches = [jobs[i : i + size] for i in range(0, len(jobs), size)]
        futures = render_pages.map(batches, batch_len=[len(batch) for batch in batches])
        waves.append(gather_pages(futures, [batch[0].output.name for batch in batches]))
    return with_site(waves, write_site(written_in(waves)))
