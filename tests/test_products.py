"""Product detection from headers and columns: real files, hand-made odd files."""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from hstlc.errors import (
    MissingKeywordError,
    UnreadableFileError,
    UnsupportedProductError,
)
from hstlc.io.products import Product, detect_product, open_fits

GJ436 = "cos_fuv_g130m_gj436"
COS_PRIMARY = {"TELESCOP": "HST", "INSTRUME": "COS", "DETECTOR": "FUV", "OBSMODE": "TIME-TAG",
               "SEGMENT": "FUVA", "NEXTEND": 1}
CORRTAG_COLUMNS = ("TIME", "RAWX", "RAWY", "XCORR", "YCORR", "WAVELENGTH", "EPSILON", "DQ")


def detect_file(path: Path) -> Product:
    """Open a file and name its product, as the quality checks do."""
    with open_fits(path) as hdulist:
        return detect_product(hdulist, path.name)


def write_table(path: Path, primary: dict[str, object], columns: tuple[str, ...],
                extname: str = "EVENTS", nrows: int = 3) -> Path:
    """A primary header plus one binary table of float columns."""
    rng = np.random.default_rng(5)
    cols = [fits.Column(name=name, format="E", array=np.sort(rng.random(nrows)).astype("f4"))
            for name in columns]
    table = fits.BinTableHDU.from_columns(cols, name=extname)
    header = fits.Header()
    for key, value in primary.items():
        header[key] = value
    fits.HDUList([fits.PrimaryHDU(header=header), table]).writeto(path)
    return path


# ----------------------------------------------------------------------------- real files
@pytest.mark.parametrize("rootname", ["ld9m10ujq", "ld9m10uyq"])
def test_real_corrtag_a_is_cos_fuv_segment_a(real_data: Path, rootname: str) -> None:
    path = real_data / GJ436 / f"{rootname}_corrtag_a.fits"
    product = detect_file(path)
    assert product is Product.COS_FUV_CORRTAG_A
    assert product.fuv_segment == "A" and product.is_cos_fuv and product.has_events


@pytest.mark.parametrize("rootname", ["ld9m10ujq", "ld9m10uyq"])
def test_real_x1d_is_x1d(real_data: Path, rootname: str) -> None:
    product = detect_file(real_data / GJ436 / f"{rootname}_x1d.fits")
    assert product is Product.X1D and not product.has_events


@pytest.mark.parametrize(
    "name, found",
    [
        ("ldfd01vnq_lampflash.fits.gz", "EXTNAME='LAMPFLASH'"),
        ("ldngz2szq_rawacq.fits.gz", "OBSMODE='ACCUM', not TIME-TAG"),
        ("o4er06llq_raw.fits", "DETECTOR='CCD'"),
    ],
)
def test_real_rejects_are_unsupported(real_data: Path, name: str, found: str) -> None:
    with pytest.raises(UnsupportedProductError) as info:
        detect_file(real_data / "reject" / name)
    assert info.value.reason == "Unsupported product"
    assert info.value.detail.startswith(f"{name}: ")
    assert found in info.value.detail
    assert info.value.filename == name


def test_reference_table_is_unsupported_not_missing_keyword(real_data: Path) -> None:
    # a TDS table has a TIME column but is no event list: its lack of INSTRUME is no defect
    with pytest.raises(UnsupportedProductError, match="no INSTRUME"):
        detect_file(real_data / "reference" / "calcos_tests_test_tds.fits")


def test_name_does_not_decide(real_data: Path, tmp_path: Path) -> None:
    # a real corrtag under an x1d name is still a corrtag; headers and columns decide
    fake = tmp_path / "ld9m10ujq_x1d.fits"
    shutil.copyfile(real_data / GJ436 / "ld9m10ujq_corrtag_a.fits", fake)
    assert detect_file(fake) is Product.COS_FUV_CORRTAG_A


def test_gzipped_real_file(real_data: Path, tmp_path: Path) -> None:
    target = tmp_path / "ld9m10ujq_corrtag_a.fits.gz"
    with open(real_data / GJ436 / "ld9m10ujq_corrtag_a.fits", "rb") as src, \
            gzip.open(target, "wb") as dst:
        shutil.copyfileobj(src, dst)
    assert detect_file(target) is Product.COS_FUV_CORRTAG_A


# ----------------------------------------------------------------------------- broken files
def test_garbage_empty_and_missing_files_are_unreadable(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.fits"
    garbage.write_bytes(os.urandom(4000))
    empty = tmp_path / "empty.fits"
    empty.write_bytes(b"")
    gz = tmp_path / "garbage.fits.gz"
    gz.write_bytes(gzip.compress(os.urandom(3000)))
    for path in (garbage, empty, gz, tmp_path / "absent.fits", tmp_path):
        with pytest.raises(UnreadableFileError) as info:
            detect_file(path)
        assert info.value.reason == "Unreadable file"
        assert info.value.detail.startswith(path.name)


def test_truncated_files_are_unreadable(real_data: Path, tmp_path: Path) -> None:
    data = (real_data / GJ436 / "ld9m10ujq_corrtag_a.fits").read_bytes()
    for cut in (10_000, 1_000_000, len(data) - 50_000):
        path = tmp_path / f"cut{cut}_corrtag_a.fits"
        path.write_bytes(data[:cut])
        with pytest.raises(UnreadableFileError):
            detect_file(path)
    path = tmp_path / "cut_corrtag_a.fits.gz"
    path.write_bytes(gzip.compress(data)[:200_000])
    with pytest.raises(UnreadableFileError, match="NEXTEND|truncated"):
        detect_file(path)


def test_truncated_gzip_without_nextend(tmp_path: Path) -> None:
    source = write_table(tmp_path / "x_corrtag_a.fits", {**COS_PRIMARY, "NEXTEND": None},
                         CORRTAG_COLUMNS, nrows=20_000)
    path = tmp_path / "x_corrtag_a.fits.gz"
    whole = gzip.compress(source.read_bytes())
    path.write_bytes(whole[: len(whole) // 2])  # primary header intact, events cut
    with pytest.raises(UnreadableFileError, match="gzip stream"):
        detect_file(path)


def test_primary_only_is_unsupported(tmp_path: Path) -> None:
    path = tmp_path / "prim.fits"
    fits.PrimaryHDU().writeto(path)
    with pytest.raises(UnsupportedProductError, match="no extension 1"):
        detect_file(path)


# ----------------------------------------------------------------------------- hand-made
@pytest.mark.parametrize(
    "primary, columns, extname, expected",
    [
        (COS_PRIMARY, CORRTAG_COLUMNS, "EVENTS", Product.COS_FUV_CORRTAG_A),
        ({**COS_PRIMARY, "SEGMENT": "FUVB"}, CORRTAG_COLUMNS, "EVENTS", Product.COS_FUV_CORRTAG_B),
        ({**COS_PRIMARY, "DETECTOR": "NUV", "SEGMENT": "NUV"}, CORRTAG_COLUMNS, "EVENTS",
         Product.COS_NUV_CORRTAG),
        ({**COS_PRIMARY, "INSTRUME": "STIS", "DETECTOR": "FUV-MAMA"}, CORRTAG_COLUMNS, "EVENTS",
         Product.STIS_CORRTAG),
        ({**COS_PRIMARY, "INSTRUME": "STIS", "DETECTOR": "NUV-MAMA"},
         ("TIME", "AXIS1", "AXIS2", "DETAXIS1"), "EVENTS", Product.STIS_TAG),
        ({**COS_PRIMARY, "SEGMENT": "BOTH"}, ("WAVELENGTH", "FLUX", "NET", "GROSS"), "SCI",
         Product.X1D),
        ({}, ("bins", "times", "mjd", "gross", "counts", "net", "flux", "flux_error",
              "background", "error", "dataset"), "LIGHTCURVE", Product.LIGHTCURVE),
    ],
)
def test_detection_by_headers_and_columns(tmp_path: Path, primary: dict[str, object],
                                          columns: tuple[str, ...], extname: str,
                                          expected: Product) -> None:
    path = write_table(tmp_path / "anyname.fits", primary, columns, extname)
    assert detect_file(path) is expected


@pytest.mark.parametrize(
    "primary, columns, extname, match",
    [
        ({**COS_PRIMARY, "INSTRUME": "WFC3"}, CORRTAG_COLUMNS, "EVENTS", "INSTRUME='WFC3'"),
        ({**COS_PRIMARY, "INSTRUME": "STIS", "DETECTOR": "CCD"}, CORRTAG_COLUMNS, "EVENTS",
         "DETECTOR='CCD'"),
        ({**COS_PRIMARY, "OBSMODE": "ACCUM"}, CORRTAG_COLUMNS, "EVENTS", "OBSMODE='ACCUM'"),
        (COS_PRIMARY, ("TIME", "RAWX", "RAWY", "PHA"), "EVENTS", "raw event list"),
        (COS_PRIMARY, ("SEGMENT", "TIME", "LAMP_ON", "WAVELENGTH", "NET"), "LAMPFLASH",
         "LAMPFLASH"),
        ({}, ("A", "B"), "STUFF", "no INSTRUME, DETECTOR, OBSMODE"),
    ],
)
def test_unsupported_products(tmp_path: Path, primary: dict[str, object],
                              columns: tuple[str, ...], extname: str, match: str) -> None:
    path = write_table(tmp_path / "odd.fits", primary, columns, extname)
    with pytest.raises(UnsupportedProductError, match=match) as info:
        detect_file(path)
    assert info.value.detail.startswith("odd.fits: ")


def test_event_table_without_instrume_is_missing_keyword(tmp_path: Path) -> None:
    primary = {k: v for k, v in COS_PRIMARY.items() if k != "INSTRUME"}
    path = write_table(tmp_path / "x_corrtag_a.fits", primary, CORRTAG_COLUMNS)
    with pytest.raises(MissingKeywordError, match="x_corrtag_a.fits: ext 0 has no INSTRUME"):
        detect_file(path)


def test_fuv_segment_falls_back_on_the_file_name(tmp_path: Path) -> None:
    primary = {k: v for k, v in COS_PRIMARY.items() if k != "SEGMENT"}
    path = write_table(tmp_path / "x_corrtag_b.fits", primary, CORRTAG_COLUMNS)
    assert detect_file(path) is Product.COS_FUV_CORRTAG_B
    path = write_table(tmp_path / "x_events.fits", primary, CORRTAG_COLUMNS)
    with pytest.raises(MissingKeywordError, match="SEGMENT"):
        detect_file(path)


def test_header_segment_wins_over_the_file_name(tmp_path: Path) -> None:
    path = write_table(tmp_path / "x_corrtag_a.fits", {**COS_PRIMARY, "SEGMENT": "FUVB"},
                       CORRTAG_COLUMNS)
    assert detect_file(path) is Product.COS_FUV_CORRTAG_B


def test_detect_product_on_an_open_file(real_data: Path) -> None:
    path = real_data / GJ436 / "ld9m10ujq_corrtag_a.fits"
    with open_fits(path) as hdulist:
        assert detect_product(hdulist, path.name) is Product.COS_FUV_CORRTAG_A


# ----------------------------------------------------------------------------- threads
def _with_gti(path: Path, nrows: int) -> Path:
    """``write_table``'s file plus a GTI extension, so a cut can fall before the GTI."""
    with fits.open(path) as hdulist:
        hdus = [hdu.copy() for hdu in hdulist]
    gti = fits.BinTableHDU.from_columns(
        [fits.Column(name="START", format="D", array=np.arange(nrows % 7 + 1) * 10.0),
         fits.Column(name="STOP", format="D", array=np.arange(nrows % 7 + 1) * 10.0 + 5.0)],
        name="GTI")
    fits.HDUList([*hdus, gti]).writeto(path, overwrite=True)
    return path


def _truncation_set(tmp_path: Path) -> tuple[list[Path], dict[Path, int]]:
    """24 intact files and 12 cut ones (inside the events data, between HDUs, in the GTI)."""
    primary = {**COS_PRIMARY, "NEXTEND": None}
    intact = []
    for index in range(24):
        nrows = 2_000 + 37 * index
        path = write_table(tmp_path / f"good{index:02d}_corrtag_a.fits", primary,
                           CORRTAG_COLUMNS, nrows=nrows)
        intact.append(_with_gti(path, nrows) if index % 2 else path)
    truncated: dict[Path, int] = {}
    for index in range(12):
        nrows = 3_000 + 41 * index
        source = _with_gti(write_table(tmp_path / f"src{index:02d}.fits", primary,
                                       CORRTAG_COLUMNS, nrows=nrows), nrows)
        with fits.open(source) as hdulist:
            gti_data = hdulist.fileinfo(2)["datLoc"]
        data = source.read_bytes()
        source.unlink()
        cut = [gti_data + 5, gti_data - 2880 - 11 * index, gti_data - 5 * 2880 - index][index % 3]
        path = tmp_path / f"cut{index:02d}_corrtag_a.fits"
        path.write_bytes(data[:cut])
        truncated[path] = cut
    return intact, truncated


def _verdict(path: Path) -> str:
    try:
        with open_fits(path):
            return "ok"
    except UnreadableFileError as error:
        return error.detail


def test_each_file_is_judged_on_its_own_facts_in_threads(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    intact, truncated = _truncation_set(tmp_path)
    order = (intact + list(truncated)) * 12  # 432 checks
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(_verdict, order))
    assert len(results) == 432
    for path, detail in zip(order, results, strict=True):
        if path in truncated:
            assert detail.startswith(f"{path.name}: "), detail
            assert f"{truncated[path]} bytes" in detail, detail
        else:
            assert detail == "ok", detail


def test_cut_file_detail_names_the_extension_and_sizes(tmp_path: Path) -> None:
    source = write_table(tmp_path / "x_corrtag_a.fits", {**COS_PRIMARY, "NEXTEND": None},
                         CORRTAG_COLUMNS, nrows=5_000)
    data = source.read_bytes()
    source.write_bytes(data[: len(data) - 9_000])
    with pytest.raises(UnreadableFileError, match=r"ext 1 .*EVENTS.* needs \d+ bytes .* "
                                                  rf"{len(data) - 9_000} bytes"):
        detect_file(source)


@pytest.mark.parametrize("absent", ["DQ", "EPSILON", "WAVELENGTH"])
def test_a_corrtag_without_one_column_names_that_column(tmp_path: Path, absent: str) -> None:
    columns = tuple(c for c in CORRTAG_COLUMNS if c != absent)
    path = write_table(tmp_path / "x_corrtag_a.fits", COS_PRIMARY, columns)
    with pytest.raises(MissingKeywordError) as info:
        detect_file(path)
    assert info.value.detail == f"x_corrtag_a.fits: ext 1 EVENTS has no column {absent}"


def test_a_raw_event_list_hint_names_the_columns_it_lacks(tmp_path: Path) -> None:
    path = write_table(tmp_path / "x_rawtag_a.fits", COS_PRIMARY, ("TIME", "RAWX", "RAWY", "DQ"))
    with pytest.raises(UnsupportedProductError,
                       match=r"a raw event list: no EPSILON, WAVELENGTH, XCORR, YCORR\)"):
        detect_file(path)
