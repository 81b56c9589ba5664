"""STIS ``_tag`` -> ``_corrtag`` conversion (hstlc.extraction.stis_corrtag)."""

from __future__ import annotations

import hashlib
import time
import warnings
from dataclasses import replace
from pathlib import Path

import builders as b
import numpy as np
import pytest
from astropy.io import fits

import hstlc
from hstlc.errors import MissingKeywordError, UnreadableFileError, UnsupportedProductError
from hstlc.extraction.boxes import SOURCE
from hstlc.extraction.stis_corrtag import (
    bad_pixel_dq,
    convert_events,
    default_corrtag_path,
    order_boxes,
    tag_to_corrtag,
)
from hstlc.io.reference_files import BadPixelRuns, resolve_reference
from hstlc.io.x1d import OrderGeometry, X1dRow, read_x1d

CORRTAG = [("TIME", "1D", "s"), ("RAWX", "1I", "pixel"), ("RAWY", "1I", "pixel"),
           ("XCORR", "1E", "pixel"), ("YCORR", "1E", "pixel"), ("WAVELENGTH", "1E", "angstrom"),
           ("EPSILON", "1E", None), ("DQ", "1I", None)]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _events(path: Path) -> tuple[fits.Header, fits.Header, fits.FITS_rec]:
    with fits.open(path) as hdul:
        return hdul[0].header.copy(), hdul[1].header.copy(), hdul[1].data.copy()


def _tag_columns(path: Path) -> dict[str, np.ndarray]:
    with fits.open(path) as hdul:
        return {n: np.array(hdul["EVENTS"].data[n]) for n in ("TIME", "AXIS1", "AXIS2",
                                                               "DETAXIS1")}


def test_first_order_columns_units_and_wavelengths(tmp_path: Path) -> None:
    built = b.build_stis_tag(tmp_path, mode="first_order", flare=b.Flare(100, 30, 200))
    before = _sha(built["tag"])
    out = tag_to_corrtag(built["tag"])
    assert out == tmp_path / "oc5r01abq_corrtag.fits"
    assert _sha(built["tag"]) == before  # the tag file is only read
    tag = _tag_columns(built["tag"])
    p, e, ev = _events(out)
    with fits.open(out) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "EVENTS", "GTI"]
        assert [(c.name, c.format, c.unit) for c in hdul[1].columns] == CORRTAG
        assert np.array_equal(hdul["GTI"].data["STOP"], [1000.0])
    assert np.array_equal(ev["TIME"], tag["TIME"])
    assert np.array_equal(ev["RAWX"], tag["DETAXIS1"]) and np.array_equal(ev["RAWY"], tag["AXIS2"])
    assert np.array_equal(ev["XCORR"], tag["AXIS1"]) and np.array_equal(ev["YCORR"], tag["AXIS2"])
    order = built["truth"].orders[1]
    expected = order.wavelength[tag["AXIS1"] // 2].astype(np.float32)
    assert np.array_equal(ev["WAVELENGTH"], expected)  # every event, even the background
    assert np.all(ev["EPSILON"] == 1.0) and np.all(ev["DQ"] == 0)
    assert (e["WAVESRC"], e["EPSSRC"], e["DQSRC"]) == ("X1D", "NONE", "NONE")
    for key in ("EXPSTART", "EXPEND", "EXPTIME", "EXPFLAG", "SDQFLAGS", "DATE-OBS"):
        assert key in e, key
    assert "TSCAL1" not in e and e["EXPFLAG"] == "NORMAL"
    assert (p["INSTRUME"], p["ROOTNAME"], p["FILENAME"]) == ("STIS", "oc5r01abq", out.name)
    assert p["HSTLCVER"] == hstlc.__version__ and p["TAGFILE"] == built["tag"].name
    assert p["X1DFILE"] == built["x1d"].name
    assert any(built["tag"].name in h for h in p["HISTORY"])


@pytest.mark.parametrize("shifta2", [0.0, 3.0, -2.5])
def test_echelle_events_land_in_their_orders(tmp_path: Path, shifta2: float) -> None:
    built = b.build_stis_tag(tmp_path, mode="echelle", shifta2=shifta2, n_orders=9,
                             flare={"start": 200, "duration": 40, "counts": 400})
    truth = built["truth"]
    out = tag_to_corrtag(built["tag"], built["x1d"])
    _, e, ev = _events(out)
    assert e["WAVESRC"] == "X1D"
    column = ev["XCORR"].astype(int) // 2
    for sporder, order in truth.orders.items():
        mine = truth.event_order == sporder
        assert mine.sum() == order.n_source + order.n_flare > 0
        assert np.array_equal(ev["WAVELENGTH"][mine],
                              order.wavelength[column[mine]].astype(np.float32)), sporder
    # background events outside every order's rows get WAVELENGTH 0
    row = ev["YCORR"] / 2.0
    centres = np.array([o.geometry.a2center + shifta2 for o in truth.orders.values()])
    half = np.array([o.geometry.extrsize / 2 for o in truth.orders.values()])
    outside = np.all(np.abs(row[:, None] - centres[None, :]) > half[None, :], axis=1)
    assert outside.sum() > 0
    assert np.all(ev["WAVELENGTH"][outside] == 0.0)
    assert np.all(ev["WAVELENGTH"][~outside] > 0.0)


def test_flats_give_epsilon_one_over_flat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    oref = tmp_path / "oref"
    _, pflat = b.build_stis_flat(oref, "synth_pfl.fits", shape=(1024, 1024), seed=1)
    _, lflat = b.build_stis_flat(oref, "synth_lfl.fits", shape=(2048, 2048), seed=2,
                                 filetype="LOW-ORDER FLAT")
    built = b.build_stis_tag(tmp_path / "data")
    tag = _tag_columns(built["tag"])
    x, y = tag["DETAXIS1"].astype(int), tag["AXIS2"].astype(int)  # flats: detector pixels
    assert np.any(x != tag["AXIS1"])  # the builder's Doppler shift makes the difference
    expected = 1.0 / (pflat[y // 2, x // 2].astype(float) * lflat[y, x].astype(float))

    out = tag_to_corrtag(built["tag"], reference_dir=oref)
    _, e, ev = _events(out)
    assert e["EPSSRC"] == "PFLTFILE+LFLTFILE"
    assert np.allclose(ev["EPSILON"], expected, rtol=1e-6)

    # the $oref environment variable works as well, and one flat alone is used alone
    (oref / "synth_lfl.fits").unlink()
    monkeypatch.setenv("oref", str(oref))
    out = tag_to_corrtag(built["tag"], out_path=tmp_path / "env_corrtag.fits")
    _, e, ev = _events(out)
    assert e["EPSSRC"] == "PFLTFILE"
    assert np.allclose(ev["EPSILON"], 1.0 / pflat[y // 2, x // 2], rtol=1e-6)


def test_small_flat_is_scaled_to_the_events(tmp_path: Path) -> None:
    oref = tmp_path / "oref"
    _, lflat = b.build_stis_flat(oref, "synth_lfl.fits", shape=(256, 256), seed=4)
    built = b.build_stis_tag(tmp_path / "data", mode="imaging")
    out = tag_to_corrtag(built["tag"], reference_dir=oref)
    tag = _tag_columns(built["tag"])
    _, e, ev = _events(out)
    assert e["EPSSRC"] == "LFLTFILE" and e["WAVESRC"] == "IMAGING"
    expected = 1.0 / lflat[tag["AXIS2"] // 8, tag["DETAXIS1"] // 8]
    assert np.allclose(ev["EPSILON"], expected, rtol=1e-6)
    assert np.all(ev["WAVELENGTH"] == 0.0)


def test_bpixtab_sets_dq(tmp_path: Path) -> None:
    oref = tmp_path / "oref"
    # a row along axis 1 at low-res row 400 (0-based 399) and a column along axis 2
    rows = [(1, 400, 1024, 1, 4), (301, 1, 1024, 2, 16)]
    b.build_stis_bpixtab(oref, "synth_bpx.fits", rows=rows)
    built = b.build_stis_tag(tmp_path / "data", background_rate=0.05)
    out = tag_to_corrtag(built["tag"], reference_dir=oref)
    tag = _tag_columns(built["tag"])
    _, e, ev = _events(out)
    assert e["DQSRC"] == "BPIXTAB" and e["EPSSRC"] == "NONE"
    on_row = tag["AXIS2"] // 2 == 399
    on_col = tag["DETAXIS1"] // 2 == 300  # bad pixels are detector pixels
    assert on_row.any() and on_col.any()
    expected = np.where(on_row, 4, 0) | np.where(on_col, 16, 0)
    assert np.array_equal(ev["DQ"], expected)


def test_bad_pixel_dq_overlapping_rows() -> None:
    # BPIXTAB rows (PIX1, PIX2 1-based, LENGTH, AXIS, VALUE) = (2, 3, 2, 1, 4), (3, 2, 3, 2, 8)
    runs = BadPixelRuns(x=np.array([1, 2]), y=np.array([2, 1]), length=np.array([2, 3]),
                        along_row=np.array([True, False]), value=np.array([4, 8], np.int16))
    # low-res pixel (col 2, row 2) is in both; high-res = 2 * low-res
    dq = bad_pixel_dq(np.array([4, 2, 4, 0]), np.array([4, 4, 2, 0]), runs)
    assert list(dq) == [12, 4, 8, 0]


def test_no_x1d_uses_centrwv(tmp_path: Path) -> None:
    built = b.build_stis_tag(tmp_path, with_x1d=False, CENTRWV=1430.5)
    out = tag_to_corrtag(built["tag"])
    p, e, ev = _events(out)
    assert e["WAVESRC"] == "CENTRWV" and p["X1DFILE"] == "NONE"
    assert np.all(ev["WAVELENGTH"] == np.float32(1430.5))


def test_no_x1d_and_no_central_wavelength_is_a_missing_keyword(tmp_path: Path) -> None:
    built = b.build_stis_tag(tmp_path, with_x1d=False, CENTRWV=None, CENWAVE=None)
    with pytest.raises(MissingKeywordError, match="oc5r01abq_tag.fits.*CENTRWV"):
        tag_to_corrtag(built["tag"])


def test_writing_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built = b.build_stis_tag(tmp_path)
    out = tag_to_corrtag(built["tag"])
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["oc5r01abq_corrtag.fits", "oc5r01abq_tag.fits", "oc5r01abq_x1d.fits"]
    old = _sha(out)
    tag_sha = _sha(built["tag"])

    def broken_writeto(self: fits.HDUList, fileobj, *args, **kwargs) -> None:
        fileobj.write(b"SIMPLE  =                    T" + b" " * 100)
        raise RuntimeError("disk full")

    monkeypatch.setattr(fits.HDUList, "writeto", broken_writeto)
    with pytest.raises(RuntimeError, match="disk full"):
        tag_to_corrtag(built["tag"])
    assert sorted(p.name for p in tmp_path.iterdir()) == names  # no temporary file left
    assert _sha(out) == old  # the previous output is untouched
    fresh = tmp_path / "fresh_corrtag.fits"
    with pytest.raises(RuntimeError):
        tag_to_corrtag(built["tag"], out_path=fresh)
    assert not fresh.exists()
    assert _sha(built["tag"]) == tag_sha


def test_refuses_to_overwrite_the_tag(tmp_path: Path) -> None:
    built = b.build_stis_tag(tmp_path)
    with pytest.raises(ValueError, match="overwrite"):
        tag_to_corrtag(built["tag"], out_path=built["tag"])


@pytest.mark.parametrize(("kind", "error"), [("not_fits", UnreadableFileError),
                                             ("truncated", UnreadableFileError),
                                             ("accum", UnsupportedProductError)])
def test_bad_inputs_raise_named_errors(tmp_path: Path, kind: str, error: type) -> None:
    path = b.build_bad(tmp_path, kind, instrument="stis")
    with pytest.raises(error) as info:
        tag_to_corrtag(path)
    assert path.name in str(info.value) and info.value.filename == path.name
    assert info.value.reason == b.BAD_KINDS[kind]


def test_cos_file_is_unsupported(tmp_path: Path) -> None:
    cos = b.build_cos_fuv_pair(tmp_path, segments=("A",), with_x1d=False)["corrtag_a"]
    with pytest.raises(UnsupportedProductError, match="INSTRUME = 'COS'"):
        tag_to_corrtag(cos, out_path=tmp_path / "x_corrtag.fits")


def test_missing_column_is_named(tmp_path: Path) -> None:
    built = b.build_stis_tag(tmp_path)
    with fits.open(built["tag"]) as hdul:
        cols = [c for c in hdul[1].columns if c.name != "AXIS2"]
        events = fits.BinTableHDU.from_columns(
            [fits.Column(name=c.name, format=c.format, array=np.array(hdul[1].data[c.name]))
             for c in cols], header=None, name="EVENTS")
        broken = tmp_path / "obroken1q_tag.fits"
        fits.HDUList([fits.PrimaryHDU(header=hdul[0].header), events,
                      *(hdu.copy() for hdu in hdul[2:])]).writeto(broken)
    with pytest.raises(MissingKeywordError, match=r"obroken1q_tag.fits: ext EVENTS has no "
                                                  r"column AXIS2"):
        tag_to_corrtag(broken)


def test_read_x1d_stis_orders_match_truth(tmp_path: Path) -> None:
    built = b.build_stis_tag(tmp_path, mode="echelle", shifta2=1.25)
    orders = read_x1d(built["x1d"], need_geometry=True)
    truth = built["truth"]
    assert [int(o.label) for o in orders] == list(truth.orders)
    for order in orders:
        assert isinstance(order, X1dRow) and order.geometry is not None
        t, geometry = truth.orders[int(order.label)], order.geometry
        assert geometry.a2center == pytest.approx(t.geometry.a2center, abs=1e-4)
        assert geometry.centre == pytest.approx(t.geometry.a2center + 1.25, abs=1e-4)
        assert replace(geometry, a2center=t.geometry.a2center, shifta2=0.0) == t.geometry
        assert np.array_equal(order.wavelength, t.wavelength)
        assert np.allclose(order.flux, truth.flat_flux, rtol=1e-5)
        assert np.allclose(order.net, t.source_rate * t.source_pmf, rtol=1e-5)
        assert order.good.all()  # a STIS x1d has no DQ_WGT
        with pytest.raises(AttributeError):
            order.label = "3"  # type: ignore[misc]


def test_read_x1d_stis_missing_column(tmp_path: Path) -> None:
    built = b.build_stis_tag(tmp_path)
    with fits.open(built["x1d"]) as hdul:
        keep = [c for c in hdul[1].columns if c.name != "A2CENTER"]
        sci = fits.BinTableHDU.from_columns(fits.ColDefs(keep), name="SCI")
        broken = tmp_path / "obroken2q_x1d.fits"
        fits.HDUList([fits.PrimaryHDU(), sci]).writeto(broken)
    with pytest.raises(MissingKeywordError, match="obroken2q_x1d.fits.*A2CENTER"):
        read_x1d(broken, need_geometry=True)
    assert read_x1d(broken)[0].geometry is None  # geometry read only when all of it is there


# ----------------------------------------------------------------------------- arrays
def _order(label: str, centre: float, extrsize: float, wave0: float) -> X1dRow:
    """An x1d order of 1024 low-res columns, WAVELENGTH = wave0 + 0.1 * column."""
    wavelength = wave0 + 0.1 * np.arange(1024)
    return X1dRow(label, wavelength, np.ones(1024), np.ones(1024), np.ones(1024, bool),
                  OrderGeometry(centre - 1.5, extrsize, 4.0, 4.0, -12.0, 12.0, shifta2=1.5))


def test_echelle_wavelengths_follow_each_events_order_and_column() -> None:
    orders = [_order("87", 100.0, 6.0, 1400.0), _order("86", 110.0, 6.0, 1500.0)]
    # high-res rows: order 87 spans low-res rows 97..103 (ends included), 86 spans 107..113
    axis2 = np.array([200, 194, 206, 193, 207, 214, 220, 226, 227, 2047])
    axis1 = np.array([10, 11, 500, 40, 41, 2047, 0, 100, 100, 8])
    out = convert_events(axis1, axis2, axis1, orders=orders, echelle=True)
    column = axis1 // 2
    expected = np.where((axis2 >= 194) & (axis2 <= 206), 1400.0 + 0.1 * column,
                        np.where((axis2 >= 214) & (axis2 <= 226), 1500.0 + 0.1 * column, 0.0))
    np.testing.assert_array_equal(out.wavelength, expected.astype(np.float32))
    assert out.wavelength.dtype == np.float32
    assert np.count_nonzero(out.wavelength == 0) == 4  # between, outside the orders
    # first order: the column's wavelength whatever the row; without x1d: one value
    first = convert_events(axis1, axis2, axis1, orders=orders[:1])
    np.testing.assert_array_equal(first.wavelength, (1400.0 + 0.1 * column).astype(np.float32))
    assert np.all(convert_events(axis1, axis2, axis1, wavelength=1430.5).wavelength == 1430.5)


@pytest.mark.parametrize(("centre", "rows"), [(300.0, 15), (300.25, 14)])
def test_source_box_holds_exactly_the_events_given_the_order(centre: float, rows: int) -> None:
    order = _order("1", centre, 7.0, 1150.0)
    axis2 = np.arange(560, 650)  # every high-res row around the order
    wave = convert_events(np.full(axis2.size, 600), axis2, np.full(axis2.size, 600),
                          orders=[order], echelle=True).wavelength
    source = next(box for box in order_boxes(order) if box.role == SOURCE)
    in_box = (axis2 >= source.y0) & (axis2 < source.y1)
    np.testing.assert_array_equal(in_box, wave > 0)
    # rows 2 * (centre -/+ EXTRSIZE / 2): both ends included when they are whole rows
    assert np.count_nonzero(in_box) == rows
    background = [box for box in order_boxes(order) if box.role != SOURCE]
    assert [box.scale for box in background] == [7.0 / 8.0] * 2
    assert [(box.y1 - box.y0) / 2 for box in background] == [4.0, 4.0]


def test_epsilon_and_dq_belong_to_the_detector_pixel() -> None:
    pflat = np.ones((1024, 1024))
    pflat[50, 20] = 2.0  # low-res pixel (column 20, row 50)
    pflat[50, 21] = 0.0  # a dead pixel: EPSILON 0
    lflat = np.full((256, 256), 0.8)  # scaled: each value covers 8 x 8 high-res pixels
    runs = BadPixelRuns(x=np.array([20]), y=np.array([50]), length=np.array([1]),
                        along_row=np.array([True]), value=np.array([16], np.int16))
    axis2 = np.array([100, 101, 100, 100])
    detaxis1 = np.array([40, 41, 42, 200])
    axis1 = detaxis1 + 3  # Doppler shifted: never used for flats and bad pixels
    out = convert_events(axis1, axis2, detaxis1, wavelength=0.0, flats=[pflat, lflat],
                         bad_pixels=runs)
    np.testing.assert_allclose(out.epsilon, [1 / 1.6, 1 / 1.6, 0.0, 1 / 0.8], rtol=1e-7)
    np.testing.assert_array_equal(out.dq, [16, 16, 0, 0])
    plain = convert_events(axis1, axis2, detaxis1)
    assert np.all(plain.epsilon == 1.0) and np.all(plain.dq == 0)
    assert (plain.epsilon.dtype, plain.dq.dtype) == (np.float32, np.int16)


def test_resolve_reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "x_pfl.fits").write_bytes(b"")
    assert resolve_reference("N/A", tmp_path) is None
    assert resolve_reference("", tmp_path) is None
    assert resolve_reference("oref$missing.fits", tmp_path) is None
    assert resolve_reference("oref$x_pfl.fits", tmp_path) == tmp_path / "x_pfl.fits"
    monkeypatch.delenv("oref", raising=False)
    assert resolve_reference("oref$x_pfl.fits") is None
    monkeypatch.setenv("oref", str(tmp_path))
    assert resolve_reference("oref$x_pfl.fits") == tmp_path / "x_pfl.fits"


def test_default_corrtag_path() -> None:
    assert default_corrtag_path("/d/ob1234abq_tag.fits") == Path("/d/ob1234abq_corrtag.fits")
    assert default_corrtag_path("/d/odd.fits", "OB1234ABQ") == Path("/d/ob1234abq_corrtag.fits")


def test_legacy_library_recognises_the_output(tmp_path: Path) -> None:
    out = tag_to_corrtag(b.build_stis_tag(tmp_path)["tag"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import lightcurve.io

        assert lightcurve.io.check_filetype(str(out)) == "stis_corrtag"


@pytest.mark.slow
def test_two_million_events_convert_quickly(tmp_path: Path) -> None:
    built = b.build_stis_tag(tmp_path, mode="echelle", n_events=2_000_000, with_x1d=True)
    start = time.perf_counter()
    out = tag_to_corrtag(built["tag"])
    elapsed = time.perf_counter() - start
    with fits.open(out) as hdul:
        assert len(hdul[1].data) == len(built["truth"].component)
    assert elapsed < 20.0, f"{elapsed:.1f} s"
