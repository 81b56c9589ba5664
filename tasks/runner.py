"""Task runners: threads on this machine, or Dask (local cluster or a scheduler)."""

from __future__ import annotations

from typing import Any

from prefect.task_runners import ThreadPoolTaskRunner

from hstlc.config import Settings


def runner_label(settings: Settings) -> str:
    """The task runner the settings choose, in words (for the run's summary)."""
    if settings.task_runner == "threads":
        return f"threads ({settings.workers})"
    if settings.dask_address:
        return f"Dask scheduler at {settings.dask_address}"
    return f"Dask local cluster ({settings.workers} processes)"


def task_runner_for(settings: Settings, *, dask: str | None = None) -> Any:
    """The task runner the settings (or ``dask``: ``"local"`` or an address) ask for."""
    choice = "dask" if dask else settings.task_runner
    if choice == "threads":
        return ThreadPoolTaskRunner(max_workers=settings.workers)
    from prefect_dask import DaskTaskRunner

    address = dask if dask and dask != "local" else settings.dask_address
    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(
        cluster_kwargs={"n_workers": settings.workers, "threads_per_worker": 1,
                        "processes": True, "dashboard_address": None}
    )
