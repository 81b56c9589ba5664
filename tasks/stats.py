"""Prefect tasks of the statistics subflow: plan, then batches of lightcurves.

The catalogue's URL comes from each worker's settings, never through task parameters.
"""

from __future__ import annotations

from typing import Any

from prefect import task

from hstlc.config import load_settings
from hstlc.variability import table
from hstlc.variability.stats import StatsConfig
from hstlc.variability.table import StatsJob
from tasks.retry import RETRY_OPTIONS


@task(name="plan-stats", **RETRY_OPTIONS)
def plan_stats(scope: str, recompute: bool) -> list[StatsJob]:
    """The lightcurves whose stats rows are (re)computed."""
    return table.plan_stats(load_settings().database_url, scope, recompute=recompute)


@task(name="stats", task_run_name="stats-{jobs[0].path.name}+{batch_len}", **RETRY_OPTIONS)
def stats_batch(jobs: list[StatsJob], batch_len: int = 0) -> dict[str, Any]:
    """Compute and record the rows of a batch of lightcurves."""
    settings = load_settings()
    return table.update_stats(jobs, settings.database_url, StatsConfig.from_settings(settings))


def summarize_stats(futures: list[Any], labels: list[str]) -> dict[str, Any]:
    """Rows computed, rows holding only a reason, and what failed: lightcurves by name, or
    a whole batch (by its first lightcurve), with the error."""
    computed = unusable = 0
    failed: dict[str, str] = {}
    for future, label in zip(futures, labels, strict=True):
        future.wait()
        if future.state.is_completed():
            counts = future.result()
            computed, unusable = computed + counts["computed"], unusable + counts["unusable"]
            failed.update(counts["failed"])
        else:
            failed[f"batch of {label}"] = future.state.message or future.state.name
    return {"computed": computed, "unusable": unusable, "failed": failed}
