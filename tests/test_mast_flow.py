"""The download flow end to end against the stand-in MAST: into ``ingest/``, then the
pipeline; a second run; MAST unreachable; the target run that fetches first; the dry run;
the schedule."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from mast_standin import Fault, MastStandIn, calibration_datasets, real_datasets, synthetic_datasets

from hstlc.catalogue.engine import create_catalogue_engine, session_scope
from hstlc.catalogue.queries import download_rows
from hstlc.config import load_settings
from hstlc.fs import sha256_file

pytestmark = pytest.mark.usefixtures("prefect_harness")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("archive")
    return {"synth": synthetic_datasets(folder, 3),
            "other": synthetic_datasets(folder, 1, start=10, targname="OTHER-STAR"),
            "calibration": calibration_datasets(folder / "calibration")}


@pytest.fixture
def mast_home(home: Path, monkeypatch: pytest.MonkeyPatch):
    """A home whose MAST is the stand-in (started by the test): returns a function that
    points the settings at a server."""
    monkeypatch.setenv("HSTLC_DOWNLOAD_BACKOFF_S", "0.01")
    monkeypatch.setenv("HSTLC_DOWNLOAD_TIMEOUT_S", "10")

    def point(url: str) -> None:
        monkeypatch.setenv("HSTLC_MAST_URL", url)

    return point


def rows_of_runs(settings) -> list:
    engine = create_catalogue_engine(settings.database_url)
    with session_scope(engine) as session:
        rows = [(r.run, r.filename, r.status, r.attempts, r.sha256) for r in download_rows(session)]
    engine.dispose()
    return rows


def test_new_datasets_land_verified_the_pipeline_ingests_them_and_a_second_run_fetches_nothing(
        mast_home, archive, real_data):
    from flows.download import download
    from flows.pipeline import hstlc_pipeline

    datasets = [*real_datasets(real_data), *archive["synth"][:2], *archive["calibration"]]
    wanted = {p.name: p for d in datasets if d.mode == "TIME-TAG" and d.aec == "S"
              and d.targname in ("GJ-436", "SYNTH-STAR") for p in d.files}
    with MastStandIn(datasets) as mast:
        mast_home(mast.url)
        mast.inject("ld9m10ujq_x1d.fits", Fault.status_code(500))
        mast.inject(archive["synth"][0].files[0].name, Fault.status_code(429, retry_after=1))
        result = download()
        settings = load_settings()
        summary = result["download"]
        assert sorted(summary["fetched"]) == sorted(wanted) and summary["failed"] == {}
        assert summary["fetched"]["ld9m10ujq_x1d.fits"]["attempts"] == 2
        for name, source in wanted.items():
            assert sha256_file(settings.ingest_dir / name) == sha256_file(source)
        assert not list(settings.download_dir.glob("*.part"))
        manifest = json.loads(Path(summary["manifest"]).read_text())
        assert manifest["bytes"] == sum(p.stat().st_size for p in wanted.values())
        assert manifest["query"]["sci_operating_mode"] == "TIME-TAG"
        rows = rows_of_runs(settings)
        assert sorted(r[1] for r in rows) == sorted(wanted) and {r[2] for r in rows} == {"fetched"}
        fetched_requests = len(mast.downloads())

        ran = hstlc_pipeline()
        assert ran["failed"] == {}
        assert ran["ingested"] == sorted({name.split("_")[0] for name in wanted})
        assert not list(settings.ingest_dir.iterdir())

        again = download()["download"]
        assert again["fetched"] == {} and again["failed"] == {}
        assert set(again["skipped"].values()) == {"in the catalogue (metadata)"}
        assert len(mast.downloads()) == fetched_requests  # nothing fetched twice
        assert not any(r.product in {p.name for d in archive["calibration"] for p in d.files}
                       for r in mast.downloads())
    assert len(rows_of_runs(settings)) == len(wanted)  # the second run had no file to record


def test_mast_unreachable_fails_the_flow_in_one_line_and_the_pipeline_still_runs(mast_home, archive,
                                                                                    monkeypatch):
    from flows.download import download

    with MastStandIn([]) as gone:
        closed = gone.url
    mast_home(closed)
    monkeypatch.setenv("HSTLC_DOWNLOAD_RETRIES", "1")
    settings = load_settings()
    settings.ingest_dir.mkdir(parents=True)
    for path in archive["synth"][2].files:
        shutil.copy2(path, settings.ingest_dir)
    state = download(run_pipeline=True, return_state=True)
    assert state.is_failed()
    assert "\n" not in state.message and closed in state.message and "did not answer" in state.message
    outcome = state.result(raise_on_failure=False)
    assert outcome["ingested"] == [archive["synth"][2].name.lower()]  # the pipeline ran
    manifest = json.loads(Path(outcome["download"]["manifest"]).read_text())
    assert manifest["error"] == state.message and manifest["fetched"] == {}


def test_the_target_run_fetches_that_target_first(mast_home, archive):
    from flows.pipeline import hstlc_pipeline, reprocess_target

    first, second = archive["synth"][0], archive["synth"][1]
    settings = load_settings()
    settings.ingest_dir.mkdir(parents=True)
    for path in first.files:
        shutil.copy2(path, settings.ingest_dir)
    with MastStandIn([first, second, *archive["other"]]) as mast:
        mast_home(mast.url)
        assert hstlc_pipeline()["ingested"] == [first.name.lower()]
        summary = reprocess_target(target="SYNTH-STAR", fetch=True)
        fetched = {r.product for r in mast.downloads()}
        searched = next(r.body for r in mast.requests if r.path.endswith("/search"))
    assert fetched == {p.name for p in second.files}  # the target's new data only
    assert {"sci_targname": "SYNTH-STAR,SYNTHSTAR"} in searched["conditions"]
    assert summary["ingested"] == sorted([first.name.lower(), second.name.lower()])
    assert summary["failed"] == {} and summary["download"]["failed"] == {}
    assert len(summary["composites"]["written"]) == 1


def test_dry_run_lists_what_would_be_fetched_and_fetches_nothing(mast_home, archive, capsys):
    from hstlc.cli import main

    with MastStandIn(archive["synth"]) as mast:
        mast_home(mast.url)
        code = main(["download", "--dry-run", "--limit", "2"])
        out = capsys.readouterr().out
        assert mast.downloads() == []
    settings = load_settings()
    assert code == 0
    assert sum(p.name in out for d in archive["synth"] for p in d.files) == 4  # 2 datasets of 3
    assert "4 files of 2 datasets to fetch" in out and "1 left for the next run (limit 2)" in out
    assert "dry run: nothing was fetched" in out
    assert not settings.ingest_dir.exists() or not list(settings.ingest_dir.iterdir())
    assert not settings.download_dir.exists()


def test_the_scheduled_download_runs_before_the_nightly_pipeline():
    from prefect.client.schemas.schedules import CronSchedule

    from deployments.serve import DEPLOYMENTS
    from hstlc.config import Settings

    settings = Settings(home_dir=Path("unused"))
    served = {d.name: d for d in (make(settings) for make in DEPLOYMENTS)}
    scheduled = served["scheduled"]
    assert scheduled.entrypoint == "flows/download.py:download"
    assert scheduled.parameters == {"run_pipeline": False}
    assert [s.schedule.cron for s in scheduled.schedules] == [settings.download_cron]
    spec = {d["name"]: d for d in yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]}
    assert spec["scheduled"]["parameters"] == {"run_pipeline": False}
    assert spec["scheduled"]["schedules"][0]["cron"] == settings.download_cron
    download_hour = CronSchedule(cron=settings.download_cron, timezone="UTC")
    nightly_hour = CronSchedule(cron=settings.nightly_cron, timezone="UTC")
    assert int(download_hour.cron.split()[1]) < int(nightly_hour.cron.split()[1])
    from flows.pipeline import reprocess_target

    assert "fetch" in reprocess_target.parameters.properties  # the ad-hoc target run's option
