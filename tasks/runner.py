"""Task runners: threads on this machine, or Dask (local cluster or a scheduler)."""

from __future__ import annotations

from typing import Any

from prefect.task_runners import ThreadPoolTaskRunner

from hstlc.config import Settings


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
