"""Benchmark: a 200-file MAST download from the stand-in server (``tests/mast_standin.py``).

Run from the project root::

    python bench/download.py                      # 200 files, 0 and 50 ms server latency
    python bench/download.py --files 40 --latency-ms 0 --repeat 1

The files are the synthetic COS NUV datasets of ``bench/pipeline.py`` (a corrtag and an
x1d each, ~0.33 MB per file; made once under ``bench/results/pipeline-inputs``), served by
the stand-in on 127.0.0.1 in this process, optionally with a fixed delay before every
answer (``--latency-ms``: the round trip to a distant MAST, where concurrency pays).
Each measurement runs in a fresh child process, against a fresh home, so that timings
exclude imports and peak memories do not mix:

* ``baseline``  -- a plain sequential ``urllib`` GET of the same 200 files to disk (the
  same retrieve URL; no query, no checks, no catalogue);
* ``hstlc-1``   -- :func:`hstlc.mast.run.download_now` with one worker: the search and the
  product lists through astroquery, the new-only plan, each file to ``download/`` with
  its size and sha256 checked, the datasets renamed into ``ingest/``, a ``download`` row
  per file, the manifest;
* ``hstlc-N``   -- the same with ``--workers`` (default 4, the setting's default).

Each is repeated (``--repeat``, default 3; the median wall time counts: the machine is
shared).  It prints a table (wall s, files/s, MB/s, peak memory of the child over its
memory before the run) and the ratio of each to the baseline of the same run, and writes
``bench/results/download.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]


def measure(kind: str, url: str, home: Path, names: list[str], workers: int) -> dict[str, float]:
    """One measurement, in this process (the child)."""
    from extract import _reset_peak, _status

    if kind == "baseline":
        from hstlc.mast.client import MastConnection

        connection = MastConnection(url)
        target = home / "plain"
        target.mkdir(parents=True)

        def run() -> int:
            total = 0
            for name in names:
                address = connection.retrieve_url(f"{name[:9].upper()}/{name}")
                with urllib.request.urlopen(address, timeout=60) as reply, open(target / name, "wb") as out:
                    while block := reply.read(1 << 20):
                        total += out.write(block)
            return total
    else:
        from hstlc.config import Settings
        from hstlc.mast.query import criteria_for
        from hstlc.mast.run import DownloadConfig, download_now

        settings = Settings(home_dir=home, mast_url=url, download_workers=workers,
                            download_limit=10_000, min_free_mb=0)
        config = DownloadConfig.from_settings(settings)
        import astroquery.mast  # noqa: F401 (imports, as the baseline's, before the clock)

        from hstlc.catalogue.engine import engine_for

        engine_for(config.database_url)  # the schema, before the clock starts

        def run() -> int:
            summary = download_now(config, criteria_for(10_000))
            if summary["failed"] or len(summary["fetched"]) != len(names):
                raise RuntimeError(f"download failed: {summary['failed']}")
            return int(summary["bytes"])
    reset = _reset_peak()
    before = _status("VmRSS")
    started = time.perf_counter()
    size = run()
    seconds = time.perf_counter() - started
    peak = _status("VmHWM")
    return {"seconds": seconds, "bytes": size, "files": len(names),
            "extra_peak": max(peak - before, 0) if reset else float("nan"), "peak": peak}


def run_child(kind: str, url: str, names: list[str], workers: int) -> dict[str, float]:
    home = Path(tempfile.mkdtemp(prefix="hstlc-bench-download-"))
    try:
        listing = home / "names.json"
        listing.write_text(json.dumps(names))
        command = [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--url", url,
                   "--home", str(home), "--names", str(listing), "--workers", str(workers)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("HSTLC_")}
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        if done.returncode:
            raise RuntimeError(f"{kind} failed:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(home, ignore_errors=True)


def archive(count: int) -> list:
    """``count`` files: the bench's synthetic datasets, two files each."""
    from mast_standin import ArchiveDataset
    from pipeline import make_templates

    files = make_templates(RESULTS / "pipeline-inputs", (count + 1) // 2)[:count]
    datasets: dict[str, list[Path]] = {}
    for path in files:
        datasets.setdefault(path.name.split("_")[0], []).append(path)
    return [ArchiveDataset(root.upper(), f"BENCH-{index % 10:02d}", paths)
            for index, (root, paths) in enumerate(datasets.items())]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[0.0, 50.0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS / "download.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--names", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        names = json.loads(args.names.read_text())
        print(json.dumps(measure(args.child, args.url, args.home, names, args.workers)))
        return 0

    from mast_standin import MastStandIn

    datasets = archive(args.files)
    names = [p.name for d in datasets for p in d.files]
    megabytes = sum(p.stat().st_size for d in datasets for p in d.files) / 1e6
    rows = []
    for latency in args.latency_ms:
        with MastStandIn(datasets, checksums=True, latency_s=latency / 1000) as mast:
            run_child("baseline", mast.url, names, 1)  # warm the page cache and the server
            for kind, workers in (("baseline", 1), ("hstlc-1", 1), (f"hstlc-{args.workers}", args.workers)):
                runs = [run_child(kind, mast.url, names, workers) for _ in range(args.repeat)]
                seconds = statistics.median(r["seconds"] for r in runs)
                result = {**runs[-1], "seconds": seconds, "seconds_all": [r["seconds"] for r in runs],
                          "extra_peak": max(r["extra_peak"] for r in runs)}
                rows.append({"latency_ms": latency, "kind": kind, "workers": workers, **result,
                             "files_per_s": result["files"] / seconds,
                             "mb_per_s": result["bytes"] / 1e6 / seconds})
                print(f"latency {latency:4.0f} ms  {kind:10s} {seconds:7.2f} s (median of {args.repeat})",
                      flush=True)
    for row in rows:
        base = next(r for r in rows if r["latency_ms"] == row["latency_ms"] and r["kind"] == "baseline")
        row["speed_vs_baseline"] = row["files_per_s"] / base["files_per_s"]
    load = os.getloadavg()
    print(f"\n{len(names)} files, {megabytes:.1f} MB "
          f"(load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})")
    print(f"{'latency ms':>10} {'run':10} {'wall s':>8} {'files/s':>8} {'MB/s':>7} {'peak MB':>8} "
          f"{'vs baseline':>11}")
    for row in rows:
        print(f"{row['latency_ms']:10.0f} {row['kind']:10} {row['seconds']:8.2f} {row['files_per_s']:8.1f} "
              f"{row['mb_per_s']:7.1f} {row['extra_peak'] / 1e6:8.1f} {row['speed_vs_baseline']:10.2f}x")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "files": len(names), "megabytes": round(megabytes, 2), "workers": args.workers,
        "repeat": args.repeat,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load_average": load},
        "runs": rows}, indent=2))
    print(f"\nwritten {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
