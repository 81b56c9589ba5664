"""Shared fixtures for the hstlc test suite."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Prefect reads its settings when first imported: set them before any test imports it.
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="hstlc-test-prefect-")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "hstlc")
os.environ.pop("PREFECT_API_URL", None)

import matplotlib  # noqa: E402
import pytest  # noqa: E402

matplotlib.use("Agg")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
REAL_DATA_DIR = Path(os.environ.get("HSTLC_REAL_DATA", PROJECT_ROOT.parent / "shared" / "data" / "real"))


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The folder of real HST files beside the project (``../shared/data/real``).

    Skips the test when the folder is absent (a machine outside this workplace).
    """
    if not REAL_DATA_DIR.is_dir():
        pytest.skip(f"real HST files not available: {REAL_DATA_DIR} does not exist")
    return REAL_DATA_DIR


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """No HSTLC_* variable or ./hstlc.yaml of the developer leaks into a test."""
    for name in list(os.environ):
        if name.startswith("HSTLC_") and name != "HSTLC_REAL_DATA":
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def _no_stop_request() -> None:
    """A request to stop (a full disk in an earlier test) belongs to that test's run."""
    from hstlc.processes import clear_stop

    clear_stop()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty hstlc home folder, selected through HSTLC_HOME_DIR; cwd is tmp_path."""
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "home"
    monkeypatch.setenv("HSTLC_HOME_DIR", str(folder))
    return folder


@pytest.fixture
def settings(home):
    """The settings of ``home``, its catalogue created at the newest schema."""
    from hstlc.catalogue.engine import create_catalogue_engine
    from hstlc.catalogue.migrate import upgrade
    from hstlc.config import load_settings

    settings = load_settings()
    engine = create_catalogue_engine(settings.database_url)
    upgrade(engine)
    engine.dispose()
    return settings


@pytest.fixture(scope="session")
def pg_cluster():
    """A throwaway PostgreSQL cluster on a free loopback port, stopped at the end."""
    from pgcluster import start_cluster

    try:
        cluster = start_cluster()
    except FileNotFoundError as error:
        pytest.skip(str(error))
    yield cluster
    cluster.stop()


_DB_COUNTER = iter(range(1, 1_000_000))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty catalogue database URL: SQLite file, then PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalogue.db'}"
    cluster = request.getfixturevalue("pg_cluster")
    return cluster.create_database(f"hstlc_test_{next(_DB_COUNTER)}")


@pytest.fixture
def engine(database_url: str):
    """An engine on a fresh catalogue with the schema at head."""
    from hstlc.catalogue.engine import create_catalogue_engine
    from hstlc.catalogue.migrate import upgrade

    engine = create_catalogue_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect server for the whole session (flows run against it)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            yield


@pytest.fixture(scope="session")
def built_site(real_data, prefect_harness, tmp_path_factory):
    """One pipeline run (real GJ-436 files, a synthetic COS NUV and a STIS dataset, the
    files to refuse) on its own home, shared by the site's tests: ``(settings, summary)``.

    The home's settings are selected through ``HSTLC_HOME_DIR`` only while the fixture
    runs the pipeline; tests that run commands on it set it again.
    """
    import shutil

    from builders import build_cos_nuv, build_stis_tag

    from hstlc.config import load_settings
    from hstlc.processes import clear_stop

    clear_stop()  # a session fixture runs before the function fixture that does it
    home = tmp_path_factory.mktemp("site") / "home"
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("HSTLC_") and name != "HSTLC_REAL_DATA":
                patch.delenv(name)
        patch.setenv("HSTLC_HOME_DIR", str(home))
        settings = load_settings()
        ingest = Path(settings.ingest_dir)
        ingest.mkdir(parents=True)
        for sub in ("cos_fuv_g130m_gj436", "reject"):
            for path in (real_data / sub).iterdir():
                shutil.copy2(path, ingest / path.name)
        build_cos_nuv(ingest, rootname="lb1c02nuq", seed=3, exptime=600.0, targname="NUV-STAR",
                      sinusoid={"period": 60.0, "amplitude": 0.5})
        build_stis_tag(ingest, rootname="oc5r01abq", seed=4, exptime=600.0, targname="STIS-STAR",
                       detector="NUV-MAMA",
                       flare={"start": 200.0, "duration": 60.0, "counts": 4000, "profile": "exponential"})
        build_stis_tag(ingest, rootname="oc5r02abq", seed=5, exptime=400.0, targname="STIS-STAR")
        from flows.pipeline import hstlc_pipeline

        summary = hstlc_pipeline()
    return settings, summary
