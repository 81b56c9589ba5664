"""STIS ``_tag`` -> ``_corrtag`` conversion (hstlc.extraction.stis_corrtag)."""

from __future__ import annotations

import hashlib
import time
import warnings
from pathlib import Path

import builders as b
import numpy as np
import pytest
from astropy.io import fits

import hstlc
from hstlc.errors import MissingKeywordError, UnreadableFileError, UnsupportedProductError
from hstlc.extraction.stis_corrtag import (
    StisOrder,
    bad_pixel_dq,
    default_corrtag_path,
    read_stis_x1d_orders,
    resolve_reference,
    tag_to_corrtag,
)

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
    centres = np.array([o.a2center + shifta2 for o in truth.orders.values()])
    half = np.array([o.extrsize / 2 for o in truth.orders.values()])
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
    table = np.array([(2, 3, 2, 1, 4), (3, 2, 3, 2, 8)],
                     dtype=[("PIX1", "i2"), ("PIX2", "i2"), ("LENGTH", "i2"), ("AXIS", "i2"),
                            ("VALUE", "i2")])
    # low-res pixel (col 2, row 2) is in both; high-res = 2 * low-res
    dq = bad_pixel_dq(np.array([4, 2, 4, 0]), np.array([4, 4, 2, 0]), table)
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
        fits.HDUList([fits.PrimaryHDU(header=hdul[0].header), events]).writeto(broken)
    with pytest.raises(MissingKeywordError, match=r"obroken1q_tag.fits: ext EVENTS has no "
                                                  r"column AXIS2"):
        tag_to_corrtag(broken)


def test_read_stis_x1d_orders_matches_truth(tmp_path: Path) -> None:
    built = b.build_stis_tag(tmp_path, mode="echelle", shifta2=1.25)
    orders = read_stis_x1d_orders(built["x1d"])
    truth = built["truth"]
    assert [o.sporder for o in orders] == list(truth.orders)
    for order in orders:
        assert isinstance(order, StisOrder)
        t = truth.orders[order.sporder]
        assert order.a2center == pytest.approx(t.a2center, abs=1e-4)
        assert order.centre == pytest.approx(t.a2center + 1.25, abs=1e-4)
        assert (order.extrsize, order.bk1size, order.bk2size) == (t.extrsize, t.bk1size,
                                                                  t.bk2size)
        assert (order.bk1offst, order.bk2offst) == (t.bk1offst, t.bk2offst)
        assert np.array_equal(order.wavelength, t.wavelength)
        assert np.allclose(order.flux, truth.flat_flux, rtol=1e-5)
        assert np.allclose(order.net, t.source_rate * t.source_pmf, rtol=1e-5)
        with pytest.raises(AttributeError):
            order.sporder = 3  # type: ignore[misc]


def test_read_stis_x1d_orders_missing_column(tmp_path: Path) -> None:
    built = b.build_stis_tag(tmp_path)
    with fits.open(built["x1d"]) as hdul:
        keep = [c for c in hdul[1].columns if c.name != "A2CENTER"]
        sci = fits.BinTableHDU.from_columns(fits.ColDefs(keep), name="SCI")
        broken = tmp_path / "obroken2q_x1d.fits"
        fits.HDUList([fits.PrimaryHDU(), sci]).writeto(broken)
    with pytest.raises(MissingKeywordError, match="obroken2q_x1d.fits.*A2CENTER"):
        read_stis_x1d_orders(broken)


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
