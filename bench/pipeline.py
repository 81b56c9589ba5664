"""Benchmark: N synthetic datasets through ``hstlc_pipeline`` end to end.

For each N and each mode (one task per step and dataset; batch tasks; the mode the
pipeline picks by itself) it measures the wall time of the flow run, datasets per
minute, and the orchestration overhead: wall time / the summed time spent inside the
hstlc library calls, both as each call's own clock says (inflated when threads share two
cores) and against the library time of a serial baseline run of the same datasets
without Prefect (the figure the target applies to).  One Prefect temporary server serves
every run (its start-up is reported apart).  Prints a table and writes ``bench/results/pipeline.json``.

    python bench/pipeline.py                 # N = 50 and 500
    python bench/pipeline.py --sizes 20      # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

RESULTS = Path(__file__).resolve().parent / "results"
TARGETS = 10  # datasets are spread over this many targets (composite groups)


def make_templates(folder: Path, count: int) -> list[Path]:
    """Write ``count`` small COS NUV datasets once (reused by every run)."""
    from hstlc.testing import build_cos_nuv

    folder.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    for index in range(count):
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
    settings.ingest_dir.mkdir(parents=True, exist_ok=True)
    for path in files:
        shutil.copy2(path, settings.ingest_dir / path.name)
    return settings


def run_once(home: Path, files: list[Path], batch_size: int | None) -> dict:
    from flows.pipeline import hstlc_pipeline

    fresh_home(home, files)
    started = time.perf_counter()
    summary = hstlc_pipeline(batch_size=batch_size)
    wall = time.perf_counter() - started
    done = len(summary["ingested"])
    if summary["failed"] or done != len(files) // 2:
        raise RuntimeError(f"benchmark run failed: {summary['failed']}")
    library = summary["library_seconds"]
    return {"datasets": done, "mode": summary["mode"], "wall_s": round(wall, 2),
            "library_s": round(library, 2), "datasets_per_min": round(60 * done / wall, 1),
            "overhead": round(wall / library, 3)}


def run_serial(home: Path, files: list[Path]) -> dict:
    """The baseline: the same datasets through the same steps in a plain loop, no Prefect."""
    from hstlc.ingest.dataset import PipelineConfig
    from hstlc.ingest.groups import build_group
    from hstlc.ingest.plan import plan_ingest
    from hstlc.ingest.steps import process

    settings = fresh_home(home, files)
    config = PipelineConfig.from_settings(settings)
    started = time.perf_counter()
    plan = plan_ingest(config)
    states = [process(state, config) for state in plan.todo]
    keys = sorted({s.group_key for s in states if s.group_key is not None})
    built = [build_group(config, key) for key in keys]  # as the pipeline does
    wall = time.perf_counter() - started
    library = sum(s.library_seconds for s in states) + sum(b["seconds"] for b in built)
    return {"datasets": len(states), "mode": "serial, no Prefect", "wall_s": round(wall, 2),
            "library_s": round(library, 2),
            "datasets_per_min": round(60 * len(states) / wall, 1), "overhead": 1.0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 500])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--modes", nargs="+", default=["per-dataset", "batches", "automatic"],
                        choices=["per-dataset", "batches", "automatic"])
    args = parser.parse_args(argv)
    os.environ["HSTLC_WORKERS"] = str(args.workers)
    scratch = Path(tempfile.mkdtemp(prefix="hstlc-bench-"))
    os.environ["PREFECT_HOME"] = str(scratch / "prefect")

    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    templates = make_templates(RESULTS / "pipeline-inputs", max(args.sizes))
    rows = []
    started = time.perf_counter()
    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        from prefect.testing.utilities import prefect_test_harness

        with prefect_test_harness(server_startup_timeout=120):
            server_start = time.perf_counter() - started
            for size in args.sizes:
                baseline = run_serial(scratch / f"n{size}-serial", templates[: 2 * size])
                baseline.update(n=size, requested="baseline")
                rows.append(baseline)
                print(f"N={size:4d} serial baseline wall {baseline['wall_s']:.1f} s", flush=True)
                for label, batch_size in (("per-dataset tasks", 0), ("batches of 50", 50),
                                          ("automatic", None)):
                    if label.split()[0] not in args.modes:
                        continue
                    home = scratch / f"n{size}-{label.split()[0]}"
                    row = run_once(home, templates[: 2 * size], batch_size)
                    # Overhead against the library time of the serial baseline: threads on
                    # two cores stretch each call's own clock, so per-call sums overcount.
                    row.update(n=size, requested=label,
                               overhead_vs_serial=round(row["wall_s"] / baseline["library_s"], 3))
                    rows.append(row)
                    print(f"N={size:4d} {label:18s} -> {row['mode']:18s} wall {row['wall_s']:7.1f} s"
                          f"  library {row['library_s']:7.1f} s  {row['datasets_per_min']:7.1f}/min"
                          f"  overhead {row['overhead']:.2f}"
                          f" (vs serial library time {row['overhead_vs_serial']:.2f})",
                          flush=True)
                    shutil.rmtree(home, ignore_errors=True)
    print(f"\nPrefect temporary server start: {server_start:.1f} s (not in the walls above)")
    print(f"{'N':>5} {'requested':18} {'mode':18} {'wall s':>8} {'library s':>9} {'per min':>8}"
          f" {'wall/lib':>8} {'wall/serial lib':>15}")
    for row in rows:
        print(f"{row['n']:5d} {row['requested']:18} {row['mode']:18} {row['wall_s']:8.1f} "
              f"{row['library_s']:9.1f} {row['datasets_per_min']:8.1f} {row['overhead']:8.2f}"
              f" {row.get('overhead_vs_serial', 1.0):15.2f}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "pipeline.json"
    out.write_text(json.dumps({"server_start_s": round(server_start, 1), "workers": args.workers,
                               "cpu_count": os.cpu_count(), "runs": rows}, indent=2))
    print(f"wrote {out}")
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
