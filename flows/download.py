"""The download flow: new COS/STIS TIME-TAG data from MAST into ``ingest/``.

Upstream of ``hstlc_pipeline``: the scheduled deployment runs it before the nightly run
(``download_cron``), and ``run_pipeline=True`` runs the pipeline right after it, in the
same run, on what is then in ``ingest/`` (also when MAST could not be reached).
"""

from __future__ import annotations

import time
from typing import Any, cast

from prefect import State, flow
from prefect.task_runners import ThreadPoolTaskRunner

from flows.pipeline import RUN_LOCK_WAIT_S, hstlc_pipeline
from hstlc.config import load_settings
from hstlc.fs import run_lock
from hstlc.mast.manifest import new_run_name
from hstlc.mast.query import criteria_for
from hstlc.mast.run import DownloadConfig
from tasks.download import download_state, fetch_datasets, finish_download, plan_download
from tasks.progress import run_name

#: Threads of the flow's task runner: at most ``download_workers`` (<= 32) fetch at a time.
DOWNLOAD_THREADS = 32
THREADS: Any = ThreadPoolTaskRunner(max_workers=DOWNLOAD_THREADS)


@flow(name="download", flow_run_name=run_name("download"), task_runner=THREADS)
def download(since: str | None = None, instrument: list[str] | None = None,
             target: str | None = None, proposal: int | None = None, limit: int | None = None,
             dry_run: bool = False, run_pipeline: bool = False) -> Any:
    """Fetch the COS/STIS TIME-TAG datasets MAST has and hstlc has not seen into ``ingest/``.

    Returns ``{"download": summary}`` (and the pipeline's summary with ``run_pipeline``);
    the run ends Failed when MAST could not be asked, a file failed or the pipeline failed.

    Parameters
    ----------
    since : str, optional
        Only data released on or after this date (``2026-11-01``).
    instrument : list of str, optional
        ``COS``, ``STIS`` or both (the default).
    target : str, optional
        One target (as MAST spells it, or its compact key).
    proposal : int, optional
        One proposal ID.
    limit : int, optional
        Most datasets this run fetches (default: the ``download_limit`` setting).
    dry_run : bool
        Say what would be fetched (files and bytes); fetch nothing, write nothing.
    run_pipeline : bool
        Then run ``hstlc_pipeline`` on what is in ``ingest/``.
    """
    started, run = time.time(), new_run_name()
    settings = load_settings()
    config = DownloadConfig.from_settings(settings)
    criteria = criteria_for(limit or config.limit, since=since, instruments=instrument,
                            target=target, proposal=proposal)
    with run_lock(settings.home_dir, wait_s=RUN_LOCK_WAIT_S):
        planned = cast(State, plan_download(config, criteria, return_state=True))
        plan = planned.result(raise_on_failure=False)
        if isinstance(plan, BaseException):  # MAST unreachable or refusing: said in one line
            summary = finish_download(config, run, None, [], started, error=str(plan))
        elif dry_run:
            summary = {"run": run, "dry_run": True, "would_fetch": plan.describe(),
                       "files": plan.files, "bytes": plan.bytes}
        else:
            results, broken = fetch_datasets(config, plan, run)
            summary = finish_download(config, run, plan, results, started, unrecorded=broken)
        outcome: dict[str, Any] = {"download": summary}
        if run_pipeline:
            pipeline = cast(State, hstlc_pipeline(return_state=True))
            ran = pipeline.result(raise_on_failure=False)
            if isinstance(ran, BaseException):  # the pipeline itself broke
                raise ran
            outcome.update(ran)
    return download_state(outcome)
