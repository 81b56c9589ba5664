"""Campaigns that run the real ``hstlc_pipeline`` command and check what it leaves behind.

Shared here: a home filled with a mix of synthetic datasets, the command started as a
child process, and :func:`check_home`, the integrity check run after every kill and
every run: each input exactly once (``ingest/``, ``filesystem/<TARGNAME>/`` or
``bad_data/``) with its bytes unchanged, each catalogue row pointing at a file that
exists and opens, no temporary file, and no process of the home left running.

``python -m tests.campaigns.crash --kills 50`` and ``python -m tests.campaigns.concurrency``
run them in full; the tests import them with small counts.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from astropy.io import fits
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from hstlc import testing
from hstlc.catalogue.models import BadData, Metadata, Outputs
from hstlc.processes import processes_carrying

#: Seconds the processes of a killed run may take to end (the watchdog's grace + margin).
PROCESS_GRACE_S = 20.0
TEMPORARY_SUFFIX = ".tmp"


@dataclass(frozen=True)
class Home:
    """An hstlc home under test: its folder, its catalogue URL and its inputs' sha256."""

    root: Path
    database_url: str
    inputs: Mapping[str, str]

    def env(self) -> dict[str, str]:
        """The environment of a command run on this home (no developer setting leaks in)."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("HSTLC_", "PREFECT_")) or k == "HSTLC_REAL_DATA"}
        env.update(HSTLC_HOME_DIR=str(self.root), HSTLC_DB_CONNECTION_STRING=self.database_url,
                   MPLBACKEND="Agg", PYTHONUNBUFFERED="1")
        return env


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_home(root: Path, seed: int, database_url: str | None = None) -> Home:
    """A home whose ``ingest/`` holds a COS FUV pair, a COS NUV, a STIS tag and a bad file.

    Rootnames and seeds differ with ``seed`` so that homes are not copies of each other.
    """
    ingest = root / "ingest"
    ingest.mkdir(parents=True, exist_ok=True)
    tag = f"{seed % 100:02d}"
    made = [
        testing.build_cos_fuv_pair(ingest, rootname=f"lb{tag}01aaq", seed=seed, exptime=600.0,
                                   targname="CRASH-FUV"),
        testing.build_cos_nuv(ingest, rootname=f"lb{tag}02bbq", seed=seed + 1, exptime=400.0,
                              targname="CRASH-NUV"),
        testing.build_stis_tag(ingest, rootname=f"o5{tag}03ccq", seed=seed + 2, exptime=400.0,
                               targname="CRASH-STIS"),
    ]
    paths = [Path(p) for result in made for key, p in result.items() if key != "truth" and p]
    paths.append(testing.build_bad(ingest, "bad_expflag", rootname=f"lb{tag}04ddq", seed=seed))
    url = database_url or f"sqlite:///{root / 'hstlc.db'}"
    return Home(root=root, database_url=url, inputs={p.name: sha256(p) for p in paths})


def start_run(home: Home, log: Path, *args: str) -> subprocess.Popen[bytes]:
    """Start ``hstlc_pipeline`` on ``home``; its stdout and stderr go to ``log``."""
    command = Path(sys.executable).parent / "hstlc_pipeline"
    with open(log, "ab") as out:
        return subprocess.Popen([str(command), *args], cwd=home.root.parent, env=home.env(),
                                stdout=out, stderr=subprocess.STDOUT)


def processes_of(home: Home) -> list[int]:
    """Live processes whose environment names this home (the run, its server, its watchdog)."""
    return processes_carrying("HSTLC_HOME_DIR", str(home.root))


def wait_processes_gone(home: Home, timeout_s: float = PROCESS_GRACE_S) -> float | None:
    """Seconds until no process of ``home`` is left, or ``None`` (they were then killed)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if not processes_of(home):
            return time.monotonic() - started
        time.sleep(0.1)
    kill_processes_of(home)
    return None


def kill_processes_of(home: Home) -> None:
    """SIGKILL what the campaign started on ``home`` and is still running."""
    for pid in processes_of(home):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@dataclass
class HomeCheck:
    """What :func:`check_home` found; ``problems`` empty when every rule holds."""

    inputs: int = 0
    rows: int = 0
    pending_moves: int = 0
    temporary: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _input_places(home: Home) -> dict[str, list[Path]]:
    """Where each input's content is: ingest/, filesystem/*/, bad_data/ (any name variant)."""
    places: dict[str, list[Path]] = {name: [] for name in home.inputs}
    roots = [home.root / "ingest", home.root / "filesystem", home.root / "bad_data"]
    for root in roots:
        for path in (p for p in root.rglob("*") if p.is_file()) if root.is_dir() else ():
            name = next((n for n in home.inputs if path.name == n or path.name.startswith(n + ".")), None)
            if name is not None and not path.name.endswith(TEMPORARY_SUFFIX):
                places[name].append(path)
    return places


def _opens(path: Path) -> str | None:
    """``None`` when astropy opens the file and reads every header; else why not."""
    try:
        with fits.open(path) as hdus:
            [hdu.header for hdu in hdus]
    except Exception as error:  # any failure to open is a finding, reported with its cause
        return f"{type(error).__name__}: {error}"
    return None


def check_rows(home: Home, check: HomeCheck, *, final: bool) -> None:
    """Every catalogue row points at a file that exists and opens.

    Between ``record`` and ``move`` (a run killed there) a metadata or bad_data row may
    name a destination its input has not reached: allowed only while the input is still
    in ``ingest/`` with the recorded content, and never at the end of a run.
    """
    engine = create_engine(home.database_url)
    try:
        with Session(engine) as session:
            metadata = session.scalars(select(Metadata)).all()
            outputs = session.scalars(select(Outputs)).all()
            bad = session.scalars(select(BadData)).all()
            targets = [(Path(r.path) / r.filename, r.sha256, r.filename) for r in metadata]
            targets += [(Path(r.path), r.sha256, r.filename) for r in bad if r.path]
            products = [Path(r.individual_path) / r.individual_filename for r in outputs
                        if r.individual_path and r.individual_filename]
            products += [Path(r.composite_path) / r.composite_filename for r in outputs
                         if r.composite_path and r.composite_filename]
    finally:
        engine.dispose()
    check.rows = len(targets) + len(products)
    for path, digest, name in targets:
        waiting = home.root / "ingest" / name
        if not path.is_file() and not final and waiting.is_file() and sha256(waiting) == digest:
            check.pending_moves += 1
            continue
        _check_file(path, check, digest)
    for path in sorted(set(products)):
        _check_file(path, check, None)


def _check_file(path: Path, check: HomeCheck, digest: str | None) -> None:
    if not path.is_file():
        check.problems.append(f"catalogue row names {path}: no such file")
    elif (why := _opens(path)) is not None:
        check.problems.append(f"catalogue row names {path}: does not open ({why})")
    elif digest is not None and sha256(path) != digest:
        check.problems.append(f"catalogue row names {path}: content differs from its sha256")


def check_home(home: Home, *, final: bool) -> HomeCheck:
    """Check every rule on ``home`` (``final``: after a completed run, nothing pending).

    Temporary files are listed; at the end of a completed run any is a problem (after a
    kill they are the killed run's debris, which the next run removes).
    """
    check = HomeCheck()
    for name, paths in _input_places(home).items():
        check.inputs += 1
        if len(paths) != 1:
            check.problems.append(f"input {name} found {len(paths)} times: {paths}")
        elif sha256(paths[0]) != home.inputs[name]:
            check.problems.append(f"input {name} changed: {paths[0]}")
        elif final and paths[0].parent == home.root / "ingest":
            check.problems.append(f"input {name} still in ingest/ after a completed run")
    check.temporary = sorted(str(p) for p in home.root.rglob(f"*{TEMPORARY_SUFFIX}")
                             if "prefect" not in p.relative_to(home.root).parts)
    if final and check.temporary:
        check.problems.append(f"temporary files left: {check.temporary}")
    check_rows(home, check, final=final)
    return check
