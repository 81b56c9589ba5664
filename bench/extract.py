"""Benchmark: lightcurve extraction of a 10^7-event COS FUV pair.

Run from the project root::

    python bench/extract.py            # or: python -m bench.extract
    python bench/extract.py --events 2000000 --repeat 5

It writes (once; reused afterwards) a synthetic COS FUV ``corrtag_a``/``corrtag_b``
pair + x1d (:func:`hstlc.testing.build_cos_fuv_pair`) with ``--events`` events in total
(10^7: about 390 MB) under ``bench/results/extract_data/``, then measures, each in a fresh subprocess so that
timings exclude imports and peak memories do not mix:

* ``floor``   -- reading the two corrtag files' bytes in 16 MB blocks;
* ``ours``    -- :func:`hstlc.extraction.extract.extract_lightcurve` (open to finished lightcurve,
  without input checksums), compiled kernel (``engine="kernel"``);
* ``ours-numpy`` -- the same with the numpy reference path (``engine="numpy"``);
* ``ours+checksums`` -- the kernel path with the sha256 of every input recorded
  (``checksums=True``: the event files hashed in the pass that reads them, the x1d apart);
* ``sha256``  -- :func:`hstlc.fs.sha256_file` of the three inputs alone (what hashing them
  in a pass of their own costs);
* ``astropy`` -- plain astropy column access + masks + ``np.bincount`` (orientation only);
* ``legacy``  -- the 2016 ``lightcurve.io.read`` on the same files.

Peak memory is the growth of the child's peak RSS (VmHWM, reset via
``/proc/self/clear_refs`` when allowed) over its RSS just before the measured call.
The page cache is warmed first, so every row is a warm-cache number.  The ``ours``
children load the compiled kernel before the timed call (:func:`hstlc.extraction.kernel.warm_up`,
from numba's cache); the compilation itself is measured apart, in a child whose
``NUMBA_CACHE_DIR`` is an empty folder (``compile``), and the load from that cache in a
second one (``cache load``).  Results go to ``bench/results/extract.json`` and a table
is printed, with the ratios the project targets: ours/floor <= 2, ours+checksums/floor
<= 2.5, legacy/ours >= 8, extra peak memory / event-table size < 0.5.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from memory import reset_peak, status  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
ROOTNAME = "lbnch1xxq"
KINDS = ("floor", "ours", "ours-numpy", "ours+checksums", "sha256", "astropy", "legacy")


# ----------------------------------------------------------------------------- data
def make_data(folder: Path, events: int) -> dict[str, Path]:
    """Write (or reuse) the synthetic pair; returns the paths."""
    stamp = folder / "stamp.json"
    paths = {"corrtag_a": folder / f"{ROOTNAME}_corrtag_a.fits",
             "corrtag_b": folder / f"{ROOTNAME}_corrtag_b.fits",
             "x1d": folder / f"{ROOTNAME}_x1d.fits"}
    wanted = {"events": events, "seed": 7}
    if stamp.exists() and json.loads(stamp.read_text()) == wanted and all(
            p.exists() for p in paths.values()):
        return paths
    from hstlc.testing import build_cos_fuv_pair

    print(f"writing a synthetic COS FUV pair with {events:,} events to {folder} ...")
    folder.mkdir(parents=True, exist_ok=True)
    build_cos_fuv_pair(folder, rootname=ROOTNAME, seed=7, exptime=5000.0, n_events=events,
                       epsilon_scatter=0.05)
    stamp.write_text(json.dumps(wanted))
    return paths


def table_bytes(paths: dict[str, Path]) -> int:
    """Size of the two event tables (NAXIS1 * NAXIS2)."""
    from astropy.io import fits

    total = 0
    for key in ("corrtag_a", "corrtag_b"):
        header = fits.getheader(paths[key], 1)
        total += int(header["NAXIS1"]) * int(header["NAXIS2"])
    return total


# ----------------------------------------------------------------------------- child side
def measure(kind: str, paths: dict[str, Path]) -> dict[str, float]:
    """Run one measurement in this process (the child)."""
    a, b = paths["corrtag_a"], paths["corrtag_b"]
    if kind == "floor":
        buffer = bytearray(1 << 24)

        def run() -> object:
            total = 0
            for path in (a, b):
                with open(path, "rb", buffering=0) as handle:
                    while count := handle.readinto(buffer):
                        total += count
            return total
    elif kind in ("ours", "ours-numpy", "ours+checksums"):
        from hstlc.extraction.extract import extract_lightcurve

        engine = "numpy" if kind == "ours-numpy" else "kernel"
        if engine == "kernel":
            from hstlc.extraction import kernel as kernels

            kernels.warm_up()  # load the machine code from numba's cache (not timed)

        def run() -> object:
            return extract_lightcurve(a, checksums=(kind == "ours+checksums"),
                                      engine=engine).gross.sum()
    elif kind == "sha256":
        from hstlc.fs import sha256_file

        def run() -> object:
            return sum(int(sha256_file(paths[k])[:8], 16) for k in ("corrtag_a", "corrtag_b", "x1d"))
    elif kind == "compile":
        from hstlc.extraction import kernel as kernels  # numba's import is not part of the compilation

        seconds = kernels.warm_up()
        return {"seconds": seconds, "result": seconds}
    elif kind == "astropy":
        import numpy as np
        from astropy.io import fits

        def run() -> object:
            total = 0.0
            for path in (a, b):
                with fits.open(path, memmap=True) as hdul:
                    data, header = hdul[1].data, hdul[1].header
                    letter = hdul[0].header["SEGMENT"][-1]
                    loc, height = header[f"SP_LOC_{letter}"], header[f"SP_HGT_{letter}"]
                    y, w = data["YCORR"], data["WAVELENGTH"]
                    keep = ((data["DQ"] & header["SDQFLAGS"]) == 0) & (w > 915) & (w < 1800)
                    keep &= (y >= loc - height / 2) & (y < loc + height / 2)
                    bins = (data["TIME"][keep] / 2.0).astype(int)
                    total += np.bincount(bins, data["EPSILON"][keep]).sum()
            return total
    elif kind == "legacy":
        import contextlib
        import io
        import warnings

        import lightcurve.io

        def run() -> object:
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return float(lightcurve.io.read(str(a), step=2)["gross"].sum())
    else:
        raise ValueError(kind)
    reset = reset_peak()
    before = status("VmRSS")
    start = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - start
    peak = status("VmHWM")
    return {"seconds": seconds, "rss_before": before, "peak": peak,
            "extra_peak": max(peak - before, 0) if reset else float("nan"),
            "peak_reset": reset, "result": float(result)}  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- parent side
def run_child(kind: str, paths: dict[str, Path], extra_env: dict[str, str] | None = None
              ) -> dict[str, float]:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", kind,
               *(str(paths[k]) for k in ("corrtag_a", "corrtag_b", "x1d"))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           **(extra_env or {})}
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def compile_seconds(paths: dict[str, Path]) -> dict[str, float]:
    """First-call cost of the kernel: compiled into an empty cache, then loaded from it."""
    with tempfile.TemporaryDirectory(prefix="hstlc-numba-cache-") as folder:
        env = {"NUMBA_CACHE_DIR": folder}
        compiled = run_child("compile", paths, env)
        loaded = run_child("compile", paths, env)
    return {"compile_seconds": compiled["seconds"], "cache_load_seconds": loaded["seconds"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000, help="events in the pair")
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement")
    parser.add_argument("--data", type=Path, default=RESULTS / "extract_data")
    parser.add_argument("--out", type=Path, default=RESULTS / "extract.json")
    parser.add_argument("--skip-legacy", action="store_true", help="do not run the 2016 code")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("files", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        paths = dict(zip(("corrtag_a", "corrtag_b", "x1d"), map(Path, args.files), strict=True))
        print(json.dumps(measure(args.child, paths)))
        return 0

    paths = make_data(args.data, args.events)
    size = table_bytes(paths)
    kinds = [k for k in KINDS if not (args.skip_legacy and k == "legacy")]
    compilation = compile_seconds(paths)
    run_child("floor", paths)  # warm the page cache
    run_child("ours", paths)  # and numba's cache beside hstlc/extraction/kernel.py
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
    for _ in range(args.repeat):
        for kind in kinds:
            runs[kind].append(run_child(kind, paths))
    summary = {}
    for kind, results in runs.items():
        summary[kind] = {
            "seconds_median": statistics.median(r["seconds"] for r in results),
            "seconds_min": min(r["seconds"] for r in results),
            "extra_peak_bytes": max(r["extra_peak"] for r in results),
            "result": results[-1]["result"],
        }
    ours, floor = summary["ours"]["seconds_median"], summary["floor"]["seconds_median"]
    ratios = {
        "ours_over_floor": ours / floor,
        "ours_numpy_over_floor": summary["ours-numpy"]["seconds_median"] / floor,
        "ours_checksums_over_floor": summary["ours+checksums"]["seconds_median"] / floor,
        "sha256_over_floor": summary["sha256"]["seconds_median"] / floor,
        "extra_peak_over_table": summary["ours"]["extra_peak_bytes"] / size,
    }
    if "legacy" in summary:
        ratios["legacy_over_ours"] = summary["legacy"]["seconds_median"] / ours
    report = {
        "events": args.events, "event_table_bytes": size, "repeat": args.repeat,
        "files": {k: str(v) for k, v in paths.items()},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_average": os.getloadavg()},
        "summary": summary, "ratios": ratios, "kernel": compilation,
        "targets": {"ours_over_floor": "<= 2", "ours_checksums_over_floor": "<= 2.5",
                    "legacy_over_ours": ">= 8",
                    "extra_peak_over_table": "< 0.5"},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    load = os.getloadavg()
    print(f"\n{args.events:,} events, event tables {size / 1e6:.0f} MB, median of {args.repeat}"
          f" (load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})")
    print(f"{'measurement':<16}{'median s':>10}{'min s':>9}{'extra peak MB':>15}")
    for kind, row in summary.items():
        print(f"{kind:<16}{row['seconds_median']:>10.3f}{row['seconds_min']:>9.3f}"
              f"{row['extra_peak_bytes'] / 1e6:>15.1f}")
    print()
    for name, value in ratios.items():
        print(f"{name:<27}{value:>8.2f}   (target {report['targets'].get(name, '-')})")
    print(f"\nkernel compilation {compilation['compile_seconds']:.1f} s (first call, empty cache);"
          f" load from the cache {compilation['cache_load_seconds']:.2f} s")
    print(f"\nwritten {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
