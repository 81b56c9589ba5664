"""The stats table end to end: the subflow in the pipeline, incremental rows, the commands."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from builders import build_cos_nuv
from sqlalchemy import select

from hstlc.catalogue.engine import create_catalogue_engine, session_scope
from hstlc.catalogue.models import Stats
from hstlc.config import load_settings
from hstlc.io.lightcurve_file import Lightcurve, read_lightcurve, write_lightcurve
from hstlc.variability.stats import StatsConfig
from hstlc.variability.table import StatsJob, compute_row

pytestmark = pytest.mark.usefixtures("prefect_harness")


def rows(settings) -> dict[str, Stats]:
    engine = create_catalogue_engine(settings.database_url)
    with session_scope(engine) as session:
        found = {row.lightcurve_filename: row for row in session.scalars(select(Stats))}
        session.expunge_all()
    engine.dispose()
    return found


def test_pipeline_writes_a_row_per_lightcurve_and_recomputes_only_what_changed(settings, real_data,
                                                                              capsys):
    from hstlc.cli import main

    ingest = Path(settings.ingest_dir)
    ingest.mkdir(parents=True)
    for path in (real_data / "cos_fuv_g130m_gj436").iterdir():
        shutil.copy2(path, ingest / path.name)
    build_cos_nuv(ingest, rootname="lb1c02nuq", seed=3, exptime=300.0, targname="NUV-STAR")
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    assert "statistics of 5 lightcurves computed, 0 without" in out
    first = rows(settings)
    composite = next(name for name in first if name.startswith("hlsp_") and "gj436" in name)
    nuv_composite = next(name for name in first if name.startswith("hlsp_") and "nuv" in name)
    assert {row.kind for row in first.values()} == {"individual", "composite"}
    gj436 = [row for row in first.values() if row.targname == "GJ-436"]
    assert len(gj436) == 3
    for row in first.values():  # the 2016 statistics, a verdict, and the file's hash
        assert row.reason is None and row.n_bins > 100 and row.total > 0, row.lightcurve_filename
        assert row.poisson_factor > 0 and -1 <= row.pearson_r <= 1 and 0 <= row.fap <= 1
        assert len(row.sha256) == 64
    # deliver: GJ 436's FUV composite has ~590 counts, below the 1000 of the default rule
    assert not first[composite].deliver and first[nuv_composite].deliver
    assert not any(first[name].deliver for name in first if name.endswith("_curve.fits"))
    members = sum(first[name].total for name in first if name.startswith("ld9m"))
    assert 0.95 * members < first[composite].total <= members  # the common band is narrower
    with fits.open(Path(first[composite].lightcurve_path) / composite) as hdus:
        assert "bjd_tdb" in hdus["LIGHTCURVE"].columns.names

    assert main(["stats"]) == 0  # nothing changed: nothing computed
    assert "statistics of 0 lightcurves computed" in capsys.readouterr().out
    nuv = Path(first["lb1c02nuq_curve.fits"].lightcurve_path) / "lb1c02nuq_curve.fits"
    lc = read_lightcurve(nuv)
    write_lightcurve(Lightcurve(**{**lc.columns(), "counts": lc.counts * 2}, meta=lc.meta), nuv)
    assert main(["stats", "individual"]) == 0
    assert "statistics of 1 lightcurves computed" in capsys.readouterr().out
    doubled = rows(settings)["lb1c02nuq_curve.fits"].total
    assert doubled == pytest.approx(2 * first["lb1c02nuq_curve.fits"].total)
    assert main(["stats", "--all"]) == 0
    assert "statistics of 5 lightcurves computed" in capsys.readouterr().out

    assert main(["stats", "show", "--sort", "fap", "--target", "GJ-436", "--limit", "2"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["lightcurve", "kind", "target"] and len(table) == 3
    assert all("GJ-436" in line for line in table[1:])
    assert main(["stats", "show", "--sort", "nosuchcolumn"]) == 2


def test_an_unreadable_lightcurve_or_too_few_bins_gets_a_row_with_the_reason(tmp_path, home):
    url = load_settings().database_url
    broken = tmp_path / "broken_curve.fits"
    broken.write_bytes(b"not FITS at all" * 100)
    row = compute_row(StatsJob(broken, "individual", "X"), url, StatsConfig())
    assert row["reason"].startswith("unreadable:") and "broken_curve.fits" in row["reason"]
    assert row["total"] is None and row["sha256"] is not None

    short = tmp_path / "short_curve.fits"
    n = 5
    write_lightcurve(Lightcurve(bins=np.full(n, 2.0), times=np.arange(n) * 2.0,
                                mjd=60000 + np.arange(n) * 2 / 86400, gross=np.ones(n),
                                counts=np.ones(n), net=np.full(n, 0.5), flux=np.ones(n),
                                flux_error=np.ones(n), background=np.zeros(n), error=np.ones(n),
                                dataset=np.ones(n), meta={"rootname": "x"}), short)
    row = compute_row(StatsJob(short, "individual", "X"), url, StatsConfig(min_bins=20))
    assert row["reason"] == "fewer than 20 exposed bins (5)" and row["n_bins"] == 5


def test_a_lightcurve_without_bjd_tdb_gets_the_column_when_its_stats_are_computed(tmp_path, home):
    made = build_cos_nuv(tmp_path, rootname="lb1c02nuq", seed=3, exptime=300.0)
    from hstlc.extraction.extract import extract_lightcurve

    lc = extract_lightcurve(made["corrtag"])
    path = write_lightcurve(Lightcurve(**{**lc.columns(), "bjd_tdb": None}, meta=lc.meta),
                            tmp_path / "old_curve.fits")
    assert read_lightcurve(path).bjd_tdb is None
    row = compute_row(StatsJob(path, "individual", "X"), load_settings().database_url, StatsConfig())
    again = read_lightcurve(path)
    np.testing.assert_allclose(again.bjd_tdb, lc.bjd_tdb, rtol=0, atol=1e-9)
    assert row["reason"] is None
    with fits.open(path) as hdus:  # the rest of the file is kept
        assert [hdu.name for hdu in hdus] == ["PRIMARY", "LIGHTCURVE", "GTI"]
        assert hdus["LIGHTCURVE"].header["STEPSIZE"] == lc.meta["step"]
