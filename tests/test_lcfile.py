"""The ``_curve.fits`` product: contents, provenance, atomic writing, reading back."""

from __future__ import annotations

import astropy
import builders as b
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

import hstlc
from hstlc.errors import UnreadableFileError
from hstlc.extraction.extract import extract_lightcurve
from hstlc.io.lightcurve_file import (
    COLUMNS,
    Lightcurve,
    derive_columns,
    lightcurve_filename,
    read_lightcurve,
    write_lightcurve,
)


@pytest.fixture(scope="module")
def lc(tmp_path_factory):
    pair = b.build_cos_fuv_pair(tmp_path_factory.mktemp("lc"), seed=31, exptime=300.0,
                                gti=[[0.0, 120.0], [150.0, 300.0]])
    return extract_lightcurve(pair["corrtag_a"])


def test_written_file_has_table_and_provenance(lc, tmp_path):
    path = write_lightcurve(lc, tmp_path / lightcurve_filename(lc.meta["rootname"]))
    assert path.name == "lb1c01abq_curve.fits"
    table = Table.read(path, hdu=1)
    assert table.colnames == [*COLUMNS, "bjd_tdb"]
    np.testing.assert_array_equal(table["gross"], lc.gross)
    assert str(table["bjd_tdb"].unit) == "d"
    assert str(table["flux"].unit) == "erg / (Angstrom s cm2)"
    with fits.open(path) as hdul:
        primary, header = hdul[0].header, hdul[1].header
        assert hdul[1].name == "LIGHTCURVE" and hdul[2].name == "GTI"
        assert primary["LC_VER"] == hstlc.__version__
        assert primary["NP_VER"] == np.__version__ and primary["AP_VER"] == astropy.__version__
        assert primary["ROOTNAME"] == "lb1c01abq" and primary["INSTRUME"] == "COS"
        assert header["TIMEREF"] == "START" and header["STEPSIZE"] == 2.0
        assert (header["WMIN"], header["WMAX"]) == (915.0, 1800.0)
        assert (header["AGLO1"], header["AGHI1"]) == (1208.0, 1225.0)
        assert header["FLUXCAL"] == "X1D" and header["SDQFLAGS"] == 8346
        assert header["YMAX_A"] - header["YMIN_A"] == 39
        assert header["B1MX_B"] - header["B1MN_B"] == 35
        assert header["BSCL_A"] == pytest.approx(39 / 70)
        assert header["INFILE01"] == "lb1c01abq_corrtag_a.fits"
        assert header["INSHA03"] == lc.meta["input_sha256"]["lb1c01abq_x1d.fits"]
        np.testing.assert_array_equal(hdul["GTI"].data["STOP"], [120.0, 300.0])


def test_read_back(lc, tmp_path):
    path = write_lightcurve(lc, tmp_path / "x_curve.fits")
    back = read_lightcurve(path)
    for name in COLUMNS:
        np.testing.assert_array_equal(getattr(back, name), getattr(lc, name))
    for key in ("rootname", "instrument", "targname", "cenwave", "wmin", "wmax", "step",
                "fluxcal", "input_files", "input_sha256", "airglow", "timeref"):
        assert back.meta[key] == lc.meta[key], key
    assert back.meta["gti"] == [[0.0, 120.0], [150.0, 300.0]]


def test_write_is_atomic(lc, tmp_path, monkeypatch):
    path = write_lightcurve(lc, tmp_path / "keep_curve.fits")
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(fits.HDUList, "writeto", broken)
    with pytest.raises(OSError, match="disk full"):
        write_lightcurve(lc, path)
    with pytest.raises(OSError):
        write_lightcurve(lc, tmp_path / "new_curve.fits")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep_curve.fits"]
    with pytest.raises(FileExistsError):
        write_lightcurve(lc, path, overwrite=False)


def test_lightcurve_is_frozen_and_checked(lc):
    with pytest.raises(AttributeError):
        lc.gross = lc.gross  # type: ignore[misc]
    with pytest.raises(ValueError):
        lc.gross[0] = 1.0
    columns = lc.columns()
    columns["net"] = columns["net"][:-1]
    with pytest.raises(ValueError, match="column"):
        Lightcurve(**columns)


def test_flux_error_where_counts_is_zero():
    cols = derive_columns(gross=np.array([4.0, 2.0, 6.0]), background=np.array([2.0, 2.0, 2.0]),
                          bins=np.array([2.0, 2.0, 1.0]), flux=np.array([2.0, 0.0, 8.0]))
    assert cols["counts"].tolist() == [2.0, 0.0, 4.0]
    per_count = (2.0 * 2.0 + 0.0 + 8.0 * 1.0) / 6.0  # sum(flux * bins) / sum(counts)
    np.testing.assert_allclose(cols["flux_error"],
                               [np.sqrt(6.0), np.sqrt(4.0) * per_count / 2.0, np.sqrt(8.0) * 2.0])
    assert np.all(np.isfinite(cols["flux_error"]))


def test_unreadable(tmp_path):
    bad = tmp_path / "bad_curve.fits"
    bad.write_text("not fits")
    with pytest.raises(UnreadableFileError, match="bad_curve.fits"):
        read_lightcurve(bad)


def test_more_than_99_inputs_keep_fits_keywords_standard(tmp_path):
    """A composite of 50 FUV pairs has 100+ inputs: no 9-character keyword is written."""
    from hstlc.io.lightcurve_file import provenance_cards

    names = [f"lb{n:05d}q_corrtag_a.fits" for n in range(150)]
    cards = provenance_cards({"input_files": names, "input_sha256": dict.fromkeys(names, "0" * 64)})
    keys = [key for key, _, _ in cards]
    assert all(len(key) <= 8 for key in keys)
    assert ("NINFILES", 150, "number of input files") in cards
    assert keys.count("INFILE99") == 1 and "INFILE100" not in keys


def test_bjd_tdb_is_the_bin_start_plus_the_light_travel_time(lc, tmp_path):
    """The column is JD(TDB) of each bin start, within 9 min of its UTC time (the light
    travel time across the Earth's orbit, plus TDB - UTC)."""
    from astropy.time import Time

    back = read_lightcurve(write_lightcurve(lc, tmp_path / "x_curve.fits"))
    utc = Time(back.mjd, format="mjd", scale="utc")
    offset_s = (back.bjd_tdb - (utc.tdb.jd1 + utc.tdb.jd2)) * 86400.0
    assert np.all(np.abs(offset_s) < 510.0) and np.ptp(offset_s) < 1.0
    comments = fits.getheader(tmp_path / "x_curve.fits", 1)["COMMENT"]
    assert "HST's own orbit" in " ".join(str(line) for line in comments)


def test_a_file_written_before_bjd_tdb_existed_reads_without_it(lc, tmp_path):
    path = write_lightcurve(Lightcurve(**{**lc.columns(), "bjd_tdb": None}, meta=lc.meta),
                            tmp_path / "old_curve.fits")
    assert "bjd_tdb" not in Table.read(path, hdu=1).colnames
    assert read_lightcurve(path).bjd_tdb is None
