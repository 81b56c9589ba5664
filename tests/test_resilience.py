"""What happens to data when runs are interrupted, repeated, overlapped or re-planned.

These run the library steps directly (the batch path), without Prefect.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

import pytest
from astropy.io import fits
from builders import build_cos_fuv_pair, build_cos_nuv
from sqlalchemy import select

from hstlc.catalogue.engine import engine_for, session_scope
from hstlc.catalogue.models import BadData, Metadata, Outputs
from hstlc.config import load_settings
from hstlc.errors import HstlcError
from hstlc.fs import run_lock
from hstlc.ingest import steps
from hstlc.ingest.dataset import DONE, FAILED, LEFT, REJECTED, PipelineConfig
from hstlc.ingest.plan import plan_ingest


@pytest.fixture
def config(home):
    config = PipelineConfig.from_settings(load_settings())
    engine_for(config.database_url)  # its first use in a process brings the schema to head
    return config


def run(config, force=False):
    plan = plan_ingest(config, force=force)
    return plan, [steps.process(state, config) for state in plan.todo]


def rows(config, model):
    with session_scope(engine_for(config.database_url)) as session:
        return session.scalars(select(model)).all()


def input_files(curve):
    header = fits.getheader(curve, 1)
    return sorted(value for key, value in header.items()
                  if key.startswith("INFILE") and "corrtag" in value)


def test_late_fuv_partner_is_extracted_with_its_catalogued_segment(config, tmp_path):
    files = build_cos_fuv_pair(tmp_path / "new", rootname="lb1c01abq", seed=1, exptime=300.0)
    ingest = config.layout.ingest
    ingest.mkdir(parents=True)
    shutil.copy2(files["corrtag_a"], ingest)
    shutil.copy2(files["x1d"], ingest)
    _, first = run(config)
    curve = config.layout.outputs / "TEST-STAR" / "lb1c01abq_curve.fits"
    assert [s.status for s in first] == [DONE]
    assert input_files(curve) == ["lb1c01abq_corrtag_a.fits"]
    shutil.copy2(files["corrtag_b"], ingest)  # segment B arrives a night later
    plan, second = run(config)
    assert [s.status for s in second] == [DONE]
    assert input_files(curve) == ["lb1c01abq_corrtag_a.fits", "lb1c01abq_corrtag_b.fits"]
    folder = config.layout.filesystem / "TEST-STAR"
    assert sorted(p.name for p in folder.iterdir()) == [
        "lb1c01abq_corrtag_a.fits", "lb1c01abq_corrtag_b.fits", "lb1c01abq_x1d.fits"]
    assert {r.filename for r in rows(config, Metadata)} == {p.name for p in folder.iterdir()}


def test_a_dataset_failing_in_a_batch_fails_alone(config, monkeypatch):
    for index in (1, 2, 3):
        build_cos_nuv(config.layout.ingest, rootname=f"lb1c0{index}nuq", seed=index, exptime=200.0)
    original = steps.lightcurve

    def broken(state, cfg):
        if state.rootname == "lb1c02nuq":
            raise RuntimeError("extraction bug")
        return original(state, cfg)

    monkeypatch.setattr(steps, "lightcurve", broken)
    _, states = run(config)
    outcome = {s.rootname: s.status for s in states}
    assert outcome == {"lb1c01nuq": DONE, "lb1c02nuq": FAILED, "lb1c03nuq": DONE}
    failed = next(s for s in states if s.status == FAILED)
    assert "lightcurve: RuntimeError: extraction bug" in failed.detail
    assert (config.layout.ingest / "lb1c02nuq_corrtag.fits").is_file()  # left for the next run


def test_transient_failure_mid_move_resumes_without_losing_files(config, monkeypatch):
    build_cos_nuv(config.layout.ingest, rootname="lb1c01nuq", seed=1, exptime=200.0)
    monkeypatch.setattr(steps, "TRANSIENT_RETRY_DELAYS_S", (0.0, 0.0, 0.0))
    real_move = steps.move_file
    calls = []

    def busy_second_file(source, target, **kwargs):
        calls.append(source.name)
        if len(calls) == 2:  # the first file has moved; the second meets a busy file system
            raise OSError(errno.EBUSY, "Device or resource busy", str(source))
        return real_move(source, target, **kwargs)

    monkeypatch.setattr(steps, "move_file", busy_second_file)
    _, states = run(config)
    assert [s.status for s in states] == [DONE]
    folder = config.layout.filesystem / "TEST-STAR"
    assert sorted(p.name for p in folder.iterdir()) == ["lb1c01nuq_corrtag.fits", "lb1c01nuq_x1d.fits"]
    assert not list(config.layout.ingest.iterdir())


def test_interrupted_batch_is_not_redone_or_refused(config):
    build_cos_nuv(config.layout.ingest, rootname="lb1c01nuq", seed=1, exptime=200.0)
    plan = plan_ingest(config)
    done = steps.process(plan.todo[0], config)
    again = steps.process(plan.todo[0], config)  # a retried batch meets a finished dataset
    assert done.status == DONE and again.status == DONE
    assert rows(config, BadData) == []


def test_a_retried_batch_reports_a_dataset_it_refused_with_its_reason(config):
    build_cos_nuv(config.layout.ingest, rootname="lb1c01nuq", seed=1, exptime=200.0,
                  expflag="INTERRUPTED")
    plan = plan_ingest(config)
    first = steps.process(plan.todo[0], config)
    again = steps.process(plan.todo[0], config)  # the batch task is retried
    assert (first.status, first.reason) == (REJECTED, "Bad EXPFLAG")
    assert (again.status, again.reason, again.detail) == (REJECTED, "Bad EXPFLAG", first.detail)
    assert len(rows(config, BadData)) == 2  # corrtag and x1d, recorded once


def test_force_does_each_dataset_once_preferring_the_ingest_copy(config):
    build_cos_nuv(config.layout.ingest, rootname="lb1c01nuq", seed=1, exptime=200.0)
    run(config)
    build_cos_nuv(config.layout.ingest, rootname="lb1c01nuq", seed=2, exptime=200.0)  # newer version
    plan, states = run(config, force=True)
    assert [s.rootname for s in states] == ["lb1c01nuq"]
    assert plan.todo[0].job.files[0].parent == config.layout.ingest


def test_refused_on_reprocessing_leaves_the_catalogue_and_products(config, home, monkeypatch):
    """A catalogued dataset that fails on re-processing is kept whole and reported failed."""
    build_cos_nuv(config.layout.ingest, rootname="lb1c01nuq", seed=1, exptime=200.0, proposid=4242)
    run(config)
    curve = config.layout.outputs / "TEST-STAR" / "lb1c01nuq_curve.fits"
    assert curve.is_file() and len(rows(config, Outputs)) == 1
    catalogue = sorted((r.filename, r.sha256, r.path) for r in rows(config, Metadata))
    monkeypatch.setenv("HSTLC_BAD_PROPOSALS", "4242")
    refreshed = PipelineConfig.from_settings(load_settings())
    _, states = run(refreshed, force=True)
    assert [(s.status, s.reason) for s in states] == [(FAILED, "Bad Proposal")]
    assert states[0].detail.startswith("re-processing refused (Bad Proposal): ")
    assert sorted((r.filename, r.sha256, r.path) for r in rows(refreshed, Metadata)) == catalogue
    assert len(rows(refreshed, Outputs)) == 1 and rows(refreshed, BadData) == []
    assert curve.is_file() and curve.with_suffix(".png").is_file()
    assert (refreshed.layout.filesystem / "TEST-STAR" / "lb1c01nuq_corrtag.fits").is_file()
    assert not refreshed.layout.bad_data.exists() or not any(refreshed.layout.bad_data.iterdir())


def test_a_corrupt_redelivery_leaves_the_catalogued_dataset_alone(config, tmp_path):
    build_cos_nuv(config.layout.ingest, rootname="lb1c01nuq", seed=1, exptime=200.0)
    run(config)
    folder = config.layout.filesystem / "TEST-STAR"
    good = {p.name: p.read_bytes() for p in folder.iterdir()}
    curve = config.layout.outputs / "TEST-STAR" / "lb1c01nuq_curve.fits"
    metadata_before = {(r.filename, r.sha256) for r in rows(config, Metadata)}
    truncated = (folder / "lb1c01nuq_corrtag.fits").read_bytes()[:5000]
    (config.layout.ingest / "lb1c01nuq_corrtag.fits").write_bytes(truncated)
    _, states = run(config)
    assert [(s.status, s.reason) for s in states] == [(REJECTED, "Unreadable file")]
    # the new copy is refused alone ...
    assert [(r.filename, r.reason) for r in rows(config, BadData)] == [
        ("lb1c01nuq_corrtag.fits", "Unreadable file")]
    assert (config.layout.bad_data / "lb1c01nuq_corrtag.fits").read_bytes() == truncated
    assert sorted(p.name for p in config.layout.bad_data.iterdir()) == ["lb1c01nuq_corrtag.fits"]
    # ... and the catalogued dataset keeps its files, rows and products
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == good
    assert {(r.filename, r.sha256) for r in rows(config, Metadata)} == metadata_before
    assert len(rows(config, Outputs)) == 1 and curve.is_file() and curve.with_suffix(".png").is_file()


def test_a_refused_file_dropped_again_is_not_checked_again(config, tmp_path):
    bad = build_cos_nuv(tmp_path, rootname="lb1c01nuq", seed=1, exptime=200.0, expflag="INTERRUPTED")
    config.layout.ingest.mkdir(parents=True)
    for path in (bad["corrtag"], bad["x1d"]):
        shutil.copy2(path, config.layout.ingest)
    _, states = run(config)
    assert states[0].status == REJECTED
    for path in (bad["corrtag"], bad["x1d"]):
        shutil.copy2(path, config.layout.ingest)
    plan, states = run(config)
    assert states == [] and [s.detail for s in plan.skipped] == ["refused before (bad_data)"]


def test_one_run_per_home(tmp_path):
    """Another process holding the lock stops a run, or makes it wait; this process re-enters."""
    import subprocess
    import sys
    import time

    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'a+'); "
         "f.write('pid other'); f.flush(); fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); "
         "time.sleep(2)", str(tmp_path / ".hstlc-run.lock")],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(HstlcError, match="another hstlc run is in progress"):
        with run_lock(tmp_path):
            pass
    started = time.monotonic()
    with run_lock(tmp_path, wait_s=30, poll_s=0.1):  # waits for the holder to finish
        waited = time.monotonic() - started
        with run_lock(tmp_path):  # re-entered by a flow of the same process
            pass
    assert 0.5 < waited < 30  # the holder keeps the lock for 2 s
    holder.wait()
    holder.stdout.close()
    with run_lock(tmp_path):  # released
        pass


def test_the_time_span_setting_reaches_the_check(home, monkeypatch):
    monkeypatch.setenv("HSTLC_MAX_TIME_SPAN_S", "50")
    config = PipelineConfig.from_settings(load_settings())
    assert config.max_time_span_s == 50.0
    build_cos_nuv(config.layout.ingest, rootname="lb1c01nuq", seed=1, exptime=200.0)
    _, states = run(config)
    assert [(s.status, s.reason) for s in states] == [(REJECTED, "Time span too long")]


@pytest.mark.parametrize("gone", ["_corrtag_a.fits", "_x1d.fits"])
def test_a_file_that_vanishes_after_planning_leaves_the_dataset_for_the_next_run(config, gone):
    """Its intact partner is not refused; nothing is recorded; the next run ingests it."""
    made = build_cos_fuv_pair(config.layout.ingest, rootname="lb1c01abq", seed=1, exptime=200.0)
    plan = plan_ingest(config)
    vanished = config.layout.ingest / f"lb1c01abq{gone}"
    kept = vanished.with_name(vanished.name + ".kept")
    vanished.rename(kept)
    state = steps.process(plan.todo[0], config)
    assert state.status == LEFT and vanished.name in state.detail and "next run" in state.detail
    assert rows(config, BadData) == [] and rows(config, Metadata) == []
    assert not config.layout.bad_data.exists()
    kept.rename(vanished)
    assert [s.status for _, s in [run(config)] for s in s] == [DONE]
    assert not any(Path(p).exists() for key, p in made.items() if key != "truth" and p)


def test_a_full_disk_stops_the_batch_and_refuses_nothing(config, monkeypatch):
    """ENOSPC while writing: the dataset and every later one are left; none is refused."""
    from hstlc.processes import stop_reason

    for i in range(3):
        build_cos_nuv(config.layout.ingest, rootname=f"lb1c0{i}nuq", seed=i, exptime=200.0)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(config.layout.outputs / "x"))

    monkeypatch.setattr("hstlc.io.lightcurve_file.write_lightcurve", full)
    plan, states = run(config)
    assert [s.status for s in states] == [LEFT, LEFT, LEFT]
    assert "no space left" in states[0].detail and str(config.layout.outputs) in states[0].detail
    assert all("not started" in s.detail for s in states[1:])
    assert "no space left" in (stop_reason() or "")
    assert rows(config, BadData) == [] and rows(config, Metadata) == []
    assert len(list(config.layout.ingest.glob("*_corrtag.fits"))) == 3
