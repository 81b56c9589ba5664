"""What a run did, as tables an operator reads in the Prefect UI: every dataset's outcome,
the composites and statistics, the run's most variable lightcurves and where the site is."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hstlc.catalogue.engine import engine_for, session_scope
from hstlc.catalogue.queries import stats_table
from hstlc.io.lightcurve_file import lightcurve_filename
from hstlc.variability.table import best_period

#: Most rows of the run's outcome table (a backfill ingests thousands of datasets).
MAX_ROWS = 500


def run_lightcurves(summary: Mapping[str, Any]) -> list[str]:
    """The file names of the lightcurves a run wrote: the ingested datasets' and the
    composites'."""
    names = [lightcurve_filename(rootname) for rootname in summary.get("ingested", [])]
    for built in (summary.get("composites") or {}).get("written", []):
        if built.get("path"):
            names.append(Path(built["path"]).name)
    return sorted(set(names))


def outcome_rows(summary: Mapping[str, Any], limit: int = MAX_ROWS) -> list[dict[str, Any]]:
    """One row per dataset refused, failed, left or ingested (in that order, at most
    ``limit``, then a row saying how many more), per composite written or failed, and one
    for the statistics and one for the pages."""
    rows: list[dict[str, Any]] = []
    for outcome, key in (("refused", "rejected"), ("failed", "failed"), ("left", "left")):
        rows += [{"outcome": outcome, "name": name, "detail": str(why)}
                 for name, why in sorted((summary.get(key) or {}).items())]
    rows += [{"outcome": "ingested", "name": name, "detail": ""} for name in summary.get("ingested", [])]
    composites = summary.get("composites") or {}
    rows += [{"outcome": "composite written", "name": Path(built["path"]).name,
              "detail": f"{built.get('members', 0)} members"}
             for built in composites.get("written", []) if built.get("path")]
    rows += [{"outcome": "composite failed", "name": str(name), "detail": str(why)}
             for name, why in sorted(composites.get("failed", {}).items())]
    if len(rows) > limit:
        rows = [*rows[:limit], {"outcome": "...", "name": f"{len(rows) - limit} more rows",
                                "detail": "see the run's log file"}]
    stats = summary.get("stats")
    if stats is not None:
        rows.append({"outcome": "stats computed", "name": str(stats.get("computed", 0)),
                     "detail": f"{stats.get('unusable', 0)} without statistics (reason given), "
                               f"{len(stats.get('failed', {}))} failed"})
    plots = summary.get("plots")
    if plots is not None:
        rows.append({"outcome": "pages rendered", "name": str(plots.get("rendered", 0)),
                     "detail": f"{len(plots.get('failed', {}))} failed; index {plots.get('index', '')}"})
    return rows


def most_variable(database_url: str, filenames: list[str], limit: int = 10) -> list[dict[str, Any]]:
    """The ``limit`` most variable of the lightcurves ``filenames`` (by poisson_factor),
    with their period search and flares."""
    if not filenames:
        return []
    with session_scope(engine_for(database_url)) as session:
        rows = stats_table(session, sort="poisson_factor", limit=limit, filenames=filenames)
        values = [{c.name: getattr(row, c.name) for c in row.__table__.c} for row in rows]
    return [{"lightcurve": v["lightcurve_filename"], "target": v["targname"], "kind": v["kind"],
             "poisson_factor": _round(v["poisson_factor"]), "fap": _round(v["fap"]),
             "best_period_s": _round(best_period(v)), "flares": v["n_flares"],
             "excess_variance": _round(v["excess_variance"]), "reason": v["reason"]}
            for v in values]


def _round(value: Any) -> Any:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return float(f"{value:.4g}")


__all__ = ["MAX_ROWS", "most_variable", "outcome_rows", "run_lightcurves"]
