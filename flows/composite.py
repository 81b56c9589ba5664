"""The composite subflow: rebuild the composite lightcurves of the touched groups."""

from __future__ import annotations

from typing import Any

from prefect import flow, unmapped

from hstlc.config import load_settings
from hstlc.ingest.dataset import PipelineConfig
from hstlc.io.headers import GroupKey
from tasks.composite import build_composite, composite_keys, summarize_composites
from tasks.progress import run_name


@flow(name="composite", flow_run_name=run_name("composite"))
def composite(keys: list[GroupKey] | None = None, all_keys: bool = False) -> dict[str, Any]:
    """Rebuild composites for ``keys`` (group keys), or for every group with ``all_keys``."""
    config = PipelineConfig.from_settings(load_settings())
    chosen = composite_keys(config, keys or [], all_keys)
    futures = build_composite.map(chosen, unmapped(config))
    return summarize_composites(futures, chosen)
