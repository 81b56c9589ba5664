"""Benchmark: the measured inputs of the scaling model (``docs/SCALING.md``).

Three groups of rows, each a rate that limits a reprocessing of the archive once enough
workers run at once:

* ``catalogue`` -- datasets/s written through the project's own store functions, one
  transaction per dataset as the ingest's ``record_rows`` writes it (an FUV pair and its
  x1d: three ``upsert_metadata`` and two ``upsert_output`` statements), with 1 and 2
  writer processes at once, on SQLite (WAL, a file on the local disk) and on PostgreSQL
  (a throwaway local cluster started here, fsync on; skipped with the reason when the
  server binaries are absent). Each writer is a fresh child process; the rate is all the
  writers' datasets over the span from the first start to the last end.
* ``prefect`` -- what a Prefect server records: a real ``prefect server start`` (SQLite,
  a temporary ``PREFECT_HOME``, a free 127.0.0.1 port) while this process runs a flow
  mapping ``--task-runs`` trivial tasks (the default thread runner) and then a loop of
  ``--flow-runs`` trivial flows (heartbeat off). The server's count endpoints are polled
  until every run is recorded COMPLETED or the count stops growing for ``--settle``
  seconds: recorded runs / (time of the last one recorded - flow start).
* ``filesystem`` -- in ``--dir`` (default: a temporary folder; its device is reported):
  a ``--big-mb`` file (a large corrtag) written in 16 MB blocks and fsynced, read back warm
  (from the page cache) and cold (its pages dropped with ``posix_fadvise(DONTNEED)``, and
  with ``--drop-caches`` also after ``echo 3 > /proc/sys/vm/drop_caches``, root only:
  it empties the page cache of the whole machine); ``--small-count`` files of
  ``--small-kb`` (curve files) written as the atomic writer does (temporary name, fsync,
  rename) and then moved with ``hstlc.fs.move_file`` (a rename within one file system).

Prints a table and writes ``bench/results/scaling.json``. About 2-3 minutes by default::

    python bench/scaling.py
    python bench/scaling.py --only catalogue --datasets 500
    python bench/scaling.py --only filesystem --big-mb 20 200 --drop-caches
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
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
os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
GROUPS = ("catalogue", "prefect", "filesystem")
BLOCK = 16 << 20


# -- the catalogue ---------------------------------------------------------------------------


def dataset_records(index: int) -> dict[str, dict[str, Any]]:
    """The ``metadata`` rows of one COS FUV dataset as ``ingest.steps.record`` makes them:
    the ``catalogue_record`` columns of each file, its destination folder and sha256."""
    root = f"lz{index:06d}q"
    target = f"BENCH-TARGET-{index % 500:03d}"
    records = {}
    for suffix in ("corrtag_a", "corrtag_b", "x1d"):
        name = f"{root}_{suffix}.fits"
        records[name] = {
            "filename": name, "telescop": "HST", "instrume": "COS", "targname": target,
            "cal_ver": "3.4.4", "obstype": "SPECTROSCOPIC", "cenwave": 1291, "aperture": "PSA",
            "detector": "FUV", "opt_elem": "G130M", "fppos": 1 + index % 4, "rootname": root,
            "proposid": 14767, "expstart": 57000.0 + index / 100, "exptime": 1881.2,
            "path": f"/data/hstlc/filesystem/{target}",
            "sha256": hashlib.sha256(name.encode()).hexdigest(),
        }
    return records


def write_datasets(url: str, first: int, count: int, start_at: float) -> dict[str, float]:
    """The child: ``count`` datasets, one transaction each (``record_rows``), from ``start_at``."""
    from hstlc.catalogue.engine import engine_for, session_scope
    from hstlc.catalogue.store import upsert_metadata, upsert_output

    engine = engine_for(url)  # the schema check, before the clock
    with engine.connect() as connection:
        durability = str(connection.exec_driver_sql(
            "PRAGMA synchronous" if url.startswith("sqlite") else "SHOW synchronous_commit").scalar())
    datasets = [dataset_records(i) for i in range(first, first + count)]
    while (wait := start_at - time.time()) > 0:
        time.sleep(min(wait, 0.05))
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    started = time.time()
    slowest = 0.0
    for records in datasets:
        mark = time.perf_counter()
        with session_scope(engine) as session:
            for name, values in records.items():
                metadata_id = upsert_metadata(session, values)
                if "corrtag" in name:
                    upsert_output(session, metadata_id, individual_path=values["path"],
                                  individual_filename=f"{values['rootname']}_curve.fits")
        slowest = max(slowest, time.perf_counter() - mark)
    ended = time.time()
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime
    return {"start": started, "end": ended, "datasets": count, "slowest_s": slowest,
            "cpu_s": cpu, "durability": durability}


def run_writers(url: str, first: int, count: int, writers: int) -> dict[str, Any]:
    """``writers`` child processes writing ``count`` datasets each, at once."""
    start_at = time.time() + 4.0  # imports and the schema check fit in this
    children = [subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--child", "catalogue", "--url", url,
         "--first", str(first + w * count), "--count", str(count), "--start-at", str(start_at)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for w in range(writers)]
    results = []
    for child in children:
        out, err = child.communicate()
        if child.returncode:
            raise RuntimeError(f"catalogue writer failed:\n{err[-3000:]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    span = max(r["end"] for r in results) - min(r["start"] for r in results)
    datasets = sum(r["datasets"] for r in results)
    return {"datasets": datasets, "seconds": round(span, 3), "per_s": round(datasets / span, 1),
            "ms_per_dataset_per_writer": round(1000 * span * writers / datasets, 2),
            "slowest_transaction_s": round(max(r["slowest_s"] for r in results), 3),
            "writer_cpu_ms_per_dataset": round(1000 * sum(r["cpu_s"] for r in results) / datasets, 2),
            "durability": results[0]["durability"]}


def start_postgres(scratch: Path) -> Any:
    """A throwaway PostgreSQL cluster as ``tests/pgcluster.py`` starts it, but durable:
    fsync and synchronous commit on (the tests' cluster runs with fsync off)."""
    from pgcluster import start_cluster

    scratch.chmod(0o755)  # the server's account must reach its folder
    return start_cluster(durable=True, folder=scratch)


def measure_catalogue(args: argparse.Namespace, scratch: Path) -> list[dict[str, Any]]:
    from hstlc.catalogue.engine import create_catalogue_engine
    from hstlc.catalogue.migrate import upgrade

    rows: list[dict[str, Any]] = []
    backends: list[tuple[str, Any]] = [("sqlite", None)]
    cluster = None
    try:
        try:
            cluster = start_postgres(scratch)
            backends.append(("postgresql", cluster))
        except (FileNotFoundError, KeyError, RuntimeError) as error:
            reason = f"skipped: {error}".splitlines()[0]
            print(f"catalogue postgresql: {reason}", flush=True)
            rows.append({"group": "catalogue", "name": "postgresql", "skipped": reason})
        for backend, server in backends:
            if server is None:
                url = f"sqlite:///{scratch / 'catalogue.db'}"
                detail = ("WAL, local disk, PRAGMA synchronous={durability}; "
                          "writer CPU {writer_cpu_ms_per_dataset} ms/dataset")
            else:
                url = server.create_database("bench")
                detail = ("PostgreSQL 15 local, fsync on, synchronous_commit={durability}; "
                          "writer CPU {writer_cpu_ms_per_dataset} ms/dataset")
            engine = create_catalogue_engine(url)
            upgrade(engine)
            engine.dispose()
            first = 0
            for writers in args.writers:
                result = run_writers(url, first, args.datasets, writers)
                first += writers * args.datasets
                row = {"group": "catalogue", "name": f"{backend}, {writers} writer{'s' * (writers > 1)}",
                       "backend": backend, "writers": writers, "value": result["per_s"],
                       "unit": "datasets/s", "detail": detail.format(**result), **result}
                rows.append(row)
                print(show(row), flush=True)
    finally:
        if cluster is not None:
            cluster.stop()
    return rows


# -- the Prefect server ----------------------------------------------------------------------


def start_prefect_server(home: Path, database_url: str | None) -> tuple[subprocess.Popen[bytes], str, float]:
    """``prefect server start`` on a free loopback port (SQLite in ``home``, or
    ``database_url``); wait for its health."""
    import httpx
    from pgcluster import free_port

    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "DO_NOT_TRACK": "1", "PREFECT_UI_ENABLED": "false",
           "PREFECT_SERVER_LOGGING_LEVEL": "WARNING"}
    env.pop("PREFECT_API_URL", None)
    if database_url:
        env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = database_url
    home.mkdir(parents=True, exist_ok=True)
    log = open(home / "server.log", "wb")  # noqa: SIM115 (closed with the process)
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "prefect"), "server", "start", "--host", "127.0.0.1",
         "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    api = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prefect server exited: {(home / 'server.log').read_text()[-2000:]}")
        try:
            if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                return process, api, time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    stop_process(process)
    raise RuntimeError("prefect server not healthy after 120 s")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    import signal

    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def poll_count(api: str, kind: str, body: dict[str, Any], expected: int, started: float,
               settle_s: float) -> dict[str, Any]:
    """Poll ``/{kind}/count`` until ``expected`` or no growth for ``settle_s``."""
    import httpx

    last, last_growth, trace = -1, time.perf_counter(), []
    while True:
        count = int(httpx.post(f"{api}/{kind}/count", json=body, timeout=30).json())
        now = time.perf_counter()
        if count != last:
            last, last_growth = count, now
            trace.append((round(now - started, 2), count))
        if count >= expected or now - last_growth > settle_s:
            return {"recorded": count, "recorded_by_s": round(last_growth - started, 2), "trace": trace}


def steady_rate(trace: list[tuple[float, int]]) -> float:
    """Records per second between 10 % and 90 % of the final count (the backlog's drain)."""
    final = trace[-1][1]
    inner = [(t, n) for t, n in trace if 0.1 * final <= n <= 0.9 * final]
    if len(inner) < 2 or inner[-1][0] == inner[0][0]:
        return float("nan")
    return (inner[-1][1] - inner[0][1]) / (inner[-1][0] - inner[0][0])


def prefect_runs(api: str, task_runs: int, flow_runs: int, settle_s: float) -> list[dict[str, Any]]:
    """The child (``PREFECT_API_URL`` set): a flow of ``task_runs`` mapped trivial tasks, then
    ``flow_runs`` trivial flows in a loop; what the server at ``api`` records of them."""
    from prefect import flow, task
    from prefect.futures import wait
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    @task
    def trivial(value: int) -> int:
        return value

    @flow(name="bench-mapped")
    def mapped(count: int) -> int:
        futures = trivial.map(range(count))
        wait(futures)
        return sum(f.result() for f in futures)

    @flow(name="bench-trivial")
    def trivial_flow(value: int) -> int:
        return value

    completed = {"state": {"type": {"any_": ["COMPLETED"]}}}
    rows: list[dict[str, Any]] = []
    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        trivial_flow(0)  # the client's first contact (imports, the flow's record), off the clock
        started = time.perf_counter()
        state = mapped(task_runs, return_state=True)
        client_s = time.perf_counter() - started
        flow_run_id = str(state.state_details.flow_run_id)
        polled = poll_count(api, "task_runs", {"flow_runs": {"id": {"any_": [flow_run_id]}},
                                               "task_runs": completed}, task_runs, started, settle_s)
        steady = steady_rate(polled["trace"])
        rate = polled["recorded"] / polled["recorded_by_s"]
        rows.append({"name": "task runs recorded", "value": round(rate, 1), "unit": "task runs/s",
                     "runs": task_runs, "client_s": round(client_s, 2),
                     "steady_per_s": round(steady, 1), **polled,
                     "detail": f"{polled['recorded']} of {task_runs} mapped tasks COMPLETED by "
                               f"{polled['recorded_by_s']} s from the flow's start (it returned at "
                               f"{client_s:.1f} s); {steady:.0f}/s while draining"})
        started = time.perf_counter()
        for value in range(flow_runs):
            trivial_flow(value)
        client_s = time.perf_counter() - started
        polled = poll_count(api, "flow_runs", {"flows": {"name": {"any_": ["bench-trivial"]}},
                                               "flow_runs": completed}, flow_runs + 1, started, settle_s)
        recorded = polled["recorded"] - 1  # the warm-up run
        rate = recorded / max(polled["recorded_by_s"], client_s)
        rows.append({"name": "flow runs recorded", "value": round(rate, 1), "unit": "flow runs/s",
                     "runs": flow_runs, "client_s": round(client_s, 2), **polled,
                     "detail": f"{recorded} of {flow_runs} flows one after another (one client), "
                               f"heartbeat off; the loop took {client_s:.1f} s"})
    return rows


def measure_prefect(args: argparse.Namespace, scratch: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for database in args.prefect_databases:
        cluster = None
        try:
            url = None
            if database == "postgresql":
                try:
                    cluster = start_postgres(scratch)
                except (FileNotFoundError, KeyError, RuntimeError) as error:
                    reason = f"skipped: {error}".splitlines()[0]
                    rows.append({"group": "prefect", "name": "server on postgresql", "skipped": reason})
                    print(show(rows[-1]), flush=True)
                    continue
                url = cluster.create_database("prefect").replace("+psycopg2", "+asyncpg")
            process, api, start_s = start_prefect_server(scratch / f"prefect-{database}", url)
            try:
                env = {**os.environ, "PREFECT_API_URL": api,
                       "PREFECT_HOME": str(scratch / f"prefect-client-{database}")}
                done = subprocess.run(
                    [sys.executable, str(Path(__file__).resolve()), "--child", "prefect", "--url", api,
                     "--task-runs", str(args.task_runs), "--flow-runs", str(args.flow_runs),
                     "--settle", str(args.settle)], env=env, capture_output=True, text=True)
                if done.returncode:
                    raise RuntimeError(f"prefect runs failed:\n{done.stderr[-3000:]}")
                measured = json.loads(done.stdout.strip().splitlines()[-1])
            finally:
                stop_process(process)
            measured.append({"name": "server start (fresh database)", "value": round(start_s, 1),
                             "unit": "s", "detail": "until /api/health; UI off"})
            for row in measured:
                trace = row.get("trace")
                if trace:  # keep about 40 points of the curve
                    row["trace"] = trace[:: max(1, len(trace) // 40)] + trace[-1:]
                rows.append({"group": "prefect", **row, "database": database,
                             "name": f"{row['name']}, server on {database}"})
                print(show(rows[-1]), flush=True)
        finally:
            if cluster is not None:
                cluster.stop()
    return rows


# -- the file system -------------------------------------------------------------------------


def device_of(folder: Path) -> str:
    """The mount (device, mount point, type) holding ``folder``."""
    best = ("?", "", "?")
    for line in Path("/proc/mounts").read_text().splitlines():
        device, point, kind = line.split()[:3]
        if str(folder.resolve()).startswith(point) and len(point) >= len(best[1]):
            best = (device, point, kind)
    return f"{best[0]} on {best[1]} ({best[2]})"


def read_file(path: Path) -> float:
    started = time.perf_counter()
    with open(path, "rb", buffering=0) as handle:
        while handle.read(BLOCK):
            pass
    return time.perf_counter() - started


def drop_file_cache(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def drop_all_caches() -> str | None:
    """``echo 3 > /proc/sys/vm/drop_caches`` after a sync; the reason when it fails."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return None
    except OSError as error:
        return str(error)


def measure_filesystem(args: argparse.Namespace, scratch: Path) -> list[dict[str, Any]]:
    folder = Path(tempfile.mkdtemp(prefix="hstlc-bench-fs-", dir=args.dir))
    where = device_of(folder)
    rows: list[dict[str, Any]] = []
    payload = os.urandom(BLOCK)

    def add(name: str, value: float, unit: str, detail: str, **extra: Any) -> None:
        rows.append({"group": "filesystem", "name": name, "value": round(value, 1), "unit": unit,
                     "detail": f"{detail}; {where}", **extra})
        print(show(rows[-1]), flush=True)

    try:
        for megabytes in args.big_mb:
            size = megabytes << 20
            path = folder / f"big-{megabytes}.fits"
            writes, warm, cold, dropped = [], [], [], []
            drop_error = None
            for _ in range(args.repeat):
                path.unlink(missing_ok=True)
                started = time.perf_counter()
                with open(path, "wb", buffering=0) as handle:
                    left = size
                    while left:
                        left -= handle.write(memoryview(payload)[: min(left, BLOCK)])
                    os.fsync(handle.fileno())
                writes.append(time.perf_counter() - started)
                warm.append(read_file(path))
                drop_file_cache(path)
                cold.append(read_file(path))
                if args.drop_caches and drop_error is None:
                    drop_error = drop_all_caches()
                    if drop_error is None:
                        dropped.append(read_file(path))
            mb = size / 1e6
            add(f"write + fsync, {megabytes} MB file", mb / statistics.median(writes), "MB/s",
                f"16 MB blocks, median of {args.repeat}", seconds=writes)
            add(f"read warm (page cache), {megabytes} MB", mb / statistics.median(warm), "MB/s",
                f"16 MB blocks, median of {args.repeat}", seconds=warm)
            add(f"read cold (fadvise DONTNEED), {megabytes} MB", mb / statistics.median(cold), "MB/s",
                f"the file's pages dropped, median of {args.repeat}", seconds=cold)
            if dropped:
                add(f"read cold (drop_caches), {megabytes} MB", mb / statistics.median(dropped), "MB/s",
                    f"echo 3 > /proc/sys/vm/drop_caches, median of {len(dropped)}", seconds=dropped)
            elif args.drop_caches:
                rows.append({"group": "filesystem", "name": "read cold (drop_caches)",
                             "skipped": f"drop_caches failed: {drop_error}"})
            path.unlink()
        small = os.urandom(args.small_kb << 10)
        made = folder / "outputs"
        moved = folder / "filesystem"
        made.mkdir()
        moved.mkdir()
        started = time.perf_counter()
        for index in range(args.small_count):
            temporary = made / f".curve-{index}.tmp"
            with open(temporary, "wb") as handle:
                handle.write(small)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, made / f"lz{index:06d}q_curve.fits")
        seconds = time.perf_counter() - started
        add(f"write + fsync + rename, {args.small_kb} KB files", args.small_count / seconds, "files/s",
            f"{args.small_count} files as the atomic writer writes them "
            f"({args.small_count * len(small) / 1e6 / seconds:.1f} MB/s)", seconds=seconds)
        from hstlc.fs import move_file

        started = time.perf_counter()
        for index in range(args.small_count):
            name = f"lz{index:06d}q_curve.fits"
            move_file(made / name, moved / name)
        seconds = time.perf_counter() - started
        add(f"move (hstlc.fs.move_file), {args.small_kb} KB files", args.small_count / seconds, "files/s",
            f"{args.small_count} renames within one file system", seconds=seconds)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return rows


# -- the whole -------------------------------------------------------------------------------


def show(row: dict[str, Any]) -> str:
    if "skipped" in row:
        return f"{row['group']:10} {row['name']:52} {row['skipped']}"
    return (f"{row['group']:10} {row['name']:52} {row['value']:>10,.1f} {row['unit']:12} "
            f"{row.get('detail', '')}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=GROUPS, default=list(GROUPS))
    parser.add_argument("--datasets", type=int, default=1000, help="datasets per catalogue writer")
    parser.add_argument("--writers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--task-runs", type=int, default=600)
    parser.add_argument("--prefect-databases", nargs="+", choices=("sqlite", "postgresql"),
                        default=["sqlite", "postgresql"])
    parser.add_argument("--flow-runs", type=int, default=60)
    parser.add_argument("--settle", type=float, default=10.0,
                        help="seconds without a new record before the count is final")
    parser.add_argument("--big-mb", type=int, nargs="+", default=[20, 200])
    parser.add_argument("--small-kb", type=int, default=100)
    parser.add_argument("--small-count", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--drop-caches", action="store_true",
                        help="also read after emptying the whole machine's page cache (root)")
    parser.add_argument("--dir", type=Path, default=None, help="folder of the file-system rows")
    parser.add_argument("--out", type=Path, default=RESULTS / "scaling.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--first", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "catalogue":
        print(json.dumps(write_datasets(args.url, args.first, args.count, args.start_at)))
        return 0
    if args.child == "prefect":
        print(json.dumps(prefect_runs(args.url, args.task_runs, args.flow_runs, args.settle)))
        return 0

    scratch = Path(tempfile.mkdtemp(prefix="hstlc-bench-scaling-"))
    load_before = os.getloadavg()
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    try:
        for group, measure in (("catalogue", measure_catalogue), ("prefect", measure_prefect),
                               ("filesystem", measure_filesystem)):
            if group in args.only:
                rows += measure(args, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    wall = time.perf_counter() - started
    load = os.getloadavg()
    print(f"\n{'group':10} {'measurement':52} {'value':>10} {'unit':12}")
    for row in rows:
        print(show(row) if "skipped" in row else
              f"{row['group']:10} {row['name']:52} {row['value']:>10,.1f} {row['unit']:12}")
    print(f"\n{wall:.0f} s; {os.cpu_count()} CPUs; load average {load_before[0]:.2f} at the start, "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end")
    run = {"date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
           "command": " ".join(["python bench/scaling.py", *(argv if argv is not None else sys.argv[1:])]),
           "wall_s": round(wall, 1), "python": platform.python_version(), "cpus": os.cpu_count(),
           "load_average_start": load_before, "load_average_end": load}
    # a run of some groups keeps the other groups' rows of the file (each row names its run)
    kept = json.loads(args.out.read_text())["rows"] if args.out.exists() else []
    rows = [r for r in kept if r["group"] not in args.only] + [{**r, "run": run} for r in rows]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": sorted(rows, key=lambda r: GROUPS.index(r["group"]))},
                                   indent=2))
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
