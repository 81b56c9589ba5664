"""A download run, in the steps the download flow's tasks call (and :func:`download_now`,
the same run in one call without Prefect: benchmarks and scripts).

1. :func:`plan_run` -- ask MAST, leave aside what hstlc has, check the free space;
2. :func:`fetch_and_record` -- per dataset: fetch its files, deliver the complete dataset
   into ``ingest/``, write its ``download`` rows;
3. :func:`finish_run` -- the summary and the JSON manifest in ``download/``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from hstlc.fs import Layout, Permissions
from hstlc.mast.client import MastConnection
from hstlc.mast.fetch import Fetcher, FetchResult, TransferProgress, fetch_dataset
from hstlc.mast.manifest import new_run_name, record, summarize, write_manifest
from hstlc.mast.plan import DatasetFetch, DownloadPlan, plan_downloads, require_room
from hstlc.mast.query import Criteria


@dataclass(frozen=True)
class DownloadConfig:
    """What a download run needs from the settings, as plain values (the token stays a
    ``SecretStr`` inside :class:`~hstlc.mast.client.MastConnection`)."""

    connection: MastConnection
    database_url: str = field(repr=False)
    layout: Layout
    permissions: Permissions
    workers: int = 4
    limit: int = 500
    min_free_mb: float = 200.0

    @classmethod
    def from_settings(cls, settings: Any) -> DownloadConfig:
        return cls(connection=MastConnection.from_settings(settings),
                   database_url=settings.database_url, layout=Layout.from_settings(settings),
                   permissions=Permissions.from_settings(settings),
                   workers=settings.download_workers, limit=settings.download_limit,
                   min_free_mb=settings.min_free_mb)


def plan_run(config: DownloadConfig, criteria: Criteria) -> DownloadPlan:
    """What this run fetches (:func:`~hstlc.mast.plan.plan_downloads`), with room for it."""
    plan = plan_downloads(config.connection, criteria, config.database_url, config.layout)
    config.layout.download.mkdir(parents=True, exist_ok=True)
    require_room(plan, config.layout.download, config.min_free_mb)
    return plan


#: The fetchers of the runs going on in this process, by run name (closed by finish_run).
_FETCHERS: dict[str, Fetcher] = {}
_FETCHERS_LOCK = threading.Lock()


def fetcher_for(config: DownloadConfig, run: str) -> Fetcher:
    """The run's :class:`~hstlc.mast.fetch.Fetcher` in this process: its HTTP sessions (one
    per thread) keep their connections open from one dataset (task) to the next."""
    with _FETCHERS_LOCK:
        fetcher = _FETCHERS.get(run)
        if fetcher is None:
            fetcher = _FETCHERS[run] = Fetcher(config.connection, config.layout.download)
    return fetcher


def fetch_and_record(config: DownloadConfig, dataset: DatasetFetch, run: str,
                     on_bytes: Callable[[int], None] | None = None) -> list[FetchResult]:
    """Fetch one dataset, deliver it into ``ingest/`` when complete, record its rows."""
    results = fetch_dataset(dataset.products, fetcher_for(config, run), config.layout.ingest,
                            config.permissions, on_bytes)
    record(config.database_url, run, results)
    return results


def finish_run(config: DownloadConfig, run: str, plan: DownloadPlan | None,
               results: list[FetchResult], started: float, error: str | None = None,
               unrecorded: list[FetchResult] | None = None) -> dict[str, Any]:
    """The run's summary, written as ``download/manifest-<run>.json`` (path in ``manifest``);
    ``unrecorded`` results (of datasets whose task broke) get their ``download`` rows here.
    The run's HTTP sessions are closed."""
    with _FETCHERS_LOCK:
        fetcher = _FETCHERS.pop(run, None)
    if fetcher is not None:
        fetcher.close()
    if unrecorded:
        record(config.database_url, run, unrecorded)
    summary = summarize(run, config.connection.base_url, plan, results, time.time() - started,
                        config.layout.download, error)
    config.layout.download.mkdir(parents=True, exist_ok=True)
    summary["manifest"] = str(write_manifest(summary, config.layout.download))
    return summary


def download_now(config: DownloadConfig, criteria: Criteria,
                 report: Callable[[str], None] | None = None) -> dict[str, Any]:
    """A whole run here, ``config.workers`` datasets at a time, without Prefect."""
    started, run = time.time(), new_run_name()
    plan = plan_run(config, criteria)
    progress = TransferProgress(plan.files, plan.bytes, report or (lambda line: None))
    results: list[FetchResult] = []
    with ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="hstlc-download") as pool:
        futures = [pool.submit(fetch_and_record, config, dataset, run, progress.add_bytes)
                   for dataset in plan.todo]
        for future in as_completed(futures):
            done = future.result()
            results.extend(done)
            progress.add_files(len(done))
    return finish_run(config, run, plan, results, started)

