"""``hstlc_pipeline``: ingest, then composites, then statistics, then plots."""

from __future__ import annotations

from typing import Any, cast

from prefect import State, flow

from flows.composite import composite
from flows.ingest import ingest, run_plan
from flows.plots import plots
from flows.stats import stats
from hstlc.config import load_settings
from hstlc.fs import run_lock
from hstlc.ingest.dataset import PipelineConfig
from tasks.ingest import count_datasets, plan_target
from tasks.progress import final_state, pages_of, run_name, with_composites, with_plots, with_stats
from tasks.runner import run_cluster, task_runner_for, work_of

#: How long a scheduled or deployed run waits for a run in progress in the same home.
RUN_LOCK_WAIT_S = 3600.0


@flow(name="hstlc_pipeline", flow_run_name=run_name("hstlc-pipeline"))
def hstlc_pipeline(
    force: bool = False, batch_size: int | None = None, all_composites: bool = False
) -> Any:
    """The whole job: ingest new data, rebuild the composites it touched, compute the
    statistics of every new or changed lightcurve, then render the pages that changed.

    A run with enough datasets waiting runs its subflows' tasks on one local cluster of
    processes (see :mod:`tasks.runner`); so does its plots subflow when many pages changed.
    """
    settings = load_settings()
    with run_lock(settings.home_dir, wait_s=RUN_LOCK_WAIT_S):
        waiting = count_datasets(PipelineConfig.from_settings(settings), force)
        with run_cluster(settings, work_of(datasets=waiting)) as address:
            runner = task_runner_for(settings, address)
            state = cast(State, ingest.with_options(task_runner=runner)(
                force=force, batch_size=batch_size, return_state=True
            ))
            summary = state.result(raise_on_failure=False)
            if isinstance(summary, BaseException):  # the ingest itself broke (not one dataset)
                raise summary
            composites = composite.with_options(task_runner=runner)(
                keys=summary["touched_keys"], all_keys=all_composites
            )
            statistics = stats.with_options(task_runner=runner)()
            with run_cluster(settings, work_of(pages=pages_of(statistics)), address=address) as pages:
                site = plots.with_options(task_runner=task_runner_for(settings, pages))()
    return final_state(with_plots(with_stats(with_composites(summary, composites), statistics), site))


@flow(name="process-target", flow_run_name="process-{target}")
def process_target(target: str, batch_size: int | None = None) -> dict[str, Any]:
    """Every dataset of one target from ``filesystem/``, through every ingest step."""
    settings = load_settings()
    plan = plan_target(PipelineConfig.from_settings(settings), target)
    return run_plan(plan, settings, batch_size)


@flow(name="reprocess-target", flow_run_name="reprocess-{target}")
def reprocess_target(target: str, batch_size: int | None = None, fetch: bool = False) -> Any:
    """Re-process one target: all its datasets from ``filesystem/``, then its composites,
    then the statistics of the lightcurves that changed, then the target's pages.

    With ``fetch``, the target's new datasets are first downloaded from MAST into
    ``ingest/`` (the download flow), and ingested after the re-processing, with whatever
    else waits there (as the nightly run would), so that no dataset is extracted twice.
    """
    settings = load_settings()
    config = PipelineConfig.from_settings(settings)
    with run_lock(settings.home_dir, wait_s=RUN_LOCK_WAIT_S):
        fetched = _fetch_target(target) if fetch else None
        datasets = count_datasets(config, target=target) + (count_datasets(config) if fetch else 0)
        with run_cluster(settings, work_of(datasets=datasets)) as address:
            runner = task_runner_for(settings, address)
            summary = process_target.with_options(task_runner=runner)(
                target=target, batch_size=batch_size
            )
            if fetched is not None:
                summary = merge_runs(summary, _ingest_new(runner, batch_size), fetched)
            composites = composite.with_options(task_runner=runner)(keys=summary["touched_keys"])
            statistics = stats.with_options(task_runner=runner)()
            with run_cluster(settings, work_of(pages=pages_of(statistics)), address=address) as pages:
                site = plots.with_options(task_runner=task_runner_for(settings, pages))(target=target)
    return final_state(with_plots(with_stats(with_composites(summary, composites), statistics), site))


def _fetch_target(target: str) -> dict[str, Any]:
    """The download flow for one target; its summary (a failure there is reported, and the
    re-processing goes on with what is here)."""
    from flows.download import download  # flows.download imports this module

    state = cast(State, download(target=target, return_state=True))
    result = state.result(raise_on_failure=False)
    if isinstance(result, BaseException):
        return {"download": {"error": str(result)}}
    return cast(dict[str, Any], result)


def _ingest_new(runner: Any, batch_size: int | None) -> dict[str, Any]:
    state = cast(State, ingest.with_options(task_runner=runner)(
        batch_size=batch_size, return_state=True))
    result = state.result(raise_on_failure=False)
    if isinstance(result, BaseException):  # the ingest itself broke (not one dataset)
        raise result
    return cast(dict[str, Any], result)


def merge_runs(reprocessed: dict[str, Any], ingested: dict[str, Any], fetched: dict[str, Any]
               ) -> dict[str, Any]:
    """One summary of a target run that re-processed, then ingested what it fetched."""
    merged = dict(reprocessed)
    for key in ("ingested", "skipped", "unrecognised", "orphan_x1d"):
        merged[key] = sorted({*reprocessed.get(key, []), *ingested.get(key, [])})
    for key in ("rejected", "failed", "left"):
        merged[key] = {**reprocessed.get(key, {}), **ingested.get(key, {})}
    download = fetched.get("download", {})
    if download.get("error"):
        merged["failed"]["download"] = download["error"]
    merged["failed"].update({f"download {name}": why for name, why in download.get("failed", {}).items()})
    merged["touched_keys"] = sorted({*reprocessed["touched_keys"], *ingested.get("touched_keys", [])})
    merged["library_seconds"] = (reprocessed.get("library_seconds", 0.0)
                                 + ingested.get("library_seconds", 0.0))
    merged["download"] = download
    return merged
