"""What an operator sees when something outside hstlc goes wrong (docs/OPERATIONS.md).

Each failure is one line on the terminal naming the cause, with no Python traceback, a
non-zero exit code, and the same line in the command's log file.  The commands run as
child processes, as from a terminal; SIGINT goes to the whole process group, as Ctrl-C
sends it.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import builders as b
import pytest
from campaigns import Home, check_home, kill_processes_of, processes_of, sha256, wait_processes_gone

from hstlc.processes import processes_carrying

HSTLC = Path(sys.executable).parent / "hstlc"
LINUX = Path("/proc/self/environ").exists()
ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def command(home: Path, *args: str, extra: dict[str, str] | None = None, timeout: float = 300.0,
            ) -> subprocess.CompletedProcess[str]:
    """Run ``hstlc ARGS`` on ``home`` as a terminal would (no developer setting leaks in)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HSTLC_", "PREFECT_"))}
    env.update(HSTLC_HOME_DIR=str(home), MPLBACKEND="Agg", PYTHONUNBUFFERED="1", **(extra or {}))
    return subprocess.run([str(HSTLC), *args], env=env, cwd=home.parent, capture_output=True,
                          text=True, timeout=timeout)


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The ``hstlc:`` lines of stderr (the versions line of the log is not one)."""
    return [line for line in result.stderr.splitlines() if line.startswith("hstlc: ")]


def assert_one_line(result: subprocess.CompletedProcess[str], *words: str) -> str:
    """One ``hstlc:`` error line naming ``words``, no traceback, non-zero, in the log."""
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def log_text(home: Path) -> str:
    return "\n".join(p.read_text() for p in sorted((home / "logs").glob("*.log")))


@pytest.fixture
def nuv_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    b.build_cos_nuv(home / "ingest", rootname="lb1c01nuq", seed=1, exptime=200.0)
    return home


# -- errors that reached no one ---------------------------------------------------------------


def test_a_catalogue_that_is_not_a_database_is_one_line(nuv_home):
    nuv_home.mkdir(exist_ok=True)
    (nuv_home / "hstlc.db").write_bytes(b"this is not a database\n" * 100)
    result = command(nuv_home, "run")
    line = assert_one_line(result, "hstlc.db", "not a database")
    assert line in log_text(nuv_home)
    assert (nuv_home / "ingest" / "lb1c01nuq_corrtag.fits").is_file()


def test_an_unreachable_postgresql_is_one_line(nuv_home):
    url = "postgresql+psycopg2://hstlc:secret@127.0.0.1:9/hstlc"
    result = command(nuv_home, "ingest", extra={"HSTLC_DB_CONNECTION_STRING": url})
    line = assert_one_line(result, "127.0.0.1", "refused")
    assert "secret" not in result.stderr + log_text(nuv_home)
    assert line in log_text(nuv_home)


def test_an_unknown_database_dialect_is_refused_as_a_setting(nuv_home):
    result = command(nuv_home, "composite", extra={"HSTLC_DB_CONNECTION_STRING": "nosuchdb://x/y"})
    assert result.returncode == 2
    assert_one_line(result, "db_connection_string", "nosuchdb")


def test_an_ingest_folder_that_cannot_be_read_is_one_line(nuv_home):
    blocker = nuv_home.parent / "not-a-folder"
    blocker.write_text("a file where the ingest folder should be")
    result = command(nuv_home, "run", extra={"HSTLC_INGEST_DIR": str(blocker)})
    line = assert_one_line(result, str(blocker))
    assert line in log_text(nuv_home)


@pytest.mark.skipif(not (LINUX and ROOT), reason="mounting a read-only file system needs root")
def test_a_read_only_home_with_the_logs_elsewhere_is_one_line(nuv_home, tmp_path):
    logs = tmp_path / "logs"
    subprocess.run(["mount", "--bind", str(nuv_home), str(nuv_home)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(nuv_home)], check=True)
        result = command(nuv_home, "run", extra={"HSTLC_LOG_DIR": str(logs)})
    finally:
        subprocess.run(["umount", str(nuv_home)], check=True)
    line = assert_one_line(result, "Read-only file system")
    assert str(nuv_home) in line
    assert line in "\n".join(p.read_text() for p in logs.glob("*.log"))


def test_a_negative_batch_size_is_refused(nuv_home):
    result = command(nuv_home, "run", "--batch-size", "-3")
    assert result.returncode == 2
    assert "--batch-size" in result.stderr and "'-3'" in result.stderr
    assert not (nuv_home / "hstlc.db").exists()


def test_composite_on_an_empty_catalogue_says_so_without_starting_prefect(tmp_path):
    home = tmp_path / "home"
    result = command(home, "composite")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no ingested dataset, so no composite" in result.stdout
    assert "0 composites written, 0 not written, 0 failed" in result.stdout
    assert not (home / "prefect").exists()


# -- Prefect's server -----------------------------------------------------------------------------


def test_an_unreachable_prefect_api_is_one_line(nuv_home):
    url = "http://127.0.0.1:9/api"
    for args in (("run",), ("serve",)):
        result = command(nuv_home, *args, extra={"PREFECT_API_URL": url})
        line = assert_one_line(result, url, "did not answer")
        assert ("unset PREFECT_API_URL" in line) == (args == ("run",))
    assert (nuv_home / "ingest" / "lb1c01nuq_corrtag.fits").is_file()


# -- a drifted catalogue --------------------------------------------------------------------------


def test_a_run_on_a_drifted_catalogue_touches_no_file(nuv_home):
    assert command(nuv_home, "db", "upgrade").returncode == 0
    with sqlite3.connect(nuv_home / "hstlc.db") as db:
        db.execute("DROP TABLE outputs")
    before = sorted(p.name for p in (nuv_home / "ingest").iterdir())
    result = command(nuv_home, "run")
    line = assert_one_line(result, "outputs", "hstlc db upgrade")
    assert line in log_text(nuv_home)
    assert sorted(p.name for p in (nuv_home / "ingest").iterdir()) == before
    assert not (nuv_home / "outputs").exists() or not any((nuv_home / "outputs").rglob("*.*"))

    check = command(nuv_home, "db", "check")
    assert check.returncode == 1 and "table outputs is missing" in check.stdout + check.stderr
    assert len((check.stdout + check.stderr).splitlines()) < 10
    repaired = command(nuv_home, "db", "upgrade")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "outputs" in repaired.stdout
    assert command(nuv_home, "db", "check").returncode == 0


# -- a full disk -----------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 6 MB tmpfs (root only), unmounted afterwards."""
    if not (LINUX and ROOT):
        pytest.skip("mounting a small tmpfs needs root on Linux")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_nearly_full_disk_is_one_line_before_anything_starts(small_disk):
    home = small_disk / "home"
    b.build_cos_nuv(home / "ingest", rootname="lb1c01nuq", seed=1, exptime=200.0)
    started = time.monotonic()
    result = command(home, "run")
    assert time.monotonic() - started < 30
    line = assert_one_line(result, str(small_disk), "MB free", "min_free_mb")
    assert line in log_text(home)
    assert (home / "ingest" / "lb1c01nuq_corrtag.fits").is_file()
    assert not (home / "prefect").exists()


def test_a_disk_that_fills_during_the_run_stops_it_and_refuses_nothing(small_disk, tmp_path):
    home = tmp_path / "home"
    for i in range(3):
        b.build_cos_nuv(home / "ingest", rootname=f"lb1c0{i}nuq", seed=i, exptime=200.0)
    (small_disk / "filler").write_bytes(b"\0" * (6 * 1024 * 1024 - 64 * 1024))
    result = command(home, "run", "--batch-size", "1", extra={
        "HSTLC_OUTPUTS_DIR": str(small_disk / "outputs"), "HSTLC_MIN_FREE_MB": "0"})
    line = assert_one_line(result, "no space left", str(small_disk))
    assert line in log_text(home)
    assert "left for the next run" in result.stdout
    assert not (home / "bad_data").exists()
    assert len(list((home / "ingest").glob("*_corrtag.fits"))) == 3


# -- Ctrl-C and SIGTERM ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(not LINUX, reason="the process checks read /proc (Linux)")
@pytest.mark.parametrize("signum, moment", [(signal.SIGINT, "plan-ingest"), (signal.SIGTERM, "lightcurve")])
def test_a_signal_stops_the_run_promptly_and_the_next_run_completes(tmp_path, signum, moment):
    root = tmp_path / "home"
    for i in range(8):
        b.build_cos_nuv(root / "ingest", rootname=f"lb{i:02d}01nuq", seed=i, exptime=300.0)
    home = Home(root=root, database_url=f"sqlite:///{root / 'hstlc.db'}",
                inputs={p.name: sha256(p) for p in (root / "ingest").iterdir()})
    out = tmp_path / "run.out"
    env = home.env()
    with open(out, "wb") as sink:
        run = subprocess.Popen([str(HSTLC), "run", "--batch-size", "0"], env=env, cwd=tmp_path,
                               stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        marker = f"Task run '{moment}" if moment != "plan-ingest" else "Task run 'plan-ingest"
        deadline = time.monotonic() + 180
        while marker.encode() not in out.read_bytes() and run.poll() is None:
            assert time.monotonic() < deadline, out.read_text()
            time.sleep(0.05)
        os.killpg(run.pid, signum)  # the whole group, as a terminal does
        sent = time.monotonic()
        run.wait(timeout=60)
        stopped_s = time.monotonic() - sent
        gone = wait_processes_gone(home)
    finally:
        kill_processes_of(home)
    text = out.read_text()
    assert run.returncode == 128 + signum, text
    assert stopped_s < 15, f"stopped after {stopped_s:.1f} s"
    assert gone is not None, "a process of the run was left behind"
    assert f"interrupted ({signal.Signals(signum).name})" in text and "left there for the next run" in text
    assert "Traceback" not in text, text
    assert check_home(home, final=False).problems == []
    final = command(root, "run")
    assert final.returncode == 0, final.stdout + final.stderr
    assert check_home(home, final=True).problems == []
    assert not processes_of(home)


# -- Dask on a temporary server ------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(not LINUX, reason="the process checks read /proc (Linux)")
def test_dask_workers_report_to_the_runs_own_server(nuv_home, tmp_path):
    """One temporary server for the run (none per worker), quiet, and named in the summary."""
    out = tmp_path / "run.out"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HSTLC_", "PREFECT_"))}
    env.update(HSTLC_HOME_DIR=str(nuv_home), HSTLC_WORKERS="2", MPLBACKEND="Agg", PYTHONUNBUFFERED="1")
    servers: set[int] = set()
    with open(out, "wb") as sink:
        run = subprocess.Popen([str(HSTLC), "run", "--dask"], env=env, cwd=tmp_path, stdout=sink,
                               stderr=subprocess.STDOUT)
        while run.poll() is None:
            servers.update(pid for pid in processes_carrying("HSTLC_HOME_DIR", str(nuv_home))
                           if b"uvicorn" in _cmdline(pid))
            time.sleep(0.1)
    text = out.read_text()
    assert run.returncode == 0, text
    assert len(servers) == 1, f"{len(servers)} Prefect servers started"
    assert "Starting temporary server" not in text
    assert "batches of 8 on local cluster (2 processes)" in text
    assert sum("distributed." in line for line in text.splitlines()) < 5, text


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
