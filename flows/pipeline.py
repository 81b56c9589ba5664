"""``hstlc_pipeline``: ingest, then composites (then statistics and plots)."""

from __future__ import annotations

from typing import Any, cast

from prefect import State, flow

from flows.composite import composite
from flows.ingest import ingest, run_plan
from hstlc.config import load_settings
from hstlc.fs import run_lock
from hstlc.ingest.dataset import PipelineConfig
from tasks.ingest import plan_target
from tasks.progress import final_state, run_name, with_composites
from tasks.runner import task_runner_for

#: How long a scheduled or deployed run waits for a run in progress in the same home.
RUN_LOCK_WAIT_S = 3600.0


@flow(name="hstlc_pipeline", flow_run_name=run_name("hstlc-pipeline"))
def hstlc_pipeline(
    force: bool = False, batch_size: int | None = None, all_composites: bool = False
) -> Any:
    """The whole job: ingest new data, then rebuild the composites it touched."""
    settings = load_settings()
    with run_lock(settings.home_dir, wait_s=RUN_LOCK_WAIT_S):
        state = cast(State, ingest.with_options(task_runner=task_runner_for(settings))(
            force=force, batch_size=batch_size, return_state=True
        ))
        summary = state.result(raise_on_failure=False)
        if isinstance(summary, BaseException):  # the ingest itself broke (not one dataset)
            raise summary
        composites = composite.with_options(task_runner=task_runner_for(settings))(
            keys=summary["touched_keys"], all_keys=all_composites
        )
    return final_state(with_composites(summary, composites))


@flow(name="process-target", flow_run_name="process-{target}")
def process_target(target: str, batch_size: int | None = None) -> dict[str, Any]:
    """Every dataset of one target from ``filesystem/``, through every ingest step."""
    settings = load_settings()
    plan = plan_target(PipelineConfig.from_settings(settings), target)
    return run_plan(plan, settings, batch_size)


@flow(name="reprocess-target", flow_run_name="reprocess-{target}")
def reprocess_target(target: str, batch_size: int | None = None) -> Any:
    """Re-process one target: all its datasets from ``filesystem/``, then its composites."""
    settings = load_settings()
    with run_lock(settings.home_dir, wait_s=RUN_LOCK_WAIT_S):
        summary = process_target.with_options(task_runner=task_runner_for(settings))(
            target=target, batch_size=batch_size
        )
        composites = composite.with_options(task_runner=task_runner_for(settings))(
            keys=summary["touched_keys"]
        )
    return final_state(with_composites(summary, composites))
