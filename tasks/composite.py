"""Prefect tasks of the composite subflow."""

from __future__ import annotations

from typing import Any

from prefect import task

from hstlc.ingest import groups as composites
from hstlc.ingest.dataset import PipelineConfig
from tasks.retry import RETRY_OPTIONS


@task(name="composite-keys", **RETRY_OPTIONS)
def composite_keys(config: PipelineConfig, keys: list[list[str]], all_keys: bool) -> list[list[str]]:
    """The group keys to rebuild: the given ones, or every group in the catalogue."""
    return composites.group_keys(config) if all_keys else [list(k) for k in keys]


@task(name="composite", task_run_name="composite-{key[2]}-{key[3]}-{key[4]}", **RETRY_OPTIONS)
def build_composite(key: list[str], config: PipelineConfig) -> dict[str, Any]:
    """Build one group's composite and point its members' ``outputs`` rows at it."""
    return composites.build_group(config, tuple(key))


def summarize_composites(futures: list[Any], keys: list[list[str]]) -> dict[str, Any]:
    """Written composites, and the groups that failed with their error."""
    written, failed = [], {}
    for future, key in zip(futures, keys, strict=True):
        future.wait()
        if future.state.is_completed():
            written.append(future.result())
        else:
            failed["/".join(key)] = future.state.message or future.state.name
    return {"written": written, "failed": failed}
