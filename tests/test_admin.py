"""Operator commands: database and filesystem resets, in-process and as console scripts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from hstlc.catalogue.engine import create_catalogue_engine, session_scope
from hstlc.catalogue.models import BadData, Metadata, Outputs
from hstlc.catalogue.store import record_bad_data, upsert_metadata, upsert_output
from hstlc.cli import main, reset_hstlc_database, reset_hstlc_filesystem
from hstlc.config import load_settings
from hstlc.fs import Layout, Permissions, sha256_file


def tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` with its sha256."""
    return {str(p.relative_to(root)): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def populated(home):
    """A home with ingested inputs, products, plots, and one name clash in ingest/."""
    layout = Layout.from_settings(load_settings())
    layout.ensure()
    inputs = {
        "GJ-436/ld9m10ujq_corrtag_a.fits": b"event list 1",
        "GJ-436/ld9m10ujq_x1d.fits": b"spectrum 1",
        "AU-MIC/lb1c01abq_corrtag_a.fits": b"event list 2",
        "AU-MIC/lb1c01abq_corrtag_b.fits": b"event list 3",
        "AU-MIC/clash_x1d.fits": b"filesystem copy",
    }
    for name, content in inputs.items():
        path = layout.filesystem / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    (layout.ingest / "clash_x1d.fits").write_bytes(b"a different file waiting in ingest")
    (layout.outputs / "GJ-436").mkdir()
    (layout.outputs / "GJ-436" / "ld9m10ujq_curve.fits").write_bytes(b"lc")
    (layout.composite / "hlsp_hstlc_hst_cos-fuv_gj-436_g130m_1291_psa_v1_sci.fits").write_bytes(b"c")
    (layout.plots / "index.html").write_text("<html></html>")
    return layout


def test_fs_reset_dry_run_changes_nothing(populated, home, capsys):
    before = tree(home)
    assert main(["fs", "reset", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would move" in out and "would remove" in out and "would keep" in out
    after = {k: v for k, v in tree(home).items() if not k.startswith("logs/")}
    assert after == before


def test_fs_reset_loses_no_input(populated, home, capsys):
    layout = populated
    inputs_before = tree(layout.filesystem)
    ingest_before = tree(layout.ingest)
    assert reset_hstlc_filesystem(["--yes"]) == 0
    # Every input still exists, byte for byte, in ingest/ or (clash) where it was.
    surviving = set(tree(layout.ingest).values()) | set(tree(layout.filesystem).values())
    assert set(inputs_before.values()) <= surviving
    assert set(ingest_before.values()) <= set(tree(layout.ingest).values())
    for name in ("ld9m10ujq_corrtag_a.fits", "ld9m10ujq_x1d.fits", "lb1c01abq_corrtag_b.fits"):
        assert (layout.ingest / name).is_file()
    assert (layout.filesystem / "AU-MIC" / "clash_x1d.fits").read_bytes() == b"filesystem copy"
    assert (layout.ingest / "clash_x1d.fits").read_bytes() == b"a different file waiting in ingest"
    # Products are gone, inputs are not.
    assert list(layout.outputs.iterdir()) == [] and list(layout.plots.iterdir()) == []
    assert not (layout.filesystem / "GJ-436").exists()  # emptied folders removed
    assert "kept" in capsys.readouterr().out


def test_fs_reset_asks_first(populated, home, monkeypatch):
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    before = tree(home)
    assert main(["fs", "reset"]) == 1
    assert {k: v for k, v in tree(home).items() if not k.startswith("logs/")} == before


def fill_catalogue(url: str) -> None:
    engine = create_catalogue_engine(url)
    with session_scope(engine) as session:
        for index in range(3):
            record = {
                "filename": f"root{index}_corrtag_a.fits", "path": "/p", "telescop": "HST",
                "instrume": "COS", "targname": "T", "cal_ver": "1", "obstype": "SPECTROSCOPIC",
                "cenwave": 1291, "aperture": "PSA", "detector": "FUV", "opt_elem": "G130M",
                "fppos": 3, "rootname": f"root{index}", "sha256": str(index) * 64,
            }
            upsert_output(session, upsert_metadata(session, record), individual_filename="x")
        record_bad_data(session, "bad.fits", "No events", detail="bad.fits: 0 events")
    engine.dispose()


def counts(url: str) -> dict[str, int]:
    engine = create_catalogue_engine(url)
    with session_scope(engine) as session:
        result = {model.__tablename__: session.scalar(select(func.count()).select_from(model))
                  for model in (Metadata, Outputs, BadData)}
    engine.dispose()
    return result


def test_db_reset_all_keep_bad_data_and_one_table(home, monkeypatch):
    assert main(["db", "upgrade"]) == 0
    url = load_settings().database_url
    fill_catalogue(url)
    assert reset_hstlc_database(["--yes", "--keep-bad-data"]) == 0
    assert counts(url) == {"metadata": 0, "outputs": 0, "bad_data": 1}
    fill_catalogue(url)
    assert main(["db", "reset", "outputs", "--yes"]) == 0
    assert counts(url) == {"metadata": 3, "outputs": 0, "bad_data": 1}
    monkeypatch.setattr("builtins.input", lambda prompt: "no")
    assert main(["db", "reset"]) == 1  # declined: nothing deleted
    assert counts(url) == {"metadata": 3, "outputs": 0, "bad_data": 1}
    assert main(["db", "reset", "nosuchtable", "--yes"]) == 2
    assert main(["db", "reset", "bad_data", "--keep-bad-data", "--yes"]) == 2  # contradictory
    assert counts(url) == {"metadata": 3, "outputs": 0, "bad_data": 1}


def test_fs_reset_empties_a_composite_folder_outside_outputs(home, monkeypatch):
    monkeypatch.setenv("HSTLC_COMPOSITE_DIR", str(home / "hlsp"))
    layout = Layout.from_settings(load_settings())
    layout.ensure()
    (layout.composite / "hlsp_hstlc_hst_cos-nuv_star_g185m_1882_psa_v1_sci.fits").write_bytes(b"c")
    (layout.filesystem / "STAR").mkdir()
    (layout.filesystem / "STAR" / "lb1c02nuq_corrtag.fits").write_bytes(b"events")
    assert main(["fs", "reset", "--yes"]) == 0
    assert list(layout.composite.iterdir()) == []
    assert (layout.ingest / "lb1c02nuq_corrtag.fits").read_bytes() == b"events"


def test_missing_permission_group_is_one_warning(home, tmp_path, caplog):
    permissions = Permissions(group="no-such-group-hstlc-once")  # warned once per process
    for index in range(3):
        path = tmp_path / f"file{index}"
        path.write_text("x")
        permissions.apply(path)
    assert caplog.text.count("does not exist on this machine") == 1


def test_db_upgrade_and_check_on_postgresql(pg_cluster, home, monkeypatch, capsys):
    url = pg_cluster.create_database("hstlc_cli")
    monkeypatch.setenv("HSTLC_DB_CONNECTION_STRING", url)
    assert main(["db", "upgrade"]) == 0
    assert main(["db", "check"]) == 0
    assert "no difference" in capsys.readouterr().out


def test_every_command_writes_a_log_with_versions(home):
    assert main(["db", "upgrade"]) == 0
    logs = list((home / "logs").glob("hstlc-db-upgrade-*.log"))
    assert len(logs) == 1
    first = logs[0].read_text().splitlines()[0]
    for name in ("python", "numpy", "astropy", "sqlalchemy", "hstlc"):
        assert name in first


@pytest.mark.parametrize("script", ["hstlc", "reset_hstlc_database", "reset_hstlc_filesystem"])
def test_console_scripts_are_installed(script, home):
    path = shutil.which(script, path=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    assert path is not None, f"{script} is not installed"
    result = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "usage" in result.stdout
