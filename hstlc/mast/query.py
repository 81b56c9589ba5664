"""The MAST selection: which HST exposures and files hstlc downloads.

The 2016 selection (``LEGACY.md``, "MAST selection") in MAST's HST mission search
(``MastMissions(mission='hst')``, columns ``sci_*``):

=====================================================  ======================================
2016 rule                                              here
=====================================================  ======================================
COS and STIS                                           ``sci_instrume: COS,STIS``
TIME-TAG mode                                          ``sci_operating_mode: TIME-TAG``
released before today                                  ``sci_release_date: <YYYY-MM-DD``
                                                       (``--since``: ``SINCE..YYYY-MM-DD``)
target not DARK, BIAS, DEUTERIUM, WAVE, ANY or NONE    ``sci_targname: !DARK,!BIAS,...``
association member types EXP-FP or SCIENCE             ``sci_aec: S`` (science, not
                                                       calibration) and product ``type``
                                                       ``science``
products X1D, TAG, corrtag (CTA, CTB, CTG)             file names ``*_x1d``, ``*_tag``,
                                                       ``*_corrtag_a``, ``*_corrtag_b``,
                                                       ``*_corrtag`` (``.fits``)
=====================================================  ======================================

The conditions (:meth:`Criteria.conditions`) narrow what MAST sends; the same rules as a
pure function of the rows it returns (:func:`refusal`, :func:`select_datasets`,
:func:`select_products`) decide, so a server that ignores a condition (or reads the
exclusion list differently) still never makes hstlc fetch a calibration target or data of
another mode.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hstlc.io.headers import rootname_from_name
from hstlc.targets import normalize_targname

INSTRUMENTS: tuple[str, ...] = ("COS", "STIS")
OPERATING_MODE = "TIME-TAG"
#: Targets of calibration exposures (2016 list), never downloaded.
CALIBRATION_TARGETS: tuple[str, ...] = ("DARK", "BIAS", "DEUTERIUM", "WAVE", "ANY", "NONE")
#: ``sci_aec`` (Archived Exposures Catalog): S science, C calibration.
SCIENCE = "S"
#: The products hstlc ingests, by the end of their file names.
PRODUCT_SUFFIXES: tuple[str, ...] = ("_corrtag_a.fits", "_corrtag_b.fits", "_corrtag.fits",
                                     "_tag.fits", "_x1d.fits")
#: The columns asked of the search (the dataset name is added by astroquery).
COLUMNS: tuple[str, ...] = ("sci_targname", "sci_instrume", "sci_operating_mode", "sci_aec",
                            "sci_release_date", "sci_pep_id", "sci_start_time", "sci_status")
DATASET_COLUMN = "sci_data_set_name"
#: Columns of a product list that may carry a checksum, and the checksum kind of each.
CHECKSUM_COLUMNS: dict[str, str] = {"sha256": "sha256", "md5": "md5", "checksum": ""}
HEX_KINDS = {64: "sha256", 32: "md5"}


@dataclass(frozen=True)
class Criteria:
    """What a download run asks MAST for.

    ``until`` is "now" (UTC, naive): only data released before it.  ``since`` keeps data
    released on or after that date.  ``limit`` caps the datasets one run fetches (after
    what hstlc already has is left aside).
    """

    until: dt.datetime
    limit: int
    since: dt.date | None = None
    instruments: tuple[str, ...] = INSTRUMENTS
    target: str | None = None
    proposal: int | None = None

    def conditions(self) -> dict[str, str]:
        """The search conditions sent to MAST (MAST Search syntax: ``a,b`` is either,
        ``!a`` excludes, ``<d`` and ``d1..d2`` bound a date)."""
        today = self.until.date().isoformat()
        released = f"{self.since.isoformat()}..{today}" if self.since else f"<{today}"
        conditions = {
            "sci_instrume": ",".join(self.instruments),
            "sci_operating_mode": OPERATING_MODE,
            "sci_aec": SCIENCE,
            "sci_release_date": released,
            "sci_targname": ",".join(target_spellings(self.target)) if self.target else
            ",".join(f"!{name}" for name in CALIBRATION_TARGETS),
        }
        if self.proposal is not None:
            conditions["sci_pep_id"] = str(self.proposal)
        return conditions

    def describe(self) -> str:
        """The criteria in words, for logs and the manifest."""
        parts = [f"{'/'.join(self.instruments)} {OPERATING_MODE} released before "
                 f"{self.until:%Y-%m-%d %H:%M} UTC"]
        if self.since:
            parts.append(f"since {self.since}")
        if self.target:
            parts.append(f"target {self.target}")
        if self.proposal is not None:
            parts.append(f"proposal {self.proposal}")
        return ", ".join(parts) + f"; at most {self.limit} datasets"


def criteria_for(limit: int, *, since: str | dt.date | None = None,
                 instruments: Iterable[str] | None = None, target: str | None = None,
                 proposal: int | str | None = None, now: dt.datetime | None = None) -> Criteria:
    """:class:`Criteria` from plain options (a command's or a flow's parameters).

    Raises ``ValueError`` naming the option and the value found.

    >>> criteria_for(10, since="2026-11-01", instruments=["cos"], now=dt.datetime(2026, 12, 1)).conditions()
    ... # doctest: +NORMALIZE_WHITESPACE
    {'sci_instrume': 'COS', 'sci_operating_mode': 'TIME-TAG', 'sci_aec': 'S',
     'sci_release_date': '2026-11-01..2026-12-01',
     'sci_targname': '!DARK,!BIAS,!DEUTERIUM,!WAVE,!ANY,!NONE'}
    """
    if isinstance(since, str):
        try:
            since = dt.date.fromisoformat(since.strip())
        except ValueError:
            raise ValueError(f"--since: expected a date such as 2026-11-01; got {since!r}") from None
    chosen = tuple(dict.fromkeys(name.strip().upper() for name in instruments or INSTRUMENTS))
    unknown = [name for name in chosen if name not in INSTRUMENTS]
    if unknown or not chosen:
        raise ValueError(f"--instrument: expected {' or '.join(INSTRUMENTS)}; got {', '.join(unknown)}")
    if limit < 1:
        raise ValueError(f"--limit: expected a whole number, 1 or more; got {limit}")
    try:
        number = None if proposal in (None, "") else int(proposal)  # type: ignore[arg-type]
    except ValueError:
        raise ValueError(f"--proposal: expected a proposal ID (a number); got {proposal!r}") from None
    until = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return Criteria(until=until, limit=limit, since=since, instruments=chosen,
                    target=target.strip() if target and target.strip() else None, proposal=number)


def target_spellings(target: str) -> list[str]:
    """The spellings of a target sent to MAST: as typed (upper case) and its compact key.

    >>> target_spellings("gj-436")
    ['GJ-436', 'GJ436']
    """
    typed = target.strip().upper()
    return list(dict.fromkeys([typed, normalize_targname(typed)]))


@dataclass(frozen=True)
class Dataset:
    """One row of the HST mission search: a dataset (exposure or association)."""

    name: str
    instrument: str
    targname: str
    operating_mode: str
    release: str
    proposal: int | None = None
    aec: str = SCIENCE


@dataclass(frozen=True)
class Checksum:
    """A checksum MAST listed for a file: its kind (``sha256``, ``md5``) and hex value."""

    kind: str
    value: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


@dataclass(frozen=True)
class Product:
    """One file of a dataset, as MAST's product list gives it."""

    filename: str
    uri: str
    dataset: str
    size: int | None = None
    checksum: Checksum | None = None
    rootname: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rootname", rootname_from_name(self.filename))


# -- the rules, on plain rows ---------------------------------------------------------------------


def plain(value: Any) -> Any:
    """A table cell as a plain value: masked and NaN become ``None``, text is stripped."""
    if value is None or value is np.ma.masked:
        return None
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, bytes):
        value = value.decode()
    return value.strip() if isinstance(value, str) else value


def rows_of(table: Any) -> list[dict[str, Any]]:
    """The rows of an astropy table (or an iterable of mappings) as plain dicts."""
    names = list(getattr(table, "colnames", []))
    if names:
        return [{name: plain(row[name]) for name in names} for row in table]
    return [{key: plain(value) for key, value in row.items()} for row in table]


def release_time(text: str | None) -> dt.datetime | None:
    """A MAST date-time (``2017-12-20T09:39:02.123``) as a naive UTC datetime."""
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _text(row: Mapping[str, Any], key: str) -> str:
    """A text column, stripped and upper-cased (MAST pads ``sci_instrume``)."""
    return str(row.get(key) or "").strip().upper()


def refusal(row: Mapping[str, Any], criteria: Criteria) -> str | None:
    """Why a search row is not downloaded (``None``: it is).

    >>> now = dt.datetime(2026, 12, 1)
    >>> row = {"sci_data_set_name": "LDARK1ABQ", "sci_instrume": "COS", "sci_aec": "S",
    ...        "sci_operating_mode": "TIME-TAG", "sci_targname": "DARK",
    ...        "sci_release_date": "2020-01-01T00:00:00"}
    >>> refusal(row, Criteria(until=now, limit=10))
    'target DARK is a calibration target'
    """
    instrument, mode, target = (_text(row, key) for key in
                                ("sci_instrume", "sci_operating_mode", "sci_targname"))
    released = release_time(row.get("sci_release_date"))
    if instrument not in criteria.instruments:
        return f"instrument {instrument or 'unknown'} is not {' or '.join(criteria.instruments)}"
    if mode != OPERATING_MODE:
        return f"operating mode {mode or 'unknown'} is not {OPERATING_MODE}"
    if target in CALIBRATION_TARGETS:
        return f"target {target} is a calibration target"
    if (_text(row, "sci_aec") or SCIENCE) != SCIENCE:
        return f"not a science exposure (sci_aec {row.get('sci_aec')})"
    if released is None or released >= criteria.until:
        return f"not released before {criteria.until:%Y-%m-%d %H:%M} UTC ({released or 'no date'})"
    if criteria.since is not None and released.date() < criteria.since:
        return f"released {released.date()}, before {criteria.since}"
    if criteria.target and normalize_targname(target) != normalize_targname(criteria.target):
        return f"target {target} is not {criteria.target}"
    proposal = row.get("sci_pep_id")
    if criteria.proposal is not None and (proposal is None or int(proposal) != criteria.proposal):
        return f"proposal {proposal} is not {criteria.proposal}"
    return None


def dataset_of(row: Mapping[str, Any]) -> Dataset:
    proposal = row.get("sci_pep_id")
    return Dataset(
        name=str(row[DATASET_COLUMN]).strip().lower(),
        instrument=_text(row, "sci_instrume"),
        targname=str(row.get("sci_targname") or "").strip(),
        operating_mode=_text(row, "sci_operating_mode"),
        release=str(row.get("sci_release_date") or ""),
        proposal=None if proposal is None else int(proposal),
        aec=_text(row, "sci_aec") or SCIENCE,
    )


def select_datasets(rows: Iterable[Mapping[str, Any]], criteria: Criteria
                    ) -> tuple[list[Dataset], dict[str, str]]:
    """The datasets to consider, in the order given, and the refused ones with why."""
    chosen: dict[str, Dataset] = {}
    refused: dict[str, str] = {}
    for row in rows:
        name = str(row.get(DATASET_COLUMN) or "").strip().lower()
        if not name:
            continue
        why = refusal(row, criteria)
        if why is not None:
            refused[name] = why
        elif name not in chosen:
            chosen[name] = dataset_of(row)
    return list(chosen.values()), refused


def checksum_of(row: Mapping[str, Any]) -> Checksum | None:
    """The checksum a product row lists, if any (``sha256``, ``md5`` or ``checksum``)."""
    for column, kind in CHECKSUM_COLUMNS.items():
        value = str(row.get(column) or "").strip().lower()
        if ":" in value:  # "sha256:..." / "md5:..."
            kind, _, value = value.partition(":")
        kind = kind or HEX_KINDS.get(len(value), "")
        if value and kind in ("sha256", "md5") and len(value) == {"sha256": 64, "md5": 32}[kind]:
            return Checksum(kind, value)
    return None


def select_products(rows: Iterable[Mapping[str, Any]]) -> list[Product]:
    """The files hstlc ingests among a product list, once each, in the order given.

    A file is kept when its name ends with one of :data:`PRODUCT_SUFFIXES` and, where the
    list says, its ``type`` is ``science``.
    """
    chosen: dict[str, Product] = {}
    for row in rows:
        filename = str(row.get("filename") or "").strip()
        kind = str(row.get("type") or "science").lower()
        if not filename.lower().endswith(PRODUCT_SUFFIXES) or kind != "science":
            continue
        if filename in chosen:
            continue
        size = row.get("size")
        chosen[filename] = Product(
            filename=filename, uri=str(row.get("uri") or filename),
            dataset=str(row.get("dataset") or "").lower(),
            size=int(size) if size not in (None, "") and int(size) > 0 else None,
            checksum=checksum_of(row))
    return list(chosen.values())
