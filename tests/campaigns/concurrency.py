"""The concurrency campaign: runs started at once on one home; a database lost mid-run.

* ``pairs``: two ``hstlc_pipeline`` started at the same moment on one home (fresh, or
  with a catalogue already): exactly one runs; the other prints why on the terminal and
  exits with ``EXIT_BUSY`` (3), having done nothing; the home is then whole.
* ``restart``: on PostgreSQL, the server is restarted (``pg_ctl restart``) while a run
  records its datasets; the run retries and ends with every dataset ingested.

    python -m tests.campaigns.concurrency [--pairs 10] [--restarts 3] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hstlc.cli import EXIT_BUSY, EXIT_OK

from . import Home, check_home, make_home, start_run, wait_processes_gone

RUN_TIMEOUT_S = 300.0
#: The one line the losing run prints (its start).
BUSY_LINE = "hstlc: another hstlc run is in progress in"


@dataclass
class Outcome:
    """One pair of simultaneous runs, or one run across a database restart."""

    kind: str
    database: str
    codes: list[int]
    busy_lines: list[str]
    problems: list[str] = field(default_factory=list)
    retries: int = 0  # task runs retried after a transient failure


def _finish(process: subprocess.Popen[bytes]) -> int:
    try:
        return process.wait(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def _lines(log: Path, start: str) -> list[str]:
    return [line for line in log.read_text(errors="replace").splitlines() if line.startswith(start)]


def simultaneous_pair(home: Home, workdir: Path, label: str, database: str) -> Outcome:
    """Start two runs on ``home`` at once; check one ran and the other said why."""
    logs = [workdir / f"{label}-{n}.out" for n in (1, 2)]
    barrier = threading.Barrier(2)
    processes: list[subprocess.Popen[bytes] | None] = [None, None]

    def start(n: int) -> None:
        barrier.wait()
        processes[n] = start_run(home, logs[n])

    threads = [threading.Thread(target=start, args=(n,)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = [_finish(p) for p in processes if p is not None]
    wait_processes_gone(home)
    busy = [line for log in logs for line in _lines(log, BUSY_LINE)]
    outcome = Outcome("pair", database, codes, busy)
    if sorted(codes) != [EXIT_OK, EXIT_BUSY]:
        outcome.problems.append(f"exit codes {codes}, expected one {EXIT_OK} and one {EXIT_BUSY}")
    if len(busy) != 1 or str(home.root) not in busy[0] or "run this command again" not in busy[0]:
        outcome.problems.append(f"the losing run's terminal line: {busy}")
    outcome.problems += check_home(home, final=True).problems
    return outcome


def run_across_restart(home: Home, workdir: Path, restart: Callable[[], None], label: str) -> Outcome:
    """Restart the database once the run has begun its datasets; the run must recover."""
    log = workdir / f"{label}.out"
    process = start_run(home, log)
    started = time.monotonic()
    while process.poll() is None and time.monotonic() - started < RUN_TIMEOUT_S:
        if "Task run 'check-" in log.read_text(errors="replace"):
            restart()
            break
        time.sleep(0.02)
    code = _finish(process)
    wait_processes_gone(home)
    retried = [line for line in log.read_text(errors="replace").splitlines()
               if "TransientError" in line and "Retry" in line]
    outcome = Outcome("restart", "postgresql", [code], [], retries=len(retried))
    if not retried:
        outcome.problems.append("the restart did not reach the run: no task was retried")
    if code != EXIT_OK:
        outcome.problems.append(f"the run across a database restart exited {code}; see {log}")
    outcome.problems += check_home(home, final=True).problems
    return outcome


#: How long the database stays down in a restart: longer than the run takes to reach its
#: next catalogue read or write (the datasets' checks and records are a few hundred ms
#: apart), so that the run surely meets the outage; an instant restart could fall between
#: two of them, and the pool's pre-ping would then hide it (the test would prove nothing).
OUTAGE_S = 1.5


def restart_postgres(cluster) -> None:  # type: ignore[no-untyped-def]
    """``pg_ctl stop -m fast`` (every connection of the run is dropped), :data:`OUTAGE_S`
    seconds down, then started again as it first was."""
    cluster._run("pg_ctl", "-D", str(cluster.datadir), "-m", "fast", "-w", "-t", "60", "stop")
    time.sleep(OUTAGE_S)
    cluster.start_server()


def _create_schema(home: Home) -> None:
    from hstlc.catalogue.engine import create_catalogue_engine
    from hstlc.catalogue.migrate import upgrade

    engine = create_catalogue_engine(home.database_url)
    upgrade(engine)
    engine.dispose()


@dataclass
class ConcurrencyReport:
    outcomes: list[Outcome] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        counts = Counter((o.kind, o.database, tuple(sorted(o.codes))) for o in self.outcomes)
        return {"runs": sum(len(o.codes) for o in self.outcomes),
                "retries_after_restarts": [o.retries for o in self.outcomes if o.kind == "restart"],
                "outcomes": {f"{k}/{d} exit codes {list(c)}": n for (k, d, c), n in counts.items()},
                "problems": [p for o in self.outcomes for p in o.problems]}


def run_campaign(workdir: Path, *, pairs: int = 4, restarts: int = 1, cluster=None,  # type: ignore[no-untyped-def]
                 seed: int = 7, progress=print) -> ConcurrencyReport:
    """``pairs`` pairs per database (half on fresh homes), ``restarts`` PostgreSQL restarts."""
    report = ConcurrencyReport()
    databases = ["sqlite"] + (["postgresql"] if cluster is not None else [])
    counter = 0
    for database in databases:
        for n in range(pairs):
            counter += 1
            url = (cluster.create_database(f"hstlc_pair_{seed}_{counter}")
                   if database == "postgresql" else None)
            home = make_home(workdir / f"pair{counter:02d}", seed=seed * 100 + counter, database_url=url)
            if n % 2:  # a home whose catalogue exists already
                _create_schema(home)
            outcome = simultaneous_pair(home, workdir, f"pair{counter:02d}", database)
            report.outcomes.append(outcome)
            progress(f"pair {counter} ({database}, {'existing' if n % 2 else 'fresh'} home): "
                     f"codes {outcome.codes}; {outcome.busy_lines}; problems {outcome.problems or 'none'}")
    for n in range(restarts if cluster is not None else 0):
        counter += 1
        url = cluster.create_database(f"hstlc_restart_{seed}_{counter}")
        home = make_home(workdir / f"restart{counter:02d}", seed=seed * 100 + counter, database_url=url)
        outcome = run_across_restart(home, workdir, lambda: restart_postgres(cluster),
                                     f"restart{counter:02d}")
        report.outcomes.append(outcome)
        progress(f"restart {n + 1}: code {outcome.codes}; problems {outcome.problems or 'none'}")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10, help="pairs per database")
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="hstlc-concurrency-"))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from pgcluster import start_cluster

    try:
        cluster = start_cluster()
    except (FileNotFoundError, RuntimeError) as error:
        print(f"no PostgreSQL ({error}); SQLite only")
        cluster = None
    try:
        report = run_campaign(workdir, pairs=args.pairs, restarts=args.restarts, cluster=cluster)
    finally:
        if cluster is not None:
            cluster.stop()
    print(json.dumps(report.summary(), indent=2))
    return 1 if report.summary()["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
