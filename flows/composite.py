"""The composite subflow: rebuild the composite lightcurves of the touched groups."""

from __future__ import annotations

from typing import Any

from prefect import flow, unmapped

from hstlc.config import load_settings
from hstlc.ingest.dataset import PipelineConfig
from tasks import composite as c
from tasks.progress import run_name


@flow(name="composite", flow_run_name=run_name("composite"))
def composite(keys: list[list[str]] | None = None, all_keys: bool = False) -> dict[str, Any]:
    """Rebuild composites for ``keys`` (group keys), or for every group with ``all_keys``."""
    config = PipelineConfig.from_settings(load_settings())
    chosen = c.composite_keys(config, keys or [], all_keys)
    futures = c.build_composite.map(chosen, unmapped(config))
    return c.summarize_composites(futures, chosen)
