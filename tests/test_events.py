"""Reading event files: the streamed event table, header values, GTIs and file grouping."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from hstlc.errors import MissingKeywordError, UnreadableFileError, UnsupportedProductError
from hstlc.fs import sha256_file
from hstlc.io.events import (
    TIME_COLUMN,
    EventTable,
    FileDigest,
    iter_event_blocks,
    map_event_blocks,
    map_raw_blocks,
    open_event_table,
)
from hstlc.io.gti import read_gti, validate_gti
from hstlc.io.headers import (
    CATALOGUE_FIELDS,
    DatasetFiles,
    ObservationInfo,
    catalogue_record,
    group_dataset_files,
    keyword_for,
    read_observation_info,
)
from hstlc.io.products import Product, detect_product, open_fits

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


def read_info(path: Path) -> ObservationInfo:
    """The header values of a file, as the ingest reads them."""
    with open_fits(path) as hdulist:
        return read_observation_info(hdulist, path.name, detect_product(hdulist, path.name))


def read_columns(path: Path, columns: list[str], block_rows: int = 1000) -> dict[str, np.ndarray]:
    """Whole columns of an event file, gathered from the streamed blocks."""
    table = open_event_table(path)
    blocks = list(map_event_blocks(table, columns, lambda b: {k: v.copy() for k, v in b.items()},
                                   block_rows=block_rows, threads=2))
    return {name: np.concatenate([b[name] for b in blocks]) if blocks else np.array([])
            for name in columns}


# ----------------------------------------------------------------------------- real files
@pytest.mark.parametrize("rootname", sorted(REAL))
def test_real_corrtag_a_reads(real_data: Path, rootname: str) -> None:
    path = real_data / GJ436 / f"{rootname}_corrtag_a.fits"
    info = read_info(path)
    truth = REAL[rootname]
    table = open_event_table(path)
    assert table.nrows == truth["n"] == info.nevents
    assert table.data_offset is not None  # read in place, not through astropy
    if truth["gti"] is not None:
        assert table.gti is not None and table.gti.dtype == np.float64
        np.testing.assert_allclose(table.gti, [truth["gti"]])
    columns = ["TIME", "XCORR", "YCORR", "WAVELENGTH", "EPSILON", "DQ"]
    read = read_columns(path, columns, block_rows=4096)
    with fits.open(path) as hdulist:
        for name in columns:
            assert read[name].dtype.isnative and len(read[name]) == truth["n"]
            np.testing.assert_array_equal(read[name], hdulist[1].data[name])
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


def test_catalogue_record(real_data: Path) -> None:
    record = catalogue_record(read_info(real_data / GJ436 / "ld9m10ujq_corrtag_a.fits"))
    assert tuple(record) == CATALOGUE_FIELDS
    assert set(record) == {"filename", "telescop", "instrume", "targname", "cal_ver", "obstype",
                           "cenwave", "aperture", "detector", "opt_elem", "fppos", "rootname",
                           "proposid", "expstart", "exptime"}
    assert record["filename"] == "ld9m10ujq_corrtag_a.fits" and record["cenwave"] == 1291
    assert record["fppos"] == 3 and record["rootname"] == "ld9m10ujq"
    assert keyword_for("expflag") == "EXPFLAG"


def test_real_dataset_from_grouped_files(real_data: Path) -> None:
    groups = group_dataset_files(sorted((real_data / GJ436).iterdir()))
    assert sorted(groups) == ["ld9m10ujq", "ld9m10uyq"]
    for rootname, files in groups.items():
        assert files.missing_segments == ("B",) and files.corrtag_b is None
        assert files.x1d == real_data / GJ436 / f"{rootname}_x1d.fits"
        assert files.event_files == (files.corrtag_a,)
        assert open_event_table(files.corrtag_a).nrows == REAL[rootname]["n"]


def test_real_x1d_is_no_event_file(real_data: Path) -> None:
    x1d = read_info(real_data / GJ436 / "ld9m10ujq_x1d.fits")
    assert x1d.product is Product.X1D and not x1d.product.has_events and x1d.nevents == 0
    assert x1d.rootname == "ld9m10ujq" and x1d.cenwave == 1291


def test_missing_and_unusable_keywords_name_file_ext_and_key(real_data: Path,
                                                             tmp_path: Path) -> None:
    path = tmp_path / "ld9m10ujq_corrtag_a.fits"
    shutil.copyfile(real_data / GJ436 / path.name, path)
    with fits.open(path, mode="update") as hdulist:
        del hdulist[1].header["EXPTIME"]
        del hdulist[3].header["EXPTIME"]
    with pytest.raises(MissingKeywordError) as info:
        read_info(path)
    assert info.value.detail == "ld9m10ujq_corrtag_a.fits: ext 1 has no EXPTIME"
    assert info.value.reason == "Missing keyword"
    with fits.open(path, mode="update") as hdulist:
        hdulist[1].header["EXPTIME"] = 10.0
        hdulist[0].header["PROPOSID"] = "abc"
    with pytest.raises(MissingKeywordError, match="PROPOSID='abc' is not a number"):
        read_info(path)


# ----------------------------------------------------------------------------- synthetic
def test_gti_from_extension_absent_and_empty(tmp_path: Path) -> None:
    time = np.array([1.0, 2.0, 5.0])
    two = open_event_table(make_events(tmp_path / "a_corrtag_a.fits", time,
                                       gti=[(4.0, 6.0), (0.0, 3.0)]))
    assert two.gti is not None
    np.testing.assert_array_equal(two.gti, [[0.0, 3.0], [4.0, 6.0]])  # sorted
    assert open_event_table(make_events(tmp_path / "b_corrtag_a.fits", time)).gti is None
    empty = open_event_table(make_events(tmp_path / "c_corrtag_a.fits", time, gti=[])).gti
    assert empty is not None and empty.shape == (0, 2)
    with fits.open(tmp_path / "a_corrtag_a.fits") as hdulist:
        np.testing.assert_array_equal(read_gti(hdulist, "a"), two.gti)


@pytest.mark.parametrize(("intervals", "message"), [
    ([(0.0, 3.0), (2.0, 6.0)], "the GTIs overlap"),
    ([(0.0, 3.0), (5.0, 5.0)], "STOP <= START"),
    ([(4.0, 1.0)], "STOP <= START"),
])
def test_malformed_gti_refuses_the_file(tmp_path: Path, intervals, message) -> None:
    path = make_events(tmp_path / "a_corrtag_a.fits", np.array([1.0, 2.0]), gti=intervals)
    with pytest.raises(UnsupportedProductError, match=f"a_corrtag_a.fits: .*{message}") as info:
        open_event_table(path)
    assert info.value.reason == "Unsupported product" and info.value.filename == path.name


def test_validate_gti_merges_touching_intervals() -> None:
    gti = validate_gti(np.array([[10.0, 12.0], [0.0, 4.0], [4.0, 6.0], [6.0, 7.0]]))
    np.testing.assert_array_equal(gti, [[0.0, 7.0], [10.0, 12.0]])
    assert gti.dtype == np.float64 and validate_gti(np.zeros((0, 2))).shape == (0, 2)


def test_stis_tag_has_no_wavelength_epsilon_dq(tmp_path: Path) -> None:
    path = make_events(tmp_path / "o1234567q_tag.fits", np.array([0.5, 1.0, 1.5]),
                       instrume="STIS", detector="FUV-MAMA", segment=None, tag=True,
                       primary={"OPT_ELEM": "G140M", "CENWAVE": 1222, "APERTURE": "52X0.1"},
                       gti=[(0.0, 2.0)])
    info = read_info(path)
    assert info.product is Product.STIS_TAG
    assert info.segment is None and info.fppos is None
    table = open_event_table(path)
    assert table.columns == ("TIME", "AXIS1", "AXIS2")
    read = read_columns(path, ["axis1", "Axis2"])  # column names are case-insensitive
    np.testing.assert_array_equal(read["axis1"], [0, 1, 2])
    np.testing.assert_array_equal(read["Axis2"], [5, 6, 7])
    with pytest.raises(MissingKeywordError, match="o1234567q_tag.fits: ext 1 has no column WAVELENGTH"):
        table.column("WAVELENGTH")
    assert group_dataset_files([path])["o1234567q"].event_files == (path,)


def test_stis_imaging_without_cenwave(tmp_path: Path) -> None:
    primary = {"OBSTYPE": "IMAGING", "OPT_ELEM": "F25SRF2", "APERTURE": "25MAMA"}
    path = make_events(tmp_path / "o1234568q_tag.fits", np.array([0.5, 1.0]), instrume="STIS",
                       detector="FUV-MAMA", segment=None, tag=True, primary=primary)
    with fits.open(path, mode="update") as hdulist:
        del hdulist[0].header["CENWAVE"]
    assert read_info(path).cenwave == 0


def test_fuv_pair_is_one_dataset(tmp_path: Path) -> None:
    a = make_events(tmp_path / "lb1c01abq_corrtag_a.fits", np.array([1.0, 2.0]))
    b = make_events(tmp_path / "lb1c01abq_corrtag_b.fits", np.array([1.0, 2.0, 3.0]),
                    segment="FUVB")
    pair = group_dataset_files([b, a])["lb1c01abq"]
    assert (pair.corrtag_a, pair.corrtag_b) == (a, b) and pair.missing_segments == ()
    assert [open_event_table(p).nrows for p in pair.event_files] == [2, 3]
    assert [read_info(p).segment for p in pair.event_files] == ["FUVA", "FUVB"]
    only_b = group_dataset_files([b])["lb1c01abq"]
    assert only_b.missing_segments == ("A",) and read_info(b).product is Product.COS_FUV_CORRTAG_B


def test_event_table_cut_short_is_unreadable(tmp_path: Path) -> None:
    time = np.linspace(0.0, 100.0, 5000)
    path = make_events(tmp_path / "lb1c01abq_corrtag_a.fits", time)
    table = open_event_table(path)
    assert table.data_offset is not None
    with open(path, "r+b") as handle:  # cut the file inside the event table
        handle.truncate(table.data_offset + 1000 * table.dtype.itemsize + 3)
    with pytest.raises(UnreadableFileError, match="lb1c01abq_corrtag_a.fits: the file ends inside"):
        list(iter_event_blocks(table, [TIME_COLUMN], block_rows=512))


@pytest.mark.parametrize("threads", [1, 2])
def test_time_streams_in_blocks_in_row_order(tmp_path: Path, threads: int) -> None:
    time = np.sort(np.random.default_rng(3).uniform(0, 100, 1001))
    path = make_events(tmp_path / "lb1c01abq_corrtag_a.fits", time)
    table = open_event_table(path)
    lengths = list(map_event_blocks(table, ["time"], lambda b: len(b["time"]), block_rows=100,
                                    threads=threads))
    assert lengths == [100] * 10 + [1]
    read = read_columns(path, ["time"], block_rows=100)["time"]
    np.testing.assert_array_equal(read, time.astype("f4"))


def test_compressed_file_is_read_through_astropy(tmp_path: Path) -> None:
    import gzip

    time = np.sort(np.random.default_rng(4).uniform(0, 50, 300))
    plain = make_events(tmp_path / "lb1c01abq_corrtag_a.fits", time)
    packed = tmp_path / "lb1c01acq_corrtag_a.fits.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    table = open_event_table(packed)
    assert isinstance(table, EventTable) and table.data_offset is None
    read = read_columns(packed, ["TIME", "DQ"], block_rows=64)
    np.testing.assert_array_equal(read["TIME"], time.astype("f4"))
    assert read["DQ"].dtype.isnative and not read["DQ"].any()


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
def test_builder_fuv_pair_reads_back(tmp_path: Path) -> None:
    from tests import builders

    out = builders.build_cos_fuv_pair(tmp_path, seed=1)
    files = group_dataset_files(p for p in tmp_path.iterdir())["lb1c01abq"]
    assert (files.corrtag_a, files.corrtag_b, files.x1d) == (out["corrtag_a"], out["corrtag_b"],
                                                             out["x1d"])
    truth = out["truth"]
    for letter in ("A", "B"):
        path = out[f"corrtag_{letter.lower()}"]
        table, info = open_event_table(path), read_info(path)
        with fits.open(path) as hdulist:
            assert table.nrows == len(hdulist[1].data) == info.nevents
        assert table.gti is not None
        np.testing.assert_allclose(table.gti, truth.gti)
        assert np.all(np.diff(read_columns(path, ["TIME"], block_rows=50_000)["TIME"]) >= 0)
        assert (info.segment, info.sdqflags) == (f"FUV{letter}", truth.sdqflags)
        assert info.exptime == pytest.approx(truth.exptime)
        assert (info.targname, info.proposid) == ("TEST-STAR", 12345)
    assert read_info(out["x1d"]).product is Product.X1D


def test_builder_nuv_reads_back(tmp_path: Path) -> None:
    from tests import builders

    out = builders.build_cos_nuv(tmp_path, seed=2)
    info = read_info(out["corrtag"])
    assert info.product is Product.COS_NUV_CORRTAG and info.detector == "NUV"
    table = open_event_table(out["corrtag"])
    assert "WAVELENGTH" in table.columns and table.nrows == info.nevents > 0
    files = group_dataset_files([out["corrtag"], out["x1d"]])["lb1c02nuq"]
    assert files.event_files == (out["corrtag"],) and files.x1d == out["x1d"]


@pytest.mark.parametrize("mode", ["first_order", "echelle", "imaging"])
def test_builder_stis_tag_reads_back(tmp_path: Path, mode: str) -> None:
    from tests import builders

    out = builders.build_stis_tag(tmp_path, mode=mode, seed=3)
    truth = out["truth"]
    info = read_info(out["tag"])
    assert info.product is Product.STIS_TAG and info.instrume == "STIS"
    table = open_event_table(out["tag"])
    assert not {"WAVELENGTH", "EPSILON", "DQ"} & set(table.columns)
    read = read_columns(out["tag"], ["TIME", "AXIS1", "AXIS2"], block_rows=50_000)
    assert read["TIME"].dtype == np.float64 and np.all(np.diff(read["TIME"]) >= 0)
    assert table.gti is not None
    np.testing.assert_allclose(table.gti, truth.gti)
    assert int(read["AXIS1"].max()) <= 2047 and int(read["AXIS2"].max()) <= 2047
    if mode == "imaging":
        assert info.cenwave == 0 and out["x1d"] is None
    else:
        x1d = read_info(out["x1d"])
        assert x1d.product is Product.X1D and x1d.instrume == "STIS"
        with fits.open(out["x1d"]) as hdulist:
            expected = 1 if mode == "first_order" else len(truth.orders)
            assert len(hdulist[1].data) == expected


# ----------------------------------------------------------------------------- sha256 in the pass
def _digest_of_pass(path: Path, *, block_rows: int, threads: int, raw: bool = True,
                    function=None) -> tuple[str | None, int]:
    """The digest a complete pass gives, and the rows it handed over."""
    table = open_event_table(path)
    digest = FileDigest()
    if raw:
        rows = sum(map_raw_blocks(table, function or (lambda rows, count: count),
                                  block_rows=block_rows, threads=threads, digest=digest))
    else:
        rows = sum(map_event_blocks(table, [TIME_COLUMN], lambda b: len(b[TIME_COLUMN]),
                                    block_rows=block_rows, threads=threads, digest=digest))
    assert rows == table.nrows
    return digest.sha256, rows


def _sandwiched_events(path: Path, n: int) -> Path:
    """An event file whose EVENTS table is neither the first extension nor the last."""
    time = np.sort(np.random.default_rng(5).uniform(0, 100, n))
    make_events(path, time, gti=[(0.0, 40.0), (50.0, 100.0)])
    with fits.open(path) as hdulist:
        hdus = [hdulist[0].copy(), fits.ImageHDU(np.arange(777, dtype=">i2"), name="BEFORE"),
                *(hdu.copy() for hdu in hdulist[1:]),
                fits.ImageHDU(np.ones((3, 5), ">f8"), name="AFTER")]
        fits.HDUList(hdus).writeto(path, overwrite=True)
    return path


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("block_rows", [1, 7, 100, 333, 1000, 1001, 5000])
def test_pass_digest_is_the_files_sha256(tmp_path: Path, threads: int, block_rows: int) -> None:
    path = _sandwiched_events(tmp_path / "lb1c01abq_corrtag_a.fits", 1001)
    table = open_event_table(path)
    assert table.extension == 2 and table.gti is not None  # EVENTS between two other HDUs
    assert table.data_offset is not None and table.data_offset > 2880
    end = table.data_offset + table.nrows * table.dtype.itemsize
    assert path.stat().st_size > end + 2880  # bytes after the table: GTI, AFTER
    for raw in (True, False):
        digest, _ = _digest_of_pass(path, block_rows=block_rows, threads=threads, raw=raw)
        assert digest == sha256_file(path)


def test_pass_digest_of_an_empty_table(tmp_path: Path) -> None:
    path = make_events(tmp_path / "lb1c01abq_corrtag_a.fits", np.array([]), gti=[(0.0, 1.0)])
    assert _digest_of_pass(path, block_rows=10, threads=2) == (sha256_file(path), 0)


@pytest.mark.parametrize("threads", [1, 2])
def test_pass_digest_whatever_the_pace_of_the_blocks(tmp_path: Path, threads: int) -> None:
    """Blocks finishing out of step with the hash never change the digest (nor hang)."""
    import time as clock

    path = _sandwiched_events(tmp_path / "lb1c01abq_corrtag_a.fits", 3000)
    pauses = iter(np.random.default_rng(6).uniform(0, 2e-3, 1000))

    def uneven(rows: np.ndarray, count: int) -> int:
        clock.sleep(next(pauses))
        return count

    assert _digest_of_pass(path, block_rows=37, threads=threads,
                           function=uneven)[0] == sha256_file(path)


def test_pass_digest_of_a_synthetic_corrtag_pair(tmp_path: Path) -> None:
    import builders as b

    pair = b.build_cos_fuv_pair(tmp_path, seed=21, exptime=300.0, source_rate=40.0)
    for key in ("corrtag_a", "corrtag_b"):
        for block_rows, threads in ((1 << 16, 2), (4099, 2), (1000, 1)):
            assert _digest_of_pass(pair[key], block_rows=block_rows,
                                   threads=threads)[0] == sha256_file(pair[key])


@pytest.mark.parametrize("rootname", sorted(REAL))
def test_pass_digest_of_a_real_corrtag(real_data: Path, rootname: str) -> None:
    path = real_data / GJ436 / f"{rootname}_corrtag_a.fits"
    table = open_event_table(path)
    assert table.extension == 1 and table.gti is not None  # GTI after the table
    expected = sha256_file(path)
    for block_rows, threads in ((1 << 16, 2), (4096, 2), (4096, 1), (12_345, 2)):
        assert table.nrows % block_rows != 0
        assert _digest_of_pass(path, block_rows=block_rows, threads=threads)[0] == expected


@pytest.mark.parametrize("threads", [1, 2])
def test_no_digest_from_an_unfinished_pass(tmp_path: Path, threads: int) -> None:
    path = _sandwiched_events(tmp_path / "lb1c01abq_corrtag_a.fits", 1000)
    table = open_event_table(path)
    digest = FileDigest()
    blocks = map_raw_blocks(table, lambda rows, count: count, block_rows=10, threads=threads,
                            digest=digest)
    next(blocks), next(blocks)
    blocks.close()  # the consumer stops early: no digest, no thread left waiting
    assert digest.sha256 is None

    def fails(rows: np.ndarray, count: int) -> int:
        raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        list(map_raw_blocks(table, fails, block_rows=10, threads=threads, digest=digest))
    assert digest.sha256 is None
    with open(path, "r+b") as handle:  # cut inside the table
        handle.truncate(table.data_offset + 500 * table.dtype.itemsize + 3)
    with pytest.raises(UnreadableFileError, match="ends inside the event table"):
        list(map_raw_blocks(table, lambda rows, count: count, block_rows=64, threads=threads,
                            digest=digest))
    assert digest.sha256 is None


def test_no_digest_when_read_through_astropy(tmp_path: Path) -> None:
    import gzip

    plain = make_events(tmp_path / "lb1c01abq_corrtag_a.fits", np.linspace(0, 10, 300))
    packed = tmp_path / "lb1c01acq_corrtag_a.fits.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    digest = FileDigest()
    table = open_event_table(packed)
    assert sum(map_raw_blocks(table, lambda rows, count: count, block_rows=64, threads=2,
                              digest=digest)) == 300
    assert digest.sha256 is None  # the caller hashes such a file itself
