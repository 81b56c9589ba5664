"""``hstlc plots [--all] [--target NAME]`` and the 2016 ``make_hstlc_plots``: render the
site's pages whose inputs changed (every page with ``--all``)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from typing import Any

from hstlc.config import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--all", action="store_true",
                        help="render every page, not only those whose inputs changed")
    parser.add_argument("--target", default=None,
                        help="only this target's pages (TARGNAME; aliases allowed)")
    parser.add_argument("--json", action="store_true", help="also print the summary as JSON")


def handle(args: argparse.Namespace, settings: Settings) -> int:
    """Render the pages in a flow run; without one when no lightcurve page changed."""
    from flows.commands import _launch

    def load() -> Any:
        from flows.plots import plots

        return plots

    def work(current: Settings) -> float:
        from tasks.runner import work_of

        # --all: every page of the catalogue, uncounted: worth the run's cluster
        return math.inf if args.all else work_of(pages=getattr(args, "pages", 0))

    return _launch(args, settings, load, idle=unchanged, work=work, everything=args.all,
                   target=args.target)


def unchanged(args: argparse.Namespace, settings: Settings) -> dict[str, Any] | None:
    """The summary when no lightcurve or target page needs rendering (decided, and the
    site's own pages brought up to date, without Prefect); None when there is work."""
    if args.all:
        return None
    from hstlc.plots import pages, site

    config = site.SiteConfig.from_settings(settings)
    entries = site.read_entries(settings.database_url)
    args.pages = len(site.plan_pages(entries, config, target=args.target))  # chooses the runner
    if args.pages:
        return None
    written = pages.write_site(settings.database_url, config, {}, entries)
    return {"rendered": 0, "failed": {}, "index": str(written.index), "lightcurves": written.lightcurves,
            "targets": written.targets, "interesting": written.interesting,
            "site_pages": list(written.written), "mode": "no flow run needed"}


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``hstlc plots`` to the ``hstlc`` parser."""
    parser = commands.add_parser("plots", help="the site: interactive lightcurves, tables, charts")
    add_arguments(parser)
    parser.set_defaults(handler=handle, command_name="make_hstlc_plots", log_to_stderr=False)


def make_hstlc_plots_main(argv: Sequence[str] | None = None) -> int:
    """The 2016 ``make_hstlc_plots``."""
    from flows.commands import _legacy

    return int(_legacy("make_hstlc_plots", handle, "Render the hstlc site's pages.",
                       add_arguments)(argv))
