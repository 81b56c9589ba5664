"""Killed runs: nothing lost, nothing half-written, no process left (the crash campaign).

The campaign itself (``python -m tests.campaigns.crash --kills 50``) runs here with a few
kills; docs/RELIABILITY.md has the figures of the full one.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import builders as b
import pytest
from campaigns import Home, crash, kill_processes_of, processes_of, start_run, wait_processes_gone

pytestmark = pytest.mark.skipif(not Path("/proc/self/environ").exists(),
                                reason="the process checks read /proc (Linux)")


@pytest.fixture
def nuv_home(tmp_path: Path):
    root = tmp_path / "home"
    b.build_cos_nuv(root / "ingest", rootname="lb1c01nuq", seed=1, exptime=200.0)
    home = Home(root=root, database_url=f"sqlite:///{root / 'hstlc.db'}", inputs={})
    yield home
    kill_processes_of(home)


def _server_of(home: Home) -> list[int]:
    return [pid for pid in processes_of(home)
            if b"uvicorn" in Path(f"/proc/{pid}/cmdline").read_bytes()]


@pytest.mark.slow
def test_a_killed_run_leaves_no_temporary_server(nuv_home, tmp_path):
    run = start_run(nuv_home, tmp_path / "run.out")
    deadline = time.monotonic() + 120
    while not _server_of(nuv_home) and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _server_of(nuv_home), "the run never started Prefect's temporary server"
    run.send_signal(signal.SIGKILL)
    run.wait()
    assert wait_processes_gone(nuv_home) is not None, "the temporary server outlived its run"


def test_the_next_run_removes_temporary_files_of_a_killed_run(home):
    from hstlc.config import load_settings
    from hstlc.fs import Layout, sweep_debris

    folder = home / "outputs" / "TEST-STAR"
    folder.mkdir(parents=True)
    debris = folder / ".lb1c01nuq_curve.fits.0123456789ab.tmp"
    debris.write_bytes(b"half a file")
    kept = [folder / "lb1c01nuq_curve.fits", folder / ".notes.tmp", home / "ingest" / "x.tmp"]
    for path in kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"kept")
    assert sweep_debris(Layout.from_settings(load_settings())) == [debris]
    assert not debris.exists() and all(p.exists() for p in kept)


def test_the_interrupted_step_is_read_from_the_run_output():
    lines = ("Beginning flow run 'x'\n"
             "Task run 'check-lb1c01aaq' - Finished in state Completed()\n"
             "Task run 'convert-lb1c01aaq' - Finished in state Completed()\n"
             "Task run 'check-o5d601ccq' - Finished in state Completed()\n")
    assert crash.interrupted_step(lines) == "convert+lightcurve"
    assert crash.interrupted_step("") == "startup"
    assert crash.interrupted_step("Beginning flow run 'x'\n") == "plan"
    assert crash.interrupted_step(lines + "Beginning subflow run 'composite-1'") == "composite"


def test_the_watchdog_ends_every_process_of_its_run():
    import subprocess
    import sys

    from hstlc.processes import RUN_TOKEN_ENV, end_processes, processes_with

    token = "0123abcd" * 4
    env = {**os.environ, RUN_TOKEN_ENV: token}
    stubborn = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                "print('ready', flush=True); time.sleep(60)")
    with subprocess.Popen([sys.executable, "-c", stubborn], env=env, stdout=subprocess.PIPE) as child:
        try:
            assert child.stdout is not None and child.stdout.readline() == b"ready\n"
            assert processes_with(token) == [child.pid]
            assert end_processes(token, grace_s=0.5) == [child.pid]
            assert child.wait(timeout=10) == -signal.SIGKILL
            assert processes_with(token) == []
        finally:
            child.kill()


@pytest.mark.slow
def test_crash_campaign_reduced(tmp_path):
    report = crash.run_campaign(3, tmp_path, seed=3, kills_per_home=3, progress=lambda _: None)
    assert report.problems == []
    assert len(report.kills) == 3 and report.completed_runs >= 1
    assert report.inputs_checked >= 4 * 8 and report.rows_checked > 0
