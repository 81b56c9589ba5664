"""Benchmark: variability statistics per lightcurve, against the 2016 periodogram.

Run from the project root::

    python bench/stats.py                 # or: python -m bench.stats
    python bench/stats.py --repeat 3 --legacy-max-bins 10000

Synthetic lightcurves (seeded Poisson counts, 20 count/s with a 5 % sinusoid at 1800 s;
HST visits of 96-min orbits with 50 min exposed each) are built in each child, then one
call is measured there, each in a fresh subprocess so that timings exclude imports and
one-time initialisation (a small warm-up call runs first) and peak memories do not mix:

* cases -- ``exposure``: one 2500-s exposure in 2-s bins (1250 bins, a typical individual
  lightcurve); ``visit``: a composite of one 5-orbit visit in 2-s bins (7500 bins);
  ``composite``: 20 such visits spread over two years in 10-s bins (30000 bins, the test's
  composite); ``composite-2s``: the same in the pipeline's 2-s bins (150000 bins);
* kinds -- ``search``: the new period search
  (:func:`hstlc.variability.periodogram.search_periods`: three ranges, Baluev FAPs);
  ``stats``: the whole row (:func:`hstlc.variability.compute_stats`: 2016 statistics and
  periodogram rule, barycentric times, period search, flares, excess variance);
  ``legacy``: the 2016 periodogram rule as hstlc computes it now
  (:func:`hstlc.variability.legacy.legacy_periodogram`: grid regular in frequency, O(N log N));
  ``2016``: the baseline, the same rule on the 2016 grid -- one trial period per bin and
  range, linear in period, exact Lomb-Scargle sums (astropy's ``cython`` method), O(N^2)
  time (2016 also took O(N^2) memory, not reproduced here) -- skipped above
  ``--legacy-max-bins`` bins (the 2016 code ran out of memory above ~2e4 bins).

Extra peak memory is the growth of the child's peak RSS (VmHWM, reset via
``/proc/self/clear_refs`` when allowed) over its RSS just before the call.  Results go to
``bench/results/stats.json`` and a table is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from memory import reset_peak, status  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
#: case -> (visits, bin step in s, exposure-only?)
CASES = {"exposure": (1, 2.0, True), "visit": (1, 2.0, False), "composite": (20, 10.0, False),
         "composite-2s": (20, 2.0, False)}
KINDS = ("search", "stats", "legacy", "2016")
ORBIT, EXPOSED, YEAR = 5760.0, 3000.0, 365.25 * 86400.0


# ----------------------------------------------------------------------------- data
def make_lightcurve(case: str):  # type: ignore[no-untyped-def]
    """The case's synthetic lightcurve (seeded)."""
    import numpy as np

    from hstlc.io.lightcurve_file import Lightcurve

    visits, step, single = CASES[case]
    rng = np.random.default_rng(7)
    if single:
        t = np.arange(0.0, 2500.0, step)
    else:
        starts = np.sort(rng.uniform(0.0, 2 * YEAR, visits)) if visits > 1 else [0.0]
        t = np.concatenate([s + k * ORBIT + np.arange(0.0, EXPOSED, step)
                            for s in starts for k in range(5)])
    rate = 20.0 * (1 + 0.05 * np.sin(2 * np.pi * t / 1800.0))
    gross = rng.poisson(rate * step).astype(float)
    bins = np.full(t.size, step)
    nan = np.full(t.size, np.nan)
    dataset = np.cumsum(np.concatenate([[1], np.diff(t) > 600.0])).astype(int)
    return Lightcurve(bins=bins, times=t - t[0], mjd=58000.0 + t / 86400.0, gross=gross,
                      counts=gross, net=gross / bins, flux=nan, flux_error=nan,
                      background=np.zeros(t.size), error=np.sqrt(gross), dataset=dataset,
                      meta={"ra_targ": 175.55, "dec_targ": 26.70})


def rule_on_2016_grid(mjd, net) -> bool:  # type: ignore[no-untyped-def]
    """The 2016 periodogram rule on the 2016 grid (one period per bin, linear in period)."""
    import numpy as np
    from astropy.timeseries import LombScargle

    model = LombScargle(mjd - mjd[0], net)
    flag = False
    for pmin, pmax in ((5.0, 600.0), (600.0, 3600.0), (3600.0, 36000.0)):
        power = model.power(86400.0 / np.linspace(pmin, pmax, mjd.size), method="cython")
        inner = power[1:-1]
        local = inner[(inner > power[:-2]) & (inner > power[2:])]
        flag |= bool(np.any((local > power.mean() + 3 * power.std()) & (local >= 0.30)))
    return flag


# ----------------------------------------------------------------------------- child side
def measure(case: str, kind: str) -> dict[str, float]:
    """Run one measurement in this process (the child)."""
    from hstlc.variability import compute_stats
    from hstlc.variability.legacy import legacy_periodogram
    from hstlc.variability.periodogram import search_periods

    lc = make_lightcurve(case)
    seconds_axis = (lc.mjd - lc.mjd[0]) * 86400.0
    calls = {
        "search": lambda: search_periods(seconds_axis, lc.net, lc.bins).fap,
        "stats": lambda: compute_stats(lc).fap,
        "legacy": lambda: float(legacy_periodogram(lc.mjd, lc.net).flag),
        "2016": lambda: float(rule_on_2016_grid(lc.mjd, lc.net)),
    }
    compute_stats(make_lightcurve("exposure"))  # warm-up: imports, leap seconds, caches
    reset = reset_peak()
    before = status("VmRSS")
    start = time.perf_counter()
    result = calls[kind]()
    seconds = time.perf_counter() - start
    peak = status("VmHWM")
    return {"seconds": seconds, "rss_before": before, "peak": peak,
            "extra_peak": max(peak - before, 0) if reset else float("nan"),
            "peak_reset": reset, "bins": len(lc), "result": float(result)}


# ----------------------------------------------------------------------------- parent side
def run_child(case: str, kind: str) -> dict[str, float]:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", f"{case}:{kind}"]
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def bins_of(case: str) -> int:
    visits, step, single = CASES[case]
    return int(2500.0 / step) if single else int(visits * 5 * EXPOSED / step)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--legacy-max-bins", type=int, default=40_000,
                        help="skip the 2016 rule on lightcurves with more bins")
    parser.add_argument("--out", type=Path, default=RESULTS / "stats.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        case, kind = args.child.split(":")
        print(json.dumps(measure(case, kind)))
        return 0

    summary: dict[str, dict[str, dict[str, float]]] = {}
    for case in args.cases:
        kinds = [k for k in KINDS if k != "2016" or bins_of(case) <= args.legacy_max_bins]
        runs: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
        for _ in range(args.repeat):
            for kind in kinds:
                runs[kind].append(run_child(case, kind))
        summary[case] = {kind: {
            "bins": results[0]["bins"],
            "seconds_median": statistics.median(r["seconds"] for r in results),
            "seconds_min": min(r["seconds"] for r in results),
            "extra_peak_bytes": max(r["extra_peak"] for r in results),
            "result": results[-1]["result"],
        } for kind, results in runs.items()}
    ratios = {case: rows["2016"]["seconds_median"] / rows["search"]["seconds_median"]
              for case, rows in summary.items() if "2016" in rows}
    load = os.getloadavg()
    report = {"repeat": args.repeat, "legacy_max_bins": args.legacy_max_bins,
              "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                          "load_average": load},
              "summary": summary, "rule_2016_over_search": ratios}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"\nmedian of {args.repeat} (load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})")
    print(f"{'case':<14}{'bins':>8}  {'kind':<8}{'median s':>10}{'min s':>9}{'extra peak MB':>15}")
    for case, rows in summary.items():
        for kind, row in rows.items():
            print(f"{case:<14}{row['bins']:>8.0f}  {kind:<8}{row['seconds_median']:>10.3f}"
                  f"{row['seconds_min']:>9.3f}{row['extra_peak_bytes'] / 1e6:>15.1f}")
        if case not in ratios:
            print(f"{case:<14}{'':>8}  {'2016':<8}   skipped (> {args.legacy_max_bins} bins)")
    print()
    for case, value in ratios.items():
        print(f"2016 rule on its grid / search, {case:<14}{value:>8.1f}")
    print(f"\nwritten {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
