"""Hostile inputs at file level: every broken file gets its reason, nothing escapes.

Each case builds a realistic file (the builders' COS FUV corrtag or STIS tag, or a copy
of the real GJ-436 corrtag), breaks one thing, and asks
:func:`hstlc.extraction.quality.check_dataset` for the verdict.  The property test
mutates headers and columns of the real corrtag at random: the check never raises, and
what it passes, the extraction either refuses with a permanent error or turns into a
lightcurve with source events.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import builders as b
import numpy as np
import pytest
from astropy.io import fits
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hstlc import errors
from hstlc.errors import PermanentError
from hstlc.extraction.extract import extract_lightcurve
from hstlc.extraction.quality import check_dataset

GJ436_CORRTAG = Path("cos_fuv_g130m_gj436") / "ld9m10ujq_corrtag_a.fits"
USED = ("TIME", "XCORR", "YCORR", "WAVELENGTH", "EPSILON")


@pytest.fixture
def corrtag(tmp_path: Path) -> Path:
    """A synthetic COS FUV segment A corrtag (no partner, no x1d)."""
    files = b.build_cos_fuv_pair(tmp_path, seed=21, exptime=300.0, segments=("A",),
                                 with_x1d=False)
    return files["corrtag_a"]


def _reason(path: Path) -> str | None:
    verdict = check_dataset([path])
    assert verdict.detail.startswith(path.name) or verdict.ok, verdict.detail
    return verdict.reason


def _update(path: Path, change: Callable[[fits.HDUList], None]) -> Path:
    with fits.open(path, mode="update") as hdulist:
        change(hdulist)
    return path


def _cut(path: Path, at: Callable[[fits.HDUList], int]) -> Path:
    with fits.open(path) as hdulist:
        offset = at(hdulist)
    path.write_bytes(path.read_bytes()[:offset])
    return path


# ----------------------------------------------------------------------------- unreadable
def test_zero_bytes_and_not_fits(tmp_path: Path) -> None:
    empty = tmp_path / "lb1c01abq_corrtag_a.fits"
    empty.write_bytes(b"")
    assert _reason(empty) == errors.UNREADABLE_FILE
    text = tmp_path / "lb1c01acq_corrtag_a.fits"
    text.write_text("SIMPLE  = this is no FITS file\n" * 100)
    assert _reason(text) == errors.UNREADABLE_FILE


CUTS: dict[str, Callable[[fits.HDUList], int]] = {
    "inside the primary header": lambda h: 1000,
    "at the end of the primary header": lambda h: h.fileinfo(0)["datLoc"],
    "between the primary and the events": lambda h: h.fileinfo(1)["hdrLoc"] + 80,
    "inside the events header": lambda h: h.fileinfo(1)["hdrLoc"] + 1000,
    "inside the events data": lambda h: h.fileinfo(1)["datLoc"] + 5_000,
    "just before the GTI": lambda h: h.fileinfo(2)["hdrLoc"] - 1,
    "inside the GTI header": lambda h: h.fileinfo(2)["hdrLoc"] + 100,
    "inside the GTI data": lambda h: h.fileinfo(2)["datLoc"] + 8,
    "one byte short": lambda h: h.fileinfo(2)["datLoc"] + h.fileinfo(2)["datSpan"] - 1,
}


@pytest.mark.parametrize("where", sorted(CUTS))
def test_truncated_at_several_offsets(corrtag: Path, where: str) -> None:
    assert _reason(_cut(corrtag, CUTS[where])) == errors.UNREADABLE_FILE


@pytest.mark.parametrize("where", sorted(CUTS))
def test_truncated_real_file(real_data: Path, tmp_path: Path, where: str) -> None:
    path = tmp_path / GJ436_CORRTAG.name
    shutil.copyfile(real_data / GJ436_CORRTAG, path)
    assert _reason(_cut(path, CUTS[where])) == errors.UNREADABLE_FILE


# ----------------------------------------------------------------------------- structure
def test_missing_extensions(corrtag: Path, tmp_path: Path) -> None:
    with fits.open(corrtag) as hdulist:
        primary = fits.PrimaryHDU(header=hdulist[0].header.copy())
        events = hdulist["EVENTS"].copy()
    primary.header["NEXTEND"] = 0
    only = tmp_path / "lb1c01acq_corrtag_a.fits"
    fits.HDUList([primary]).writeto(only)
    assert _reason(only) == errors.UNSUPPORTED_PRODUCT
    primary.header["NEXTEND"] = 1
    no_gti = tmp_path / "lb1c01adq_corrtag_a.fits"
    fits.HDUList([primary, events]).writeto(no_gti)
    assert _reason(no_gti) is None  # the GTI is optional: [0, EXPTIME]
    primary.header["NEXTEND"] = 3
    promised = tmp_path / "lb1c01aeq_corrtag_a.fits"
    fits.HDUList([primary, events]).writeto(promised)
    assert _reason(promised) == errors.UNREADABLE_FILE


@pytest.mark.parametrize("columns, reason", [
    (("DQ",), errors.MISSING_KEYWORD),
    (("EPSILON",), errors.MISSING_KEYWORD),
    (("XCORR", "YCORR", "WAVELENGTH"), errors.UNSUPPORTED_PRODUCT),
])
def test_missing_columns(corrtag: Path, columns: tuple[str, ...], reason: str) -> None:
    with fits.open(corrtag) as hdulist:
        hdus = [hdu.copy() for hdu in hdulist]
    events = hdus[1]
    kept = [c for c in events.columns if c.name not in columns]
    hdus[1] = fits.BinTableHDU.from_columns(kept, header=events.header)
    fits.HDUList(hdus).writeto(corrtag, overwrite=True)
    assert _reason(corrtag) == reason


# ----------------------------------------------------------------------------- times
@pytest.mark.parametrize("change, reason", [
    (lambda t: t[::-1], errors.NON_LINEAR_TIME),
    (lambda t: np.concatenate([t[1:], t[:1]]), errors.NON_LINEAR_TIME),
    (lambda t: np.full_like(t, 12.5), errors.SINGULAR_EVENT),
    (lambda t: np.repeat(t[::2], 2)[: t.size], None),  # equal neighbours are no decrease
])
def test_decreasing_singular_and_equal_times(corrtag: Path, change: Callable, reason: str) -> None:
    def rewrite(hdulist: fits.HDUList) -> None:
        time = hdulist["EVENTS"].data["TIME"]
        time[:] = change(np.array(time))

    assert _reason(_update(corrtag, rewrite)) == reason


def test_a_single_event_is_singular(corrtag: Path, tmp_path: Path) -> None:
    with fits.open(corrtag) as hdulist:
        hdus = [hdu.copy() for hdu in hdulist]
    hdus[1] = fits.BinTableHDU(hdus[1].data[:1], header=hdus[1].header)
    fits.HDUList(hdus).writeto(corrtag, overwrite=True)
    assert _reason(corrtag) == errors.SINGULAR_EVENT


@pytest.mark.parametrize("exptime", [0.0, -5.0, 0.999])
def test_exptime_zero_or_negative_is_short(corrtag: Path, exptime: float) -> None:
    _update(corrtag, lambda h: h["EVENTS"].header.set("EXPTIME", exptime))
    assert _reason(corrtag) == errors.SHORT_EXPOSURE


@pytest.mark.parametrize("stop", [1e9, 3e5])
def test_a_huge_gti_is_a_long_time_span(corrtag: Path, stop: float) -> None:
    def widen(hdulist: fits.HDUList) -> None:
        hdulist["GTI"].data["STOP"][-1] = stop

    assert _reason(_update(corrtag, widen)) == errors.LONG_TIME_SPAN


# ----------------------------------------------------------------------------- values
@pytest.mark.parametrize("column", USED)
@pytest.mark.parametrize("value, rows", [(np.nan, slice(None)), (np.inf, slice(7, 8)),
                                         (-np.inf, slice(-3, None))])
def test_non_finite_values_in_each_used_column(corrtag: Path, column: str, value: float,
                                               rows: slice) -> None:
    def spoil(hdulist: fits.HDUList) -> None:
        hdulist["EVENTS"].data[column][rows] = value

    assert _reason(_update(corrtag, spoil)) == errors.CORRUPT_EVENTS


@pytest.mark.parametrize("tform, make", [
    ("16A", lambda t: np.char.mod("%.4f", t)),
    ("M", lambda t: t + 0j),
    ("2E", lambda t: np.stack([t, t], axis=1).astype("f4")),
])
def test_time_of_a_wrong_type(corrtag: Path, tform: str, make: Callable) -> None:
    with fits.open(corrtag) as hdulist:
        hdus = [hdu.copy() for hdu in hdulist]
    events = hdus[1]
    columns = [fits.Column(name="TIME", format=tform, array=make(np.array(events.data["TIME"])))
               if c.name == "TIME" else c for c in events.columns]
    hdus[1] = fits.BinTableHDU.from_columns(columns, header=events.header)
    fits.HDUList(hdus).writeto(corrtag, overwrite=True)
    assert _reason(corrtag) == errors.CORRUPT_EVENTS


def test_stis_tag_with_nan_time_and_a_huge_gti(tmp_path: Path) -> None:
    tag = b.build_stis_tag(tmp_path, with_x1d=False)["tag"]
    assert _reason(tag) is None
    with fits.open(tag) as hdulist:  # the builder may write integer ticks (TSCAL)
        floating = str(hdulist["EVENTS"].columns["TIME"].format) in ("E", "D")
    if floating:
        _update(tag, lambda h: h["EVENTS"].data["TIME"].__setitem__(3, np.nan))
        assert _reason(tag) == errors.CORRUPT_EVENTS
    tag = b.build_stis_tag(tmp_path / "gti", with_x1d=False)["tag"]
    _update(tag, lambda h: h["GTI"].data["STOP"].__setitem__(-1, 1e9))
    assert _reason(tag) == errors.LONG_TIME_SPAN


# ----------------------------------------------------------------------------- property
_HEADER_KEYS = ("EXPTIME", "EXPSTART", "EXPFLAG", "SDQFLAGS", "SP_LOC_A", "SP_HGT_A",
                "B_BKG1_A", "B_HGT1_A", "B_BKG2_A", "B_HGT2_A", "SEGMENT", "DETECTOR",
                "OBSMODE", "INSTRUME", "TARGNAME", "OPT_ELEM", "CENWAVE", "PROPOSID",
                "ROOTNAME", "APERTURE")
_header_values = st.one_of(
    st.none(),  # deleted
    st.sampled_from([0, -1, 1, 1e12, -1e12, "", "X", "NORMAL", "FUVA", "TIME-TAG", "COS"]),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
)
_column_values = st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -1.0, 1e30, -1e30, 500.0,
                                  1300.0, 16383.9])
_header_mutation = st.tuples(st.just("header"), st.sampled_from(_HEADER_KEYS), _header_values)
_column_mutation = st.tuples(
    st.just("column"), st.sampled_from(USED + ("DQ",)),
    st.tuples(st.integers(0, 40_449), st.integers(1, 40_450), _column_values))
_gti_mutation = st.tuples(st.just("gti"), st.sampled_from(["START", "STOP"]),
                          st.sampled_from([-1e9, -1.0, 0.0, 1.0, 100.0, 1e9]))
_mutations = st.lists(st.one_of(_header_mutation, _column_mutation, _gti_mutation),
                      min_size=1, max_size=3)
TRIED: dict[str, int] = {"examples": 0, "passed": 0, "lightcurves": 0, "refused": 0}


def _mutate(hdulist: fits.HDUList, mutation: tuple) -> None:
    kind, name, value = mutation
    if kind == "header":
        header = hdulist[1].header if name in hdulist[1].header else hdulist[0].header
        if value is None:
            header.remove(name, ignore_missing=True)
        else:
            header[name] = value
    elif kind == "column":
        start, length, number = value
        column = hdulist["EVENTS"].data[name]
        number = number if column.dtype.kind == "f" or np.isfinite(number) else 0
        column[start:start + length] = np.clip(number, -32768, 32767) if column.dtype.kind in "iu" \
            else number
    else:
        hdulist["GTI"].data[name][0] = value


@pytest.fixture(scope="module")
def real_corrtag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import REAL_DATA_DIR

    source = REAL_DATA_DIR / GJ436_CORRTAG
    if not source.is_file():
        pytest.skip(f"real HST files not available: {source} does not exist")
    path = tmp_path_factory.mktemp("real") / GJ436_CORRTAG.name
    shutil.copyfile(source, path)
    return path


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutations=_mutations)
def test_mutated_real_corrtag_is_checked_or_extracted(real_corrtag: Path, tmp_path: Path,
                                                      mutations: list[tuple]) -> None:
    path = tmp_path / f"m{TRIED['examples']:03d}" / real_corrtag.name
    path.parent.mkdir()
    shutil.copyfile(real_corrtag, path)
    with fits.open(path, mode="update") as hdulist:
        for mutation in mutations:
            _mutate(hdulist, mutation)
    TRIED["examples"] += 1
    verdict = check_dataset([path])
    if not verdict.ok:
        assert verdict.reason in errors.BAD_DATA_REASONS and verdict.detail
        return
    TRIED["passed"] += 1
    try:
        lightcurve = extract_lightcurve(path, checksums=False)
    except PermanentError:
        TRIED["refused"] += 1
        return
    TRIED["lightcurves"] += 1
    assert np.any(lightcurve.gross != 0) and np.all(np.isfinite(lightcurve.gross))
