"""The statistics subflow: a ``stats`` row for every new or changed lightcurve."""

from __future__ import annotations

from typing import Any

from prefect import flow

from tasks.progress import run_name
from tasks.stats import plan_stats, stats_batch, summarize_stats

#: Lightcurves per task (the statistics of one take 0.05-1 s).
STATS_BATCH = 20


@flow(name="stats", flow_run_name=run_name("stats"))
def stats(scope: str = "both", recompute: bool = False) -> dict[str, Any]:
    """Compute the statistics of the lightcurves of ``scope`` (``individual``,
    ``composite`` or ``both``) that changed since their row was written; every one with
    ``recompute``.  Returns how many rows were computed, how many hold only a reason
    (unreadable file, too few bins), and the batches that failed."""
    jobs = plan_stats(scope, recompute)
    batches = [jobs[i : i + STATS_BATCH] for i in range(0, len(jobs), STATS_BATCH)]
    futures = stats_batch.map(batches, batch_len=[len(batch) for batch in batches])
    return summarize_stats(futures, [batch[0].path.name for batch in batches])
