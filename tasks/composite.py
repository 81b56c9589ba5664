"""Prefect tasks of the composite subflow."""

from __future__ import annotations

from typing import Any

from prefect import task

from hstlc.ingest import groups
from hstlc.ingest.dataset import PipelineConfig
from hstlc.io.headers import GroupKey
from tasks.retry import RETRY_OPTIONS


@task(name="composite-keys", **RETRY_OPTIONS)
def composite_keys(config: PipelineConfig, keys: list[GroupKey], all_keys: bool) -> list[GroupKey]:
    """The group keys to rebuild: the given ones, or every group in the catalogue."""
    return groups.catalogue_groups(config) if all_keys else keys


@task(name="composite", task_run_name="composite-{key.targname}-{key.opt_elem}-{key.cenwave}",
      **RETRY_OPTIONS)
def build_composite(key: GroupKey, config: PipelineConfig) -> dict[str, Any]:
    """Build one group's composite and point its members' ``outputs`` rows at it."""
    return groups.build_group(config, key)


def summarize_composites(futures: list[Any], keys: list[GroupKey]) -> dict[str, Any]:
    """Written composites, and the groups that failed with their error."""
    written, failed = [], {}
    for future, key in zip(futures, keys, strict=True):
        future.wait()
        if future.state.is_completed():
            written.append(future.result())
        else:
            failed[key.label] = future.state.message or future.state.name
    return {"written": written, "failed": failed}
