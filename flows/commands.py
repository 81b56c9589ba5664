"""Orchestration commands: ``hstlc run|ingest|composite|reprocess|download|serve|demo``.

They run the flows in this process with no server to start (Prefect starts a
temporary local one), print progress and a summary, and exit non-zero when a dataset
failed (a rejected file is not a failure).  Registered into the ``hstlc`` command
through the ``hstlc.commands`` entry point; ``hstlc_pipeline``, ``ingest_hstlc`` and
``download_hstlc`` are the 2016 names.

One run per home: a command first takes the home's run lock (before it touches the
catalogue), and a second command started meanwhile prints why and exits with
:data:`~hstlc.cli.EXIT_BUSY`.  The processes a run starts (Prefect's temporary server
above all) never outlive it, even when it is killed: see
:func:`hstlc.processes.end_children_with_this_process`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from hstlc.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, RunInProgressError, run
from hstlc.config import Settings
from hstlc.errors import DiskFullError, HstlcError
from hstlc.fs import Layout, require_free_space, run_lock, sweep_debris
from hstlc.logs import also_log, log_file, report
from hstlc.processes import end_children_with_this_process, stop_reason

#: Prefect (and Dask) defaults for running here: offline, quiet, patient with a slow
#: first start.
PREFECT_DEFAULTS = {
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_LOGGING_EXTRA_LOGGERS": "hstlc",
    "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
    # A local Dask cluster's start and stop are ~100 INFO lines of no use to an operator.
    "DASK_LOGGING__DISTRIBUTED": "warning",
}


logger = logging.getLogger("hstlc.commands")


def prepare_prefect(settings: Settings) -> None:
    """Set Prefect's environment before it is imported (the user's values win).

    Without ``PREFECT_API_URL`` Prefect keeps its own database under
    ``<home_dir>/prefect`` so that one hstlc home holds everything.
    """
    for name, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(name, value)
    if "PREFECT_API_URL" not in os.environ:
        os.environ.setdefault("PREFECT_HOME", str(settings.home_dir / "prefect"))


def run_flow(flow: Callable[..., Any], **parameters: Any) -> Any:
    """Call a flow with the per-flow heartbeat wait switched off."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        state = flow(**parameters, return_state=True)
    result = state.result(raise_on_failure=False)
    if isinstance(result, BaseException):  # the flow itself broke, not one dataset
        raise result
    return result


def report_each(label: str, items: dict[str, Any]) -> None:
    """One line per item, by name: ``  <label> <name>: <detail>``."""
    for name, detail in sorted(items.items()):
        report(f"  {label:<8} {name}: {detail}")


def print_summary(summary: dict[str, Any], settings: Settings) -> int:
    """Print what the run did and where the results are; the exit code."""
    ingested, rejected = summary.get("ingested", []), summary.get("rejected", {})
    failed, skipped = summary.get("failed", {}), summary.get("skipped", [])
    left = summary.get("left", {})
    if "ingested" in summary:
        report(f"\nhstlc: {len(ingested)} datasets ingested, {len(rejected)} rejected, "
               f"{len(failed)} failed, {len(left)} left for the next run, {len(skipped)} already "
               f"in the catalogue or refused before ({summary.get('mode', '')})")
    for label, items in (("rejected", rejected), ("FAILED", failed), ("left", left)):
        report_each(label, items)
    for path in summary.get("unrecognised", []):
        report(f"  left in ingest (not an hstlc input): {path}")
    composites = summary.get("composites") or {}
    for item in composites.get("written", []):
        if item.get("path"):
            report(f"  composite {item['path']} ({item.get('members')} members)")
        else:
            why = item.get("reported") or "no member left"
            report(f"  composite {item['key'].label} not written: {why}")
    for key, why in composites.get("failed", {}).items():
        report(f"  FAILED composite {key}: {why}")
    if "composites" in summary:
        made = [item for item in composites.get("written", []) if item.get("path")]
        report(f"hstlc: {len(made)} composites written, "
               f"{len(composites.get('written', [])) - len(made)} not written, "
               f"{len(composites.get('failed', {}))} failed")
    statistics = summary.get("stats") or {}
    if "stats" in summary:
        report(f"hstlc: statistics of {statistics.get('computed', 0)} lightcurves computed, "
               f"{statistics.get('unusable', 0)} without (too few bins or unreadable), "
               f"{len(statistics.get('failed', {}))} failed")
        report_each("FAILED", {f"stats {k}": v for k, v in statistics.get("failed", {}).items()})
    site = summary.get("plots") or {}
    if "plots" in summary:
        report(f"hstlc: {site.get('rendered', 0)} pages rendered, {len(site.get('failed', {}))} "
               f"failed; the site: {site.get('index')}")
        report_each("FAILED", {f"page {k}": v for k, v in site.get("failed", {}).items()})
    report(f"results: lightcurves in {settings.outputs_dir}, composites in {settings.composite_dir}, "
           f"inputs in {settings.filesystem_dir}, refused files in {settings.bad_data_dir}, "
           f"catalogue {settings.masked()['db_connection_string']}")
    if "ingested" in summary and not (ingested or rejected or failed or left):
        report("nothing new to do")
    failures = (len(failed) + len(composites.get("failed", {})) + len(statistics.get("failed", {}))
                + len(site.get("failed", {})))
    return EXIT_FAILED if failures else EXIT_OK


#: Decides, without Prefect, that a command has nothing to do: its summary, or ``None``.
Idle = Callable[[argparse.Namespace, Settings], "dict[str, Any] | None"]


def _nothing_to_do(args: argparse.Namespace, settings: Settings) -> dict[str, Any] | None:
    """The summary of a run with nothing to do, decided by the catalogue without Prefect.

    Only files whose names the catalogue knows are hashed here (to tell a duplicate from
    a changed file); a new name means work, left to the flow.
    """
    if args.force or getattr(args, "all", False):
        return None
    from hstlc.ingest.dataset import PipelineConfig
    from hstlc.ingest.plan import discover, plan_ingest, unseen

    config = PipelineConfig.from_settings(settings)
    if unseen(config, (p.name for job in discover(config.layout.ingest).jobs for p in job.files)):
        return None  # a file the catalogue has never seen: the flow hashes it, once
    plan = plan_ingest(config)
    if plan.todo:
        return None
    return {"ingested": [], "rejected": {}, "failed": {}, "mode": "no flow run needed",
            "skipped": sorted(s.rootname for s in plan.skipped),
            "unrecognised": [str(p) for p in plan.unrecognised]}


@contextmanager
def one_run_per_home(settings: Settings) -> Iterator[Path]:
    """Hold the home's run lock; :class:`~hstlc.cli.RunInProgressError` when another has it.

    Taken before the catalogue is touched, so that two runs on a fresh home never race
    to create its schema.  Re-entrant within a process.
    """
    with ExitStack() as stack:
        try:
            held = stack.enter_context(run_lock(settings.home_dir))
        except HstlcError as error:  # run_lock's one error: another process holds the lock
            raise RunInProgressError(f"{error}: nothing done; wait for that run to end, then "
                                     "run this command again") from None
        yield held


def _no_composite_group(args: argparse.Namespace, settings: Settings) -> dict[str, Any] | None:
    """The summary of a composite run on a catalogue with no group, decided without Prefect."""
    from hstlc.ingest.dataset import PipelineConfig
    from hstlc.ingest.groups import catalogue_groups

    if catalogue_groups(PipelineConfig.from_settings(settings)):
        return None
    report("hstlc: the catalogue has no ingested dataset, so no composite to build")
    return {"composites": {"written": [], "failed": {}}}


def _launch(args: argparse.Namespace, settings: Settings, load_flow: Callable[[], Any], *,
            idle: Idle | None = None, work: Callable[[Settings], float] | None = None,
            **parameters: Any) -> int:
    """Run one flow here: one run per home at a time, schema current, nothing to do
    decided without Prefect, tasks on threads or the run's cluster as ``work`` (estimated
    core-seconds, :func:`tasks.runner.work_of`) asks; without ``work`` the flow sizes its
    own subflows; print the summary."""
    with one_run_per_home(settings):
        return _launch_held(args, settings, load_flow, idle, parameters, work)


def _launch_held(args: argparse.Namespace, settings: Settings, load_flow: Callable[[], Any],
                 idle: Idle | None, parameters: dict[str, Any],
                 work: Callable[[Settings], float] | None = None) -> int:
    _check_catalogue(settings)  # before any file is touched
    require_free_space(written_folders(settings), settings.min_free_mb)
    sweep_debris(Layout.from_settings(settings))
    args.progress = getattr(args, "progress", None) or _progress_since(settings)
    nothing = idle(args, settings) if idle is not None else None
    if nothing is not None:
        return _finish(nothing, settings, args)
    prepare_prefect(settings)
    _select_runner(args)
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.server import prefect_api
    from tasks.runner import run_cluster, task_runner_for

    configured = PREFECT_API_URL.value()
    if not configured:  # a temporary server will be started from here
        end_children_with_this_process()
    with prefect_api(configured, log_file()) as url, temporary_settings({PREFECT_API_URL: url}):
        current = _reload()
        with (nullcontext() if work is None else run_cluster(current, work(current))) as address:
            flow = load_flow()
            if work is not None:
                flow = flow.with_options(task_runner=task_runner_for(current, address))
            also_log("prefect", "distributed")  # now that Prefect has set up its logging
            result = run_flow(flow, **parameters)
    code = _finish(result, settings, args)
    stopped = stop_reason()
    if stopped is not None:  # a full disk stopped the run; the datasets left are listed
        raise DiskFullError(f"stopped: {stopped}")
    return code


def written_folders(settings: Settings) -> dict[str, Path]:
    """The folders a run writes to, by the name an operator knows them by."""
    folders = {key: Path(getattr(settings, key)) for key in
               ("outputs_dir", "composite_dir", "filesystem_dir", "bad_data_dir", "log_dir")}
    if "PREFECT_API_URL" not in os.environ:
        folders["Prefect's database (PREFECT_HOME)"] = Path(
            os.environ.get("PREFECT_HOME", settings.home_dir / "prefect"))
    url = settings.database_url
    if url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
        folders["the catalogue"] = Path(url[len("sqlite:///"):]).parent
    return folders


def _progress_since(settings: Settings) -> Callable[[], str]:
    """What became of the datasets waiting in ``ingest/`` now, asked later (when a run
    is interrupted): how many left ``ingest/`` (ingested or refused), how many wait."""
    from hstlc.ingest.plan import discover

    ingest = Layout.from_settings(settings).ingest
    before = {(job.rootname, job.name) for job in discover(ingest).jobs}

    def progress() -> str:
        waiting = before & {(job.rootname, job.name) for job in discover(ingest).jobs}
        return (f"{len(before) - len(waiting)} of the {len(before)} datasets waiting in {ingest} "
                f"were taken (ingested or refused); {len(waiting)} are left there for the next "
                "run; composites may be out of date until `hstlc composite` or the next run "
                "rebuilds them")

    return progress


def _pipeline(args: argparse.Namespace, settings: Settings) -> int:
    def load() -> Any:
        from flows.pipeline import hstlc_pipeline

        return hstlc_pipeline

    return _launch(args, settings, load, idle=_pipeline_idle, force=args.force,
                   batch_size=args.batch_size,
                   all_composites=getattr(args, "all", False))


def _pipeline_idle(args: argparse.Namespace, settings: Settings) -> dict[str, Any] | None:
    """As :func:`_nothing_to_do`, and every lightcurve has its statistics."""
    from hstlc.variability.table import unrecorded

    idle = _nothing_to_do(args, settings)
    return idle if idle is not None and not unrecorded(settings.database_url) else None


def _ingest(args: argparse.Namespace, settings: Settings) -> int:
    def load() -> Any:
        from flows.ingest import ingest

        return ingest

    def work(current: Settings) -> float:
        from hstlc.ingest.dataset import PipelineConfig
        from hstlc.ingest.plan import count_datasets
        from tasks.runner import DATASET_S

        return DATASET_S * count_datasets(PipelineConfig.from_settings(current), force=args.force)

    return _launch(args, settings, load, idle=_nothing_to_do, work=work, force=args.force,
                   batch_size=args.batch_size)


def _composite(args: argparse.Namespace, settings: Settings) -> int:
    def load() -> Any:
        from flows.composite import composite

        return composite

    args.dask = None
    return _launch(args, settings, load, idle=_no_composite_group, work=lambda _: 0.0, keys=[],
                   all_keys=True)


def _reprocess(args: argparse.Namespace, settings: Settings) -> int:
    def load() -> Any:
        from flows.pipeline import reprocess_target

        return reprocess_target

    fetch = getattr(args, "fetch", False)
    return _launch(args, settings, load, idle=None if fetch else _target_catalogued,
                   target=args.target, batch_size=args.batch_size, fetch=fetch)


def _target_catalogued(args: argparse.Namespace, settings: Settings) -> None:
    """Nothing to decide, unless the target has no ingested dataset: then an error."""
    from hstlc.ingest.dataset import PipelineConfig
    from hstlc.ingest.plan import filesystem_jobs

    if not filesystem_jobs(PipelineConfig.from_settings(settings), args.target):
        raise HstlcError(f"no ingested dataset of target {args.target!r} in the catalogue "
                         "(--fetch downloads its data from MAST first)")


# -- download ---------------------------------------------------------------------------------


def _criteria(args: argparse.Namespace, settings: Settings) -> Any:
    from hstlc.mast.query import criteria_for

    return criteria_for(args.limit or settings.download_limit, since=args.since,
                        instruments=args.instrument, target=args.target, proposal=args.proposal)


def _nothing_to_download(args: argparse.Namespace, settings: Settings) -> dict[str, Any] | None:
    """Ask MAST here, without Prefect: a run with nothing new writes its manifest and ends;
    MAST unreachable is one line before any server starts."""
    import time

    from hstlc.mast.client import MastError
    from hstlc.mast.manifest import new_run_name
    from hstlc.mast.run import DownloadConfig, finish_run, plan_run

    started, config = time.time(), DownloadConfig.from_settings(settings)
    try:
        plan = plan_run(config, _criteria(args, settings))
    except MastError as error:  # the run's manifest says so too
        finish_run(config, new_run_name(), None, [], started, error=str(error))
        raise
    if plan.todo:
        return None
    return {"download": finish_run(config, new_run_name(), plan, [], started)}


def _download(args: argparse.Namespace, settings: Settings) -> int:
    from hstlc.mast.plan import plan_downloads
    from hstlc.mast.run import DownloadConfig

    if args.dry_run:
        config = DownloadConfig.from_settings(settings)
        with one_run_per_home(settings):
            _check_catalogue(settings)
            plan = plan_downloads(config.connection, _criteria(args, settings),
                                  config.database_url, config.layout)
        for line in plan.describe():
            report(line)
        report("dry run: nothing was fetched")
        return EXIT_OK

    def load() -> Any:
        from flows.download import download

        return download

    args.progress = lambda: (f"the files fetched so far are in {settings.ingest_dir} (complete datasets) "
                             f"or {settings.download_dir}; run the command again to fetch the rest "
                             "(partial files are resumed)")
    require_free_space({"download_dir": settings.folder("download_dir"),
                        "ingest_dir": settings.folder("ingest_dir")}, settings.min_free_mb)
    return _launch(args, settings, load, idle=_nothing_to_download,
                   since=args.since, instrument=args.instrument, target=args.target,
                   proposal=args.proposal, limit=args.limit)


def print_download(summary: dict[str, Any], settings: Settings) -> int:
    """Print what a download run did; the exit code (1 when a file failed or MAST failed)."""
    if summary.get("error"):
        report(f"hstlc: {summary['error']}", error=True)
    fetched, present, failed = (summary.get(key, {}) for key in ("fetched", "present", "failed"))
    seconds = summary.get("duration_s") or 0.0
    report(f"\nhstlc: {len(fetched)} files fetched ({summary.get('bytes', 0) / 1e6:.1f} MB in "
           f"{seconds:.1f} s, {summary.get('mb_per_s') or 0:.2f} MB/s), {len(present)} found complete "
           f"in download/, {len(failed)} failed; {len(summary.get('skipped', {}))} datasets already "
           f"here or with nothing to fetch, {len(summary.get('refused', {}))} refused by the "
           f"selection, {len(summary.get('deferred', []))} left for the next run")
    report_each("fetched", {name: f"{(item.get('bytes') or 0) / 1e6:.2f} MB, {item.get('where')}"
                            for name, item in fetched.items()})
    report_each("complete", present)
    report_each("FAILED", failed)
    if summary.get("manifest"):
        report(f"manifest: {summary['manifest']}; new data wait in {settings.ingest_dir} for "
               "`hstlc run`")
    if not (fetched or present or failed or summary.get("error")):
        report("nothing new to fetch")
    return EXIT_FAILED if failed or summary.get("error") else EXIT_OK


def _when(text: str) -> str:
    """An argument that is a date (``2026-11-01``)."""
    import datetime as dt

    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date such as 2026-11-01; got {text!r}") from None


def _positive(text: str) -> int:
    value = _count(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number, 1 or more; got {text!r}")
    return value


def _download_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true",
                        help="print what would be fetched (files and bytes); fetch nothing")
    parser.add_argument("--since", type=_when, default=None, metavar="DATE",
                        help="only data released on or after DATE (YYYY-MM-DD)")
    parser.add_argument("--instrument", action="append", type=str.upper, choices=["COS", "STIS"],
                        default=None, help="COS or STIS (repeat for both; default both)")
    parser.add_argument("--target", default=None, help="one target name (TARGNAME)")
    parser.add_argument("--proposal", type=_positive, default=None, help="one proposal ID")
    parser.add_argument("--limit", type=_positive, default=None, metavar="N",
                        help="most datasets this run fetches (default: setting download_limit)")
    parser.add_argument("--json", action="store_true", help="also print the summary as JSON")


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    if not os.environ.get("PREFECT_API_URL"):
        report("hstlc: serve needs a Prefect server to schedule its runs (a temporary one "
               "schedules nothing): run `prefect server start`, then set "
               "PREFECT_API_URL=http://127.0.0.1:4200/api", error=True)
        return EXIT_USAGE
    from flows.server import require

    require(os.environ["PREFECT_API_URL"], temporary_hint=False)
    prepare_prefect(settings)
    from deployments.serve import serve

    serve(settings)
    return EXIT_OK


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from hstlc.demo import prepare_demo

    prepare_prefect(settings)
    with one_run_per_home(settings):  # the demo reads the catalogue: under the run lock
        demo = prepare_demo(settings)
        report(f"demo: {len(demo.placed)} files placed in {settings.ingest_dir} "
               f"({len(demo.present)} already there or catalogued)")
        args.force, args.batch_size, args.dask = False, None, None
        return _pipeline(args, settings)


def _check_catalogue(settings: Settings) -> None:
    """Create or migrate the catalogue schema (a no-op when it is current), then make
    sure it is the schema of the models: a run never starts on a drifted catalogue."""
    from hstlc.catalogue.engine import create_catalogue_engine
    from hstlc.catalogue.migrate import schema_differences, upgrade
    from hstlc.config import mask_url

    engine = create_catalogue_engine(settings.database_url)
    try:
        upgrade(engine)
        differences = schema_differences(engine)
    finally:
        engine.dispose()
    if differences:
        raise HstlcError(f"the catalogue {mask_url(settings.database_url)} differs from the schema "
                         f"hstlc needs ({'; '.join(differences)}): run `hstlc db upgrade`, which "
                         "repairs what it can and says what to do for the rest; nothing was done")


def _reload() -> Settings:
    from hstlc.config import load_settings

    return load_settings()


def _select_runner(args: argparse.Namespace) -> None:
    dask = getattr(args, "dask", None)
    if dask:
        os.environ["HSTLC_TASK_RUNNER"] = "dask"
        if dask != "local":
            os.environ["HSTLC_DASK_ADDRESS"] = dask


def _finish(summary: dict[str, Any], settings: Settings, args: argparse.Namespace) -> int:
    if "download" in summary and "ingested" not in summary:  # the download flow alone
        if getattr(args, "json", False):
            print(json.dumps(summary, indent=2, default=str))
        return print_download(summary["download"], settings)
    if "computed" in summary:  # the stats flow alone
        summary = {"stats": summary}
    elif "rendered" in summary:  # the plots flow alone
        summary = {"plots": summary}
    elif "ingested" not in summary and "composites" not in summary:  # the composite flow alone
        summary = {"composites": summary}
    if getattr(args, "json", False):
        print(json.dumps(summary, indent=2, default=str))
    return print_summary(summary, settings)


def _count(text: str) -> int:
    """An argument that is a whole number, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number, 0 or more; got {text!r}")
    return value


def _run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", "-corrtag_extract", dest="force", action="store_true",
                        help="re-extract every dataset already ingested (2016: -corrtag_extract)")
    parser.add_argument("--batch-size", type=_count, default=None,
                        help="datasets per batch task (0: one task per step and dataset; "
                             "default: automatic)")
    parser.add_argument("--dask", nargs="?", const="local", default=None, metavar="ADDRESS",
                        help="run tasks on Dask: a local cluster, or the scheduler at ADDRESS")
    parser.add_argument("--json", action="store_true", help="also print the summary as JSON")


def register(commands: argparse._SubParsersAction) -> None:
    """Add the orchestration subcommands to the ``hstlc`` parser."""
    run_parser = commands.add_parser("run", help="the whole pipeline: ingest, then composites")
    _run_arguments(run_parser)
    run_parser.add_argument("--all", action="store_true", help="rebuild every composite")
    run_parser.set_defaults(handler=_pipeline, command_name="hstlc_pipeline", log_to_stderr=False)

    ingest_parser = commands.add_parser("ingest", help="ingest the datasets in ingest/")
    _run_arguments(ingest_parser)
    ingest_parser.set_defaults(handler=_ingest, command_name="ingest_hstlc", log_to_stderr=False)

    composite_parser = commands.add_parser("composite", help="rebuild every composite")
    composite_parser.add_argument("--json", action="store_true")
    composite_parser.set_defaults(handler=_composite, command_name="hstlc-composite", log_to_stderr=False)

    reprocess = commands.add_parser("reprocess", help="re-process one target and its composites")
    reprocess.add_argument("target", help="target name (as in TARGNAME; aliases allowed)")
    reprocess.add_argument("--fetch", action="store_true",
                           help="first download the target's new data from MAST (then ingest it)")
    _run_arguments(reprocess)
    reprocess.set_defaults(handler=_reprocess, command_name="hstlc-reprocess", log_to_stderr=False)

    download = commands.add_parser("download", help="fetch new TIME-TAG data from MAST into ingest/")
    _download_arguments(download)
    download.set_defaults(handler=_download, command_name="download_hstlc", log_to_stderr=False)

    serve = commands.add_parser("serve", help="serve the deployments (schedules) from here")
    serve.set_defaults(handler=_serve, command_name="hstlc-serve", log_to_stderr=False)

    from flows import plots_command, stats_command

    stats_command.register(commands)
    plots_command.register(commands)

    demo = commands.add_parser("demo", help="put a demo set in ingest/ and run the pipeline")
    demo.add_argument("--json", action="store_true")
    demo.set_defaults(handler=_demo, command_name="hstlc-demo", log_to_stderr=False)


def _legacy(prog: str, handler: Callable[[argparse.Namespace, Settings], int], description: str,  # type: ignore[no-untyped-def]
            arguments: Callable[[argparse.ArgumentParser], None] = _run_arguments):
    def entry(argv: Sequence[str] | None = None) -> int:
        parser = argparse.ArgumentParser(prog=prog, description=description)
        arguments(parser)
        parser.set_defaults(handler=handler, command_name=prog, log_to_stderr=False)
        return run(parser.parse_args(argv), command_name=prog)

    entry.__name__ = prog
    return entry


hstlc_pipeline_main = _legacy("hstlc_pipeline", _pipeline, "Run the whole hstlc pipeline.")
ingest_hstlc_main = _legacy("ingest_hstlc", _ingest, "Ingest the datasets in ingest/.")
download_hstlc_main = _legacy("download_hstlc", _download,
                              "Fetch new COS/STIS TIME-TAG data from MAST into ingest/.",
                              _download_arguments)

if __name__ == "__main__":
    sys.exit(hstlc_pipeline_main())
