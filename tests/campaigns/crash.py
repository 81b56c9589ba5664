"""The crash campaign: SIGKILL ``hstlc_pipeline`` at varied moments, re-run, check.

Each home gets a COS FUV pair, a COS NUV, a STIS tag and a bad file.  A run is killed
when a chosen moment comes (seeded): a given step of some dataset has just begun (the
step before it is logged finished), a temporary product appears, the composites begin,
or at a random time during start-up; then a little random delay.  After each kill the
home is checked (:func:`~campaigns.check_home`) and every process of the home must end;
after ``kills_per_home`` kills the run goes to completion and the home is checked
strictly.  The step each kill interrupted is read from the run's output (which task
runs of which dataset had finished).

    python -m tests.campaigns.crash --kills 50 [--seed 1] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import Home, check_home, make_home, start_run, wait_processes_gone

STEPS = ("check", "convert", "lightcurve", "quicklook", "record", "move")
#: Moments to kill at: a step about to run, a product being written, composites, start-up.
MOMENTS = (*STEPS, "temporary", "composite", "startup")
FINISHED = re.compile(r"Task run '(\w+)-(\w+)' - Finished")
RUN_TIMEOUT_S = 300.0


@dataclass
class Kill:
    """One kill: the moment aimed at, the step(s) found interrupted, the check after it."""

    home: int
    aimed: str
    interrupted: str
    seconds: float
    temporary_left: int
    pending_moves: int
    processes_gone_s: float | None
    problems: list[str]


@dataclass
class CrashReport:
    """The campaign's figures."""

    kills: list[Kill] = field(default_factory=list)
    homes: int = 0
    runs: int = 0
    completed_runs: int = 0
    inputs_checked: int = 0
    rows_checked: int = 0
    problems: list[str] = field(default_factory=list)

    def by_step(self) -> dict[str, int]:
        return dict(Counter(k.interrupted for k in self.kills).most_common())

    def summary(self) -> dict[str, object]:
        return {"kills": len(self.kills), "by_step_interrupted": self.by_step(),
                "by_moment_aimed": dict(Counter(k.aimed for k in self.kills)),
                "homes": self.homes, "runs": self.runs, "completed_runs": self.completed_runs,
                "inputs_checked": self.inputs_checked, "rows_checked": self.rows_checked,
                "temporary_files_left_by_kills": sum(k.temporary_left for k in self.kills),
                "slowest_process_end_s": max((k.processes_gone_s or 0.0 for k in self.kills),
                                             default=0.0),
                "problems": self.problems}


def interrupted_step(output: str) -> str:
    """The step(s) running when the run died, read from its task-run lines.

    For each dataset with a finished step, the next step is the one it was in (unless
    it had finished them all); no task finished: ``startup`` (or ``plan`` once the
    flow began); the composite subflow begun: ``composite``.
    """
    if "Beginning subflow run 'composite" in output:
        return "composite"
    done: dict[str, set[str]] = {}
    for step, rootname in FINISHED.findall(output):
        if step in STEPS:
            done.setdefault(rootname, set()).add(step)
    running = sorted({STEPS[max(STEPS.index(s) for s in steps) + 1]
                      for steps in done.values() if "move" not in steps},
                     key=STEPS.index)
    if running:
        return "+".join(running)
    if done:
        return "between steps"
    return "plan" if "Beginning flow run" in output else "startup"


def _moment_came(aimed: str, output: str, home: Home, started: float, startup_s: float) -> bool:
    if aimed == "startup":
        return time.monotonic() - started >= startup_s
    if aimed == "composite":
        return "Beginning subflow run 'composite" in output
    if aimed == "temporary":
        return any(p.suffix == ".tmp" and "prefect" not in p.parts
                   for p in home.root.rglob(".*.tmp"))
    if aimed == "check":
        return "Task run 'plan-ingest" in output and "Finished" in output.split("plan-ingest", 1)[1]
    before = STEPS[STEPS.index(aimed) - 1]
    return any(step == before for step, _ in FINISHED.findall(output))


def kill_at(home: Home, aimed: str, rng: random.Random, log: Path) -> tuple[str, float, bool]:
    """Start a run, SIGKILL it at the ``aimed`` moment; the step interrupted, when, and
    whether the run had already ended by itself."""
    offset = log.stat().st_size if log.exists() else 0
    process = start_run(home, log)
    started = time.monotonic()
    startup_s = rng.uniform(0.5, 12.0)
    delay_s = rng.uniform(0.0, 0.15)
    while process.poll() is None and time.monotonic() - started < RUN_TIMEOUT_S:
        output = log.read_bytes()[offset:].decode(errors="replace")
        if _moment_came(aimed, output, home, started, startup_s):
            time.sleep(delay_s)
            break
        time.sleep(0.01)
    ended_alone = process.poll() is not None
    if not ended_alone:
        process.send_signal(signal.SIGKILL)
    process.wait()
    output = log.read_bytes()[offset:].decode(errors="replace")
    step = "none (run had ended)" if ended_alone else interrupted_step(output)
    return step, time.monotonic() - started, ended_alone


def complete(home: Home, log: Path, report: CrashReport) -> None:
    """Run to the end; the run must succeed and leave the home whole."""
    process = start_run(home, log)
    try:
        code = process.wait(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        code = process.wait()
    report.runs += 1
    report.completed_runs += code == 0
    if code != 0:
        report.problems.append(f"{home.root}: the completing run exited {code}; see {log}")
    wait_processes_gone(home)
    check = check_home(home, final=True)
    report.inputs_checked += check.inputs
    report.rows_checked += check.rows
    report.problems += [f"{home.root} (end): {p}" for p in check.problems]


def run_campaign(kills: int, workdir: Path, *, seed: int = 1, kills_per_home: int = 5,
                 progress=print) -> CrashReport:  # type: ignore[no-untyped-def]
    """Kill ``hstlc_pipeline`` ``kills`` times over fresh homes; return the figures."""
    rng = random.Random(seed)
    report = CrashReport()
    moments = list(MOMENTS)
    while len(report.kills) < kills:
        index = report.homes
        home = make_home(workdir / f"home{index:02d}", seed=seed * 1000 + index)
        report.homes += 1
        log = workdir / f"home{index:02d}.out"
        for _ in range(min(kills_per_home, kills - len(report.kills))):
            if not moments:
                moments = list(MOMENTS)
            aimed = moments.pop(rng.randrange(len(moments)))
            step, seconds, ended_alone = kill_at(home, aimed, rng, log)
            report.runs += 1
            gone_s = wait_processes_gone(home)
            check = check_home(home, final=False)
            report.inputs_checked += check.inputs
            report.rows_checked += check.rows
            problems = list(check.problems)
            if gone_s is None:
                problems.append("a process of the killed run was still running")
            if ended_alone:
                report.completed_runs += 1
                continue  # not a kill: the run was quicker than the moment
            kill = Kill(home=index, aimed=aimed, interrupted=step, seconds=round(seconds, 2),
                        temporary_left=len(check.temporary), pending_moves=check.pending_moves,
                        processes_gone_s=None if gone_s is None else round(gone_s, 2),
                        problems=problems)
            report.kills.append(kill)
            report.problems += [f"{home.root} kill {len(report.kills)}: {p}" for p in problems]
            progress(f"kill {len(report.kills)}/{kills}: aimed {aimed}, interrupted {step} "
                     f"after {seconds:.1f} s; {len(check.temporary)} temporary, "
                     f"{check.pending_moves} pending moves, problems {problems or 'none'}")
        complete(home, log, report)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kills-per-home", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="hstlc-crash-"))
    started = time.monotonic()
    report = run_campaign(args.kills, workdir, seed=args.seed, kills_per_home=args.kills_per_home)
    summary = {**report.summary(), "minutes": round((time.monotonic() - started) / 60, 1),
               "workdir": str(workdir)}
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps({**summary, "each": [asdict(k) for k in report.kills]},
                                        indent=2))
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
