"""A dataset on its way through the ingest: its files, its state, the settings it needs.

A *dataset* is what one exposure left in ``ingest/``: a COS FUV ``_corrtag_a`` /
``_corrtag_b`` pair, a COS NUV ``_corrtag``, or a STIS ``_tag``, each with its
``_x1d`` when present.  :class:`DatasetJob` names its files, :class:`DatasetState`
carries what the steps (:mod:`hstlc.ingest.steps`) learnt and made, and its
``status`` says where it is: pending, then done, rejected (bad data, recorded),
skipped (nothing to do), left (for the next run: a file vanished after planning, the
disk filled, or the run was interrupted; nothing recorded) or failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hstlc.config import DEFAULT_MAX_TIME_SPAN_S, Settings
from hstlc.fs import Layout, Permissions
from hstlc.io.headers import GroupKey

PENDING, DONE, REJECTED, SKIPPED, FAILED = "pending", "done", "rejected", "skipped", "failed"
LEFT = "left"


@dataclass(frozen=True)
class PipelineConfig:
    """What the steps need from the settings, as plain values (picklable for Dask)."""

    database_url: str = field(repr=False)
    layout: Layout
    permissions: Permissions
    step: float
    bad_proposals: tuple[int, ...]
    reference_dir: Path | None
    hlsp: dict[str, str]
    #: Longest time span (s) of one exposure; longer ones are refused by the check.
    max_time_span_s: float = DEFAULT_MAX_TIME_SPAN_S

    @classmethod
    def from_settings(cls, settings: Settings) -> PipelineConfig:
        return cls(
            database_url=settings.database_url,
            layout=Layout.from_settings(settings),
            permissions=Permissions.from_settings(settings),
            step=settings.lightcurve_step,
            bad_proposals=tuple(settings.bad_proposals),
            reference_dir=settings.reference_dir,
            hlsp=settings.hlsp.model_dump(),
            max_time_span_s=settings.max_time_span_s,
        )


@dataclass(frozen=True)
class DatasetJob:
    """The files of one dataset and where they are now."""

    rootname: str
    event_files: tuple[Path, ...]
    x1d: Path | None = None
    #: Display name: the rootname, or the file name for a lone file of another kind.
    name: str = ""

    @property
    def files(self) -> tuple[Path, ...]:
        """Every input file of the dataset (event files, then the x1d)."""
        return self.event_files + ((self.x1d,) if self.x1d is not None else ())


@dataclass(frozen=True)
class DatasetState:
    """A dataset on its way through the steps."""

    job: DatasetJob
    status: str = PENDING
    reason: str | None = None
    detail: str | None = None
    targname: str | None = None
    #: The composite group: learnt by the quality check, or from the catalogue on refusal.
    group_key: GroupKey | None = None
    extract_files: tuple[Path, ...] = ()
    made_files: tuple[Path, ...] = ()
    curve: Path | None = None
    quicklook: Path | None = None
    hashes: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def rootname(self) -> str:
        """The dataset's name in summaries and task names."""
        return self.job.name or self.job.rootname

    @property
    def library_seconds(self) -> float:
        return float(sum(self.seconds.values()))
