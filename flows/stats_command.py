"""``hstlc stats [--all] [individual|composite|both]``, ``hstlc stats show`` and the 2016
``build_stats_table``: compute the statistics, and list the most variable lightcurves."""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from typing import Any

from hstlc.config import Settings
from hstlc.logs import report
from hstlc.variability.table import SCOPES

#: The columns ``hstlc stats show`` prints: (column, heading, format).
SHOWN = (("lightcurve_filename", "lightcurve", "{}"), ("kind", "kind", "{}"),
         ("targname", "target", "{}"), ("n_bins", "bins", "{}"), ("total", "total", "{:.0f}"),
         ("poisson_factor", "poisson", "{:.2f}"), ("pearson_r", "pearson_r", "{:+.2f}"),
         ("period_best", "period_s", "{:.1f}"), ("fap", "fap", "{:.1e}"),
         ("n_flares", "flares", "{}"), ("excess_variance", "xs_var", "{:.2e}"),
         ("chi2_dof", "chi2/dof", "{:.2f}"), ("deliver", "deliver", "{}"), ("reason", "reason", "{}"))


def add_arguments(parser: argparse.ArgumentParser, *, show: bool = True) -> None:
    choices = (*SCOPES, "show") if show else SCOPES
    parser.add_argument("scope", nargs="?", default="both", choices=choices,
                        help="which lightcurves (default both); show: print the stats table")
    parser.add_argument("--all", action="store_true",
                        help="recompute every row, not only those of changed lightcurves")
    if show:
        parser.add_argument("--sort", default="poisson_factor", metavar="COLUMN",
                            help="stats column to sort on (show; default poisson_factor; "
                                 "false-alarm probabilities and p-values ascending)")
        parser.add_argument("--limit", type=int, default=20, metavar="N",
                            help="rows to print (show; default 20)")
        parser.add_argument("--target", default=None, help="one target's rows (show)")
    parser.add_argument("--json", action="store_true", help="also print the summary as JSON")


def handle(args: argparse.Namespace, settings: Settings) -> int:
    """Compute the statistics (a flow), or print the table (no Prefect)."""
    if args.scope == "show":
        return show(args, settings)
    from flows.commands import _launch

    def load() -> Any:
        from flows.stats import stats

        return stats

    # Statistics take 0.01-1 s a lightcurve: threads, unless task_runner asks for Dask.
    return _launch(args, settings, load, work=lambda _: 0.0, scope=args.scope, recompute=args.all)


def show(args: argparse.Namespace, settings: Settings) -> int:
    """Print the ``stats`` rows, most variable first."""
    from hstlc.catalogue.engine import engine_for, session_scope
    from hstlc.catalogue.queries import stats_table

    try:
        with session_scope(engine_for(settings.database_url)) as session:
            rows = [_values(row) for row in stats_table(session, sort=args.sort, limit=args.limit,
                                                        target=args.target)]
    except ValueError as error:
        report(f"hstlc: {error}", error=True)
        return 2
    if not rows:
        report("no stats rows" + (f" for target {args.target!r}" if args.target else "")
               + ": run `hstlc stats` (or `hstlc run`) first")
        return 0
    for line in format_table(rows):
        report(line)
    return 0


def _values(row: Any) -> dict[str, Any]:
    from hstlc.variability.table import best_period

    values = {column.name: getattr(row, column.name) for column in row.__table__.c}
    values["period_best"] = best_period(values)
    return values


def format_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Aligned text lines: a heading, then one line per row (``-`` for no value)."""
    cells = [[heading for _, heading, _ in SHOWN]]
    for row in rows:
        cells.append([_cell(row.get(column), form) for column, _, form in SHOWN])
    widths = [max(len(line[i]) for line in cells) for i in range(len(SHOWN))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
            for line in cells]


def _cell(value: Any, form: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return form.format(value)


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``hstlc stats`` to the ``hstlc`` parser."""
    parser = commands.add_parser("stats", help="variability statistics: compute, or show the table")
    add_arguments(parser)
    parser.set_defaults(handler=handle, command_name="build_stats_table", log_to_stderr=False)


def _legacy_arguments(parser: argparse.ArgumentParser) -> None:
    add_arguments(parser, show=False)


def build_stats_table_main(argv: Sequence[str] | None = None) -> int:
    """The 2016 ``build_stats_table``: compute the statistics of the lightcurves."""
    from flows.commands import _legacy

    return int(_legacy("build_stats_table", handle,
                       "Compute the variability statistics of the lightcurves.",
                       _legacy_arguments)(argv))
