"""Prefect tasks of the ingest: one per per-dataset step, plus planning and batches.

Each task is a thin wrapper over :mod:`hstlc.ingest.steps` / :mod:`hstlc.ingest.plan`:
it runs the named library step and returns the next small
:class:`~hstlc.ingest.dataset.DatasetState`.  Bad data becomes a recorded rejection
inside the step, so it completes the task and is never retried; transient failures
(database unavailable, file system busy) are retried with backoff; any other error
fails that dataset only.
"""

from __future__ import annotations

from prefect import task

from hstlc.ingest import plan, steps
from hstlc.ingest.dataset import DatasetState, PipelineConfig
from hstlc.ingest.plan import IngestPlan
from tasks.retry import RETRY_OPTIONS


@task(name="plan-ingest", **RETRY_OPTIONS)
def plan_ingest(config: PipelineConfig, force: bool = False) -> IngestPlan:
    """Gather the ingest folder into datasets and skip what the catalogue has."""
    return plan.plan_ingest(config, force=force)


@task(name="plan-target", **RETRY_OPTIONS)
def plan_target(config: PipelineConfig, target: str) -> IngestPlan:
    """Every catalogued dataset of one target, from ``filesystem/``."""
    return plan.plan_target(config, target)


@task(name="quality-check", task_run_name="check-{state.rootname}", **RETRY_OPTIONS)
def check_quality(state: DatasetState, config: PipelineConfig) -> DatasetState:
    return steps.guarded(steps.step_named("check"), state, config)


@task(name="stis-corrtag", task_run_name="corrtag-{state.rootname}", **RETRY_OPTIONS)
def convert_stis(state: DatasetState, config: PipelineConfig) -> DatasetState:
    return steps.guarded(steps.step_named("convert"), state, config)


@task(name="lightcurve", task_run_name="lightcurve-{state.rootname}", **RETRY_OPTIONS)
def make_lightcurve(state: DatasetState, config: PipelineConfig) -> DatasetState:
    return steps.guarded(steps.step_named("lightcurve"), state, config)


@task(name="quicklook", task_run_name="quicklook-{state.rootname}", **RETRY_OPTIONS)
def make_quicklook(state: DatasetState, config: PipelineConfig) -> DatasetState:
    return steps.guarded(steps.step_named("quicklook"), state, config)


@task(name="metadata-upsert", task_run_name="metadata-{state.rootname}", **RETRY_OPTIONS)
def record_metadata(state: DatasetState, config: PipelineConfig) -> DatasetState:
    return steps.guarded(steps.step_named("record"), state, config)


@task(name="file-move", task_run_name="move-{state.rootname}", **RETRY_OPTIONS)
def move_files(state: DatasetState, config: PipelineConfig) -> DatasetState:
    return steps.finish(steps.guarded(steps.step_named("move"), state, config))


@task(name="ingest-batch", task_run_name="batch-{states[0].rootname}+{batch_len}", **RETRY_OPTIONS)
def process_batch(
    states: list[DatasetState], config: PipelineConfig, batch_len: int = 0
) -> list[DatasetState]:
    """The same per-dataset steps, in sequence, for a batch of datasets.

    Each dataset's outcome is recorded in the catalogue as it finishes, so a retry of
    the batch skips nothing it should not redo: finished datasets are already moved.
    """
    return [steps.process(state, config) for state in states]
