"""The deployments of hstlc, served from one process (no work pool, no worker).

* ``hstlc_pipeline/nightly``: the whole pipeline on the ``nightly_cron`` schedule (UTC).
* ``reprocess-target/adhoc``: re-process one target; started by hand with a ``target``
  (``fetch: true`` downloads its new data from MAST first).
* ``download/scheduled``: new TIME-TAG data from MAST into ``ingest/`` on the
  ``download_cron`` schedule (UTC), before the nightly run; ``run_pipeline: true`` runs
  the pipeline right after it.

For several machines use ``prefect.yaml`` with a work pool instead (see README).
"""

from __future__ import annotations

from typing import Any

from hstlc.config import Settings


def nightly(settings: Settings) -> Any:
    from prefect.schedules import Cron

    from flows.pipeline import hstlc_pipeline

    # The pipeline sizes its own subflows (threads, or a local cluster for a large run).
    return hstlc_pipeline.to_deployment(
        name="nightly",
        schedules=[Cron(settings.nightly_cron, timezone="UTC")],
        description="Ingest new data, rebuild the composites it touched, then the statistics "
                    "and pages of what changed.",
        tags=["hstlc", "scheduled"],
        concurrency_limit=1,
    )


def adhoc_target(settings: Settings) -> Any:
    from flows.pipeline import reprocess_target

    return reprocess_target.to_deployment(
        name="adhoc",
        description="Re-process every dataset of one target, then its composites, statistics "
                    "and pages.",
        tags=["hstlc", "ad-hoc"],
        concurrency_limit=1,
    )


def scheduled_download(settings: Settings) -> Any:
    from prefect.schedules import Cron

    from flows.download import download

    return download.to_deployment(
        name="scheduled",
        schedules=[Cron(settings.download_cron, timezone="UTC")],
        parameters={"run_pipeline": False},
        description="Fetch new COS/STIS TIME-TAG data from MAST into ingest/, before the nightly run.",
        tags=["hstlc", "scheduled", "download"],
        concurrency_limit=1,
    )


DEPLOYMENTS = (nightly, adhoc_target, scheduled_download)


def serve(settings: Settings, *, limit: int | None = None) -> None:
    """Serve every deployment from this process until interrupted."""
    import prefect

    prefect.serve(*(make(settings) for make in DEPLOYMENTS), limit=limit)
