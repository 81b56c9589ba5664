"""Task runners: threads on this machine, or Dask (local cluster or a scheduler)."""

from __future__ import annotations

import os
from typing import Any

from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

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


#: Fewest pages worth a process pool: starting a process (imports of Prefect, Bokeh,
#: matplotlib) costs ~2-4 s, a page ~0.25 s of one core.
PROCESS_PAGES = 100


def page_runner_for(settings: Settings, pages: int) -> Any:
    """The task runner of the plots subflow for about ``pages`` pages.

    Rendering a page is Python holding the GIL (Bokeh's serialisation, matplotlib's
    drawing) and writes no catalogue row, so from :data:`PROCESS_PAGES` pages on its batches
    run in one process per core (654 pages: 104.5 s against 168.4 s on 4 threads, 2 cores);
    fewer pages stay on threads; on Dask, the run's Dask runner.
    """
    if settings.task_runner == "dask":
        return task_runner_for(settings)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if cores < 2 or pages < PROCESS_PAGES:
        return ThreadPoolTaskRunner(max_workers=settings.workers)
    return ProcessPoolTaskRunner(max_workers=cores)
