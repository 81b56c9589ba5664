"""The record of a download run: a JSON manifest in ``download/`` and ``download`` rows.

The manifest (``download/manifest-<run>.json``, written under a temporary name and
renamed) says what the run asked (the query and its criteria), what it fetched, what it
found already complete, what it skipped and why, what failed and why, the bytes and the
duration.  Each file fetched or tried also gets a row in the catalogue's ``download``
table, written as its dataset ends, so that the history survives a killed run and a
lost Prefect server.  Neither ever holds the token: no field carries it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hstlc.catalogue.engine import engine_for, session_scope
from hstlc.catalogue.store import record_downloads
from hstlc.fs import atomic_path
from hstlc.mast.fetch import FetchResult
from hstlc.mast.plan import DownloadPlan

MANIFEST_PREFIX = "manifest-"


def new_run_name(now: dt.datetime | None = None) -> str:
    """A run's name, its UTC start time: ``20261202T050000.123456Z`` (sortable, unique)."""
    return f"{(now or dt.datetime.now(dt.UTC)):%Y%m%dT%H%M%S.%fZ}"


def manifest_path(folder: Path, run: str) -> Path:
    return Path(folder) / f"{MANIFEST_PREFIX}{run}.json"


def record(database_url: str, run: str, results: Iterable[FetchResult]) -> int:
    """One ``download`` row per file of ``results`` (one transaction); rows written."""
    rows = [{
        "run": run, "filename": r.product.filename, "rootname": r.product.rootname,
        "uri": r.product.uri, "status": r.status, "reason": r.reason, "http_status": r.http_status,
        "size": r.size, "expected_size": r.product.size, "sha256": r.sha256,
        "expected_checksum": str(r.product.checksum) if r.product.checksum else None,
        "attempts": r.attempts, "seconds": r.seconds,
        "path": str(r.path) if r.path is not None else None,
    } for r in results]
    with session_scope(engine_for(database_url)) as session:
        return record_downloads(session, rows)


def _where(result: FetchResult, download: Path) -> str:
    if result.path is not None and result.path.parent == Path(download):
        return "waiting in download/ until every file of its dataset is here"
    return str(result.path)


def summarize(run: str, base_url: str, plan: DownloadPlan | None, results: Iterable[FetchResult],
              seconds: float, download: Path, error: str | None = None) -> dict[str, Any]:
    """The run's summary (JSON-friendly): the manifest's content and the command's report."""
    done = list(results)
    transferred = sum(r.transferred for r in done)
    summary: dict[str, Any] = {
        "run": run,
        "mast_url": base_url,
        "criteria": plan.criteria.describe() if plan else None,
        "query": plan.conditions if plan else None,
        "datasets_found": len(plan.asked) if plan else 0,
        "asked": [p.filename for d in plan.todo for p in d.products] if plan else [],
        "bytes_asked": plan.bytes if plan else 0,
        "fetched": {r.product.filename: {"bytes": r.size, "sha256": r.sha256, "attempts": r.attempts,
                                         "seconds": r.seconds, "where": _where(r, download)}
                    for r in done if r.status == "fetched"},
        "present": {r.product.filename: _where(r, download) for r in done if r.status == "present"},
        "failed": {r.product.filename: r.reason or "failed" for r in done if not r.ok},
        "skipped": dict(sorted(plan.skipped.items())) if plan else {},
        "refused": dict(sorted(plan.refused.items())) if plan else {},
        "deferred": list(plan.deferred) if plan else [],
        "bytes": transferred,
        "duration_s": round(seconds, 3),
        "mb_per_s": round(transferred / 1e6 / seconds, 3) if seconds > 0 else None,
        "files_per_s": round(len(done) / seconds, 3) if seconds > 0 else None,
    }
    if error is not None:
        summary["error"] = error
    return summary


def write_manifest(summary: dict[str, Any], folder: Path) -> Path:
    """Write the run's manifest into ``folder`` (temporary name, then rename)."""
    path = manifest_path(folder, summary["run"])
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(summary, indent=2, sort_keys=False) + "\n")
    return path
