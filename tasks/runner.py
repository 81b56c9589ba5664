"""Where a run's tasks run: threads, the run's local cluster of processes, or a Dask scheduler.

The per-dataset work (FITS parsing and writing, PNG and page rendering, the catalogue)
is Python holding the GIL: threads give it one core whatever their number.  A run with
enough work therefore starts one local Dask cluster of ``workers`` processes
(:func:`run_cluster`), shared by every subflow of the run, so that the workers' imports
(Prefect, astropy, matplotlib, Bokeh, the compiled kernel: ~3 s) are paid once; its tasks
are batches sized for the runner (:func:`batch_length`), so that Dask's ~0.1 s a task is
small against the work.  A small run stays on threads, where starting processes would cost
more than it saves.

``task_runner`` chooses: ``auto`` (the default) as above; ``threads`` always threads;
``dask`` always Dask: the scheduler at ``dask_address``, else a local cluster, whatever
the size of the run.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prefect.task_runners import ThreadPoolTaskRunner

from hstlc.config import Settings

#: Core-seconds of library work of one dataset through the ingest steps, and of one page
#: (a lightcurve page or a periodogram), measured serially on the 2-CPU development VM
#: (100 synthetic COS NUV datasets: 0.23 s a dataset, 0.13 s a page); estimates that
#: decide whether a run is worth a cluster, not promises.
DATASET_S = 0.25
PAGE_S = 0.13

#: Fewest estimated core-seconds of work worth a local cluster in ``auto`` mode: starting
#: it and its workers' imports costs ~3-4 s of wall time.
CLUSTER_WORK_S = 15.0

#: Tasks per worker a cluster's batches aim at: enough to balance the workers' load and
#: report progress as batches finish, few enough that Dask's per-task cost stays small.
TASKS_PER_WORKER = 4


def work_of(datasets: int = 0, pages: int = 0) -> float:
    """Estimated core-seconds of library work of a pipeline run: ``datasets`` through the
    ingest (with the two pages each will need) and ``pages`` more."""
    return datasets * (DATASET_S + 2 * PAGE_S) + pages * PAGE_S


@contextmanager
def run_cluster(settings: Settings, work_s: float, *, address: str | None = None
                ) -> Iterator[str | None]:
    """The address of the Dask cluster a run's subflows share, or None (threads).

    ``address``: the run's cluster already (yielded as it is).  ``auto``: a local cluster
    of ``workers`` processes when ``work_s`` (see :func:`work_of`) is at least
    :data:`CLUSTER_WORK_S` and there are two workers or more; else None.  ``dask``:
    ``dask_address``, or a local cluster.  ``threads``: None.  A local cluster is closed
    when the block ends, however it ends.
    """
    mode = settings.task_runner
    if address is not None or (mode == "dask" and settings.dask_address):
        yield address or settings.dask_address
        return
    if mode == "threads" or (mode == "auto" and (work_s < CLUSTER_WORK_S or settings.workers < 2)):
        yield None
        return
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=settings.workers, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=logging.WARNING) as cluster, \
            Client(cluster) as client:
        # Warm the workers while the run plans (hashes its inputs): in a thread, since
        # Client.run waits for its answers.
        threading.Thread(target=_warm, args=(client,), name="hstlc-warm-workers", daemon=True).start()
        yield cluster.scheduler_address


def _warm(client: Any) -> None:
    try:
        client.run(warm_worker)
    except Exception:  # a cluster closed before its workers were warm: nothing to warm
        logging.getLogger(__name__).debug("warming the workers stopped", exc_info=True)


def warm_worker() -> None:
    """Import what the tasks run and load the compiled kernel, in a new worker process,
    so that its first batch does not pay them (~3 s); then move what the imports made out
    of the garbage collector's way (``gc.freeze``): its full collections otherwise walk
    every imported object again, a fifth of a page's rendering."""
    import gc

    import tasks.ingest
    import tasks.plots
    import tasks.stats  # noqa: F401  (imports are the point)
    from hstlc.extraction import kernel
    from hstlc.plots import lightcurve_page, periodogram_plot, quicklook  # noqa: F401

    kernel.warm_up()
    gc.freeze()


def task_runner_for(settings: Settings, address: str | None) -> Any:
    """The task runner of a subflow: Dask at ``address``, else ``workers`` threads."""
    if address is None:
        return ThreadPoolTaskRunner(max_workers=settings.workers)
    from prefect_dask import DaskTaskRunner

    return DaskTaskRunner(address=address)


def runner_label(settings: Settings, address: str | None) -> str:
    """A subflow's task runner, in words (for the run's summary)."""
    if address is None:
        return f"threads ({settings.workers})"
    if address == settings.dask_address:
        return f"Dask scheduler at {address}"
    return f"local cluster ({settings.workers} processes)"


def batch_length(count: int, settings: Settings, address: str | None, *, least: int, most: int) -> int:
    """Items per task for ``count`` items: on a cluster about :data:`TASKS_PER_WORKER`
    tasks per worker, between ``least`` and ``most`` items a task; on threads ``least``
    (a thread's task costs ~7 ms, so small tasks report progress sooner at no cost)."""
    if address is None:
        return least
    return max(least, min(most, math.ceil(count / (TASKS_PER_WORKER * settings.workers))))


def active_cluster() -> str | None:
    """The address of the Dask cluster the current flow run's tasks go to; None on threads."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    return getattr(context.task_runner, "address", None) if context is not None else None
