"""Prefect tasks of the MAST download: the plan, one task per dataset, the manifest.

Each task is a thin wrapper over :mod:`hstlc.mast.run`.  Network failures are retried
inside the library (backoff, Retry-After, resume), so a task fails only for what is not
the network; transient database failures are retried as in the ingest.
:func:`fetch_datasets` submits the per-dataset tasks ``download_workers`` at a time and
logs the progress (files and bytes done of the total, the rates) as they end; the bytes
of long files are counted as they arrive when the tasks run in this process (threads).
"""

from __future__ import annotations

from itertools import islice
from typing import Any

from prefect import task
from prefect.futures import as_completed
from prefect.logging import get_run_logger

from hstlc.mast import run as mast_run
from hstlc.mast.fetch import FAILED, FetchResult, TransferProgress
from hstlc.mast.plan import DatasetFetch, DownloadPlan
from hstlc.mast.query import Criteria
from hstlc.mast.run import DownloadConfig
from tasks.retry import RETRY_OPTIONS

#: The progress of the runs going on in this process, by run name.
_PROGRESS: dict[str, TransferProgress] = {}


@task(name="plan-download", **RETRY_OPTIONS)
def plan_download(config: DownloadConfig, criteria: Criteria) -> DownloadPlan:
    """Ask MAST, keep what hstlc does not have, check the free space."""
    return mast_run.plan_run(config, criteria)


@task(name="fetch-dataset", task_run_name="fetch-{dataset.rootname}", **RETRY_OPTIONS)
def fetch_dataset(config: DownloadConfig, dataset: DatasetFetch, run: str) -> list[FetchResult]:
    """Fetch one dataset's files, deliver it into ``ingest/`` when complete, record it."""
    progress = _PROGRESS.get(run)
    return mast_run.fetch_and_record(config, dataset, run,
                                     progress.add_bytes if progress is not None else None)


@task(name="download-manifest", **RETRY_OPTIONS)
def finish_download(config: DownloadConfig, run: str, plan: DownloadPlan | None,
                    results: list[FetchResult], started: float, error: str | None = None,
                    unrecorded: list[FetchResult] | None = None) -> dict[str, Any]:
    """Write the run's manifest; return its summary."""
    return mast_run.finish_run(config, run, plan, results, started, error, unrecorded)


def fetch_datasets(config: DownloadConfig, plan: DownloadPlan, run: str
                   ) -> tuple[list[FetchResult], list[FetchResult]]:
    """Run :func:`fetch_dataset` on every dataset of ``plan``, ``config.workers`` at a time.

    Returns every file's result, and apart those of datasets whose task broke (their
    ``download`` rows are still to be written).
    """
    progress = TransferProgress(plan.files, plan.bytes, get_run_logger().info)
    _PROGRESS[run] = progress
    waiting = iter(plan.todo)
    pending = {fetch_dataset.submit(config, dataset, run): dataset
               for dataset in islice(waiting, config.workers)}
    results: list[FetchResult] = []
    broken: list[FetchResult] = []
    while pending:
        future = next(iter(as_completed(list(pending))))
        dataset = pending.pop(future)
        future.wait()
        if future.state.is_completed():
            done = list(future.result())
        else:
            why = future.state.message or future.state.name
            done = [FetchResult(product, FAILED, reason=why) for product in dataset.products]
            broken.extend(done)
        results.extend(done)
        progress.add_files(len(done))
        following = next(waiting, None)
        if following is not None:
            pending[fetch_dataset.submit(config, following, run)] = following
    _PROGRESS.pop(run, None)
    return results, broken


def download_state(summary: dict[str, Any]) -> Any:
    """The flow's result: ``{"download": summary, ...}``, as a Failed state when MAST could
    not be asked, a file failed, or the pipeline run after it failed.  The summary is also
    shown in the UI as an artifact."""
    from prefect.artifacts import create_markdown_artifact
    from prefect.states import Failed

    download = summary["download"]
    failed = download.get("failed", {})
    lines = [
        "| fetched | already complete | skipped | failed | MB |",
        "| --- | --- | --- | --- | --- |",
        f"| {len(download.get('fetched', {}))} | {len(download.get('present', {}))} | "
        f"{len(download.get('skipped', {}))} | {len(failed)} | {download.get('bytes', 0) / 1e6:.1f} |",
        "",
        *([f"**MAST**: {download['error']}"] if download.get("error") else []),
        *[f"- **failed** `{name}`: {why}" for name, why in sorted(failed.items())],
    ]
    create_markdown_artifact("\n".join(lines), description="hstlc download summary")
    problems = [download["error"]] if download.get("error") else []
    problems += [f"{len(failed)} files failed: {', '.join(sorted(failed))}"] if failed else []
    pipeline_failed = summary.get("failed") or (summary.get("composites") or {}).get("failed")
    if pipeline_failed:
        problems.append(f"the pipeline after it: {len(pipeline_failed)} failed")
    if problems:
        return Failed(message="; ".join(problems), data=summary)
    return summary
