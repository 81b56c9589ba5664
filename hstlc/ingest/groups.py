"""Composite lightcurves of catalogue groups: find the members, build, record.

A group is a :class:`~hstlc.io.headers.GroupKey` (the 2016 key: INSTRUME, DETECTOR,
normalised TARGNAME, OPT_ELEM, CENWAVE, APERTURE).  Its members are the ingested
datasets of that key, read from their ``filesystem/`` folders; the composite goes to
``outputs/composite/`` and every member's ``outputs`` row points at it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hstlc.catalogue.engine import engine_for, session_scope
from hstlc.catalogue.queries import composite_output_count, group_keys, group_rows, is_event_filename
from hstlc.catalogue.store import upsert_output
from hstlc.ingest.dataset import PipelineConfig
from hstlc.ingest.plan import exposure_of
from hstlc.io.headers import GroupKey

logger = logging.getLogger(__name__)


@dataclass
class GroupMember:
    """One dataset of a group: its event files (with their ``metadata`` ids) and x1d."""

    files: list[Path] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)
    x1d: Path | None = None


def catalogue_groups(config: PipelineConfig) -> list[GroupKey]:
    """Every composite group in the catalogue."""
    with session_scope(engine_for(config.database_url)) as session:
        return group_keys(session)


def group_members(config: PipelineConfig, key: GroupKey) -> dict[str, GroupMember]:
    """``rootname -> member`` of the datasets of one group that have event files.

    One exposure counts once: a member holds one file per segment (the first by file
    name), whatever else the catalogue holds for that rootname and segment.
    """
    members: dict[str, GroupMember] = {}
    segments: set[tuple[str, str]] = set()
    with session_scope(engine_for(config.database_url)) as session:
        for row in group_rows(session, key):
            path = Path(row.path) / row.filename
            member = members.setdefault(row.rootname, GroupMember())
            if is_event_filename(row.filename):
                segment = (row.rootname, exposure_of(row.filename)[1])
                if segment in segments:
                    logger.warning("composite %s: %s repeats exposure %s %s; left out",
                                   key.label, row.filename, *segment)
                    continue
                segments.add(segment)
                member.files.append(path)
                member.ids.append(row.id)
            elif row.filename.lower().endswith("_x1d.fits"):
                member.x1d = path
    return {root: m for root, m in sorted(members.items()) if m.files}


def _built(key: GroupKey, started: float, path: Path | None = None, members: int = 0,
           outputs_rows: int = 0, reported: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    """What :func:`build_group` reports of one group."""
    return {"key": key, "path": None if path is None else str(path), "members": members,
            "outputs_rows": outputs_rows, "reported": [list(item) for item in reported],
            "seconds": time.perf_counter() - started}


def build_group(config: PipelineConfig, key: GroupKey) -> dict[str, Any]:
    """Build the composite of one group; update its members' ``outputs`` rows."""
    from hstlc.extraction.composite import hlsp_filename, make_composite

    started = time.perf_counter()
    members = group_members(config, key)
    if not members:  # its last member was refused: the old composite goes too
        stale = config.layout.composite / hlsp_filename(key, config.hlsp["version"])
        stale.unlink(missing_ok=True)
        logger.warning("composite %s: no member left; %s removed", key.label, stale.name)
        return _built(key, started)
    config.layout.ensure("outputs", "composite", permissions=config.permissions)
    result = make_composite(
        [[*m.files, *([m.x1d] if m.x1d is not None else [])] for m in members.values()],
        config.layout.composite,
        hlsp_name=config.hlsp["name"],
        hlsp_lead=config.hlsp["lead"],
        proposid=config.hlsp["proposid"],
        key=key,
        version=config.hlsp["version"],
        step=config.step,
        reference_dir=config.reference_dir,
    )
    if result.path is None:
        reasons = "; ".join(f"{name}: {why}" for name, why in result.skipped)
        logger.warning("composite %s not written: %s", key.label, reasons)
        return _built(key, started, reported=result.skipped)
    path = Path(result.path)
    config.permissions.apply(path)
    with session_scope(engine_for(config.database_url)) as session:
        for member in members.values():
            for metadata_id in member.ids:
                upsert_output(session, metadata_id, composite_path=str(path.parent),
                              composite_filename=path.name)
        session.flush()
        recorded = composite_output_count(session, path.name)
    logger.info("composite %s: %d members", path.name, len(members))
    return _built(key, started, path, len(result.members), recorded, result.skipped)
