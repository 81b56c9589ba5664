"""Integrity of the ingest through the flows: names, links, refusals, composite files.

After every case, each input is exactly once in ``ingest/``, ``filesystem/<TARGNAME>/``
or ``bad_data/``, and every catalogue row points at a file that exists.
"""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import pytest
from astropy.io import fits
from builders import build_cos_nuv
from sqlalchemy import select

from hstlc.admin import apply_filesystem_reset, plan_filesystem_reset
from hstlc.catalogue.engine import create_catalogue_engine, session_scope
from hstlc.catalogue.models import BadData, Metadata, Outputs
from hstlc.fs import Layout, content_digest

pytestmark = pytest.mark.usefixtures("prefect_harness")


MODES = pytest.mark.parametrize("batch_size", [0, 2])


def entries(folder: Path) -> list[Path]:
    """Files and links of a folder (not following links, not hidden)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".")
                  and (p.is_symlink() or p.is_file()))


def snapshot(folder: Path) -> dict[str, str]:
    """``name -> content digest`` of the inputs about to be ingested."""
    return {p.name: content_digest(p) for p in entries(folder)}


def places(settings) -> list[Path]:
    folders = [settings.ingest_dir, settings.bad_data_dir]
    if settings.filesystem_dir.is_dir():
        folders += [f for f in settings.filesystem_dir.iterdir() if f.is_dir()]
    return [p for folder in folders for p in entries(folder)]


def assert_each_input_once(settings, inputs: dict[str, str]) -> None:
    """Every input (name, content) is exactly once in ingest/, filesystem/ or bad_data/."""
    found = places(settings)
    for name, digest in inputs.items():
        copies = [p for p in found if (p.name == name or p.name.startswith(f"{name}."))
                  and content_digest(p) == digest]
        assert len(copies) == 1, f"{name}: {copies}"


def assert_rows_point_at_files(settings) -> None:
    """Every catalogue row names a file that exists (a composite that holds its member)."""
    engine = create_catalogue_engine(settings.database_url)
    with session_scope(engine) as session:
        for row in session.scalars(select(Metadata)):
            assert content_digest(Path(row.path, row.filename)) == row.sha256, row.filename
        for bad in session.scalars(select(BadData)):
            assert bad.path and os.path.lexists(bad.path), bad.filename
            assert content_digest(Path(bad.path)) == bad.sha256, bad.path
        for out in session.scalars(select(Outputs)):
            if out.individual_filename:
                assert Path(out.individual_path, out.individual_filename).is_file()
            if out.composite_filename:
                members = composite_members(Path(out.composite_path, out.composite_filename))
                assert out.source.rootname in members, (out.composite_filename, members)
    engine.dispose()


def composite_members(path: Path) -> list[str]:
    with fits.open(path) as hdulist:
        return [str(name).strip() for name in hdulist["MEMBERS"].data["ROOTNAME"]]


def rows(settings, model):
    engine = create_catalogue_engine(settings.database_url)
    with session_scope(engine) as session:
        found = session.scalars(select(model)).all()
    engine.dispose()
    return found


def deliver(settings, files: dict[str, Path]) -> None:
    """Copy ``files`` into ingest/ under the given names."""
    settings.ingest_dir.mkdir(parents=True, exist_ok=True)
    for name, source in files.items():
        shutil.copy2(source, settings.ingest_dir / name)


# -- a name that disagrees with its ROOTNAME ----------------------------------------------------


@MODES
def test_a_name_mismatch_is_refused_and_an_exposure_counts_once(settings, tmp_path, batch_size):
    from flows.pipeline import hstlc_pipeline

    made = build_cos_nuv(tmp_path / "src", rootname="lb1c02nuq", seed=1, exptime=200.0)
    deliver(settings, {"lb1c02nuq_corrtag.fits": made["corrtag"], "lb1c02nuq_x1d.fits": made["x1d"],
                       "lb1c03nuq_corrtag.fits": made["corrtag"], "lb1c03nuq_x1d.fits": made["x1d"]})
    inputs = snapshot(settings.ingest_dir)
    summary = hstlc_pipeline(batch_size=batch_size)

    assert summary["ingested"] == ["lb1c02nuq"] and summary["failed"] == {}
    detail = summary["rejected"]["lb1c03nuq"]
    assert detail.startswith("Name mismatch: lb1c03nuq_") and "'lb1c03nuq'" in detail
    assert "'lb1c02nuq'" in detail
    assert {(r.filename, r.reason) for r in rows(settings, BadData)} == {
        ("lb1c03nuq_corrtag.fits", "Name mismatch"), ("lb1c03nuq_x1d.fits", "Name mismatch")}
    [composite] = [Path(item["path"]) for item in summary["composites"]["written"]]
    assert composite_members(composite) == ["lb1c02nuq"]
    assert_each_input_once(settings, inputs)
    assert_rows_point_at_files(settings)


def test_a_second_name_of_a_catalogued_exposure_is_refused(settings, tmp_path):
    """The same exposure as .fits and .fits.gz: one catalogue row, one member."""
    from flows.pipeline import hstlc_pipeline

    made = build_cos_nuv(tmp_path / "src", rootname="lb1c02nuq", seed=1, exptime=200.0)
    deliver(settings, {"lb1c02nuq_corrtag.fits": made["corrtag"], "lb1c02nuq_x1d.fits": made["x1d"]})
    assert hstlc_pipeline(batch_size=0)["ingested"] == ["lb1c02nuq"]
    gzipped = tmp_path / "lb1c02nuq_corrtag.fits.gz"
    gzipped.write_bytes(gzip.compress(made["corrtag"].read_bytes()))
    deliver(settings, {gzipped.name: gzipped})
    inputs = snapshot(settings.ingest_dir)
    summary = hstlc_pipeline(batch_size=0)
    detail = summary["rejected"]["lb1c02nuq"]
    assert detail.startswith("Name mismatch: lb1c02nuq_corrtag.fits.gz: ") and "catalogued" in detail
    assert sorted(r.filename for r in rows(settings, Metadata)) == [
        "lb1c02nuq_corrtag.fits", "lb1c02nuq_x1d.fits"]
    assert_each_input_once(settings, inputs)
    assert_rows_point_at_files(settings)


def test_force_never_moves_a_catalogued_dataset_to_bad_data(settings, tmp_path, monkeypatch):
    """A catalogued dataset that fails on re-processing keeps its files, rows and products."""
    from flows.pipeline import hstlc_pipeline

    made = build_cos_nuv(tmp_path / "src", rootname="lb1c02nuq", seed=1, exptime=200.0,
                         proposid=4242)
    deliver(settings, {"lb1c02nuq_corrtag.fits": made["corrtag"], "lb1c02nuq_x1d.fits": made["x1d"]})
    inputs = snapshot(settings.ingest_dir)
    first = hstlc_pipeline(batch_size=0)
    [composite] = [Path(item["path"]) for item in first["composites"]["written"]]
    before = {p: p.read_bytes() for p in [composite, *places(settings)]}
    curve = settings.outputs_dir / "TEST-STAR" / "lb1c02nuq_curve.fits"
    catalogue = sorted((r.filename, r.sha256, r.path) for r in rows(settings, Metadata))

    monkeypatch.setenv("HSTLC_BAD_PROPOSALS", "4242")
    state = hstlc_pipeline(force=True, batch_size=0, return_state=True)
    assert state.is_failed()  # the run says so: it does not end well
    summary = state.result(raise_on_failure=False)
    assert "re-processing refused (Bad Proposal)" in summary["failed"]["lb1c02nuq"]
    assert rows(settings, BadData) == [] and entries(settings.bad_data_dir) == []
    assert sorted((r.filename, r.sha256, r.path) for r in rows(settings, Metadata)) == catalogue
    assert {p: p.read_bytes() for p in before} == before
    assert curve.is_file() and curve.with_suffix(".png").is_file()
    assert composite_members(composite) == ["lb1c02nuq"]
    assert_each_input_once(settings, inputs)
    assert_rows_point_at_files(settings)


# -- symbolic links -------------------------------------------------------------------------------


@MODES
def test_symbolic_links_are_refused_without_touching_their_targets(settings, tmp_path, batch_size):
    from flows.ingest import ingest

    outside = tmp_path / "outside"
    made = build_cos_nuv(outside, rootname="lb1c09nuq", seed=1, exptime=200.0)
    target = made["corrtag"]
    os.chmod(target, 0o604)
    os.utime(target, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    kept = (target.stat().st_mode, target.stat().st_mtime_ns, target.read_bytes())
    settings.ingest_dir.mkdir(parents=True)
    links = {
        "lb1c04nuq_corrtag.fits": os.path.relpath(target, settings.ingest_dir),  # relative
        "lb1c05nuq_corrtag.fits": str(target),  # absolute
        "lb1c06nuq_corrtag.fits": str(outside),  # a folder
        "lb1c07nuq_corrtag.fits": str(tmp_path / "nothing.fits"),  # dangling
    }
    for name, text in links.items():
        os.symlink(text, settings.ingest_dir / name)
    build_cos_nuv(settings.ingest_dir, rootname="lb1c02nuq", seed=2, exptime=200.0)
    inputs = snapshot(settings.ingest_dir)

    summary = ingest(batch_size=batch_size)
    assert summary["ingested"] == ["lb1c02nuq"] and summary["failed"] == {}
    assert sorted(summary["rejected"]) == sorted(links)
    assert all(text.startswith("Symbolic link: ") for text in summary["rejected"].values())
    for name, text in links.items():
        moved = settings.bad_data_dir / name
        assert moved.is_symlink() and os.readlink(moved) == text
    assert (target.stat().st_mode, target.stat().st_mtime_ns, target.read_bytes()) == kept
    assert sorted(p.name for p in outside.iterdir()) == ["lb1c09nuq_corrtag.fits", "lb1c09nuq_x1d.fits"]
    assert entries(settings.ingest_dir) == []
    assert_each_input_once(settings, inputs)
    assert_rows_point_at_files(settings)
    # the next run finds nothing to do
    again = ingest(batch_size=batch_size)
    assert again["rejected"] == {} and again["ingested"] == []


# -- refused files are never overwritten ------------------------------------------------------


def test_a_refused_file_is_never_overwritten(settings, tmp_path):
    from flows.ingest import ingest

    first = build_cos_nuv(tmp_path / "one", rootname="lb1c02nuq", seed=1, exptime=200.0,
                          expflag="INTERRUPTED")
    second = build_cos_nuv(tmp_path / "two", rootname="lb1c02nuq", seed=2, exptime=300.0,
                           expflag="INTERRUPTED")
    names = ("lb1c02nuq_corrtag.fits", "lb1c02nuq_x1d.fits")
    deliver(settings, {names[0]: first["corrtag"], names[1]: first["x1d"]})
    inputs = {f"one/{k}": v for k, v in snapshot(settings.ingest_dir).items()}
    assert list(ingest(batch_size=0)["rejected"]) == ["lb1c02nuq"]
    deliver(settings, {names[0]: second["corrtag"], names[1]: second["x1d"]})
    seconds = snapshot(settings.ingest_dir)
    assert list(ingest(batch_size=2)["rejected"]) == ["lb1c02nuq"]

    kept = {p.name: content_digest(p) for p in entries(settings.bad_data_dir)}
    assert len(kept) == 4 and set(kept.values()) == {*(v for v in inputs.values()), *seconds.values()}
    for name in names:
        assert kept[name] == content_digest(Path(tmp_path / "one", name))
        assert kept[f"{name}.{seconds[name][:8]}"] == seconds[name]
    assert len(rows(settings, BadData)) == 4
    assert_each_input_once(settings, seconds)
    assert_rows_point_at_files(settings)

    # The same content refused again (forced) stays one file and one row.
    deliver(settings, {names[0]: second["corrtag"], names[1]: second["x1d"]})
    assert list(ingest(force=True, batch_size=0)["rejected"]) == ["lb1c02nuq"]
    assert {p.name: content_digest(p) for p in entries(settings.bad_data_dir)} == kept
    assert len(rows(settings, BadData)) == 4
    assert_rows_point_at_files(settings)

    # A filesystem reset loses none of them.
    layout = Layout.from_settings(settings)
    apply_filesystem_reset(layout, plan_filesystem_reset(layout))
    assert {p.name: content_digest(p) for p in entries(settings.bad_data_dir)} == kept


# -- two targets, one composite file -----------------------------------------------------------


def test_targets_with_one_safe_name_get_two_composites(settings):
    from flows.pipeline import hstlc_pipeline

    build_cos_nuv(settings.ingest_dir, rootname="lb1c02nuq", seed=1, exptime=200.0, targname="a/b")
    build_cos_nuv(settings.ingest_dir, rootname="lb1c03nuq", seed=2, exptime=200.0, targname="a:b")
    inputs = snapshot(settings.ingest_dir)
    summary = hstlc_pipeline(batch_size=0)
    assert summary["ingested"] == ["lb1c02nuq", "lb1c03nuq"]
    written = sorted(Path(item["path"]) for item in summary["composites"]["written"])
    assert len(set(written)) == 2
    assert sorted(composite_members(path)[0] for path in written) == ["lb1c02nuq", "lb1c03nuq"]
    assert_each_input_once(settings, inputs)
    assert_rows_point_at_files(settings)
