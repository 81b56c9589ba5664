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


@task(name="count-datasets", **RETRY_OPTIONS)
def count_datasets(config: PipelineConfig, force: bool = False, target: str | None = None) -> int:
    """How many datasets the run would process at most (by file name): it sizes the run."""
    return plan.count_datasets(config, force=force, target=target)


@task(name="plan-target", **RETRY_OPTIONS)
def plan_target(config: PipelineConfig, target: str) -> IngestPlan:
    """Every catalogued dataset of one target, from ``filesystem/``."""
    return plan.plan_target(config, target)


@task(name="ingest-step", task_run_name="{step}-{state.rootname}", **RETRY_OPTIONS)
def ingest_step(step: str, state: DatasetState, config: PipelineConfig) -> DatasetState:
    """Run the ingest step called ``step`` (``check`` ... ``move``) on one dataset."""
    return steps.run_step(step, state, config)


# The per-dataset tasks, each under its own name in the UI; the flow passes the step.
check_quality = ingest_step.with_options(name="quality-check")
convert_stis = ingest_step.with_options(name="stis-corrtag")
make_lightcurve = ingest_step.with_options(name="lightcurve")
make_quicklook = ingest_step.with_options(name="quicklook")
record_metadata = ingest_step.with_options(name="metadata-upsert")
move_files = ingest_step.with_options(name="file-move")


@task(name="ingest-batch", task_run_name="batch-{states[0].rootname}+{batch_len}", **RETRY_OPTIONS)
def process_batch(
    states: list[DatasetState], config: PipelineConfig, batch_len: int = 0
) -> list[DatasetState]:
    """The same per-dataset steps, in sequence, for a batch of datasets.

    Each dataset's outcome is recorded in the catalogue as it finishes, so a retry of
    the batch skips nothing it should not redo: finished datasets are already moved.
    """
    return [steps.process(state, config) for state in states]
