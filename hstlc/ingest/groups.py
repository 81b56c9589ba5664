"""Composite lightcurves of catalogue groups: find the members, build, record.

A group is the 2016 key (INSTRUME, DETECTOR, normalised TARGNAME, OPT_ELEM, CENWAVE,
APERTURE).  Its members are the ingested datasets of that key, read from their
``filesystem/`` folders; the composite goes to ``outputs/composite/`` and every
member's ``outputs`` row points at it.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from sqlalchemy import select

from hstlc.catalogue.engine import session_scope
from hstlc.catalogue.models import Metadata, Outputs
from hstlc.catalogue.store import upsert_output
from hstlc.ingest.dataset import PipelineConfig, catalogue_group_key, engine_for

logger = logging.getLogger(__name__)

#: Catalogue files that are event lists a composite is made from (STIS: the corrtag).
EVENT_SUFFIXES = ("_corrtag_a.fits", "_corrtag_b.fits", "_corrtag.fits")


def group_keys(config: PipelineConfig) -> list[list[str]]:
    """Every group key in the catalogue."""
    with session_scope(engine_for(config.database_url)) as session:
        rows = session.scalars(select(Metadata)).all()
        keys = {catalogue_group_key(row) for row in rows if row.filename.lower().endswith(EVENT_SUFFIXES)}
    return [list(key) for key in sorted(keys)]


def group_members(config: PipelineConfig, key: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """``rootname -> {"files": [event files], "x1d": path|None, "ids": [metadata ids]}``."""
    instrume, detector, _, opt_elem, cenwave, aperture = key
    with session_scope(engine_for(config.database_url)) as session:
        rows = session.scalars(
            select(Metadata).where(
                Metadata.instrume == instrume, Metadata.detector == detector,
                Metadata.opt_elem == opt_elem, Metadata.cenwave == int(cenwave),
                Metadata.aperture == aperture,
            )
        ).all()
        members: dict[str, dict[str, Any]] = defaultdict(lambda: {"files": [], "x1d": None, "ids": []})
        for row in rows:
            if catalogue_group_key(row) != tuple(key):
                continue
            path = Path(row.path) / row.filename
            member = members[row.rootname]
            if row.filename.lower().endswith(EVENT_SUFFIXES):
                member["files"].append(path)
                member["ids"].append(row.id)
            elif row.filename.lower().endswith("_x1d.fits"):
                member["x1d"] = path
    return {root: m for root, m in sorted(members.items()) if m["files"]}


def build_group(config: PipelineConfig, key: tuple[str, ...]) -> dict[str, Any]:
    """Build the composite of one group; update its members' ``outputs`` rows."""
    from hstlc.extraction.composite import GroupKey, hlsp_filename, make_composite

    started = time.perf_counter()
    members = group_members(config, key)
    instrume, detector, targname, opt_elem, cenwave, aperture = key
    group = GroupKey(instrume, detector, targname, opt_elem, int(cenwave), aperture)
    if not members:  # its last member was refused: the old composite goes too
        stale = config.layout.composite / hlsp_filename(group, config.hlsp["version"])
        stale.unlink(missing_ok=True)
        logger.warning("composite %s: no member left; %s removed", "/".join(key), stale.name)
        return {"key": list(key), "path": None, "members": 0, "outputs_rows": 0,
                "reported": [], "seconds": time.perf_counter() - started}
    config.layout.ensure("outputs", "composite", permissions=config.permissions)
    result = make_composite(
        [[*m["files"], *([m["x1d"]] if m["x1d"] is not None else [])] for m in members.values()],
        config.layout.composite,
        hlsp_name=config.hlsp["name"],
        hlsp_lead=config.hlsp["lead"],
        proposid=config.hlsp["proposid"],
        key=group,
        version=config.hlsp["version"],
        step=config.step,
        reference_dir=config.reference_dir,
    )
    if result.path is None:
        reasons = "; ".join(f"{name}: {why}" for name, why in result.skipped)
        logger.warning("composite %s not written: %s", "/".join(key), reasons)
        return {"key": list(key), "path": None, "members": 0, "outputs_rows": 0,
                "reported": [list(item) for item in result.skipped],
                "seconds": time.perf_counter() - started}
    path = Path(result.path)
    config.permissions.apply(path)
    with session_scope(engine_for(config.database_url)) as session:
        for member in members.values():
            for metadata_id in member["ids"]:
                upsert_output(session, metadata_id, composite_path=str(path.parent),
                              composite_filename=path.name)
        session.flush()
        recorded = session.scalars(select(Outputs).where(Outputs.composite_filename == path.name)).all()
    logger.info("composite %s: %d members", path.name, len(members))
    return {"key": list(key), "path": str(path), "members": len(result.members),
            "outputs_rows": len(recorded), "reported": [list(item) for item in result.skipped],
            "seconds": time.perf_counter() - started}
