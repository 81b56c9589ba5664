"""Benchmark: N synthetic datasets through ``hstlc_pipeline`` end to end, against the same
work done serially without Prefect; Dask workers' scaling; a nightly increment.

For each N:

* ``serial``: the pipeline's library calls in a plain loop, no Prefect (plan and the
  ingest steps of every dataset, the composites it touched, the statistics, the pages
  and the site's own pages), each stage timed: the *serial library time*;
* ``default``: ``hstlc_pipeline()`` with the settings' defaults (``task_runner: auto``,
  ``workers``: every core), its wall time and each subflow's (from the Prefect API), as
  a ratio to the serial library time (target: at most 0.6 on two cores) and datasets
  per minute end to end (target: at least 150);
* ``dask``: the same with ``task_runner: dask`` (a local cluster whatever the size), for
  the sizes in ``--dask-sizes`` (target: no slower than ``default``).

Then, after the largest ``default`` run, ``nightly``: ``--nightly`` new datasets (of the
same targets) through the same home; target: under a tenth of the full run's wall time.
And the Dask workers' scaling: the ingest flow on a local cluster of 1 and of 2 worker
processes, the same ``--scaling`` datasets (target: 2 workers at least 1.7x the
datasets/s of 1).  One Prefect temporary server serves every run (its start is reported
apart).  Prints a table and writes ``bench/results/pipeline.json``.

    python bench/pipeline.py                          # N = 300 and 2000 (~50 min)
    python bench/pipeline.py --sizes 100 --dask-sizes 100 --nightly 10 --scaling 100
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("MPLBACKEND", "Agg")

RESULTS = Path(__file__).resolve().parent / "results"
TARGETS = 10  # datasets are spread over this many targets (composite groups)
STAGES = ("ingest", "composite", "stats", "plots")


def make_templates(folder: Path, first: int, count: int) -> list[Path]:
    """Write small COS NUV datasets ``first`` .. ``first + count - 1`` once (reused)."""
    from hstlc.testing import build_cos_nuv

    folder.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    for index in range(first, first + count):
        root = f"lb{index:05d}q"
        if not (folder / f"{root}_corrtag.fits").exists():
            build_cos_nuv(folder, rootname=root, seed=index, exptime=300.0, source_rate=5.0,
                          targname=f"BENCH-{index % TARGETS:02d}")
        files += [folder / f"{root}_corrtag.fits", folder / f"{root}_x1d.fits"]
    return files


def fresh_home(home: Path, files: list[Path]):  # type: ignore[no-untyped-def]
    """A new hstlc home with an empty catalogue and ``files`` in its ingest folder."""
    from hstlc.catalogue.engine import create_catalogue_engine
    from hstlc.catalogue.migrate import upgrade
    from hstlc.config import load_settings

    os.environ["HSTLC_HOME_DIR"] = str(home)
    settings = load_settings()
    upgrade(create_catalogue_engine(settings.database_url))
    deliver(settings, files)
    return settings


def deliver(settings: Any, files: list[Path]) -> None:
    settings.ingest_dir.mkdir(parents=True, exist_ok=True)
    for path in files:
        shutil.copy2(path, settings.ingest_dir / path.name)


def run_serial(home: Path, files: list[Path]) -> dict[str, Any]:
    """The baseline: the pipeline's library calls in a plain loop, no Prefect."""
    from hstlc.ingest.dataset import PipelineConfig
    from hstlc.ingest.groups import build_group
    from hstlc.ingest.plan import plan_ingest
    from hstlc.ingest.steps import process
    from hstlc.plots import pages, site
    from hstlc.plots.site import SiteConfig
    from hstlc.variability import table
    from hstlc.variability.stats import StatsConfig

    settings = fresh_home(home, files)
    config = PipelineConfig.from_settings(settings)
    stages: dict[str, float] = {}
    started = time.perf_counter()
    plan = plan_ingest(config)
    plan_s = time.perf_counter() - started
    states = [process(state, config) for state in plan.todo]
    stages["ingest"] = time.perf_counter() - started
    mark = time.perf_counter()
    for key in sorted({s.group_key for s in states if s.group_key is not None}):
        build_group(config, key)
    stages["composite"] = time.perf_counter() - mark
    mark = time.perf_counter()
    jobs = table.plan_stats(settings.database_url, "both")
    table.update_stats(jobs, settings.database_url, StatsConfig.from_settings(settings))
    stages["stats"] = time.perf_counter() - mark
    mark = time.perf_counter()
    site_config = SiteConfig.from_settings(settings)
    written: dict[str, str] = {}
    for wave in site.in_waves(site.plan_pages(site.read_entries(settings.database_url), site_config)):
        written.update(pages.render_batch(wave, site_config)["written"])
    pages.write_site(settings.database_url, site_config, written)
    stages["plots"] = time.perf_counter() - mark
    wall = time.perf_counter() - started
    done = sum(1 for s in states if s.status == "done")
    steps = {name: round(1000 * sum(s.seconds.get(name, 0.0) for s in states) / max(done, 1), 1)
             for name in states[0].seconds} if states else {}
    return {"datasets": done, "mode": "serial, no Prefect", "wall_s": round(wall, 2),
            "stages_s": {k: round(v, 2) for k, v in stages.items()}, "pages": len(written),
            "ingest_step_ms": {"plan": round(1000 * plan_s / max(done, 1), 1), **steps},
            "datasets_per_min": round(60 * done / wall, 1)}


def subflow_seconds(parent: Any) -> dict[str, float]:
    """Wall seconds of each subflow of the flow run ``parent`` (from the Prefect API)."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent])))
    seconds: dict[str, float] = {}
    for run in runs:
        stage = run.name.split("-", 1)[0]
        if run.start_time and run.end_time and stage in STAGES:
            took = (run.end_time - run.start_time).total_seconds()
            seconds[stage] = round(seconds.get(stage, 0.0) + took, 2)
    return seconds


def run_pipeline(home: Path, files: list[Path] | None, expected: int) -> dict[str, Any]:
    """``hstlc_pipeline()`` on ``home`` (fresh, with ``files``; or as it is, ``files`` None)."""
    from flows.pipeline import hstlc_pipeline

    if files is not None:
        fresh_home(home, files)
    started = time.perf_counter()
    state = hstlc_pipeline(return_state=True)
    wall = time.perf_counter() - started
    summary = state.result()
    done = len(summary["ingested"])
    if summary["failed"] or done != expected or (summary.get("plots") or {}).get("failed"):
        raise RuntimeError(f"benchmark run failed: {summary['failed']} {summary.get('plots')}")
    return {"datasets": done, "mode": summary["mode"], "wall_s": round(wall, 2),
            "stages_s": subflow_seconds(state.state_details.flow_run_id),
            "pages": (summary.get("plots") or {}).get("rendered", 0),
            "datasets_per_min": round(60 * done / wall, 1)}


def run_ingest_on_workers(home: Path, files: list[Path], workers: int) -> dict[str, Any]:
    """The ingest flow alone on a local cluster of ``workers`` processes (started before
    the clock: its start is not the workers' throughput)."""
    from flows.ingest import ingest
    from hstlc.config import load_settings
    from tasks.runner import run_cluster, task_runner_for

    os.environ.update(HSTLC_TASK_RUNNER="dask", HSTLC_WORKERS=str(workers))
    try:
        fresh_home(home, files)
        settings = load_settings()
        with run_cluster(settings, 0.0) as address:
            flow = ingest.with_options(task_runner=task_runner_for(settings, address))
            started = time.perf_counter()
            summary = flow()
            wall = time.perf_counter() - started
    finally:
        os.environ.pop("HSTLC_TASK_RUNNER")
        os.environ.pop("HSTLC_WORKERS")
    done = len(summary["ingested"])
    return {"datasets": done, "mode": summary["mode"], "wall_s": round(wall, 2),
            "datasets_per_s": round(done / wall, 3)}


def show(row: dict[str, Any]) -> str:
    stages = " ".join(f"{k} {v:.1f}" for k, v in row.get("stages_s", {}).items())
    ratio = f"  wall/serial {row['wall_vs_serial']:.2f}" if "wall_vs_serial" in row else ""
    return (f"N={row['n']:5d} {row['requested']:8s} wall {row['wall_s']:7.1f} s "
            f"{row.get('datasets_per_min', 0):6.1f}/min{ratio}  [{stages}]  ({row['mode']})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[300, 2000])
    parser.add_argument("--dask-sizes", type=int, nargs="*", default=[150, 2000])
    parser.add_argument("--nightly", type=int, default=20, help="new datasets of the nightly run")
    parser.add_argument("--scaling", type=int, default=300, help="datasets of the 1-vs-2 worker rows")
    parser.add_argument("--out", default="pipeline.json", help="file name in bench/results/")
    args = parser.parse_args(argv)
    for name in ("HSTLC_WORKERS", "HSTLC_TASK_RUNNER", "HSTLC_DASK_ADDRESS"):
        os.environ.pop(name, None)  # the defaults are what is measured
    scratch = Path(tempfile.mkdtemp(prefix="hstlc-bench-"))
    os.environ["PREFECT_HOME"] = str(scratch / "prefect")

    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    sizes = sorted(set(args.sizes) | set(args.dask_sizes))
    largest = max(sizes + [args.scaling])
    inputs = RESULTS / "pipeline-inputs"
    templates = make_templates(inputs, 0, largest)
    extra = make_templates(inputs, largest, args.nightly)
    rows: list[dict[str, Any]] = []

    def add(row: dict[str, Any]) -> None:
        rows.append(row)
        print(show(row), flush=True)

    started = time.perf_counter()
    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        from prefect.testing.utilities import prefect_test_harness

        with prefect_test_harness(server_startup_timeout=120):
            server_start = time.perf_counter() - started
            logging.getLogger("distributed").setLevel(logging.WARNING)  # the cluster's chatter
            for size in sizes:
                files = templates[: 2 * size]
                serial = run_serial(scratch / f"n{size}-serial", files)
                add({**serial, "n": size, "requested": "serial"})
                shutil.rmtree(scratch / f"n{size}-serial", ignore_errors=True)
                for requested in ("default", "dask"):
                    if requested == "default" and size not in args.sizes:
                        continue
                    if requested == "dask" and size not in args.dask_sizes:
                        continue
                    if requested == "dask":
                        os.environ["HSTLC_TASK_RUNNER"] = "dask"
                    home = scratch / f"n{size}-{requested}"
                    try:
                        row = run_pipeline(home, files, size)
                    finally:
                        os.environ.pop("HSTLC_TASK_RUNNER", None)
                    row.update(n=size, requested=requested,
                               wall_vs_serial=round(row["wall_s"] / serial["wall_s"], 3))
                    add(row)
                    if requested == "default" and size == max(args.sizes) and args.nightly:
                        os.environ["HSTLC_HOME_DIR"] = str(home)
                        from hstlc.config import load_settings

                        deliver(load_settings(), extra)
                        nightly = run_pipeline(home, None, args.nightly)
                        nightly.update(n=args.nightly, requested="nightly", on_top_of=size,
                                       vs_full_run=round(nightly["wall_s"] / row["wall_s"], 3))
                        add(nightly)
                    shutil.rmtree(home, ignore_errors=True)
            if args.scaling:
                for workers in (1, 2):
                    row = run_ingest_on_workers(scratch / f"scaling-{workers}",
                                                templates[: 2 * args.scaling], workers)
                    row.update(n=args.scaling, requested=f"ingest, {workers} worker{'s' * (workers > 1)}")
                    rows.append(row)
                    print(f"N={args.scaling:5d} ingest on {workers} worker(s): {row['wall_s']:.1f} s, "
                          f"{row['datasets_per_s']:.2f} datasets/s", flush=True)
                    shutil.rmtree(scratch / f"scaling-{workers}", ignore_errors=True)
    print(f"\nPrefect temporary server start: {server_start:.1f} s (not in the walls above); "
          f"{os.cpu_count()} CPUs")
    print(f"{'N':>5} {'run':18} {'wall s':>8} {'per min':>8} {'wall/serial':>11}  "
          + " ".join(f"{s:>9}" for s in STAGES))
    for row in rows:
        stages = row.get("stages_s", {})
        ratio = row.get("wall_vs_serial", row.get("vs_full_run"))
        print(f"{row['n']:5d} {row['requested']:18} {row['wall_s']:8.1f} "
              f"{row.get('datasets_per_min', 60 * row.get('datasets_per_s', 0)):8.1f} "
              f"{'' if ratio is None else f'{ratio:.3f}':>11}  "
              + " ".join(f"{stages.get(s, float('nan')):9.1f}" for s in STAGES))
    for row in rows:
        if "ingest_step_ms" in row:
            print(f"N={row['n']:5d} serial ingest, ms a dataset: "
                  + ", ".join(f"{k} {v:.1f}" for k, v in row["ingest_step_ms"].items()))
    scaling = [r for r in rows if "datasets_per_s" in r]
    if len(scaling) == 2:
        print(f"2 workers / 1 worker: {scaling[1]['datasets_per_s'] / scaling[0]['datasets_per_s']:.2f}x "
              "datasets/s (target >= 1.7)")
    nightly_rows = [r for r in rows if r["requested"] == "nightly"]
    if nightly_rows:
        print(f"nightly increment / full run: {nightly_rows[0]['vs_full_run']:.3f} (target < 0.1)")
    load = os.getloadavg()
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / args.out
    out.write_text(json.dumps({"server_start_s": round(server_start, 1), "cpu_count": os.cpu_count(),
                               "load_average": [round(x, 2) for x in load], "runs": rows}, indent=2))
    print(f"wrote {out} (load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})")
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
