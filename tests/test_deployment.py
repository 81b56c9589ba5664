"""A real Prefect server, `hstlc serve`, and a triggered ad-hoc target deployment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from builders import build_cos_nuv
from pgcluster import free_port
from sqlalchemy import select, text

from hstlc.catalogue.engine import create_catalogue_engine, session_scope
from hstlc.catalogue.models import Metadata, Outputs

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def start(command: list[str], env: dict[str, str], log: Path,
          cwd: Path | None = None) -> subprocess.Popen:
    with open(log, "wb") as handle:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(command, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=cwd)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def wait_for(predicate, timeout: float, what: str, logs: list[Path]):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(1)
    tails = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in logs if p.exists())
    raise AssertionError(f"timed out waiting for {what}\n{tails}")


def get(url: str):
    try:
        response = httpx.get(url, timeout=5)
        return response if response.status_code == 200 else None
    except httpx.HTTPError:
        return None


def trigger(url: str, body: dict) -> str:
    """Create a flow run; the server answers 503 while its SQLite database is busy."""
    for _ in range(30):
        response = httpx.post(url, json=body, timeout=10)
        if response.status_code != 503:
            response.raise_for_status()
            return response.json()["id"]
        time.sleep(1)
    response.raise_for_status()
    raise AssertionError("unreachable")


def child_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a server, worker or command: no HSTLC_/PREFECT_ value of ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HSTLC_", "PREFECT_"))}
    env.update(PREFECT_HOME=str(tmp_path / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               DO_NOT_TRACK="1", MPLBACKEND="Agg", **extra)
    return env


def run_adhoc_target(api: str, target: str, timeout: float, logs: list[Path]) -> str:
    """Start the ad-hoc target deployment; its final state type once it ends."""
    deployment = get(f"{api}/deployments/name/reprocess-target/adhoc").json()
    run_id = trigger(f"{api}/deployments/{deployment['id']}/create_flow_run",
                     {"parameters": {"target": target}})

    def finished():
        flow_run = get(f"{api}/flow_runs/{run_id}")
        state = flow_run.json()["state"]["type"] if flow_run is not None else None
        return state if state in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"} else None

    return wait_for(finished, timeout, "the ad-hoc target run", logs)


@contextmanager
def prefect_server(env: dict[str, str], log: Path, other_logs: list[Path], timeout: float):
    """A Prefect server on a free port, healthy, its API in ``env``; stopped at the end.

    Yields the API URL and the logs to show when a wait times out.
    """
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    logs = [log, *other_logs]
    server = start([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port",
                    str(port)], env, log)
    try:
        wait_for(lambda: get(f"{api}/health"), timeout, "the Prefect server", logs)
        env["PREFECT_API_URL"] = api
        yield api, logs
    finally:
        stop(server)


def first_run(env: dict[str, str], home: Path, targname: str) -> tuple[Path, int]:
    """``hstlc run`` on one NUV dataset of ``targname``: its lightcurve and that file's mtime."""
    build_cos_nuv(home / "ingest", rootname="lb1c02nuq", seed=5, exptime=200.0, targname=targname)
    run = subprocess.run([str(BIN / "hstlc"), "run"], env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    curve = home / "outputs" / targname / "lb1c02nuq_curve.fits"
    return curve, curve.stat().st_mtime_ns


def test_serve_without_a_prefect_server_is_refused(tmp_path):
    env = child_env(tmp_path, HSTLC_HOME_DIR=str(tmp_path / "home"))
    result = subprocess.run([str(BIN / "hstlc"), "serve"], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2
    assert "PREFECT_API_URL" in result.stderr and "prefect server start" in result.stderr


def test_served_adhoc_target_deployment_runs(tmp_path):
    home = tmp_path / "home"
    env = child_env(tmp_path, HSTLC_HOME_DIR=str(home),
                    PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="2")
    serve_log = tmp_path / "serve.log"
    with prefect_server(env, tmp_path / "server.log", [serve_log], 120) as (api, logs):
        curve, first_mtime = first_run(env, home, "DEPLOY-STAR")
        serve = start([str(BIN / "hstlc"), "serve"], env, serve_log)
        try:
            wait_for(lambda: get(f"{api}/deployments/name/reprocess-target/adhoc"), 120,
                     "the served deployment", logs)
            nightly = get(f"{api}/deployments/name/hstlc_pipeline/nightly").json()
            assert nightly["schedules"][0]["schedule"]["cron"] == "0 6 * * *"

            def scheduled():  # the server's scheduler makes runs for the nightly schedule
                response = httpx.post(f"{api}/flow_runs/filter", timeout=10, json={
                    "deployments": {"id": {"any_": [nightly["id"]]}},
                    "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}}})
                return response.status_code == 200 and len(response.json()) > 0

            wait_for(scheduled, 120, "scheduled runs of the nightly deployment", logs)
            assert run_adhoc_target(api, "DEPLOY-STAR", 180, logs) == "COMPLETED"
        finally:
            stop(serve)
    assert curve.stat().st_mtime_ns > first_mtime  # re-extracted by the deployment
    engine = create_catalogue_engine(f"sqlite:///{home / 'hstlc.db'}")
    with session_scope(engine) as session:
        names = set(session.scalars(select(Metadata.filename)))
        outputs = session.execute(select(Outputs.individual_filename, Outputs.composite_filename)).all()
    engine.dispose()
    assert names == {"lb1c02nuq_corrtag.fits", "lb1c02nuq_x1d.fits"}
    assert outputs == [("lb1c02nuq_curve.fits",
                        "hlsp_hstlc_hst_cos-nuv_deploystar_g185m_1882_psa_v1_sci.fits")]


def test_prefect_yaml_entrypoints_and_schedules_load():
    import importlib

    import yaml
    from prefect.flows import Flow

    spec = yaml.safe_load((Path(__file__).resolve().parents[1] / "prefect.yaml").read_text())
    names = {}
    for deployment in spec["deployments"]:
        path, name = deployment["entrypoint"].split(":")
        module = path.removesuffix(".py").replace("/", ".")
        flow = getattr(importlib.import_module(module), name)
        assert isinstance(flow, Flow)
        names[deployment["name"]] = flow.name
        assert deployment["work_pool"]["name"] == "hstlc-process"
        assert deployment["concurrency_limit"] == 1
    assert names == {"nightly": "hstlc_pipeline", "adhoc": "reprocess-target", "scheduled": "download"}
    from prefect.client.schemas.schedules import CronSchedule

    CronSchedule(cron=spec["deployments"][0]["schedules"][0]["cron"], timezone="UTC")


def test_prefect_yaml_agrees_with_the_served_deployments():
    """Both ways of deploying run the same flows, with the same names, tags and schedule."""
    import yaml

    from deployments.serve import DEPLOYMENTS
    from hstlc.config import Settings

    spec = yaml.safe_load((Path(__file__).resolve().parents[1] / "prefect.yaml").read_text())
    settings = Settings(home_dir=Path("unused"))
    served = {d.name: d for d in (make(settings) for make in DEPLOYMENTS)}
    assert set(served) == {d["name"] for d in spec["deployments"]}
    crons = {}
    for entry in spec["deployments"]:
        deployment = served[entry["name"]]
        assert deployment.entrypoint == entry["entrypoint"]
        assert sorted(deployment.tags) == sorted(entry["tags"])
        assert deployment.description == entry["description"]
        crons[entry["name"]] = [s["cron"] for s in entry.get("schedules", [])]
        assert [s.schedule.cron for s in deployment.schedules or []] == crons[entry["name"]]
    assert crons["nightly"] == [settings.nightly_cron]  # the default schedule, both ways


@pytest.mark.parametrize("script", ["hstlc_pipeline", "ingest_hstlc"])
def test_2016_named_pipeline_scripts_are_installed(script):
    result = subprocess.run([str(BIN / script), "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "-corrtag_extract" in result.stdout


@pytest.mark.postgres
def test_production_stack_prefect_and_catalogue_on_postgresql(tmp_path, pg_cluster):
    """The README's production path on one machine: a Prefect server on its own PostgreSQL
    database, the catalogue on PostgreSQL, ``prefect deploy --all`` from ``prefect.yaml``,
    a process work pool and worker, and the ad-hoc target deployment run through them."""
    root = Path(__file__).resolve().parents[1]
    prefect_db = pg_cluster.create_database("prefect").replace("+psycopg2", "+asyncpg")
    catalogue_url = pg_cluster.create_database("hstlc_production")
    home = tmp_path / "home"
    env = child_env(tmp_path, PREFECT_SERVER_DATABASE_CONNECTION_URL=prefect_db,
                    HSTLC_HOME_DIR=str(home), HSTLC_DB_CONNECTION_STRING=catalogue_url)
    worker_log = tmp_path / "worker.log"
    with prefect_server(env, tmp_path / "server.log", [worker_log], 180) as (api, logs):
        curve, first_mtime = first_run(env, home, "TEST-STAR")
        for command in (["work-pool", "create", "hstlc-process", "--type", "process"],
                        ["--no-prompt", "deploy", "--all"]):
            done = subprocess.run([str(BIN / "prefect"), *command], env=env, cwd=root,
                                  capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stdout + done.stderr
        worker = start([str(BIN / "prefect"), "worker", "start", "--pool", "hstlc-process"],
                       env, worker_log, cwd=root)
        try:
            assert run_adhoc_target(api, "TEST-STAR", 240, logs) == "COMPLETED"  # on the worker
        finally:
            stop(worker)
    assert curve.stat().st_mtime_ns > first_mtime  # re-extracted by the deployed run
    engine = create_catalogue_engine(catalogue_url)
    with session_scope(engine) as session:
        assert set(session.scalars(select(Metadata.filename))) == {
            "lb1c02nuq_corrtag.fits", "lb1c02nuq_x1d.fits"}
    engine.dispose()
    prefect_engine = create_catalogue_engine(prefect_db.replace("+asyncpg", "+psycopg2"))
    with prefect_engine.connect() as connection:  # the server's own records are in PostgreSQL
        stored = set(connection.execute(text("SELECT name FROM flow_run")).scalars())
    prefect_engine.dispose()
    assert {name.split("-2")[0] for name in stored} >= {
        "hstlc-pipeline", "ingest", "composite", "reprocess-TEST-STAR", "process-TEST-STAR"}


def flow_run_ended(api: str, run_id: str, timeout: float, logs: list[Path]) -> dict:
    """The flow run, read once it is in a final state."""
    def ended():
        flow_run = get(f"{api}/flow_runs/{run_id}")
        if flow_run is not None and flow_run.json()["state"]["type"] in {
                "COMPLETED", "FAILED", "CRASHED", "CANCELLED"}:
            return flow_run.json()
        return None

    return wait_for(ended, timeout, f"the end of flow run {run_id}", logs)


def catalogue_snapshot(home: Path) -> dict[str, tuple]:
    """Every metadata row by file name: its timestamps and those of its outputs row."""
    engine = create_catalogue_engine(f"sqlite:///{home / 'hstlc.db'}")
    with session_scope(engine) as session:
        rows = session.execute(
            select(Metadata.filename, Metadata.created_at, Metadata.updated_at,
                   Outputs.individual_filename, Outputs.created_at, Outputs.updated_at,
                   Outputs.composite_filename)
            .outerjoin(Outputs, Outputs.metadata_id == Metadata.id)).all()
    engine.dispose()
    return {row[0]: tuple(row[1:]) for row in rows}


def test_ui_retry_of_a_failed_deployed_run_redoes_only_the_failed_dataset(tmp_path):
    """A served nightly run with one dataset failed (its outputs/<TARGNAME> folder cannot be
    made: the path is a plain file), retried the way the Prefect UI's Retry button does it
    (``POST /flow_runs/<id>/set_state`` with a forced Scheduled "AwaitingRetry" state): the
    same flow run is run again by the serving process, redoes that dataset only and ends
    COMPLETED."""
    home = tmp_path / "home"
    ingest_dir = home / "ingest"
    good = {"lb1c02nuq": 1, "lb1c03nuq": 2}
    for rootname, seed in good.items():
        build_cos_nuv(ingest_dir, rootname=rootname, seed=seed, exptime=200.0,
                      targname="GOOD-STAR")
    build_cos_nuv(ingest_dir, rootname="lb1c04nuq", seed=3, exptime=200.0, targname="RETRY-STAR")
    inputs = sorted(p.name for p in ingest_dir.iterdir())
    assert len(inputs) == 6
    # An environmental fault the deployed process meets (chmod does not stop root): the
    # failing dataset's lightcurve folder cannot be created.
    obstacle = home / "outputs" / "RETRY-STAR"
    obstacle.parent.mkdir(parents=True)
    obstacle.write_text("in the way")

    env = child_env(tmp_path, HSTLC_HOME_DIR=str(home))
    serve_log = tmp_path / "serve.log"
    with prefect_server(env, tmp_path / "server.log", [serve_log], 120) as (api, logs):
        serve = start([str(BIN / "hstlc"), "serve"], env, serve_log)
        try:
            nightly = wait_for(lambda: get(f"{api}/deployments/name/hstlc_pipeline/nightly"),
                               120, "the served nightly deployment", logs).json()
            run_id = trigger(f"{api}/deployments/{nightly['id']}/create_flow_run", {})
            first = flow_run_ended(api, run_id, 240, logs)
            assert first["state"]["type"] == "FAILED", first["state"]
            assert first["run_count"] == 1
            assert sorted(p.name for p in ingest_dir.iterdir()) == [
                "lb1c04nuq_corrtag.fits", "lb1c04nuq_x1d.fits"]
            before = catalogue_snapshot(home)
            assert sorted(before) == [n for n in inputs if not n.startswith("lb1c04nuq")]
            curves = {r: home / "outputs" / "GOOD-STAR" / f"{r}_curve.fits" for r in good}
            mtimes = {r: c.stat().st_mtime_ns for r, c in curves.items()}
            composites = {p: p.stat().st_mtime_ns
                          for p in (home / "outputs" / "composite").glob("*.fits")}
            assert len(composites) == 1  # GOOD-STAR's, made from its two datasets

            obstacle.unlink()  # the fault is repaired; then Retry, as the UI sends it
            started = time.monotonic()
            response = httpx.post(f"{api}/flow_runs/{run_id}/set_state", timeout=10, json={
                "state": {"type": "SCHEDULED", "name": "AwaitingRetry",
                          "message": "Retry from the UI"},
                "force": True})
            response.raise_for_status()
            assert response.json()["status"] == "ACCEPT", response.json()
            retried = flow_run_ended(api, run_id, 240, logs)
            retry_s = time.monotonic() - started
        finally:
            stop(serve)
    assert retried["state"]["type"] == "COMPLETED", retried["state"]
    assert retried["run_count"] == 2  # the same flow run, run a second time
    after = catalogue_snapshot(home)
    for name, row in before.items():  # the datasets ingested first were not redone
        assert after[name] == row, name
    for rootname, curve in curves.items():
        assert curve.stat().st_mtime_ns == mtimes[rootname]
    for path, mtime in composites.items():
        assert path.stat().st_mtime_ns == mtime, path
    redone = sorted(set(after) - set(before))
    assert redone == ["lb1c04nuq_corrtag.fits", "lb1c04nuq_x1d.fits"]
    assert after["lb1c04nuq_corrtag.fits"][2] == "lb1c04nuq_curve.fits"
    assert after["lb1c04nuq_corrtag.fits"][5] is not None  # with its composite
    assert (home / "outputs" / "RETRY-STAR" / "lb1c04nuq_curve.fits").is_file()
    # every input exactly once, in filesystem/<TARGNAME>/
    assert not list(ingest_dir.iterdir())
    assert not (home / "bad_data").exists() or not list((home / "bad_data").rglob("*.fits"))
    kept = sorted(p.name for p in (home / "filesystem").rglob("*.fits"))
    assert kept == inputs
    assert sorted(p.name for p in (home / "filesystem" / "RETRY-STAR").iterdir()) == [
        "lb1c04nuq_corrtag.fits", "lb1c04nuq_x1d.fits"]
    print(f"first run: {first['state']['message']!r}; retry: {retry_s:.1f} s from Retry "
          "to COMPLETED; datasets redone: 1 of 3")
