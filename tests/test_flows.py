"""The Prefect flows end to end: ingest, composite, re-runs, retries, batches, Dask."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from astropy.table import Table
from builders import build_cos_nuv, build_stis_tag
from sqlalchemy import select

from hstlc.catalogue.engine import create_catalogue_engine, session_scope
from hstlc.catalogue.migrate import upgrade
from hstlc.catalogue.models import BadData, Metadata, Outputs
from hstlc.config import load_settings
from hstlc.errors import QualityError, TransientError
from hstlc.ingest import steps

pytestmark = pytest.mark.usefixtures("prefect_harness")

COMPOSITE = "hlsp_hstlc_hst_cos-fuv_gj436_g130m_1291_psa_v1_sci.fits"


def fill_ingest(ingest: Path, real: Path | None, *, synthetic: bool = True) -> None:
    ingest.mkdir(parents=True, exist_ok=True)
    if real is not None:
        for sub in ("cos_fuv_g130m_gj436", "reject"):
            for path in (real / sub).iterdir():
                shutil.copy2(path, ingest / path.name)
    if synthetic:
        build_cos_nuv(ingest, rootname="lb1c02nuq", seed=3, exptime=300.0, targname="NUV-STAR")
        build_stis_tag(ingest, rootname="oc5r01abq", seed=4, exptime=300.0, targname="STIS-STAR")


def catalogue(settings):
    engine = create_catalogue_engine(settings.database_url)
    with session_scope(engine) as session:
        metadata = {r.filename: (r.path, r.sha256) for r in session.scalars(select(Metadata))}
        outputs = {(r.source.filename, r.individual_filename, r.composite_filename)
                   for r in session.scalars(select(Outputs))}
        bad = {r.filename: r.reason for r in session.scalars(select(BadData))}
    engine.dispose()
    return metadata, outputs, bad


def test_pipeline_on_real_and_synthetic_data(settings, real_data):
    from flows.pipeline import hstlc_pipeline

    fill_ingest(settings.ingest_dir, real_data)
    (settings.ingest_dir / "notes.txt").write_text("not an input")
    summary = hstlc_pipeline()

    assert summary["failed"] == {}
    assert summary["ingested"] == ["lb1c02nuq", "ld9m10ujq", "ld9m10uyq", "oc5r01abq"]
    assert set(summary["rejected"]) == {"ldfd01vnq_lampflash.fits.gz", "ldngz2szq_rawacq.fits.gz",
                                        "o4er06llq_raw.fits"}
    metadata, outputs, bad = catalogue(settings)
    assert bad == dict.fromkeys(summary["rejected"], "Unsupported product")
    for name in bad:
        assert (settings.bad_data_dir / name).is_file()
    gj = settings.filesystem_dir / "GJ-436"
    for name in ("ld9m10ujq_corrtag_a.fits", "ld9m10ujq_x1d.fits", "ld9m10uyq_corrtag_a.fits",
                 "ld9m10uyq_x1d.fits"):
        assert (gj / name).is_file() and metadata[name][0] == str(gj)
    assert (settings.filesystem_dir / "STIS-STAR" / "oc5r01abq_tag.fits").is_file()
    assert (settings.filesystem_dir / "STIS-STAR" / "oc5r01abq_corrtag.fits").is_file()
    for target, root in (("GJ-436", "ld9m10ujq"), ("GJ-436", "ld9m10uyq"),
                         ("NUV-STAR", "lb1c02nuq"), ("STIS-STAR", "oc5r01abq")):
        curve = settings.outputs_dir / target / f"{root}_curve.fits"
        assert curve.is_file() and curve.with_suffix(".png").is_file()
        assert len(Table.read(curve, hdu=1)) > 10
    composite = settings.composite_dir / COMPOSITE
    table = Table.read(composite, hdu=1)
    assert sorted(set(table["dataset"])) == [1, 2]
    assert {("ld9m10ujq_corrtag_a.fits", "ld9m10ujq_curve.fits", COMPOSITE),
            ("ld9m10uyq_corrtag_a.fits", "ld9m10uyq_curve.fits", COMPOSITE)} <= outputs
    assert sorted(p.name for p in settings.ingest_dir.iterdir()) == ["notes.txt"]

    # A second run on the same home does no work and says so.
    again = hstlc_pipeline()
    assert again["ingested"] == [] and again["rejected"] == {} and again["failed"] == {}
    assert catalogue(settings) == (metadata, outputs, bad)


def test_rerun_skips_a_duplicate_and_reprocesses_a_changed_file(settings, real_data):
    from flows.ingest import ingest

    fill_ingest(settings.ingest_dir, real_data, synthetic=False)
    first = ingest()
    assert first["ingested"] == ["ld9m10ujq", "ld9m10uyq"]
    # The same file dropped again: the catalogue knows its content.
    shutil.copy2(settings.filesystem_dir / "GJ-436" / "ld9m10ujq_x1d.fits", settings.ingest_dir)
    shutil.copy2(settings.filesystem_dir / "GJ-436" / "ld9m10ujq_corrtag_a.fits", settings.ingest_dir)
    second = ingest()
    assert second["ingested"] == [] and second["skipped"] == ["ld9m10ujq"]


def test_changed_file_is_processed_again_and_force_re_extracts(settings):
    from flows.ingest import ingest

    build_cos_nuv(settings.ingest_dir, rootname="lb1c02nuq", seed=1, exptime=200.0)
    assert ingest()["ingested"] == ["lb1c02nuq"]
    before = catalogue(settings)[0]
    curve = settings.outputs_dir / "TEST-STAR" / "lb1c02nuq_curve.fits"
    first_curve = curve.stat().st_mtime_ns
    # A new version of the same dataset (different content, same names).
    build_cos_nuv(settings.ingest_dir, rootname="lb1c02nuq", seed=2, exptime=200.0)
    assert ingest()["ingested"] == ["lb1c02nuq"]
    after = catalogue(settings)[0]
    assert after["lb1c02nuq_corrtag.fits"][1] != before["lb1c02nuq_corrtag.fits"][1]
    assert not list(settings.ingest_dir.iterdir())
    assert ingest()["ingested"] == []  # nothing new
    forced = ingest(force=True)
    assert forced["ingested"] == ["lb1c02nuq"]
    assert curve.stat().st_mtime_ns > first_curve
    assert catalogue(settings)[0] == after


def inject_fault(monkeypatch, name, error, when):
    """Replace the step function ``name`` by one raising ``error`` when ``when(state, call)``
    holds (``call`` counts from 1); return the rootnames it was called with."""
    original = getattr(steps, name)
    calls = []

    def faulty(state, config):
        calls.append(state.rootname)
        if when(state, len(calls)):
            raise error
        return original(state, config)

    monkeypatch.setattr(steps, name, faulty)
    return calls


def test_commands_exit_codes_and_summary(settings, capsys, monkeypatch):
    from flows.commands import hstlc_pipeline_main
    from hstlc.cli import main

    build_cos_nuv(settings.ingest_dir, rootname="lb1c02nuq", seed=1, exptime=200.0)
    build_cos_nuv(settings.ingest_dir, rootname="lb1c03nuq", seed=2, exptime=200.0, expflag="INTERRUPTED")
    assert main(["run"]) == 0  # a rejected file is not a failure
    out = capsys.readouterr().out
    assert "1 datasets ingested, 1 rejected, 0 failed" in out and "Bad EXPFLAG" in out
    assert str(settings.outputs_dir) in out
    assert hstlc_pipeline_main([]) == 0
    assert "nothing new to do" in capsys.readouterr().out
    build_cos_nuv(settings.ingest_dir, rootname="lb1c04nuq", seed=4, exptime=200.0)
    inject_fault(monkeypatch, "lightcurve", RuntimeError("disk on fire"), when=lambda state, call: True)
    assert main(["ingest", "--batch-size", "0"]) == 1
    assert "FAILED   lb1c04nuq" in capsys.readouterr().out


def test_transient_error_is_retried(settings, monkeypatch):
    from flows.ingest import ingest

    build_cos_nuv(settings.ingest_dir, rootname="lb1c02nuq", seed=1, exptime=200.0)
    calls = inject_fault(monkeypatch, "record", TransientError("database is locked"),
                         when=lambda state, call: call == 1)
    summary = ingest(batch_size=0)
    assert summary["ingested"] == ["lb1c02nuq"] and summary["failed"] == {}
    assert len(calls) == 2
    assert "lb1c02nuq_corrtag.fits" in catalogue(settings)[0]


def test_permanent_error_is_recorded_once_and_not_retried(settings, monkeypatch):
    from flows.ingest import ingest

    build_cos_nuv(settings.ingest_dir, rootname="lb1c02nuq", seed=1, exptime=200.0)
    error = QualityError("lb1c02nuq_corrtag.fits: no events in the source box", reason="No events")
    calls = inject_fault(monkeypatch, "lightcurve", error, when=lambda state, call: True)
    summary = ingest(batch_size=0)
    assert len(calls) == 1
    assert list(summary["rejected"]) == ["lb1c02nuq"] and summary["failed"] == {}
    bad = catalogue(settings)[2]
    assert bad == {"lb1c02nuq_corrtag.fits": "No events", "lb1c02nuq_x1d.fits": "No events"}
    assert (settings.bad_data_dir / "lb1c02nuq_corrtag.fits").is_file()
    assert not list(settings.ingest_dir.iterdir())


def test_unexpected_error_fails_one_dataset_only(settings, monkeypatch):
    from flows.ingest import ingest

    build_cos_nuv(settings.ingest_dir, rootname="lb1c02nuq", seed=1, exptime=200.0)
    build_cos_nuv(settings.ingest_dir, rootname="lb1c03nuq", seed=2, exptime=200.0)
    inject_fault(monkeypatch, "quicklook", RuntimeError("plotting bug"),
                 when=lambda state, call: state.rootname == "lb1c03nuq")
    state = ingest(batch_size=0, return_state=True)
    assert state.is_failed()  # the run shows failed in the UI
    summary = state.result(raise_on_failure=False)
    assert summary["ingested"] == ["lb1c02nuq"]
    assert list(summary["failed"]) == ["lb1c03nuq"] and "plotting bug" in summary["failed"]["lb1c03nuq"]
    # The failed dataset's files wait in ingest/ for the next run; nothing was catalogued.
    assert (settings.ingest_dir / "lb1c03nuq_corrtag.fits").is_file()
    assert "lb1c03nuq_corrtag.fits" not in catalogue(settings)[0]


def relative(entries, settings):
    metadata, outputs, bad = entries
    home = str(settings.home_dir)
    return ({k: (v[0].replace(home, ""), v[1]) for k, v in metadata.items()}, outputs, bad)


@pytest.mark.slow
def test_batches_and_dask_give_the_same_catalogue_as_threads(home, tmp_path, monkeypatch):
    from flows.ingest import ingest
    from tasks.runner import run_cluster, task_runner_for

    results = []
    for mode in ("threads", "batches", "dask", "scheduler"):
        folder = tmp_path / mode
        monkeypatch.setenv("HSTLC_HOME_DIR", str(folder))
        settings = load_settings()
        upgrade(create_catalogue_engine(settings.database_url))
        for index in range(4):
            build_cos_nuv(settings.ingest_dir, rootname=f"lb1c0{index}nuq", seed=index, exptime=200.0)
        build_stis_tag(settings.ingest_dir, rootname="oc5r01abq", seed=9, exptime=200.0)
        if mode == "dask":  # the run's local 2-process cluster, in automatic batches
            monkeypatch.setenv("HSTLC_WORKERS", "2")
            monkeypatch.setenv("HSTLC_TASK_RUNNER", "dask")
            with run_cluster(load_settings(), 0.0) as address:
                summary = ingest.with_options(task_runner=task_runner_for(load_settings(), address))()
            assert summary["mode"] == "batches of 8 on local cluster (2 processes)"
            monkeypatch.delenv("HSTLC_TASK_RUNNER")
        elif mode == "scheduler":  # a running cluster, found through the settings' address
            from distributed import LocalCluster

            with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                              dashboard_address=None) as cluster:
                monkeypatch.setenv("HSTLC_TASK_RUNNER", "dask")
                monkeypatch.setenv("HSTLC_DASK_ADDRESS", cluster.scheduler_address)
                with run_cluster(load_settings(), 0.0) as address:
                    assert address == cluster.scheduler_address
                    summary = ingest.with_options(task_runner=task_runner_for(load_settings(), address))(
                        batch_size=0)
        else:
            summary = ingest(batch_size=2 if mode == "batches" else 0)
        assert summary["failed"] == {}, summary
        results.append(relative(catalogue(settings), settings))
    assert results[0] == results[1] == results[2] == results[3]
    assert len(results[0][0]) == 11  # 4 NUV x (corrtag + x1d) + STIS tag, corrtag, x1d


@pytest.mark.postgres
def test_ingest_and_composite_on_postgresql(home, pg_cluster, monkeypatch):
    from flows.pipeline import hstlc_pipeline

    monkeypatch.setenv("HSTLC_DB_CONNECTION_STRING", pg_cluster.create_database("hstlc_flow"))
    settings = load_settings()
    upgrade(create_catalogue_engine(settings.database_url))
    build_cos_nuv(settings.ingest_dir, rootname="lb1c02nuq", seed=1, exptime=200.0)
    build_cos_nuv(settings.ingest_dir, rootname="lb1c03nuq", seed=2, exptime=200.0)
    build_cos_nuv(settings.ingest_dir, rootname="lb1c04nuq", seed=3, exptime=200.0, expflag="INTERRUPTED")
    summary = hstlc_pipeline()
    assert summary["ingested"] == ["lb1c02nuq", "lb1c03nuq"]
    assert list(summary["rejected"]) == ["lb1c04nuq"]
    metadata, outputs, bad = catalogue(settings)
    assert len(metadata) == 4 and bad == {"lb1c04nuq_corrtag.fits": "Bad EXPFLAG",
                                          "lb1c04nuq_x1d.fits": "Bad EXPFLAG"}
    assert {composite for _, _, composite in outputs} == {
        "hlsp_hstlc_hst_cos-nuv_teststar_g185m_1882_psa_v1_sci.fits"}


def test_a_deployed_run_on_a_fresh_home_creates_the_catalogue_and_reprocesses(home):
    """What a deployment runs (no command line before it): schema, lock, target runner."""
    from flows.pipeline import hstlc_pipeline, reprocess_target

    settings = load_settings()
    build_cos_nuv(settings.ingest_dir, rootname="lb1c02nuq", seed=1, exptime=200.0)
    assert not (home / "hstlc.db").exists()
    summary = hstlc_pipeline()
    assert summary["ingested"] == ["lb1c02nuq"]
    again = reprocess_target(target="TEST-STAR")
    assert again["ingested"] == ["lb1c02nuq"] and again["composites"]["written"][0]["members"] == 1
    assert not (home / ".hstlc-run.lock").read_text()  # released


def test_composites_of_touched_groups_only_then_all_then_a_target(settings, capsys):
    from hstlc.cli import main

    build_cos_nuv(settings.ingest_dir, rootname="lb1c02nuq", seed=1, exptime=200.0, targname="STAR-A")
    build_cos_nuv(settings.ingest_dir, rootname="lb1c03nuq", seed=2, exptime=200.0, targname="STAR-B")
    assert main(["run"]) == 0
    composite_dir = settings.outputs_dir / "composite"
    name_a = "hlsp_hstlc_hst_cos-nuv_stara_g185m_1882_psa_v1_sci.fits"
    name_b = "hlsp_hstlc_hst_cos-nuv_starb_g185m_1882_psa_v1_sci.fits"
    first = {n: (composite_dir / n).stat().st_mtime_ns for n in (name_a, name_b)}
    build_cos_nuv(settings.ingest_dir, rootname="lb1c04nuq", seed=3, exptime=200.0, targname="STAR-A")
    capsys.readouterr()
    assert main(["run"]) == 0  # a new member of STAR-A: only that group is rebuilt
    assert (composite_dir / name_a).stat().st_mtime_ns > first[name_a]
    assert (composite_dir / name_b).stat().st_mtime_ns == first[name_b]
    second_b = (composite_dir / name_b).stat().st_mtime_ns
    assert main(["composite"]) == 0  # every group
    assert (composite_dir / name_b).stat().st_mtime_ns > second_b
    curve = settings.outputs_dir / "STAR-B" / "lb1c03nuq_curve.fits"
    before = curve.stat().st_mtime_ns
    assert main(["reprocess", "STAR-B"]) == 0
    assert curve.stat().st_mtime_ns > before
    assert main(["reprocess", "NO-SUCH-STAR"]) == 1
    assert "no ingested dataset of target 'NO-SUCH-STAR'" in capsys.readouterr().err


def test_the_log_file_is_the_record_of_a_run(settings, capsys, monkeypatch):
    """Settings, progress, each failure with its reason, the summary: what the terminal
    showed and more."""
    from hstlc.cli import main

    for i in (1, 2, 3):
        build_cos_nuv(settings.ingest_dir, rootname=f"lb1c0{i}nuq", seed=i, exptime=200.0)
    inject_fault(monkeypatch, "lightcurve", RuntimeError("disk on fire"),
                 when=lambda state, call: state.rootname != "lb1c01nuq")
    assert main(["run", "--batch-size", "0"]) == 1
    shown = [line.strip() for line in capsys.readouterr().out.splitlines() if line.strip()]
    [log] = Path(settings.log_dir).glob("hstlc_pipeline-*.log")
    text = log.read_text()
    assert "settings: {" in text and '"db_connection_string": "sqlite:' in text
    assert "3/3 datasets done" in text  # the progress, from the flow's logger
    assert "Task run 'lightcurve-lb1c02nuq'" in text and "disk on fire" in text
    assert "1 datasets ingested, 0 rejected, 2 failed" in text
    assert shown and all(line in text for line in shown), [line for line in shown if line not in text]
