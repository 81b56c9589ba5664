"""The statistics subflow: a ``stats`` row for every new or changed lightcurve."""

from __future__ import annotations

from typing import Any

from prefect import flow

from hstlc.config import load_settings
from tasks.progress import run_name
from tasks.runner import active_cluster, batch_length
from tasks.stats import plan_stats, stats_batch, summarize_stats

#: Lightcurves per task, fewest and most (the statistics of one take 0.01-1 s).
STATS_BATCH = 20
STATS_BATCH_MOST = 200


@flow(name="stats", flow_run_name=run_name("stats"))
def stats(scope: str = "both", recompute: bool = False) -> dict[str, Any]:
    """Compute the statistics of the lightcurves of ``scope`` (``individual``,
    ``composite`` or ``both``) that changed since their row was written; every one with
    ``recompute``.  Returns how many rows were computed, how many hold only a reason
    (unreadable file, too few bins), and the batches that failed."""
    jobs = plan_stats(scope, recompute)
    size = batch_length(len(jobs), load_settings(), active_cluster(), least=STATS_BATCH,
                        most=STATS_BATCH_MOST)
    batches = [jobs[i : i + size] for i in range(0, len(jobs), size)]
    futures = stats_batch.map(batches, batch_len=[len(batch) for batch in batches])
    return summarize_stats(futures, [batch[0].path.name for batch in batches])
