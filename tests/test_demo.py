"""The demo set: placed in ingest/ once, never again while it is there or catalogued."""

from __future__ import annotations

import os

import pytest

from hstlc.catalogue.engine import engine_for, session_scope
from hstlc.catalogue.store import record_bad_data, upsert_metadata
from hstlc.config import load_settings
from hstlc.demo import DemoPlacement, prepare_demo
from hstlc.errors import SHORT_EXPOSURE

SYNTHETIC_NAMES = sorted([
    "lb1c01d1q_corrtag_a.fits", "lb1c01d1q_corrtag_b.fits", "lb1c01d1q_x1d.fits",
    "lb1c02d2q_corrtag.fits", "lb1c02d2q_x1d.fits", "o5d601d3q_tag.fits", "o5d601d3q_x1d.fits",
    "lb1c03d4q_corrtag_a.fits", "lb1c04d5q_corrtag_a.fits",
])


@pytest.fixture
def synthetic(home, monkeypatch):
    """Settings of an empty home whose demo is the synthetic sample."""
    monkeypatch.setenv("HSTLC_DEMO_DATA", "synthetic")
    return load_settings()


def listing(folder):
    return sorted(os.listdir(folder))


def test_demo_run_twice_places_its_files_once(synthetic):
    ingest = synthetic.folder("ingest_dir")
    first = prepare_demo(synthetic)
    assert sorted(p.name for p in first.placed) == SYNTHETIC_NAMES and first.present == ()
    assert all(p.parent == ingest for p in first.placed)
    contents = {name: (ingest / name).read_bytes() for name in SYNTHETIC_NAMES}
    second = prepare_demo(synthetic)
    assert second == DemoPlacement(placed=(), present=tuple(SYNTHETIC_NAMES))
    assert listing(ingest) == SYNTHETIC_NAMES  # no duplicate, no staging folder left
    assert {name: (ingest / name).read_bytes() for name in SYNTHETIC_NAMES} == contents


def test_demo_leaves_out_what_is_filed_or_catalogued(synthetic):
    ingest, filesystem = synthetic.folder("ingest_dir"), synthetic.folder("filesystem_dir")
    bad_data = synthetic.folder("bad_data_dir")
    prepare_demo(synthetic)
    (filesystem / "DEMO-FLARE-STAR").mkdir(parents=True)
    bad_data.mkdir()
    (ingest / "lb1c01d1q_corrtag_a.fits").rename(filesystem / "DEMO-FLARE-STAR" / "lb1c01d1q_corrtag_a.fits")
    (ingest / "lb1c03d4q_corrtag_a.fits").rename(bad_data / "lb1c03d4q_corrtag_a.fits.0123abcd")
    for name in ("lb1c02d2q_corrtag.fits", "lb1c04d5q_corrtag_a.fits", "o5d601d3q_tag.fits"):
        (ingest / name).unlink()
    with session_scope(engine_for(synthetic.database_url)) as session:
        upsert_metadata(session, {
            "filename": "lb1c02d2q_corrtag.fits", "path": "/elsewhere/DEMO-NUV-STAR",
            "telescop": "HST", "instrume": "COS", "targname": "DEMO-NUV-STAR",
            "cal_ver": "3.3.4", "obstype": "SPECTROSCOPIC", "cenwave": 2950, "aperture": "PSA",
            "detector": "NUV", "opt_elem": "G230L", "fppos": 3, "rootname": "lb1c02d2q",
            "sha256": "a" * 64})
        record_bad_data(session, "lb1c04d5q_corrtag_a.fits", SHORT_EXPOSURE, sha256="b" * 64)
    again = prepare_demo(synthetic)
    assert again.placed == (ingest / "o5d601d3q_tag.fits",)  # known nowhere: placed again
    assert again.present == tuple(name for name in SYNTHETIC_NAMES if name != "o5d601d3q_tag.fits")
    assert listing(ingest) == sorted(["lb1c01d1q_corrtag_b.fits", "lb1c01d1q_x1d.fits",
                                      "lb1c02d2q_x1d.fits", "o5d601d3q_x1d.fits",
                                      "o5d601d3q_tag.fits"])


def test_real_demo_files_are_copied_once(home, monkeypatch, real_data):
    monkeypatch.setenv("HSTLC_DEMO_DATA", str(real_data))
    settings = load_settings()
    first = prepare_demo(settings)
    assert len(first.placed) == 7 and first.present == ()
    second = prepare_demo(settings)
    assert second.placed == () and second.present == tuple(sorted(p.name for p in first.placed))
    assert listing(settings.folder("ingest_dir")) == sorted(p.name for p in first.placed)
