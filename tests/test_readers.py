"""Readers: event lists, header values, GTI, x1d, FUV pairs and file grouping."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from hstlc.errors import (
    NO_EVENTS,
    MissingKeywordError,
    QualityError,
    UnsupportedProductError,
)
from hstlc.io.headers import CATALOGUE_FIELDS, ObservationInfo, catalogue_record, keyword_for
from hstlc.io.products import Product, open_fits
from hstlc.io.readers import (
    DatasetFiles,
    EventList,
    group_dataset_files,
    iter_time_chunks,
    read_dataset,
    read_events,
    read_x1d,
)

GJ436 = "cos_fuv_g130m_gj436"
REAL = {
    "ld9m10ujq": {"n": 40_450, "exptime": 1881.152, "expstart": 58108.51215764,
                  "gti": (0.032, 1881.184)},
    "ld9m10uyq": {"n": 56_756, "exptime": 2702.176, "expstart": 58108.76458802,
                  "gti": None},
}


def make_events(path: Path, time: np.ndarray, *, instrume: str = "COS", detector: str = "FUV",
                segment: str | None = "FUVA", gti: list[tuple[float, float]] | None = None,
                tag: bool = False, primary: dict[str, object] | None = None,
                ext1: dict[str, object] | None = None) -> Path:
    """A minimal but complete COS corrtag (or STIS tag with ``tag=True``)."""
    n = len(time)
    prim = fits.Header()
    cards = {"TELESCOP": "HST", "INSTRUME": instrume, "DETECTOR": detector,
             "OBSMODE": "TIME-TAG", "OBSTYPE": "SPECTROSCOPIC", "TARGNAME": "GJ-436",
             "RA_TARG": 175.55, "DEC_TARG": 26.70, "EQUINOX": 2000.0, "PROPOSID": 14767,
             "OPT_ELEM": "G130M", "CENWAVE": 1291, "APERTURE": "PSA", "ROOTNAME": path.name[:9]}
    if segment is not None:
        cards["SEGMENT"] = segment
    for key, value in {**cards, **(primary or {})}.items():
        prim[key] = value
    if tag:
        columns = [fits.Column("TIME", "D", array=time),
                   fits.Column("AXIS1", "I", array=np.arange(n)),
                   fits.Column("AXIS2", "I", array=np.arange(n) + 5)]
    else:
        columns = [fits.Column(name, "E", array=np.full(n, value, "f4")) for name, value in
                   (("XCORR", 100.0), ("YCORR", 400.0), ("WAVELENGTH", 1300.0), ("EPSILON", 1.0))]
        columns = [fits.Column("TIME", "E", array=time.astype("f4")), *columns,
                   fits.Column("DQ", "I", array=np.zeros(n, "i2"))]
    events = fits.BinTableHDU.from_columns(columns, name="EVENTS")
    for key, value in {"EXPFLAG": "NORMAL", "EXPTIME": 100.0, "EXPSTART": 58000.0,
                       "EXPEND": 58000.01, "SDQFLAGS": 8346, **(ext1 or {})}.items():
        if value is not None:  # None leaves the keyword out
            events.header[key] = value
    hdus = [fits.PrimaryHDU(header=prim), events]
    if gti is not None:
        start = np.array([interval[0] for interval in gti], dtype="f8")
        stop = np.array([interval[1] for interval in gti], dtype="f8")
        hdus.append(fits.BinTableHDU.from_columns(
            [fits.Column("START", "D", array=start), fits.Column("STOP", "D", array=stop)],
            name="GTI"))
    fits.HDUList(hdus).writeto(path)
    return path


# ----------------------------------------------------------------------------- real files
@pytest.mark.parametrize("rootname", sorted(REAL))
def test_real_corrtag_a_reads(real_data: Path, rootname: str) -> None:
    path = real_data / GJ436 / f"{rootname}_corrtag_a.fits"
    events = read_events(path)
    truth = REAL[rootname]
    assert len(events) == truth["n"] == events.info.nevents
    assert events.gti.shape == (1, 2) and events.gti.dtype == np.float64
    if truth["gti"] is not None:
        np.testing.assert_allclose(events.gti[0], truth["gti"])
    for name in ("time", "x", "y", "wavelength", "epsilon", "dq"):
        array = getattr(events, name)
        assert array is not None and len(array) == truth["n"]
        assert array.dtype.isnative and not array.flags.writeable
    assert events.time.dtype == np.float64
    with fits.open(path) as hdulist:
        np.testing.assert_array_equal(events.time, hdulist[1].data["TIME"])
        np.testing.assert_array_equal(events.x, hdulist[1].data["XCORR"])
        np.testing.assert_array_equal(events.dq, hdulist[1].data["DQ"])
    info = events.info
    assert (info.filename, info.rootname, info.product) == (path.name, rootname,
                                                            Product.COS_FUV_CORRTAG_A)
    assert (info.telescop, info.instrume, info.detector, info.obsmode, info.obstype) == (
        "HST", "COS", "FUV", "TIME-TAG", "SPECTROSCOPIC")
    assert (info.targname, info.proposid, info.opt_elem, info.cenwave, info.aperture) == (
        "GJ-436", 14767, "G130M", 1291, "PSA")
    assert (info.segment, info.fppos, info.expflag, info.sdqflags) == ("FUVA", 3, "NORMAL", 8346)
    assert info.exptime == pytest.approx(truth["exptime"])
    assert info.expstart == pytest.approx(truth["expstart"])
    assert info.expend is not None and info.expend > info.expstart
    assert info.date_obs == "2017-12-21" and info.equinox == 2000.0
    assert info.ra_targ == pytest.approx(175.5512, abs=1e-3)
    assert info.dec_targ == pytest.approx(26.7025, abs=1e-3)
    assert info.cal_ver is not None and info.cal_ver.startswith("3.2.1")
    assert info.fluxtab == "lref$19m15490l_phot.fits" and info.tdstab == "lref$0561933ll_tds.fits"
    assert "40450 events" in repr(events) or "56756 events" in repr(events)


def test_catalogue_record(real_data: Path) -> None:
    events = read_events(real_data / GJ436 / "ld9m10ujq_corrtag_a.fits")
    record = catalogue_record(events.info)
    assert tuple(record) == CATALOGUE_FIELDS
    assert set(record) == {"filename", "telescop", "instrume", "targname", "cal_ver", "obstype",
                           "cenwave", "aperture", "detector", "opt_elem", "fppos", "rootname",
                           "proposid", "expstart", "exptime"}
    assert record["filename"] == "ld9m10ujq_corrtag_a.fits" and record["cenwave"] == 1291
    assert record["fppos"] == 3 and record["rootname"] == "ld9m10ujq"
    assert keyword_for("expflag") == "EXPFLAG"


@pytest.mark.parametrize("rootname", sorted(REAL))
def test_real_a_without_b_is_a_dataset(real_data: Path, rootname: str) -> None:
    folder = real_data / GJ436
    dataset = read_dataset([folder / f"{rootname}_corrtag_a.fits", folder / f"{rootname}_x1d.fits"])
    assert dataset.missing_segments == ("B",)
    assert list(dataset.segments) == ["A"]
    assert dataset.rootname == rootname and dataset.product is Product.COS_FUV_CORRTAG_A
    assert dataset.info is dataset.segments["A"].info
    assert dataset.x1d == folder / f"{rootname}_x1d.fits"
    assert len(dataset.segments["A"]) == REAL[rootname]["n"]
    with pytest.raises(TypeError):
        dataset.segments["B"] = dataset.segments["A"]  # type: ignore[index]


def test_real_dataset_from_grouped_files(real_data: Path) -> None:
    groups = group_dataset_files(sorted((real_data / GJ436).iterdir()))
    assert sorted(groups) == ["ld9m10ujq", "ld9m10uyq"]
    for files in groups.values():
        assert files.missing_segments == ("B",) and files.x1d is not None
        assert read_dataset(files).missing_segments == ("B",)


def test_real_x1d(real_data: Path) -> None:
    spectrum = read_x1d(real_data / GJ436 / "ld9m10ujq_x1d.fits")
    assert spectrum.labels == ("FUVA", "FUVB")
    assert spectrum.wavelength.shape == spectrum.flux.shape == spectrum.net.shape == (2, 16384)
    assert spectrum.info.product is Product.X1D and spectrum.info.nevents == 0
    assert np.nanmax(spectrum.wavelength) > 1400


def test_x1d_is_not_an_event_list(real_data: Path) -> None:
    with pytest.raises(UnsupportedProductError, match="not an event list"):
        read_events(real_data / GJ436 / "ld9m10ujq_x1d.fits")
    with pytest.raises(UnsupportedProductError, match="not an x1d"):
        read_x1d(real_data / GJ436 / "ld9m10ujq_corrtag_a.fits")


def test_missing_and_unusable_keywords_name_file_ext_and_key(real_data: Path,
                                                             tmp_path: Path) -> None:
    path = tmp_path / "ld9m10ujq_corrtag_a.fits"
    shutil.copyfile(real_data / GJ436 / path.name, path)
    with fits.open(path, mode="update") as hdulist:
        del hdulist[1].header["EXPTIME"]
        del hdulist[3].header["EXPTIME"]
    with pytest.raises(MissingKeywordError) as info:
        read_events(path)
    assert info.value.detail == "ld9m10ujq_corrtag_a.fits: ext 1 has no EXPTIME"
    assert info.value.reason == "Missing keyword"
    with fits.open(path, mode="update") as hdulist:
        hdulist[1].header["EXPTIME"] = 10.0
        hdulist[0].header["PROPOSID"] = "abc"
    with pytest.raises(MissingKeywordError, match="PROPOSID='abc' is not a number"):
        read_events(path)


# ----------------------------------------------------------------------------- synthetic
def test_gti_from_extension_and_fallbacks(tmp_path: Path) -> None:
    time = np.array([1.0, 2.0, 5.0])
    two = read_events(make_events(tmp_path / "a_corrtag_a.fits", time,
                                  gti=[(0.0, 3.0), (4.0, 6.0)]))
    np.testing.assert_array_equal(two.gti, [[0.0, 3.0], [4.0, 6.0]])
    absent = read_events(make_events(tmp_path / "b_corrtag_a.fits", time))
    np.testing.assert_array_equal(absent.gti, [[1.0, 5.0]])
    empty_table = read_events(make_events(tmp_path / "c_corrtag_a.fits", time, gti=[]))
    np.testing.assert_array_equal(empty_table.gti, [[1.0, 5.0]])
    no_events = read_events(make_events(tmp_path / "d_corrtag_a.fits", np.array([])))
    np.testing.assert_array_equal(no_events.gti, [[0.0, 100.0]])
    assert len(no_events) == 0 and no_events.info.nevents == 0


def test_stis_tag_has_no_wavelength_epsilon_dq(tmp_path: Path) -> None:
    path = make_events(tmp_path / "o1234567q_tag.fits", np.array([0.5, 1.0, 1.5]),
                       instrume="STIS", detector="FUV-MAMA", segment=None, tag=True,
                       primary={"OPT_ELEM": "G140M", "CENWAVE": 1222, "APERTURE": "52X0.1"},
                       gti=[(0.0, 2.0)])
    events = read_events(path)
    assert events.info.product is Product.STIS_TAG
    np.testing.assert_array_equal(events.x, [0, 1, 2])
    np.testing.assert_array_equal(events.y, [5, 6, 7])
    assert events.wavelength is None and events.epsilon is None and events.dq is None
    assert events.info.segment is None and events.info.fppos is None
    dataset = read_dataset([path])
    assert list(dataset.segments) == ["FUV-MAMA"] and dataset.missing_segments == ()


def test_stis_imaging_without_cenwave(tmp_path: Path) -> None:
    primary = {"OBSTYPE": "IMAGING", "OPT_ELEM": "F25SRF2", "APERTURE": "25MAMA"}
    path = make_events(tmp_path / "o1234568q_tag.fits", np.array([0.5, 1.0]), instrume="STIS",
                       detector="FUV-MAMA", segment=None, tag=True, primary=primary)
    with fits.open(path, mode="update") as hdulist:
        del hdulist[0].header["CENWAVE"]
    assert read_events(path).info.cenwave == 0


def test_fuv_pair_reads_both_segments(tmp_path: Path) -> None:
    a = make_events(tmp_path / "lb1c01abq_corrtag_a.fits", np.array([1.0, 2.0]))
    b = make_events(tmp_path / "lb1c01abq_corrtag_b.fits", np.array([1.0, 2.0, 3.0]),
                    segment="FUVB")
    dataset = read_dataset([b, a])
    assert list(dataset.segments) == ["A", "B"] and dataset.missing_segments == ()
    assert len(dataset.segments["B"]) == 3 and dataset.info.filename == a.name
    only_b = read_dataset([b])
    assert only_b.missing_segments == ("A",) and only_b.product is Product.COS_FUV_CORRTAG_B


def test_dataset_errors(tmp_path: Path) -> None:
    a = make_events(tmp_path / "lb1c01abq_corrtag_a.fits", np.array([1.0, 2.0]))
    other = make_events(tmp_path / "lb1c01xxq_corrtag_b.fits", np.array([1.0]), segment="FUVB")
    twin = make_events(tmp_path / "lb1c01abq_corrtag_b.fits", np.array([1.0]))  # says FUVA
    with pytest.raises(ValueError, match="several rootnames"):
        read_dataset([a, other])
    with pytest.raises(UnsupportedProductError, match="A already read"):
        read_dataset([a, twin])
    with pytest.raises(ValueError):
        read_dataset([])
    x1d = tmp_path / "lb1c01abq_x1d.fits"
    fits.HDUList([fits.PrimaryHDU(header=fits.getheader(a)), fits.BinTableHDU.from_columns(
        [fits.Column(n, "3E", array=np.ones((1, 3))) for n in ("WAVELENGTH", "FLUX", "NET")],
        name="SCI")]).writeto(x1d)
    with pytest.raises(QualityError) as info:
        read_dataset([x1d])
    assert info.value.reason == NO_EVENTS


def test_time_streams_in_chunks(tmp_path: Path) -> None:
    time = np.sort(np.random.default_rng(3).uniform(0, 100, 1001))
    path = make_events(tmp_path / "lb1c01abq_corrtag_a.fits", time)
    with open_fits(path) as hdulist:
        chunks = list(iter_time_chunks(hdulist, path.name, chunk_rows=100))
    assert [len(c) for c in chunks] == [100] * 10 + [1]
    np.testing.assert_array_equal(np.concatenate(chunks), time.astype("f4"))


def test_event_list_validates_shapes(real_data: Path) -> None:
    info = read_events(real_data / GJ436 / "ld9m10ujq_corrtag_a.fits").info
    assert isinstance(info, ObservationInfo)
    with pytest.raises(ValueError, match="x has 2 rows"):
        EventList(time=np.zeros(3), x=np.zeros(2), y=np.zeros(3), wavelength=None, epsilon=None,
                  dq=None, gti=np.zeros((1, 2)), info=info)
    with pytest.raises(ValueError, match="N x 2"):
        EventList(time=np.zeros(3), x=np.zeros(3), y=np.zeros(3), wavelength=None, epsilon=None,
                  dq=None, gti=np.zeros(2), info=info)


def test_group_dataset_files() -> None:
    names = ["d/lb1c01abq_corrtag_a.fits", "d/lb1c01abq_corrtag_b.fits.gz", "d/LB1C01ABQ_x1d.fits",
             "d/lb1c02nuq_corrtag.fits", "d/o1234567q_tag.fits", "d/o1234567q_x1d.fits.gz",
             "d/lb1c01abq_rawtag_a.fits", "d/lb1c03xxq_corrtag_a.fits",
             "d/lb1c03xxq_corrtag_a.fits.gz", "d/notes.txt", "d/ldfd01vnq_lampflash.fits.gz"]
    groups = group_dataset_files(names)
    assert list(groups) == sorted(groups)
    pair = groups["lb1c01abq"]
    assert pair.corrtag_a == Path("d/lb1c01abq_corrtag_a.fits")
    assert pair.corrtag_b == Path("d/lb1c01abq_corrtag_b.fits.gz")
    assert pair.x1d == Path("d/LB1C01ABQ_x1d.fits")
    assert pair.unrecognised == (Path("d/lb1c01abq_rawtag_a.fits"),)
    assert pair.missing_segments == () and len(pair.files) == 3
    assert groups["lb1c02nuq"].corrtag == Path("d/lb1c02nuq_corrtag.fits")
    assert groups["o1234567q"].tag is not None and groups["o1234567q"].x1d is not None
    single = groups["lb1c03xxq"]
    assert single.missing_segments == ("B",)
    assert single.unrecognised == (Path("d/lb1c03xxq_corrtag_a.fits.gz"),)  # duplicate
    assert groups["notes"].unrecognised == (Path("d/notes.txt"),)
    assert groups["ldfd01vnq"].event_files == () and groups["ldfd01vnq"].x1d is None
    assert DatasetFiles("x").files == ()


# ----------------------------------------------------------------------------- builders
def test_builder_fuv_pair(tmp_path: Path) -> None:
    from tests import builders

    out = builders.build_cos_fuv_pair(tmp_path, seed=1)
    groups = group_dataset_files(p for p in tmp_path.iterdir())
    files = groups["lb1c01abq"]
    assert (files.corrtag_a, files.corrtag_b, files.x1d) == (out["corrtag_a"], out["corrtag_b"],
                                                             out["x1d"])
    dataset = read_dataset(files)
    assert list(dataset.segments) == ["A", "B"] and dataset.missing_segments == ()
    truth = out["truth"]
    for letter, events in dataset.segments.items():
        with fits.open(out[f"corrtag_{letter.lower()}"]) as hdulist:
            assert len(events) == len(hdulist[1].data)
        np.testing.assert_allclose(events.gti, truth.gti)
        assert np.all(np.diff(events.time) >= 0)
        assert events.info.segment == f"FUV{letter}"
        assert events.info.sdqflags == truth.sdqflags
        assert events.info.exptime == pytest.approx(truth.exptime)
    assert dataset.info.targname == "TEST-STAR" and dataset.info.proposid == 12345
    spectrum = read_x1d(out["x1d"])
    assert spectrum.labels == ("FUVA", "FUVB")


def test_builder_nuv(tmp_path: Path) -> None:
    from tests import builders

    out = builders.build_cos_nuv(tmp_path, seed=2)
    events = read_events(out["corrtag"])
    assert events.info.product is Product.COS_NUV_CORRTAG and events.info.detector == "NUV"
    assert events.wavelength is not None and len(events) == events.info.nevents > 0
    dataset = read_dataset([out["corrtag"], out["x1d"]])
    assert list(dataset.segments) == ["NUV"] and dataset.x1d == out["x1d"]


@pytest.mark.parametrize("mode", ["first_order", "echelle", "imaging"])
def test_builder_stis_tag(tmp_path: Path, mode: str) -> None:
    from tests import builders

    out = builders.build_stis_tag(tmp_path, mode=mode, seed=3)
    events = read_events(out["tag"])
    truth = out["truth"]
    assert events.info.product is Product.STIS_TAG and events.info.instrume == "STIS"
    assert events.wavelength is None and events.epsilon is None and events.dq is None
    assert events.time.dtype == np.float64 and np.all(np.diff(events.time) >= 0)
    np.testing.assert_allclose(events.gti, truth.gti)
    assert int(events.x.max()) <= 2047 and int(events.y.max()) <= 2047
    if mode == "imaging":
        assert events.info.cenwave == 0 and out["x1d"] is None
    else:
        spectrum = read_x1d(out["x1d"])
        expected = 1 if mode == "first_order" else len(truth.orders)
        assert len(spectrum.labels) == expected and spectrum.info.instrume == "STIS"
