"""Progress of a fan-out: datasets done of total, rate, rejects; log lines and a UI artifact."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.futures import as_completed
from prefect.logging import get_run_logger

from hstlc.ingest.dataset import DONE, FAILED, LEFT, REJECTED, DatasetState
from hstlc.io.headers import GroupKey


@dataclass
class Outcome:
    """What became of one dataset (or of a batch's datasets) in this run."""

    rootname: str
    state: DatasetState | None = None
    error: str | None = None


@dataclass
class Progress:
    total: int
    label: str = "datasets"
    done: int = 0
    rejected: int = 0
    failed: int = 0
    left: int = 0
    started: float = field(default_factory=time.monotonic)
    artifact: Any = None
    _last_log: float = 0.0

    def __post_init__(self) -> None:
        if self.total:
            self.artifact = create_progress_artifact(
                progress=0.0, key=None, description=f"hstlc: {self.label} processed"
            )

    def add(self, outcomes: Iterable[Outcome]) -> None:
        for outcome in outcomes:
            self.done += 1
            if outcome.error is not None or (outcome.state is not None and outcome.state.status == FAILED):
                self.failed += 1
            elif outcome.state is not None and outcome.state.status == REJECTED:
                self.rejected += 1
            elif outcome.state is not None and outcome.state.status == LEFT:
                self.left += 1
        now = time.monotonic()
        if now - self._last_log >= 2.0 or self.done == self.total:
            self._last_log = now
            rate = self.done / max(now - self.started, 1e-9)
            get_run_logger().info(
                "%d/%d %s done (%.1f/s), %d rejected, %d failed, %d left",
                self.done, self.total, self.label, rate, self.rejected, self.failed, self.left,
            )
            if self.artifact is not None:
                update_progress_artifact(self.artifact, progress=100.0 * self.done / self.total)


def _root_cause(future: Any, chain: list[Any]) -> str:
    """The message of the first step that failed (not of the steps that then never ran)."""
    for step in [*chain, future]:
        step.wait()
        if step.state.is_failed() or step.state.is_crashed():
            return step.state.message or step.state.name
    return future.state.message or future.state.name


def track(futures: dict[Any, list[Any]], progress: Progress) -> Iterator[Outcome]:
    """Yield the outcome of every dataset as its future finishes.

    ``futures`` maps each final future to the rootnames it carries (strings: one per
    dataset, or a batch's) followed by the earlier futures of its chain.  A failed
    future yields one failed outcome per dataset it carried, with the message of the
    step that failed; the other datasets are unaffected.
    """
    for future in as_completed(list(futures)):
        future.wait()
        state = future.state
        if state.is_completed():
            result = future.result()
            results = result if isinstance(result, list) else [result]
            outcomes = [Outcome(s.rootname, state=s) for s in results]
        else:
            carried = futures[future]
            names = [item for item in carried if isinstance(item, str)]
            chain = [item for item in carried if not isinstance(item, str)]
            message = _root_cause(future, chain)
            outcomes = [Outcome(name, error=message) for name in names]
        progress.add(outcomes)
        yield from outcomes


def summarize(plan: Any, outcomes: list[Outcome]) -> dict[str, Any]:
    """The ingest summary (JSON-friendly)."""
    ingested = sorted(o.rootname for o in outcomes if o.state is not None and o.state.status == DONE)
    rejected = {o.rootname: f"{o.state.reason}: {o.state.detail}" for o in outcomes
                if o.state is not None and o.state.status == REJECTED}
    failed = {o.rootname: o.error for o in outcomes if o.error is not None}
    failed.update({o.rootname: o.state.detail or "failed" for o in outcomes
                   if o.state is not None and o.state.status == FAILED})
    left = {o.rootname: o.state.detail or "left" for o in outcomes
            if o.state is not None and o.state.status == LEFT}
    # Groups to rebuild: those that gained a member, and those that lost one (a dataset
    # refused after its header was read, e.g. when re-processed).
    keys: list[GroupKey] = sorted({
        o.state.group_key for o in outcomes
        if o.state is not None and o.state.status in (DONE, REJECTED) and o.state.group_key is not None})
    return {
        "ingested": ingested,
        "rejected": rejected,
        "failed": failed,
        "left": left,
        "skipped": sorted(s.rootname for s in plan.skipped),
        "unrecognised": [str(p) for p in plan.unrecognised],
        "orphan_x1d": [str(p) for p in plan.orphan_x1d],
        "touched_keys": keys,
        "library_seconds": sum(o.state.library_seconds for o in outcomes if o.state is not None),
    }


def with_composites(summary: dict[str, Any], composites: dict[str, Any]) -> dict[str, Any]:
    """The run summary with the composite subflow's result and library time added."""
    seconds = sum(item.get("seconds", 0.0) for item in composites.get("written", []))
    return {**summary, "composites": composites,
            "library_seconds": summary.get("library_seconds", 0.0) + seconds}


def with_stats(summary: dict[str, Any], stats: dict[str, Any]) -> dict[str, Any]:
    """The run summary with the statistics subflow's result."""
    return {**summary, "stats": stats}


def run_name(prefix: str) -> Any:
    """A flow-run namer: ``<prefix>-<UTC time>`` (readable in the UI, sortable)."""
    import datetime as dt

    def name() -> str:
        return f"{prefix}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}"

    return name


def pages_of(stats: dict[str, Any]) -> int:
    """About how many pages follow a stats run: a page and a periodogram per lightcurve
    whose statistics were computed (its file changed)."""
    return 2 * (stats.get("computed", 0) + stats.get("unusable", 0))


def with_plots(summary: dict[str, Any], plots: dict[str, Any]) -> dict[str, Any]:
    """The run summary with the plots subflow's result."""
    return {**summary, "plots": plots}


def publish_run(summary: dict[str, Any]) -> None:
    """The run's artifacts in the Prefect UI: every outcome (a table), the run's most
    variable lightcurves (a table) and a link to the site's index."""
    from prefect.artifacts import create_link_artifact, create_table_artifact

    from hstlc.config import load_settings
    from hstlc.plots.report import most_variable, outcome_rows, run_lightcurves

    create_table_artifact(outcome_rows(summary), key="hstlc-run-outcomes",
                          description="hstlc run: what became of each dataset, composite, "
                                      "the statistics and the pages")
    variable = most_variable(load_settings().database_url, run_lightcurves(summary))
    if variable:
        create_table_artifact(variable, key="hstlc-most-variable",
                              description="hstlc run: its most variable lightcurves (poisson_factor)")
    index = (summary.get("plots") or {}).get("index")
    if index:
        from pathlib import Path

        create_link_artifact(Path(index).as_uri(), link_text="hstlc site: index.html",
                             key="hstlc-site", description="The site of this run (open from disk)")


def final_state(summary: dict[str, Any]) -> Any:
    """The flow's result: the summary, as a Failed state when a dataset or group failed.

    A rejected file is not a failure.  The summary is also shown in the UI as an artifact.
    """
    from prefect.artifacts import create_markdown_artifact
    from prefect.states import Failed

    composites = summary.get("composites") or {}
    failures = {**summary.get("failed", {}),
                **{f"composite {k}": v for k, v in composites.get("failed", {}).items()},
                **{f"stats {k}": v for k, v in (summary.get("stats") or {}).get("failed", {}).items()},
                **{f"page {k}": v for k, v in (summary.get("plots") or {}).get("failed", {}).items()}}
    lines = [
        "| ingested | rejected | failed | already catalogued | composites |",
        "| --- | --- | --- | --- | --- |",
        f"| {len(summary.get('ingested', []))} | {len(summary.get('rejected', {}))} | "
        f"{len(failures)} | {len(summary.get('skipped', []))} | "
        f"{len(composites.get('written', []))} |",
        "",
        *[f"- rejected `{name}`: {why}" for name, why in sorted(summary.get("rejected", {}).items())],
        *[f"- **failed** `{name}`: {why}" for name, why in sorted(failures.items())],
    ]
    create_markdown_artifact("\n".join(lines), description="hstlc run summary")
    publish_run(summary)
    if failures:
        return Failed(message=f"{len(failures)} failed: {', '.join(sorted(failures))}", data=summary)
    return summary
