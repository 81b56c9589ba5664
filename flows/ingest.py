"""The ingest flow: every dataset in ``ingest/`` through the per-dataset tasks."""

from __future__ import annotations

from typing import Any

from prefect import flow, unmapped

from hstlc.config import Settings, load_settings
from hstlc.ingest.dataset import DatasetState, PipelineConfig
from tasks.ingest import (
    check_quality,
    convert_stis,
    make_lightcurve,
    make_quicklook,
    move_files,
    plan_ingest,
    process_batch,
    record_metadata,
)
from tasks.progress import Progress, final_state, run_name, summarize, track
from tasks.runner import active_cluster, batch_length, runner_label

#: Fewest datasets in a batch task on a cluster (a dataset is ~0.2 s, a Dask task ~0.1 s).
CLUSTER_BATCH = 8


def batch_size_for(count: int, settings: Settings, batch_size: int | None, address: str | None) -> int:
    """0 for one task per step and dataset; else datasets per batch task.

    ``batch_size`` None chooses: on a cluster (``address``), always batches (see
    :func:`tasks.runner.batch_length`, at most ``settings.batch_size``); on threads,
    per-dataset tasks up to ``settings.batch_threshold`` datasets, batches of
    ``settings.batch_size`` above it.
    """
    if batch_size is not None:
        return max(batch_size, 0)
    if address is not None:
        return batch_length(count, settings, address, least=CLUSTER_BATCH, most=settings.batch_size)
    return settings.batch_size if count > settings.batch_threshold else 0


def fan_out(states: list[DatasetState], config: PipelineConfig, size: int) -> dict[Any, list[Any]]:
    """Submit the per-dataset chains (or batches).

    Returns a map from each final future to what it carries: the rootnames of its
    datasets, then (per-dataset mode) the futures of the earlier steps of its chain.
    """
    if size:
        batches = [states[i : i + size] for i in range(0, len(states), size)]
        return {
            process_batch.submit(batch, config, batch_len=len(batch)): [s.rootname for s in batch]
            for batch in batches
        }
    checked = check_quality.map(unmapped("check"), states, unmapped(config))
    converted = convert_stis.map(unmapped("convert"), checked, unmapped(config))
    curves = make_lightcurve.map(unmapped("lightcurve"), converted, unmapped(config))
    looks = make_quicklook.map(unmapped("quicklook"), curves, unmapped(config))
    recorded = record_metadata.map(unmapped("record"), looks, unmapped(config))
    moved = move_files.map(unmapped("move"), recorded, unmapped(config))
    chains = zip(checked, converted, curves, looks, recorded, moved, states, strict=True)
    return {chain[5]: [chain[6].rootname, *chain[:5]] for chain in chains}


def run_plan(plan: Any, settings: Settings, batch_size: int | None) -> dict[str, Any]:
    """Process a plan's datasets and summarise what became of each."""
    config = PipelineConfig.from_settings(settings)
    states = list(plan.todo)
    address = active_cluster()
    size = batch_size_for(len(states), settings, batch_size, address)
    finals = fan_out(states, config, size)
    outcomes = list(track(finals, Progress(total=len(states))))
    summary = summarize(plan, outcomes)
    summary["mode"] = (f"{f'batches of {size}' if size else 'per-dataset tasks'} on "
                       f"{runner_label(settings, address)}")
    return summary


@flow(name="ingest", flow_run_name=run_name("ingest"))
def ingest(force: bool = False, batch_size: int | None = None) -> Any:
    """Ingest every dataset waiting in ``ingest/``.

    Returns the summary (ingested, rejected with reasons, failed, skipped, unrecognised
    files, touched composite groups); the run ends Failed when a dataset failed.

    Parameters
    ----------
    force : bool
        Also re-extract every dataset already in ``filesystem/`` (2016: ``-corrtag_extract``).
    batch_size : int, optional
        Datasets per batch task; 0 forces one task per step and dataset; default: chosen
        by the number of datasets (see the ``batch_threshold`` setting).
    """
    settings = load_settings()
    plan = plan_ingest(PipelineConfig.from_settings(settings), force)
    return final_state(run_plan(plan, settings, batch_size))
