"""The catalogue table: every lightcurve with its statistics, sortable and filterable.

A table page is two files beside each other: ``<stem>.html`` (the page shell, through
:func:`hstlc.plots.html.page`) and ``<stem>-data.js``, which assigns the rows to the
global ``HSTLC_TABLE``.  The browser code (``static/catalogue.js``) builds the table from
that global: a page opened from disk (``file://``) cannot fetch a JSON file, but it can
load a script.  The data names each column once and gives each row as an array::

    window.HSTLC_TABLE = {"columns": [{"key": ..., "heading": ..., "kind": ...,
                          "format": ...}, ...], "links": ["thumbnail", ...],
                          "keys": [...], "rows": [[...], ...]};

Text reaches the page only through ``textContent`` (never as HTML), so a target name
such as ``<script>`` is shown as it is.  The static files (``catalogue.js``, the style
sheet) are copied into ``<site>/static/`` by :func:`hstlc.plots.html.install_static`,
which the caller runs once for the site.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from numbers import Integral, Real
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

from hstlc.fs import atomic_path
from hstlc.plots import html


class Column(NamedTuple):
    """One column of the table.

    ``kind`` is ``"text"``, ``"number"`` or ``"bool"`` (how it sorts and filters);
    ``format`` is how a number is shown: ``"d"`` (an integer with thousands
    separators), ``".Nf"`` (N decimals), ``".Ne"`` (scientific, N decimals) or ``".Ng"``
    (N significant digits); empty for text and booleans.
    """

    key: str
    heading: str
    kind: str
    format: str = ""


#: The table's columns, in order; the keys are the catalogue's ``metadata``/``stats``
#: column names (``period_best``: the period of the range with the smallest FAP).
COLUMNS: tuple[Column, ...] = (
    Column("lightcurve", "lightcurve", "text"),
    Column("kind", "kind", "text"),
    Column("targname", "target", "text"),
    Column("instrume", "instrument", "text"),
    Column("detector", "detector", "text"),
    Column("opt_elem", "grating", "text"),
    Column("cenwave", "cenwave", "number", ".0f"),
    Column("aperture", "aperture", "text"),
    Column("exptime", "exptime (s)", "number", ".1f"),
    Column("total", "total", "number", ".4g"),
    Column("mean", "mean", "number", ".4g"),
    Column("poisson_factor", "poisson factor", "number", ".3g"),
    Column("pearson_r", "pearson r", "number", ".3f"),
    Column("pearson_p", "pearson p", "number", ".2e"),
    Column("period_best", "best period (s)", "number", ".4g"),
    Column("fap", "FAP", "number", ".2e"),
    Column("n_flares", "flares", "number", "d"),
    Column("excess_variance", "excess variance", "number", ".3g"),
    Column("deliver", "deliver", "bool"),
)
#: The URLs of a row (relative to the table page's folder, or None): its quicklook
#: thumbnail, its interactive page, its periodogram and its FITS file.
LINKS: tuple[str, ...] = ("thumbnail", "page", "periodogram", "fits")
#: The global the data file assigns (read by ``static/catalogue.js``).
DATA_GLOBAL = "HSTLC_TABLE"
#: The browser code of the table, in ``static/``.
SCRIPT = "catalogue.js"


def data_path(path: Path) -> Path:
    """The data file of the table page at ``path``: ``<stem>-data.js`` beside it.

    Examples
    --------
    >>> data_path(Path("/site/catalogue.html")).as_posix()
    '/site/catalogue-data.js'
    """
    path = Path(path)
    return path.with_name(f"{path.stem}-data.js")


def _cell(value: Any, key: str) -> str | float | int | bool | None:
    """A value as JSON can hold it: NaN and infinities become None (null)."""
    if value is None or isinstance(value, str | bool):
        return value
    if hasattr(value, "item") and not isinstance(value, Sequence):  # a numpy scalar
        value = value.item()
        if isinstance(value, bool):
            return value
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, Path):
        return value.as_posix()
    raise TypeError(f"table column {key!r}: cannot show a value of type {type(value).__name__}: {value!r}")


def table_data(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The table's data as JSON-ready values: the columns once, each row as an array.

    Parameters
    ----------
    rows : iterable of mapping
        One mapping per lightcurve with every key of :data:`COLUMNS` and :data:`LINKS`
        (a missing key is None).

    Examples
    --------
    >>> data = table_data([{"lightcurve": "a_curve.fits", "fap": float("nan")}])
    >>> data["keys"][:2], data["rows"][0][:2], data["rows"][0][data["keys"].index("fap")]
    (['lightcurve', 'kind'], ['a_curve.fits', None], None)
    """
    keys = [column.key for column in COLUMNS] + list(LINKS)
    return {
        "columns": [column._asdict() for column in COLUMNS],
        "links": list(LINKS),
        "keys": keys,
        "rows": [[_cell(row.get(key), key) for key in keys] for row in rows],
    }


def _data_script(rows: Iterable[Mapping[str, Any]]) -> str:
    text = json.dumps(table_data(rows), separators=(",", ":"), allow_nan=False)
    return f"window.{DATA_GLOBAL} = {text};\n"


def _body(count: int, data_url: str, intro: str) -> str:
    noun = "lightcurve" if count == 1 else "lightcurves"
    intro_html = f'<p class="intro">{html.escape(intro)}</p>\n' if intro else ""
    return f"""{intro_html}<noscript><p class="note">This table needs JavaScript to show its
{count:,} {noun}; the rows are in <a href="{html.escape(data_url)}">its data file</a>.</p></noscript>
<div id="catalogue-root" class="catalogue-root" data-global="{DATA_GLOBAL}">
<p class="note" id="catalogue-loading">Loading {count:,} {noun}&hellip;</p>
</div>
"""


def write_table_page(path: Path, rows: Sequence[Mapping[str, Any]], *, site: Path, title: str,
                     intro: str = "") -> list[Path]:
    """Write the table page ``path`` and its data file ``<stem>-data.js`` beside it.

    Parameters
    ----------
    path : Path
        The page (``.../catalogue.html``).
    rows : sequence of mapping
        One mapping per lightcurve: the keys of :data:`COLUMNS` and the URLs of
        :data:`LINKS`, relative to the page's folder (None when absent).  NaN and
        infinities are written as null.
    site : Path
        The site's root (where ``static/`` is).
    title : str
        The page's title.
    intro : str
        A paragraph of plain text above the table (escaped here).

    Returns
    -------
    list of Path
        The data file and the page, each written atomically (the data file first, so
        the page never names a missing file).
    """
    path = Path(path)
    data_file = data_path(path)
    with atomic_path(data_file) as temporary:
        temporary.write_text(_data_script(rows), encoding="utf-8")
    data_url = "./" + quote(data_file.name)
    body = _body(len(rows), data_url, intro)
    document = html.page(title, body, path=path, site=site, scripts=(data_url, SCRIPT))
    return [data_file, html.write_page(path, document)]


def _number(row: Mapping[str, Any], key: str) -> float | None:
    """A finite number of the row, or None (None, NaN and non-numbers never qualify)."""
    value = row.get(key)
    if value is None or isinstance(value, bool | str):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def interesting(rows: Iterable[Mapping[str, Any]], *, poisson_factor_min: float, fap_max: float,
                flares_min: int) -> list[Mapping[str, Any]]:
    """The rows worth a look: variable, periodic or flaring, most interesting first.

    A row qualifies when ``poisson_factor >= poisson_factor_min``, or ``fap <= fap_max``,
    or ``n_flares >= flares_min``; a missing (None or NaN) value never qualifies.

    The order: rows meeting more of the three criteria first; then the smaller false-
    alarm probability (no FAP last); then the larger Poisson factor; then more flares;
    then the lightcurve's name (so that the order is fully determined).

    Examples
    --------
    >>> rows = [{"lightcurve": "a", "poisson_factor": 5.0, "fap": 0.5, "n_flares": 0},
    ...         {"lightcurve": "b", "poisson_factor": 1.0, "fap": None, "n_flares": 0},
    ...         {"lightcurve": "c", "poisson_factor": 9.0, "fap": 1e-5, "n_flares": 2}]
    >>> [row["lightcurve"] for row in interesting(rows, poisson_factor_min=3.0,
    ...                                           fap_max=1e-3, flares_min=1)]
    ['c', 'a']
    """
    chosen = []
    for row in rows:
        poisson, fap, flares = (_number(row, key) for key in ("poisson_factor", "fap", "n_flares"))
        met = ((poisson is not None and poisson >= poisson_factor_min)
               + (fap is not None and fap <= fap_max)
               + (flares is not None and flares >= flares_min))
        if met:
            order = (-met, math.inf if fap is None else fap,
                     math.inf if poisson is None else -poisson,
                     math.inf if flares is None else -flares, str(row.get("lightcurve") or ""))
            chosen.append((order, row))
    chosen.sort(key=lambda pair: pair[0])
    return [row for _, row in chosen]


__all__ = ["COLUMNS", "DATA_GLOBAL", "LINKS", "Column", "data_path", "interesting", "table_data",
           "write_table_page"]
