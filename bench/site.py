"""Benchmark: the exploration site of a 50,000-row catalogue (pages, re-runs, the table in Chromium).

Run from the project root::

    python bench/site.py                     # 50,000 rows, 300 rendered end to end, browser
    python bench/site.py --rows 5000 --full-render 100 --sample 20 --skip-browser

The data (made once under ``bench/results/site_data/``, again with ``--rebuild`` or for
another ``--rows``): five real files, then hard links to them.

* templates -- three seeded COS NUV datasets (``hstlc.testing.build_cos_nuv``, 800 s),
  the first extracted into a 400-bin ``_curve.fits`` with its quicklook PNG, the three
  stacked by ``make_composite`` into a 1,200-bin composite (and its PNG); and a long
  composite (150,000 bins in 20 visits) for the per-page bound.
* a catalogue of ``--rows`` lightcurves (table rows: individual + composite, 12 %
  composites, one per group), ``rows / 16`` targets with about two setups each, a mix
  of COS FUV (55 %), COS NUV (15 %), STIS FUV-MAMA (18 %) and STIS NUV-MAMA (12 %) with
  their real gratings, cenwaves and apertures.  Every lightcurve is a hard link
  (``outputs/<TARGET>/<rootname>_curve.fits`` and ``.png``,
  ``outputs/composite/hlsp_hstlc_hst_..._v1_sci.fits`` and ``.png``); the rows go in
  with bulk SQLAlchemy core inserts into a schema made by ``migrate.upgrade``:
  ``metadata`` (event files, STIS ``_tag``, x1d), ``outputs``, ``stats`` (seeded
  plausible values, the sha256 of the linked file, ``updated_at`` after the files' mtime so
  that no file is read again) and ``bad_data`` (one row per 25 lightcurves, every reason).

Measured (in this process, imports and the engine's schema check done before the clock):

1. ``read_entries``, ``write_site`` cold (an empty ``plots/``: the table of every row and
   its data file, the interesting view, summary charts, targets list, index) and again with
   nothing changed (it must write nothing), ``plan_pages`` (the per-lightcurve jobs).
2. Per-lightcurve pages: a seeded sample of ``--sample`` jobs of each kind (lightcurve,
   periodogram, quicklook, target) rendered by ``pages.render_batch``; seconds per page, and
   the serial time of every page of the catalogue extrapolated from them (an
   extrapolation: the whole render of 10^5 pages takes hours on 2 cores).  The per-page
   bound: the interactive page and the periodogram of the 150,000-bin composite (pages
   draw at most ``lightcurve_page.MAX_POINTS`` points).
3. Nothing changed at full size (skip with ``--skip-idle``): every planned page not yet
   rendered is stood in for by a hard link to a rendered page of its kind and every digest
   goes into ``plots/.site-manifest.json`` (what a whole render would leave, without the
   hours); then the real ``make_hstlc_plots --json`` in a child must find nothing to do
   (no flow run), write no page and leave every file of ``plots/`` as it was.
4. End to end on a small catalogue (``--full-render`` rows, rebuilt each run, empty
   ``plots/``): the real ``make_hstlc_plots --json`` twice as subprocesses
   (``HSTLC_HOME_DIR`` set; the first starts a temporary Prefect server, kept under
   ``site_data/prefect``).  The first must render every planned page with no failure;
   the second must render none and leave every file of ``plots/`` as it was (same
   mtimes, same set of files).
5. The browser (skip with ``--skip-browser``): Debian's Chromium, headless, through
   Playwright, opens the 50,000-row ``catalogue.html`` from disk (``file://``); every
   request that is not ``file:``/``data:``/``blob:`` is blocked and counted, console
   errors recorded.  ``open``: navigation start to the first page of rows in the DOM
   (``#shown-count`` set) and the next frame, in the page's clock (``performance.now()``),
   3 loads; ``sort``: a real click on a heading (``poisson_factor``, ``fap``,
   ``targname``, ``poisson_factor``, ``fap``), in the page from the click's dispatch to the
   next frame after the re-render (listeners on ``window`` in the capture and bubble
   phases), checked (``aria-sort`` and the first row holds the extreme value); ``filter``:
   text typed into a filter box until ``#shown-count`` changes and the next frame
   (the 150 ms debounce included).  Wall clock (Playwright's round trips included) beside.
   Screenshots go to ``bench/results/site_table.png`` (sorted) and ``site_table_filtered.png``.

Prints a table (measurement, value, target, ok) and writes ``bench/results/site.json``
with the machine and its load average.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DATA = RESULTS / "site_data"
sys.path.insert(0, str(ROOT))

#: Bumped when the data this script makes change (then everything is made again).
DATA_VERSION = 2
SEED = 2016
COMPOSITE_SHARE = 0.12
ROWS_PER_TARGET = 16
BAD_DATA_PER_ROW = 1 / 25
LONG_VISITS, LONG_BINS = 20, 150_000
TARGET_S = 2.0
SITE_COLD_TARGET_S = 60.0
SITE_UNCHANGED_TARGET_S = 30.0
PAGE_TARGET_S = 2.0
LONG_PAGE_TARGET_S = 5.0
#: A safety net: the command is stopped (its process group) after this.
COMMAND_TIMEOUT_S = 900
SORT_KEYS = ("poisson_factor", "fap", "targname", "poisson_factor", "fap")
CHROMIUM = os.environ.get("HSTLC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--allow-file-access-from-files"]

#: (instrume, detector) -> (share of the groups, [(opt_elem, cenwaves, apertures)]).
SETUPS: dict[tuple[str, str], tuple[float, list[tuple[str, tuple[int, ...], tuple[str, ...]]]]] = {
    ("COS", "FUV"): (0.55, [
        ("G130M", (1055, 1096, 1222, 1291, 1300, 1309, 1318, 1327), ("PSA", "BOA")),
        ("G160M", (1577, 1589, 1600, 1611, 1623), ("PSA",)),
        ("G140L", (800, 1105, 1280), ("PSA",))]),
    ("COS", "NUV"): (0.15, [
        ("G185M", (1786, 1817, 1835, 1850, 1864, 1882, 1900, 1913, 1921, 1941, 1953, 1971, 1986,
                   2010), ("PSA", "BOA")),
        ("G225M", (2186, 2217, 2233, 2250, 2268, 2283, 2306, 2325, 2339, 2357, 2373, 2390, 2410),
         ("PSA",)),
        ("G285M", (2617, 2637, 2657, 2676, 2695, 2709, 2719, 2739, 2850, 2952, 2979, 2996, 3018),
         ("PSA",)),
        ("G230L", (2635, 2950, 3000, 3360), ("PSA",))]),
    ("STIS", "FUV-MAMA"): (0.18, [
        ("G140L", (1425,), ("52X2", "52X0.2", "25MAMA")),
        ("G140M", (1173, 1218, 1222, 1272, 1321, 1371, 1387, 1400, 1420, 1470, 1518, 1540, 1550,
                   1567, 1616, 1640, 1665, 1714), ("52X0.1", "52X0.2")),
        ("E140M", (1425,), ("0.2X0.2", "0.2X0.06")),
        ("E140H", (1234, 1271, 1307, 1343, 1380, 1416, 1453, 1489, 1526, 1562, 1598),
         ("0.2X0.09", "0.2X0.2"))]),
    ("STIS", "NUV-MAMA"): (0.12, [
        ("G230L", (2376,), ("52X2", "52X0.2")),
        ("G230M", (1687, 1769, 1851, 1933, 2014, 2095, 2176, 2257, 2338, 2419, 2499, 2579, 2659,
                   2739, 2818, 2898, 2977, 3055, 3134), ("52X0.2",)),
        ("E230M", (1978, 2269, 2415, 2561, 2707), ("0.2X0.2",)),
        ("E230H", (1763, 1813, 1863, 1913, 1963, 2013, 2063, 2113, 2163, 2213, 2263, 2313, 2363,
                   2413, 2463, 2513, 2563, 2613, 2663, 2713), ("0.2X0.2", "0.1X0.09"))]),
}
NAME_FORMS = ("HD{n}", "GJ{n}", "GJ-{n}", "WD{a}+{b}", "HIP{n}", "TYC{a}-{b}-1", "LHS{n}",
              "SDSS-J{a}+{b}", "V{n}-CYG", "AU-MIC-{n}", "BD+{a}-{b}", "2MASS-J{a}-{b}", "KIC{n}",
              "TOI-{n}", "NGC{n}-STAR{a}")


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def clock(call: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


# ----------------------------------------------------------------------------- templates
def make_templates(folder: Path) -> dict[str, Path]:
    """The four real files every lightcurve of the catalogues links to (and the long one)."""
    import dataclasses

    import numpy as np

    from hstlc.extraction.composite import make_composite
    from hstlc.extraction.extract import extract_lightcurve
    from hstlc.io.lightcurve_file import read_lightcurve, write_lightcurve
    from hstlc.plots.quicklook import plot_quicklook
    from hstlc.testing import build_cos_nuv

    shutil.rmtree(folder, ignore_errors=True)
    inputs = folder / "inputs"
    members = [build_cos_nuv(inputs, rootname=f"lbench{k:02d}q", seed=k + 1, exptime=800.0,
                             targname="BENCH-STAR", expstart=56000.25 + 30.0 * k)["corrtag"]
               for k in range(3)]
    curve = write_lightcurve(extract_lightcurve(members[0]), folder / "template_curve.fits")
    plot_quicklook(curve, curve.with_suffix(".png"))
    made = make_composite(members, folder / "composite", hlsp_name="HSTLC", hlsp_lead="bench",
                          proposid="HSTLC")
    assert made.path is not None
    composite = made.path.rename(folder / "template_composite.fits")
    plot_quicklook(composite, composite.with_suffix(".png"))
    # The long composite: the individual's 400 bins repeated into 20 visits of 7,500 bins.
    one = read_lightcurve(curve)
    copies = LONG_BINS // len(one)
    per_visit = copies // LONG_VISITS
    offsets = np.repeat(np.arange(copies), len(one))
    visit = offsets // per_visit
    day = (visit * 37.0 + (offsets % per_visit) * (float(np.sum(one.bins)) + 2.0) / 86400.0)

    def tile(values: Any) -> Any:
        return None if values is None else np.tile(values, copies)

    long = dataclasses.replace(
        one, bins=tile(one.bins), times=tile(one.times) + (offsets % per_visit) * float(np.sum(one.bins)),
        mjd=tile(one.mjd) + day, gross=tile(one.gross), counts=tile(one.counts), net=tile(one.net),
        flux=tile(one.flux), flux_error=tile(one.flux_error), background=tile(one.background),
        error=tile(one.error), dataset=(visit + 1).astype(int),
        bjd_tdb=None if one.bjd_tdb is None else tile(one.bjd_tdb) + day,
        meta={**one.meta, "members": [f"lbnch{k:03d}q" for k in range(LONG_VISITS)]})
    write_lightcurve(long, folder / "long_composite.fits")
    shutil.rmtree(inputs)
    shutil.rmtree(folder / "composite", ignore_errors=True)
    return templates_in(folder)


def templates_in(folder: Path) -> dict[str, Path]:
    names = {"curve": "template_curve.fits", "curve_png": "template_curve.png",
             "composite": "template_composite.fits", "composite_png": "template_composite.png",
             "long": "long_composite.fits"}
    return {key: folder / name for key, name in names.items()}


def ensure_templates(rebuild: bool) -> dict[str, Path]:
    folder = DATA / "templates"
    files = templates_in(folder)
    stamp = folder / "stamp.json"
    if rebuild or not stamp.exists() or json.loads(stamp.read_text()) != DATA_VERSION or not all(
            path.exists() for path in files.values()):
        files = make_templates(folder)
        stamp.write_text(json.dumps(DATA_VERSION))
    return files


# ----------------------------------------------------------------------------- the catalogue
def target_names(count: int, rng: random.Random) -> list[str]:
    """``count`` distinct TARGNAMEs (distinct after normalisation too)."""
    from hstlc.targets import normalize_targname

    names: dict[str, str] = {}
    while len(names) < count:
        form = rng.choice(NAME_FORMS)
        name = form.format(n=rng.randrange(1, 400_000), a=rng.randrange(1000, 9999),
                           b=rng.randrange(100, 999))
        names.setdefault(normalize_targname(name), name)
    return list(names.values())


def rootname(index: int, instrume: str) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    value = index + 36**6
    while value:
        value, rest = divmod(value, 36)
        text = digits[rest] + text
    return ("l" if instrume == "COS" else "o") + text[-7:] + "q"


def plan_catalogue(rows: int, seed: int) -> tuple[list[dict[str, Any]], list[str]]:
    """The groups of the catalogue (target, setup, member count) for ``rows`` table rows."""
    rng = random.Random(seed)
    groups_wanted = max(1, min(round(rows * COMPOSITE_SHARE), rows // 2))
    individuals = rows - groups_wanted
    names = target_names(max(1, min(rows // ROWS_PER_TARGET, groups_wanted)), rng)
    kinds = list(SETUPS)
    shares = [SETUPS[kind][0] for kind in kinds]
    taken: set[tuple[Any, ...]] = set()
    groups = []
    while len(groups) < groups_wanted:
        target = names[len(groups)] if len(groups) < len(names) else rng.choice(names)
        instrume, detector = rng.choices(kinds, shares)[0]
        opt_elem, cenwaves, apertures = rng.choice(SETUPS[(instrume, detector)][1])
        key = (target, instrume, detector, opt_elem, rng.choice(cenwaves), rng.choice(apertures))
        if key in taken:
            continue
        taken.add(key)
        groups.append(dict(zip(("targname", "instrume", "detector", "opt_elem", "cenwave", "aperture"),
                               key, strict=True), members=1))
    weights = [rng.lognormvariate(0.0, 1.0) for _ in groups]
    for index in rng.choices(range(len(groups)), weights, k=individuals - len(groups)):
        groups[index]["members"] += 1
    return groups, names


def link_file(source: Path, target: Path, copies: dict[Path, Path]) -> None:
    """A hard link to ``source`` (a fresh copy of it when its inode has too many links)."""
    current = copies.get(source, source)
    try:
        os.link(current, target)
    except OSError as error:
        if error.errno != 31:  # EMLINK: ext4 stops at 65,000 links per inode
            raise
        fresh = source.with_name(f"{source.stem}-{len(copies) + 1}{source.suffix}")
        shutil.copy2(source, fresh)
        copies[source] = fresh
        os.link(fresh, target)


def plausible_stats(rng: random.Random, n_bins: int, exptime: float, composite: bool,
                    span_s: float) -> dict[str, Any]:
    """Seeded statistics that look like a catalogue's (mostly quiet, a variable tail)."""
    if rng.random() < 0.01:
        return {"reason": f"too few bins ({rng.randrange(3, 20)} < 20)", "n_bins": rng.randrange(3, 20)}
    rate = rng.lognormvariate(math.log(30.0), 1.5)
    total = rate * exptime
    poisson = rng.lognormvariate(0.0, 0.12) if rng.random() < 0.93 else 1.0 + rng.lognormvariate(0.5, 0.9)
    mean = total / max(n_bins, 1)
    values: dict[str, Any] = {
        "total": total, "mean": mean, "mu": mean, "stdev": poisson * math.sqrt(mean),
        "poisson_factor": poisson, "pearson_r": rng.uniform(-0.3, 0.3),
        "pearson_p": 10 ** rng.uniform(-6.0, 0.0), "n_bins": n_bins,
        "n_visits": rng.randrange(2, 9) if composite else 1, "reason": None}
    faps = []
    for name, low, high in (("short", 5.0, 600.0), ("medium", 600.0, 3600.0), ("long", 3600.0, 36000.0)):
        if high / 4 > span_s:
            values.update({f"period_{name}": None, f"power_{name}": None, f"fap_{name}": None})
            continue
        # Mostly nothing (FAP near 1), a tail of significant periods down to 1e-12.
        fap = 10 ** (rng.uniform(-1.5, 0.0) if rng.random() < 0.97 else rng.uniform(-12.0, -1.5))
        faps.append(fap)
        values.update({f"period_{name}": math.exp(rng.uniform(math.log(low), math.log(high))),
                       f"power_{name}": rng.uniform(0.01, 0.6), f"fap_{name}": fap})
    values["fap"] = min(faps) if faps else None
    values["periodic"] = bool(faps) and min(faps) < 1e-3
    values["periodogram"] = values["periodic"]
    flares = 0 if rng.random() < 0.97 else (1 if rng.random() < 0.6 else rng.randrange(2, 6))
    values.update({
        "n_flares": flares, "flare_peak_ratio": rng.uniform(1.5, 20.0) if flares else None,
        "flare_start_mjd": rng.uniform(55000.0, 60500.0) if flares else None,
        "excess_variance": rng.gauss(0.0, 0.01), "excess_variance_error": abs(rng.gauss(0.005, 0.002)),
        "chi2_dof": rng.lognormvariate(0.0, 0.3) * poisson ** 2,
        "deliver": composite and total > 1000.0})
    return values


def build_catalogue(home: Path, rows: int, templates: dict[str, Path], seed: int) -> dict[str, Any]:
    """The home of a synthetic catalogue of ``rows`` lightcurves (made again from scratch)."""
    from sqlalchemy import insert

    from hstlc.catalogue.engine import create_catalogue_engine
    from hstlc.catalogue.migrate import upgrade
    from hstlc.catalogue.models import BadData, Metadata, Outputs, Stats
    from hstlc.config import Settings
    from hstlc.errors import BAD_DATA_REASONS
    from hstlc.extraction.composite import hlsp_filename
    from hstlc.fs import safe_dirname
    from hstlc.io.headers import GroupKey

    start = time.perf_counter()
    for name in ("outputs", "plots", "filesystem", "logs", "hstlc.db", "hstlc.db-wal", "hstlc.db-shm"):
        path = home / name
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    settings = Settings(home_dir=home)
    rng = random.Random(seed + 1)
    groups, names = plan_catalogue(rows, seed)
    shas = {key: sha256_of(templates[key]) for key in ("curve", "composite")}
    outputs, composite_dir = Path(settings.outputs_dir), Path(settings.composite_dir)
    composite_dir.mkdir(parents=True, exist_ok=True)
    copies: dict[Path, Path] = {}
    metadata, output_rows, stats = [], [], []
    blank: dict[str, Any] = {column.name: None for column in Stats.__table__.c if column.name != "id"}
    blank.update(periodogram=False, periodic=False, deliver=False)
    today = dt.date.today()
    stamp = now_utc()
    dataset = 0
    for group in groups:
        key = GroupKey.of(argparse.Namespace(**{k: group[k] for k in (
            "instrume", "detector", "targname", "opt_elem", "cenwave", "aperture")}))
        comp = composite_dir / hlsp_filename(key)
        link_file(templates["composite"], comp, copies)
        link_file(templates["composite_png"], comp.with_suffix(".png"), copies)
        folder = outputs / safe_dirname(group["targname"])
        folder.mkdir(exist_ok=True)
        start_mjd = rng.uniform(55000.0, 60500.0)
        total_exptime = 0.0
        for member in range(group["members"]):
            root = rootname(dataset, group["instrume"])
            dataset += 1
            exptime = min(max(rng.lognormvariate(math.log(1500.0), 0.6), 100.0), 5000.0)
            total_exptime += exptime
            curve = folder / f"{root}_curve.fits"
            link_file(templates["curve"], curve, copies)
            link_file(templates["curve_png"], curve.with_suffix(".png"), copies)
            if group["instrume"] == "COS":
                events = ([f"{root}_corrtag_a.fits", f"{root}_corrtag_b.fits"]
                          if group["detector"] == "FUV" else [f"{root}_corrtag.fits"])
                others = [f"{root}_x1d.fits"]
            else:
                events, others = [f"{root}_corrtag.fits"], [f"{root}_tag.fits", f"{root}_x1d.fits"]
            common = {"path": str(home / "filesystem" / safe_dirname(group["targname"])),
                      "ingest_date": today, "telescop": "HST", "instrume": group["instrume"],
                      "targname": group["targname"], "cal_ver": "3.4.2", "obstype": "SPECTROSCOPIC",
                      "cenwave": group["cenwave"], "aperture": group["aperture"],
                      "detector": group["detector"], "opt_elem": group["opt_elem"],
                      "fppos": rng.randrange(1, 5) if group["instrume"] == "COS" else None,
                      "rootname": root, "proposid": 11000 + rng.randrange(6000),
                      "expstart": start_mjd + member * rng.uniform(0.05, 40.0), "exptime": exptime,
                      "created_at": stamp, "updated_at": stamp}
            for name in [*events, *others]:
                metadata.append({**common, "id": len(metadata) + 1, "filename": name,
                                 "sha256": hashlib.sha256(name.encode()).hexdigest()})
                if name in events:
                    output_rows.append({"id": len(output_rows) + 1, "metadata_id": len(metadata),
                                        "individual_path": str(folder), "individual_filename": curve.name,
                                        "composite_path": str(composite_dir),
                                        "composite_filename": comp.name,
                                        "created_at": stamp, "updated_at": stamp})
            stats.append({**blank, "lightcurve_path": str(folder), "lightcurve_filename": curve.name,
                          "kind": "individual", "targname": group["targname"], "sha256": shas["curve"],
                          **plausible_stats(rng, int(exptime / 2), exptime, False, exptime)})
        stats.append({**blank, "lightcurve_path": str(composite_dir), "lightcurve_filename": comp.name,
                      "kind": "composite", "targname": group["targname"], "sha256": shas["composite"],
                      **plausible_stats(rng, int(total_exptime / 2), total_exptime, True, 86400.0 * 30)})
    written = now_utc() + dt.timedelta(seconds=1)  # after every file's mtime: no file is read again
    for row in stats:
        row.update(created_at=written, updated_at=written)
    bad = []
    for index in range(max(1, round(rows * BAD_DATA_PER_ROW))):
        name = f"{rootname(10**7 + index, rng.choice(('COS', 'STIS')))}_corrtag.fits"
        bad.append({"filename": name, "ingest_date": today, "reason": BAD_DATA_REASONS[index % len(
            BAD_DATA_REASONS)] if index < 3 * len(BAD_DATA_REASONS) else rng.choice(BAD_DATA_REASONS[:6]),
                    "detail": "synthetic refusal", "path": str(home / "bad_data" / name),
                    "sha256": hashlib.sha256(name.encode()).hexdigest(),
                    "created_at": stamp, "updated_at": stamp})
    engine = create_catalogue_engine(settings.database_url)
    upgrade(engine)
    with engine.begin() as connection:
        for model, values in ((Metadata, metadata), (Outputs, output_rows), (Stats, stats), (BadData, bad)):
            for first in range(0, len(values), 20_000):
                connection.execute(insert(model.__table__), values[first:first + 20_000])
    engine.dispose()
    kinds = Counter(row["kind"] for row in stats)
    return {"rows": len(stats), "individual": kinds["individual"], "composite": kinds["composite"],
            "targets": len({row["targname"] for row in stats}), "metadata_rows": len(metadata),
            "bad_data_rows": len(bad), "seconds": time.perf_counter() - start,
            "instruments": dict(Counter(f"{g['instrume']} {g['detector']}" for g in groups))}


def ensure_catalogue(home: Path, rows: int, templates: dict[str, Path], rebuild: bool) -> dict[str, Any]:
    stamp = home / "stamp.json"
    wanted = {"version": DATA_VERSION, "rows": rows, "seed": SEED}
    if not rebuild and stamp.exists() and (home / "hstlc.db").exists():
        known = json.loads(stamp.read_text())
        if known.get("wanted") == wanted:
            return {**known["made"], "reused": True}
    home.mkdir(parents=True, exist_ok=True)
    made = build_catalogue(home, rows, templates, SEED)
    stamp.write_text(json.dumps({"wanted": wanted, "made": made}))
    return {**made, "reused": False}


# ----------------------------------------------------------------------------- the site
def site_level(home: Path) -> dict[str, Any]:
    """read_entries, write_site cold and unchanged, plan_pages: at the catalogue's size."""
    from hstlc.catalogue.engine import engine_for
    from hstlc.config import Settings
    from hstlc.plots import charts, table_page  # noqa: F401 (imports before the clock)
    from hstlc.plots.pages import CATALOGUE, INTERESTING, write_site
    from hstlc.plots.site import SiteConfig, plan_pages, read_entries
    from hstlc.plots.table_page import data_path

    settings = Settings(home_dir=home)
    config = SiteConfig.from_settings(settings)
    url = settings.database_url
    engine_for(url)
    shutil.rmtree(config.plot_dir, ignore_errors=True)
    read_s, entries = clock(lambda: read_entries(url))
    cold_s, cold = clock(lambda: write_site(url, config, {}))
    warm_s, warm = clock(lambda: write_site(url, config, {}))
    plan_s, jobs = clock(lambda: plan_pages(entries, config))
    site = config.plot_dir
    return {"entries": len(entries), "read_entries_s": read_s, "write_site_cold_s": cold_s,
            "cold_written": list(cold.written), "write_site_unchanged_s": warm_s,
            "unchanged_written": list(warm.written), "plan_pages_s": plan_s,
            "jobs": dict(Counter(job.kind for job in jobs)), "targets": cold.targets,
            "interesting": cold.interesting,
            "interesting_data_bytes": data_path(site / INTERESTING).stat().st_size,
            "catalogue_html_bytes": (site / CATALOGUE).stat().st_size,
            "catalogue_data_bytes": data_path(site / CATALOGUE).stat().st_size,
            "site": str(site), "_jobs": jobs, "_config": config}


def sample_pages(jobs: Sequence[Any], config: Any, sample: int, long_curve: Path) -> dict[str, Any]:
    """Seconds per page of each kind on a seeded sample; the long composite's pages."""
    from hstlc.plots.lightcurve_page import MAX_POINTS, write_lightcurve_page
    from hstlc.plots.pages import render_batch
    from hstlc.plots.periodogram_plot import plot_periodogram

    rng = random.Random(SEED + 7)
    by_kind: dict[str, list[Any]] = {}
    for job in jobs:
        by_kind.setdefault(job.kind, []).append(job)
    # Warm up (imports, matplotlib and Bokeh's first figure) on one job of each kind, off the clock.
    for group in by_kind.values():
        render_batch(group[-1:], config)
    kinds: dict[str, Any] = {}
    for kind, group in sorted(by_kind.items()):
        chosen = rng.sample(group[:-1], min(sample, len(group) - 1)) if len(group) > 1 else group
        seconds, result = clock(lambda chosen=chosen: render_batch(chosen, config))
        kinds[kind] = {"planned": len(group), "sampled": len(chosen), "seconds": seconds,
                       "per_page_s": seconds / max(len(chosen), 1), "failed": len(result["failed"]),
                       "failures": dict(list(result["failed"].items())[:3])}
    serial = sum(row["planned"] * row["per_page_s"] for row in kinds.values())
    scratch = DATA / "long-pages"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    long_page_s, _ = clock(lambda: write_lightcurve_page(long_curve, scratch / "long.html",
                                                         site=config.plot_dir))
    long_periodogram_s, _ = clock(lambda: plot_periodogram(long_curve, scratch / "long.png", config.stats))
    return {"kinds": kinds, "extrapolated_serial_s": serial, "max_points": MAX_POINTS,
            "long_bins": LONG_BINS, "long_page_s": long_page_s,
            "long_page_bytes": (scratch / "long.html").stat().st_size,
            "long_periodogram_s": long_periodogram_s}


def files_of(folder: Path) -> dict[str, int]:
    return {str(path.relative_to(folder)): path.stat().st_mtime_ns
            for path in sorted(folder.rglob("*")) if path.is_file()}


def run_command(home: Path) -> tuple[float, dict[str, Any], str]:
    """``make_hstlc_plots --json`` in a child (its own Prefect temporary server when needed)."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("HSTLC_", "PREFECT_"))}
    env.update({"HSTLC_HOME_DIR": str(home), "PREFECT_HOME": str(DATA / "prefect"),
                "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])})
    code = ("import sys; from flows.plots_command import make_hstlc_plots_main; "
            "sys.exit(make_hstlc_plots_main(['--json']))")
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env, cwd=ROOT, start_new_session=True)
    try:
        text, errors = child.communicate(timeout=COMMAND_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGTERM)  # the child's own group: it and its Prefect server
        child.communicate(timeout=60)
        raise RuntimeError(f"make_hstlc_plots on {home} took over {COMMAND_TIMEOUT_S} s: stopped") from None
    seconds = time.perf_counter() - start
    if child.returncode != 0:
        raise RuntimeError(f"make_hstlc_plots failed ({child.returncode}):\n{text}\n{errors[-4000:]}")
    summary, _ = json.JSONDecoder().raw_decode(text[text.index("{"):])
    return seconds, {**summary.get("plots", summary), "flow_s": flow_seconds(home)}, text[-2000:]


def flow_seconds(home: Path) -> float | None:
    """The flow run's own time in the newest log of ``home`` (no server start, no imports):
    from 'Beginning flow run' to the flow run's 'Finished in state'; None without a flow run."""
    logs = sorted((home / "logs").glob("make_hstlc_plots-*Z.log"))
    if not logs:
        return None
    begin = end = None
    for line in logs[-1].read_text(errors="replace").splitlines():
        if "prefect.flow_runs" not in line:
            continue
        stamp = dt.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
        if "Beginning flow run" in line:
            begin = stamp
        elif "Finished in state" in line:
            end = stamp
    return None if begin is None or end is None else (end - begin).total_seconds()


def fill_site(jobs: Sequence[Any], config: Any) -> dict[str, Any]:
    """Stand in for a full render of the big catalogue: every planned page not rendered yet
    becomes a hard link to a rendered page of its kind, and every digest goes into the
    manifest, as ``render_batch`` and ``write_site`` leave them after a whole run."""
    from hstlc.plots.pages import render_batch
    from hstlc.plots.site import key_of, update_manifest

    start = time.perf_counter()
    site = config.plot_dir
    models: dict[str, Path] = {}
    for job in jobs:
        if job.kind not in models and job.output.exists():
            models[job.kind] = job.output
    for job in jobs:
        if job.kind not in models:
            render_batch([job], config)
            models[job.kind] = job.output
    copies: dict[Path, Path] = {}
    digests, linked = {}, 0
    for job in jobs:
        if not job.output.exists():
            job.output.parent.mkdir(parents=True, exist_ok=True)
            link_file(models[job.kind], job.output, copies)
            linked += 1
        digests[key_of(site, job.output)] = job.digest
    update_manifest(site, digests)
    return {"linked": linked, "manifest_entries": len(digests), "seconds": time.perf_counter() - start}


def idle_command(home: Path, site: Path) -> dict[str, Any]:
    """``make_hstlc_plots`` on the big catalogue whose every page is up to date."""
    before = files_of(site)
    seconds, summary, _ = run_command(home)
    after = files_of(site)
    changed = sorted(name for name in set(before) | set(after) if before.get(name) != after.get(name))
    return {"seconds": seconds, "rendered": summary.get("rendered"), "mode": summary.get("mode"),
            "site_pages": summary.get("site_pages"), "failed": len(summary.get("failed") or {}),
            "flow_s": summary.get("flow_s"), "files": len(after), "changed_count": len(changed),
            "changed_files": changed[:20]}


def full_render(rows: int, templates: dict[str, Path]) -> dict[str, Any]:
    """The real command twice on a small fresh catalogue: everything, then nothing."""
    from hstlc.config import Settings
    from hstlc.plots.site import SiteConfig, plan_pages, read_entries

    home = DATA / f"full-{rows}"
    made = build_catalogue(home, rows, templates, SEED + 100)
    settings = Settings(home_dir=home)
    config = SiteConfig.from_settings(settings)
    planned = plan_pages(read_entries(settings.database_url), config)
    first_s, first, _ = run_command(home)
    before = files_of(config.plot_dir)
    second_s, second, tail = run_command(home)
    after = files_of(config.plot_dir)
    changed = sorted(name for name in set(before) | set(after) if before.get(name) != after.get(name))
    return {"catalogue": made, "planned": len(planned),
            "planned_kinds": dict(Counter(job.kind for job in planned)),
            "first_s": first_s, "first_flow_s": first.get("flow_s"), "first_rendered": first.get("rendered"),
            "first_failed": len(first.get("failed") or {}), "first_site_pages": first.get("site_pages"),
            "second_s": second_s, "second_rendered": second.get("rendered"),
            "second_failed": len(second.get("failed") or {}), "second_site_pages": second.get("site_pages"),
            "second_mode": second.get("mode"), "second_flow_s": second.get("flow_s"), "files": len(after),
            "changed_files": changed[:20],
            "changed_count": len(changed), "second_output_tail": tail[-600:]}


# ----------------------------------------------------------------------------- the browser
INIT_SCRIPT = """
(() => {
  const B = window.__bench = {rows: null, painted: null, clicks: 0};
  const check = () => {
    if (B.rows !== null) return;
    const count = document.getElementById('shown-count');
    const row = document.querySelector('table#catalogue tbody tr');
    if (count && row && count.textContent) {
      B.rows = performance.now();
      B.count = count.textContent;
      B.rowCount = document.querySelectorAll('table#catalogue tbody tr').length;
      observer.disconnect();
      requestAnimationFrame(() => setTimeout(() => { B.painted = performance.now(); }, 0));
    }
  };
  const observer = new MutationObserver(check);
  observer.observe(document, {childList: true, subtree: true, characterData: true});
  window.addEventListener('click', () => { B.click0 = performance.now(); }, true);
  window.addEventListener('click', () => {
    B.click1 = performance.now();
    requestAnimationFrame(() => setTimeout(() => { B.click2 = performance.now(); B.clicks += 1; }, 0));
  }, false);
  window.addEventListener('input', () => { B.input0 = performance.now(); }, true);
})();
"""

TIMING_SCRIPT = """() => {
  const nav = performance.getEntriesByType('navigation')[0] || {};
  return {rows_ms: window.__bench.rows, painted_ms: window.__bench.painted, count: window.__bench.count,
          row_count: window.__bench.rowCount, dom_interactive_ms: nav.domInteractive,
          dom_content_loaded_ms: nav.domContentLoadedEventEnd, load_ms: nav.loadEventEnd};
}"""

#: The value the first row must show after a sort (from the data, not the page's model).
ORDER_SCRIPT = """([key, descending]) => {
  const data = window.HSTLC_TABLE;
  const position = data.keys.indexOf(key);
  const kind = data.columns.find(c => c.key === key).kind;
  let best = null;
  for (const row of data.rows) {
    let value = row[position];
    if (value === null || value === undefined || value === '') continue;
    if (kind === 'text') value = String(value).toLowerCase();
    if (best === null || (descending ? value > best : value < best)) best = value;
  }
  const cell = document.querySelector(`table#catalogue tbody tr td[data-key="${key}"]`);
  const shown = cell ? (kind === 'text' ? cell.textContent.toLowerCase() : Number(cell.title)) : null;
  const heading = document.querySelector(`th[data-key="${key}"]`).getAttribute('aria-sort');
  return {expected: best, shown: shown, aria_sort: heading,
          ok: shown === best && heading === (descending ? 'descending' : 'ascending')};
}"""

COUNT_WATCH = """() => {
  const B = window.__bench;
  const count = document.getElementById('shown-count');
  const before = count.textContent;
  B.count1 = null; B.count2 = null;
  const observer = new MutationObserver(() => {
    if (count.textContent === before) return;
    observer.disconnect();
    B.count1 = performance.now();
    B.countText = count.textContent;
    requestAnimationFrame(() => setTimeout(() => { B.count2 = performance.now(); }, 0));
  });
  observer.observe(count, {childList: true, characterData: true, subtree: true});
}"""


def browse(site: Path, rows: int, filter_text: str) -> dict[str, Any]:
    """Open the table page, sort, filter; times in the page and by the wall clock."""
    from playwright.sync_api import sync_playwright

    blocked: list[str] = []
    errors: list[str] = []
    page_path = site / "catalogue.html"
    with sync_playwright() as playwright:
        launch_s, browser = clock(lambda: playwright.chromium.launch(executable_path=CHROMIUM,
                                                                     args=CHROMIUM_ARGS))
        context = browser.new_context(viewport={"width": 1600, "height": 1000})

        def route(request_route: Any) -> None:
            url = request_route.request.url
            if url.startswith(("file://", "data:", "blob:")):
                request_route.continue_()
            else:
                blocked.append(url)
                request_route.abort()

        context.route("**/*", route)
        context.add_init_script(INIT_SCRIPT)
        tab = context.new_page()
        tab.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        tab.on("pageerror", lambda error: errors.append(str(error)))
        cdp = context.new_cdp_session(tab)
        cdp.send("Performance.enable")
        opens = []
        for _ in range(3):
            start = time.perf_counter()
            tab.goto(page_path.resolve().as_uri(), wait_until="commit")
            tab.wait_for_function("() => window.__bench && window.__bench.painted !== null",
                                  timeout=120_000, polling=50)
            wall = time.perf_counter() - start
            metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
            opens.append({**tab.evaluate(TIMING_SCRIPT), "wall_s": wall,
                          "heap_bytes": metrics.get("JSHeapUsedSize")})
        sorts = []
        current: tuple[str | None, bool] = (None, False)
        for key in SORT_KEYS:
            descending = current == (key, False)  # a second click on the sorted column reverses it
            clicks = tab.evaluate("() => window.__bench.clicks")
            start = time.perf_counter()
            tab.click(f"th[data-key='{key}']")
            tab.wait_for_function(f"() => window.__bench.clicks > {clicks}", polling=10)
            wall = time.perf_counter() - start
            times = tab.evaluate("() => ['click0', 'click1', 'click2'].map(name => window.__bench[name])")
            check = tab.evaluate(ORDER_SCRIPT, [key, descending])
            current = (key, descending)
            sorts.append({"key": key, "sync_ms": times[1] - times[0], "frame_ms": times[2] - times[0],
                          "wall_s": wall, **check})
        RESULTS.mkdir(parents=True, exist_ok=True)
        tab.evaluate("() => window.scrollTo(0, 0)")  # the clicks scrolled the wide table sideways
        tab.screenshot(path=str(RESULTS / "site_table.png"), full_page=False)
        filters = []
        for key, text in (("targname", filter_text), ("poisson_factor", ">3")):
            selector = f"input[data-filter='{key}']"
            tab.evaluate(COUNT_WATCH)
            start = time.perf_counter()
            tab.fill(selector, text)
            tab.wait_for_function("() => window.__bench.count2 !== null", timeout=60_000, polling=10)
            wall = time.perf_counter() - start
            got = tab.evaluate("() => ({input0: window.__bench.input0, count1: window.__bench.count1, "
                               "count2: window.__bench.count2, text: window.__bench.countText})")
            filters.append({"key": key, "text": text, "update_ms": got["count1"] - got["input0"],
                            "frame_ms": got["count2"] - got["input0"], "wall_s": wall, "count": got["text"]})
        tab.evaluate("() => window.scrollTo(0, 0)")
        tab.screenshot(path=str(RESULTS / "site_table_filtered.png"), full_page=False)
        version = browser.version
        context.close()
        browser.close()
    expected = f"{rows:,} of {rows:,}"
    return {"chromium": version, "launch_s": launch_s, "opens": opens, "sorts": sorts, "filters": filters,
            "blocked": blocked, "console_errors": errors[:20],
            "count_ok": all(str(o["count"]).startswith(expected) for o in opens)}


# ----------------------------------------------------------------------------- report
def table_rows(report: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    out: list[tuple[str, str, str, str]] = []

    def add(name: str, value: str, target: str = "", ok: bool | None = None) -> None:
        out.append((name, value, target, "" if ok is None else ("ok" if ok else "FAIL")))

    made, site = report["catalogue"], report["site_level"]
    add("catalogue rows (individual + composite)",
        f"{made['rows']:,} ({made['individual']:,} + {made['composite']:,}), {made['targets']:,} targets")
    add("  made in" if not made.get("reused") else "  made (earlier run) in", f"{made['seconds']:.1f} s")
    add("read_entries", f"{site['read_entries_s']:.2f} s")
    add("write_site, cold (all site pages)", f"{site['write_site_cold_s']:.2f} s",
        f"< {SITE_COLD_TARGET_S:.0f} s", site["write_site_cold_s"] < SITE_COLD_TARGET_S)
    add("  written", ", ".join(site["cold_written"]))
    add("write_site, nothing changed", f"{site['write_site_unchanged_s']:.2f} s, wrote "
        f"{len(site['unchanged_written'])}", f"0 pages, < {SITE_UNCHANGED_TARGET_S:.0f} s",
        not site["unchanged_written"] and site["write_site_unchanged_s"] < SITE_UNCHANGED_TARGET_S)
    add("plan_pages", f"{site['plan_pages_s']:.2f} s, {sum(site['jobs'].values()):,} jobs")
    add("catalogue.html / catalogue-data.js", f"{site['catalogue_html_bytes'] / 1e3:.1f} kB / "
        f"{site['catalogue_data_bytes'] / 1e6:.1f} MB")
    add("interesting view: rows / interesting-data.js",
        f"{site['interesting']:,} / {site['interesting_data_bytes'] / 1e6:.1f} MB")
    if "pages" in report:
        pages = report["pages"]
        for kind, row in pages["kinds"].items():
            add(f"{kind} page, s/page (sample {row['sampled']})", f"{row['per_page_s']:.3f} s"
                + (f", {row['failed']} failed" if row["failed"] else ""),
                f"< {PAGE_TARGET_S:.0f} s", row["per_page_s"] < PAGE_TARGET_S and not row["failed"])
        hours = pages["extrapolated_serial_s"] / 3600
        add("every page of the catalogue (extrapolated)",
            f"{hours:.1f} h serial ({sum(r['planned'] for r in pages['kinds'].values()):,} pages)")
        add(f"long composite page ({pages['long_bins']:,} bins, capped at {pages['max_points']:,})",
            f"{pages['long_page_s']:.2f} s, {pages['long_page_bytes'] / 1e6:.1f} MB",
            f"< {LONG_PAGE_TARGET_S:.0f} s", pages["long_page_s"] < LONG_PAGE_TARGET_S)
        add("long composite periodogram", f"{pages['long_periodogram_s']:.2f} s",
            f"< {LONG_PAGE_TARGET_S:.0f} s", pages["long_periodogram_s"] < LONG_PAGE_TARGET_S)
    if "idle" in report:
        idle, fill = report["idle"], report["fill"]
        add(f"make_hstlc_plots, {made['rows']:,} rows, every page up to date",
            f"{idle['seconds']:.1f} s, {idle['rendered']} pages, {len(idle['site_pages'] or [])} site pages, "
            f"{idle['changed_count']} of {idle['files']:,} files changed", "0 pages, 0 files",
            idle["rendered"] == 0 and not idle["site_pages"] and idle["changed_count"] == 0
            and idle["flow_s"] is None)
        add("  (stand-in render: pages linked, manifest entries)",
            f"{fill['linked']:,} linked, {fill['manifest_entries']:,} entries, {fill['seconds']:.1f} s")
    if "full" in report:
        full = report["full"]
        add(f"make_hstlc_plots, {full['catalogue']['rows']} rows, first", f"{full['first_s']:.1f} s, "
            f"{full['first_rendered']} pages, {full['first_failed']} failed",
            f"all {full['planned']} rendered",
            full["first_rendered"] == full["planned"] and not full["first_failed"])
        if full.get("first_flow_s"):
            add("  the flow run alone (log; no server start)", f"{full['first_flow_s']:.1f} s, "
                f"{full['first_flow_s'] / max(full['first_rendered'] or 1, 1):.3f} s/page")
        add("make_hstlc_plots, nothing changed", f"{full['second_s']:.1f} s, "
            f"{full['second_rendered']} pages, {full['changed_count']} of {full['files']} files changed",
            "0 pages, 0 files", full["second_rendered"] == 0 and full["changed_count"] == 0
            and not full["second_site_pages"])
    if "browser" in report:
        browser = report["browser"]
        opens = browser["opens"]
        painted = [o["painted_ms"] / 1000 for o in opens]
        add("table page open: first rows painted (in page, 3 loads)",
            f"median {statistics.median(painted):.2f} s, max {max(painted):.2f} s", f"< {TARGET_S:.0f} s",
            max(painted) < TARGET_S and browser["count_ok"])
        add("  domInteractive (data script run) / DOMContentLoaded, median",
            f"{statistics.median(o['dom_interactive_ms'] for o in opens) / 1000:.2f} s / "
            f"{statistics.median(o['dom_content_loaded_ms'] for o in opens) / 1000:.2f} s")
        add("  wall clock, goto to painted (median)",
            f"{statistics.median(o['wall_s'] for o in opens):.2f} s")
        heap = [o["heap_bytes"] for o in opens if o.get("heap_bytes")]
        if heap:
            add("  JS heap used after open (max)", f"{max(heap) / 1e6:.0f} MB")
        frames = [s["frame_ms"] / 1000 for s in browser["sorts"]]
        walls = [s["wall_s"] for s in browser["sorts"]]
        add("sort: click to next frame (in page, 5 sorts)",
            f"median {statistics.median(frames):.3f} s, max {max(frames):.3f} s", f"< {TARGET_S:.0f} s",
            max(frames) < TARGET_S and all(s["ok"] for s in browser["sorts"]))
        add("  wall clock (Playwright click + wait)",
            f"median {statistics.median(walls):.3f} s, max {max(walls):.3f} s", f"< {TARGET_S:.0f} s",
            max(walls) < TARGET_S)
        for item in browser["filters"]:
            add(f"filter {item['key']} {item['text']!r}: input to next frame",
                f"{item['frame_ms'] / 1000:.3f} s (wall {item['wall_s']:.3f} s) -> "
                f"{item['count']}", f"< {TARGET_S:.0f} s (150 ms debounce incl.)",
                item["frame_ms"] / 1000 < TARGET_S)
        add("requests off the disk (blocked)", str(len(browser["blocked"])), "0", not browser["blocked"])
        add("console errors", str(len(browser["console_errors"])), "0", not browser["console_errors"])
    return out


def print_table(rows: list[tuple[str, str, str, str]], load: Sequence[float]) -> None:
    widths = [max(len(row[i]) for row in [("measurement", "value", "target", "ok"), *rows]) for i in range(4)]
    print(f"\n(load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {os.cpu_count()} CPUs)")
    for row in [("measurement", "value", "target", "ok"), tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def filter_text_for(site: Path) -> str:
    """A target-name fragment that selects some rows but not all (from the data file)."""
    text = (site / "catalogue-data.js").read_text(encoding="utf-8")
    data = json.loads(text[text.index("{"):text.rindex("}") + 1])
    position = data["keys"].index("targname")
    names = Counter(str(row[position])[:3].lower() for row in data["rows"] if row[position])
    fragment, _ = names.most_common(1)[0]
    return fragment


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000, help="catalogue rows (individual + composite)")
    parser.add_argument("--full-render", type=int, default=300,
                        help="rows of the catalogue rendered end to end by make_hstlc_plots (0: skip)")
    parser.add_argument("--sample", type=int, default=40,
                        help="pages of each kind rendered for s/page (0: skip)")
    parser.add_argument("--rebuild", action="store_true", help="make the templates and the catalogue again")
    parser.add_argument("--skip-browser", action="store_true", help="no Chromium measurements")
    parser.add_argument("--skip-idle", action="store_true",
                        help="no make_hstlc_plots on the big catalogue with every page up to date")
    parser.add_argument("--out", type=Path, default=RESULTS / "site.json")
    args = parser.parse_args(argv)
    os.environ.pop("HSTLC_CONFIG", None)
    for name in [key for key in os.environ if key.startswith("HSTLC_")]:
        os.environ.pop(name)
    started = time.perf_counter()
    load_start = os.getloadavg()
    report: dict[str, Any] = {"rows": args.rows, "full_render": args.full_render, "sample": args.sample}

    def step(text: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f} s, load {os.getloadavg()[0]:.2f}] {text}", flush=True)

    step("templates")
    templates = ensure_templates(args.rebuild)
    step(f"catalogue of {args.rows:,} rows")
    home = DATA / f"n{args.rows}"
    report["catalogue"] = ensure_catalogue(home, args.rows, templates, args.rebuild)
    step("site-level pages (read_entries, write_site twice, plan_pages)")
    site = site_level(home)
    jobs, config = site.pop("_jobs"), site.pop("_config")
    report["site_level"] = site
    if args.sample > 0:
        step(f"per-page sample ({args.sample} of each kind)")
        report["pages"] = sample_pages(jobs, config, args.sample, templates["long"])
    if not args.skip_idle:
        step(f"stand-in full render, then make_hstlc_plots with nothing changed at {args.rows:,} rows")
        report["fill"] = fill_site(jobs, config)
        report["idle"] = idle_command(home, Path(site["site"]))
    if args.full_render > 0:
        step(f"make_hstlc_plots twice on {args.full_render} rows")
        report["full"] = full_render(args.full_render, templates)
    if not args.skip_browser:
        step("browser")
        report["browser"] = browse(Path(site["site"]), site["entries"], filter_text_for(Path(site["site"])))
    load = os.getloadavg()
    report["seconds"] = time.perf_counter() - started
    report["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count(),
                         "machine": platform.machine(), "processor": platform.processor(),
                         "load_average_start": load_start, "load_average": load}
    rows = table_rows(report)
    report["table"] = [dict(zip(("measurement", "value", "target", "ok"), row, strict=True)) for row in rows]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str))
    print_table(rows, load)
    print(f"\nwhole run {report['seconds']:.0f} s; written {args.out}")
    return 1 if any(row[3] == "FAIL" for row in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
