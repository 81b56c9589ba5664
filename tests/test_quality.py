"""Quality checks: the nine reasons, their precedence, and that no exception escapes."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import builders
import numpy as np
import pytest
from astropy.io import fits
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hstlc import errors
from hstlc.errors import MissingKeywordError, QualityError, UnreadableFileError, UnsupportedProductError
from hstlc.extraction.quality import (
    QualityVerdict,
    check_dataset,
    check_file,
    check_header,
    check_time,
    first_decrease,
    summarize_time,
)
from hstlc.io.events import iter_event_blocks, open_event_table
from hstlc.io.headers import group_dataset_files, read_observation_info
from hstlc.io.products import Product, detect_product, open_fits
from tests.test_events import make_events

GJ436 = "cos_fuv_g130m_gj436"


# ----------------------------------------------------------------------------- real files
@pytest.mark.parametrize("name", ["ld9m10ujq_corrtag_a.fits", "ld9m10uyq_corrtag_a.fits",
                                  "ld9m10ujq_x1d.fits", "ld9m10uyq_x1d.fits"])
def test_real_gj436_files_pass(real_data: Path, name: str) -> None:
    verdict = check_file(real_data / GJ436 / name)
    assert verdict.ok and verdict.reason is None and verdict.filename == name
    assert verdict.product in (Product.COS_FUV_CORRTAG_A, Product.X1D)
    verdict.raise_for_reason()  # no-op


@pytest.mark.parametrize("rootname", ["ld9m10ujq", "ld9m10uyq"])
def test_real_dataset_without_b_passes(real_data: Path, rootname: str) -> None:
    files = group_dataset_files((real_data / GJ436).iterdir())[rootname]
    verdict = check_dataset(files)
    assert verdict.ok and verdict.product is Product.COS_FUV_CORRTAG_A


@pytest.mark.parametrize("name", ["ldfd01vnq_lampflash.fits.gz", "ldngz2szq_rawacq.fits.gz",
                                  "o4er06llq_raw.fits"])
def test_every_real_reject_is_refused_as_unsupported(real_data: Path, name: str) -> None:
    verdict = check_file(real_data / "reject" / name)
    assert not verdict.ok and verdict.reason == errors.UNSUPPORTED_PRODUCT
    assert verdict.filename == name and verdict.detail.startswith(name)


def test_stis_ccd_acquisition_precedence(real_data: Path) -> None:
    # EXPFLAG INTERRUPTED and EXPTIME 0.74 s, but what the file *is* decides first
    verdict = check_file(real_data / "reject" / "o4er06llq_raw.fits")
    assert verdict.reason == errors.UNSUPPORTED_PRODUCT and "CCD" in verdict.detail


def test_real_rejects_all_covered(real_data: Path) -> None:
    verdicts = [check_file(p) for p in sorted((real_data / "reject").iterdir())]
    assert verdicts and not any(v.ok for v in verdicts)


def test_bad_proposal_on_real_file(real_data: Path) -> None:
    verdict = check_file(real_data / GJ436 / "ld9m10ujq_corrtag_a.fits", bad_proposals=[14767])
    assert verdict.reason == errors.BAD_PROPOSAL and "PROPOSID=14767" in verdict.detail
    assert check_file(real_data / GJ436 / "ld9m10ujq_corrtag_a.fits", bad_proposals=[1]).ok


# ----------------------------------------------------------------------------- broken files
def _broken_files(directory: Path, real_data: Path) -> dict[str, Path]:
    corrtag = (real_data / GJ436 / "ld9m10ujq_corrtag_a.fits").read_bytes()
    files = {
        "garbage.fits": os.urandom(5000),
        "empty.fits": b"",
        "truncated_header.fits": corrtag[:10_000],
        "truncated_data.fits": corrtag[:1_000_000],
        "truncated.fits.gz": gzip.compress(corrtag)[:300_000],
        "garbage.fits.gz": gzip.compress(os.urandom(3000)),
    }
    paths = {}
    for name, data in files.items():
        paths[name] = directory / name
        paths[name].write_bytes(data)
    paths["primary_only.fits"] = directory / "primary_only.fits"
    fits.PrimaryHDU().writeto(paths["primary_only.fits"])
    return paths


def test_no_exception_escapes_on_broken_files(real_data: Path, tmp_path: Path) -> None:
    paths = _broken_files(tmp_path, real_data)
    expected = {name: errors.UNREADABLE_FILE for name in paths}
    expected["primary_only.fits"] = errors.UNSUPPORTED_PRODUCT
    for name, path in paths.items():
        verdict = check_file(path)
        assert (verdict.ok, verdict.reason) == (False, expected[name]), name
        assert verdict.detail.startswith(name)
    missing = check_file(tmp_path / "absent_corrtag_a.fits")
    assert missing.reason == errors.UNREADABLE_FILE
    assert check_dataset([paths["garbage.fits"]]).reason == errors.UNREADABLE_FILE


FIXTURE_OK = [HealthCheck.function_scoped_fixture]


@settings(max_examples=40, deadline=None, suppress_health_check=FIXTURE_OK)
@given(cut=st.integers(min_value=0, max_value=1_748_160), noise=st.binary(max_size=64))
def test_fuzzed_real_file_never_raises(real_data: Path, tmp_path: Path, cut: int,
                                       noise: bytes) -> None:
    data = (real_data / GJ436 / "ld9m10ujq_corrtag_a.fits").read_bytes()
    path = tmp_path / "fuzz_corrtag_a.fits"
    path.write_bytes(data[:cut] + noise)
    verdict = check_file(path)
    assert isinstance(verdict, QualityVerdict)
    if data[:cut] + noise == data:
        assert verdict.ok
    elif cut < len(data) - 2880:  # more than the last block lost
        assert not verdict.ok


@settings(max_examples=50, deadline=None, suppress_health_check=FIXTURE_OK)
@given(st.binary(max_size=6000))
def test_random_bytes_never_raise(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "random.fits"
    path.write_bytes(data)
    verdict = check_file(path)
    assert not verdict.ok and verdict.reason in (errors.UNREADABLE_FILE, errors.UNSUPPORTED_PRODUCT)


# ----------------------------------------------------------------------------- each reason
REASON_CASES = {
    errors.BAD_EXPFLAG: (dict(ext1={"EXPFLAG": "INTERRUPTED"}), "EXPFLAG='INTERRUPTED'"),
    errors.SHORT_EXPOSURE: (dict(ext1={"EXPTIME": 0.4}), "EXPTIME=0.4"),
    errors.NO_EVENTS: (dict(time=[]), "0 rows"),
    errors.SINGULAR_EVENT: (dict(time=[7.0, 7.0, 7.0]), "all 3 event(s) at TIME=7.0"),
    errors.NON_LINEAR_TIME: (dict(time=[1.0, 2.0, 3.0, 2.5, 4.0]), "decreases at row 3 (3.0 -> 2.5)"),
    errors.MISSING_KEYWORD: (dict(ext1={"EXPFLAG": None}), "ext 1 has no EXPFLAG"),
}


@pytest.mark.parametrize("reason", sorted(REASON_CASES))
def test_each_reason_on_a_synthetic_file(tmp_path: Path, reason: str) -> None:
    kwargs, detail = REASON_CASES[reason]
    time = np.asarray(kwargs.pop("time", [1.0, 2.0, 3.0]), dtype=float)
    path = make_events(tmp_path / "lb1c01abq_corrtag_a.fits", time, **kwargs)  # type: ignore[arg-type]
    verdict = check_file(path)
    assert (verdict.ok, verdict.reason) == (False, reason)
    assert verdict.filename == path.name and detail in verdict.detail
    assert verdict.product in (Product.COS_FUV_CORRTAG_A, None)
    with pytest.raises(QualityError if reason != errors.MISSING_KEYWORD else MissingKeywordError) as info:
        verdict.raise_for_reason()
    assert info.value.reason == reason and info.value.filename == path.name


def test_precedence_header_before_events(tmp_path: Path) -> None:
    # all of: bad EXPFLAG, short, bad proposal, singular  -> Bad EXPFLAG
    path = make_events(tmp_path / "lb1c01abq_corrtag_a.fits", np.array([5.0, 5.0]),
                       ext1={"EXPFLAG": "INTERRUPTED", "EXPTIME": 0.5})
    assert check_file(path, bad_proposals=[14767]).reason == errors.BAD_EXPFLAG
    path = make_events(tmp_path / "lb1c01acq_corrtag_a.fits", np.array([5.0, 5.0]),
                       ext1={"EXPTIME": 0.5})
    assert check_file(path, bad_proposals=[14767]).reason == errors.SHORT_EXPOSURE
    path = make_events(tmp_path / "lb1c01adq_corrtag_a.fits", np.array([]))
    assert check_file(path, bad_proposals=[14767]).reason == errors.BAD_PROPOSAL
    assert check_file(path).reason == errors.NO_EVENTS
    # a missing keyword outranks a bad EXPFLAG
    path = make_events(tmp_path / "lb1c01aeq_corrtag_a.fits", np.array([1.0, 2.0]),
                       ext1={"EXPFLAG": "INTERRUPTED", "EXPSTART": None})
    assert check_file(path).reason == errors.MISSING_KEYWORD


def test_fuv_pair_verdict_names_the_failing_segment(tmp_path: Path) -> None:
    a = make_events(tmp_path / "lb1c01abq_corrtag_a.fits", np.array([1.0, 2.0]))
    b = make_events(tmp_path / "lb1c01abq_corrtag_b.fits", np.array([2.0, 1.0]), segment="FUVB")
    verdict = check_dataset([a, b])
    assert verdict.reason == errors.NON_LINEAR_TIME and verdict.filename == b.name
    assert verdict.detail.startswith(b.name)
    assert check_dataset([a]).ok
    twin = make_events(tmp_path / "lb1c01abq_corrtag_b.fits.gz", np.array([1.0, 2.0]))
    assert check_dataset([a, twin]).reason == errors.UNSUPPORTED_PRODUCT
    nuv = make_events(tmp_path / "lb1c01abq_corrtag.fits", np.array([1.0, 2.0]),
                      detector="NUV", segment="NUV")
    assert check_dataset([a, nuv]).reason == errors.UNSUPPORTED_PRODUCT
    with pytest.raises(ValueError):
        check_dataset([])


def test_dataset_with_only_an_x1d_has_no_events(real_data: Path) -> None:
    verdict = check_dataset([real_data / GJ436 / "ld9m10ujq_x1d.fits"])
    assert verdict.reason == errors.NO_EVENTS


def test_raise_for_reason_uses_matching_classes() -> None:
    for reason, error in ((errors.UNREADABLE_FILE, UnreadableFileError),
                          (errors.UNSUPPORTED_PRODUCT, UnsupportedProductError),
                          (errors.BAD_EXPFLAG, QualityError)):
        verdict = QualityVerdict.failed(reason, "x.fits: detail", filename="x.fits")
        with pytest.raises(error, match="x.fits: detail"):
            verdict.raise_for_reason()


def test_header_and_time_checks_on_real_values(real_data: Path) -> None:
    path = real_data / GJ436 / "ld9m10ujq_corrtag_a.fits"
    with open_fits(path) as hdulist:
        info = read_observation_info(hdulist, path.name, detect_product(hdulist, path.name))
    assert check_header(info).ok
    assert check_header(info, bad_proposals=[14767]).reason == errors.BAD_PROPOSAL
    blocks = iter_event_blocks(open_event_table(path), ["TIME"], block_rows=4096)
    summary = summarize_time(block["TIME"] for block in blocks)
    assert summary.n == 40_450 and summary.decrease_at is None
    assert 0.0 <= summary.tmin < summary.tmax <= info.exptime + 1.0
    assert check_time(summary, path.name).ok


# ----------------------------------------------------------------------------- time checks
def _naive_first_decrease(time: list[float]) -> int | None:
    for i in range(1, len(time)):
        if time[i] < time[i - 1]:
            return i
    return None


_times = st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), max_size=60)


@given(_times)
def test_first_decrease_agrees_with_naive_definition(time: list[float]) -> None:
    assert first_decrease(np.array(time, dtype=float)) == _naive_first_decrease(time)


@given(_times, st.integers(min_value=1, max_value=7))
def test_streamed_summary_agrees_with_whole_column(time: list[float], chunk: int) -> None:
    array = np.array(time, dtype=float)
    chunks = [array[i:i + chunk] for i in range(0, len(array), chunk)]
    summary = summarize_time(chunks)
    assert summary.n == len(time)
    assert summary.decrease_at == _naive_first_decrease(time)
    if time:
        assert (summary.tmin, summary.tmax) == (min(time), max(time))
    if summary.decrease_at is not None:
        i = summary.decrease_at
        assert summary.decrease_values == (time[i - 1], time[i])


def test_non_linear_time_across_a_chunk_boundary() -> None:
    summary = summarize_time([np.array([1.0, 2.0, 3.0]), np.array([2.5, 4.0])])
    assert summary.decrease_at == 3 and summary.decrease_values == (3.0, 2.5)


# ----------------------------------------------------------------------------- builders
BUILDER_REQUIRED_KEYWORD = {"cos": "EXPTIME", "stis": "EXPSTART"}


#: Every bad kind the builders make, with each instrument it exists for.
BAD_CASES = [(kind, instrument) for kind, instruments in builders.BAD_INSTRUMENTS.items()
             for instrument in instruments]


@pytest.mark.parametrize(("kind", "instrument"), BAD_CASES)
def test_builder_bad_files_get_their_reason(tmp_path: Path, kind: str, instrument: str) -> None:
    path = builders.build_bad(tmp_path, kind, instrument=instrument,
                              keyword=BUILDER_REQUIRED_KEYWORD[instrument])
    verdict = check_file(path, bad_proposals=[99999])
    assert (verdict.ok, verdict.reason) == (False, builders.BAD_KINDS[kind])
    assert verdict.filename == path.name and verdict.detail.startswith(path.name)
    assert check_dataset([path], bad_proposals=[99999]).reason == builders.BAD_KINDS[kind]


def test_builder_good_files_pass(tmp_path: Path) -> None:
    fuv = builders.build_cos_fuv_pair(tmp_path / "fuv", seed=4)
    nuv = builders.build_cos_nuv(tmp_path / "nuv", seed=4)
    stis = builders.build_stis_tag(tmp_path / "stis", mode="echelle", seed=4)
    for paths in ([fuv["corrtag_a"], fuv["corrtag_b"], fuv["x1d"]], [nuv["corrtag"], nuv["x1d"]],
                  [stis["tag"], stis["x1d"]]):
        verdict = check_dataset(paths)
        assert verdict.ok, verdict.detail


def test_builder_pair_with_one_bad_segment(tmp_path: Path) -> None:
    out = builders.build_cos_fuv_pair(tmp_path, seed=5)
    with fits.open(out["corrtag_b"], mode="update") as hdulist:
        hdulist[1].header["EXPFLAG"] = "INTERRUPTED"
    verdict = check_dataset([out["corrtag_a"], out["corrtag_b"], out["x1d"]])
    assert verdict.reason == errors.BAD_EXPFLAG and verdict.filename == out["corrtag_b"].name


def test_header_value_wider_than_the_catalogue_is_refused(tmp_path: Path) -> None:
    """A value the catalogue cannot hold is refused the same way on SQLite and PostgreSQL."""
    long_name = "A-VERY-LONG-TARGET-NAME-" * 3  # 72 characters (CONTINUE cards)
    path = make_events(tmp_path / "lb1c01afq_corrtag_a.fits", np.array([1.0, 2.0]),
                       primary={"TARGNAME": long_name})
    verdict = check_file(path)
    assert verdict.reason == errors.MISSING_KEYWORD
    assert "TARGNAME" in verdict.detail and "at most 64 characters" in verdict.detail
    fine = make_events(tmp_path / "lb1c01agq_corrtag_a.fits", np.array([1.0, 2.0]),
                       primary={"TARGNAME": long_name[:64]})
    assert check_file(fine).ok


# ----------------------------------------------------------------------------- corrupt events
def _set_column(path: Path, column: str, rows: slice | list[int], value: float) -> Path:
    """Rewrite ``rows`` of one event column in place (the rest of the file unchanged)."""
    with fits.open(path, mode="update") as hdulist:
        hdulist["EVENTS"].data[column][rows] = value
    return path


@pytest.mark.parametrize("column", ["TIME", "XCORR", "YCORR", "WAVELENGTH", "EPSILON"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_values_in_a_used_column_are_corrupt_events(tmp_path: Path, column: str,
                                                                value: float) -> None:
    time = np.linspace(0.0, 90.0, 5000)
    path = _set_column(make_events(tmp_path / "lb1c01abq_corrtag_a.fits", time), column,
                       [4100, 4200, 4999], value)
    for block_rows in (None, 1000):  # the first bad row is found across block boundaries
        verdict = (check_file(path) if block_rows is None
                   else check_file(path, block_rows=block_rows))
        assert (verdict.ok, verdict.reason) == (False, errors.CORRUPT_EVENTS)
        assert verdict.detail.startswith(f"{path.name}: ")
        assert f"column {column}" in verdict.detail and "3 non-finite" in verdict.detail
        assert "first at row 4100" in verdict.detail
    with pytest.raises(QualityError) as info:
        verdict.raise_for_reason()
    assert info.value.reason == errors.CORRUPT_EVENTS


def test_all_nan_epsilon_is_corrupt_and_unused_columns_are_not_checked(tmp_path: Path) -> None:
    path = make_events(tmp_path / "lb1c01abq_corrtag_a.fits", np.linspace(0.0, 90.0, 50))
    assert check_file(path).ok
    _set_column(path, "EPSILON", slice(None), np.nan)
    verdict = check_file(path)
    assert verdict.reason == errors.CORRUPT_EVENTS and "50 non-finite" in verdict.detail
    assert "first at row 0" in verdict.detail


def test_non_finite_stis_tag_time_is_corrupt(tmp_path: Path) -> None:
    time = np.linspace(0.0, 90.0, 20)
    time[7] = np.nan
    path = make_events(tmp_path / "ob1c01abq_tag.fits", time, instrume="STIS",
                       detector="FUV-MAMA", segment=None, tag=True)
    verdict = check_file(path)
    assert verdict.reason == errors.CORRUPT_EVENTS and "column TIME" in verdict.detail


# ----------------------------------------------------------------------------- time span
def test_a_gti_beyond_any_exposure_is_refused_before_reading_events(tmp_path: Path) -> None:
    path = make_events(tmp_path / "lb1c01abq_corrtag_a.fits", np.linspace(0.0, 90.0, 50),
                       gti=[(0.0, 50.0), (60.0, 1e9)])
    verdict = check_file(path)
    assert (verdict.ok, verdict.reason) == (False, errors.LONG_TIME_SPAN)
    assert verdict.detail == (f"{path.name}: GTI spans 1000000000.0 s, more than the "
                              "259200.0 s any exposure lasts")
    assert check_dataset([path]).reason == errors.LONG_TIME_SPAN
    assert check_dataset([path], max_time_span_s=2e9).ok


def test_exptime_and_time_range_beyond_the_limit_are_refused(tmp_path: Path) -> None:
    long_exptime = make_events(tmp_path / "lb1c01abq_corrtag_a.fits", np.linspace(0, 90, 50),
                               ext1={"EXPTIME": 4e5})
    verdict = check_file(long_exptime)
    assert verdict.reason == errors.LONG_TIME_SPAN and "EXPTIME" in verdict.detail
    long_times = make_events(tmp_path / "lb1c01acq_corrtag_a.fits", np.array([0.0, 1.0, 3e5]))
    verdict = check_file(long_times)
    assert verdict.reason == errors.LONG_TIME_SPAN and "column TIME spans" in verdict.detail
    assert check_file(long_times, max_time_span_s=4e5).ok
    with pytest.raises(ValueError, match="max_time_span_s"):
        check_file(long_times, max_time_span_s=0.0)


# ----------------------------------------------------------------------------- column types
def _retype(path: Path, column: str, tform: str, array: object) -> Path:
    """Replace one EVENTS column by a column of another type (headers kept)."""
    with fits.open(path) as hdulist:
        primary, events = hdulist[0].copy(), hdulist["EVENTS"]
        columns = [fits.Column(name=c.name, format=tform, array=array) if c.name == column
                   else fits.Column(name=c.name, format=c.format, array=events.data[c.name])
                   for c in events.columns]
        table = fits.BinTableHDU.from_columns(columns, header=events.header.copy())
    fits.HDUList([primary, table]).writeto(path, overwrite=True)
    return path


@pytest.mark.parametrize("column, tform, array, expected", [
    ("TIME", "20A", [f"{t:.3f}" for t in range(5)], "TFORM='20A', not a real number"),
    ("TIME", "C", np.arange(5) + 1j, "TFORM='C', not a real number"),
    ("TIME", "2D", np.arange(10.0).reshape(5, 2), "TFORM='2D', not a real number"),
    ("EPSILON", "8A", ["1.0"] * 5, "column EPSILON has TFORM='8A'"),
    ("DQ", "E", np.zeros(5, "f4"), "column DQ has TFORM='E', not an integer"),
])
def test_a_column_of_the_wrong_type_is_corrupt_events(tmp_path: Path, column: str, tform: str,
                                                      array: object, expected: str) -> None:
    path = _retype(make_events(tmp_path / "lb1c01abq_corrtag_a.fits", np.arange(5.0)),
                   column, tform, array)
    verdict = check_file(path)
    assert (verdict.ok, verdict.reason) == (False, errors.CORRUPT_EVENTS), verdict.detail
    assert verdict.detail.startswith(f"{path.name}: ext 1 column {column} ")
    assert expected in verdict.detail


# ----------------------------------------------------------------------------- header text
@pytest.mark.filterwarnings("ignore:non-ASCII characters are present")  # as in production
@pytest.mark.parametrize("written", ["GJ-436\u00e9".encode(), "\u00e9\u00e8".encode("latin-1")])
def test_a_non_ascii_targname_is_refused_not_stored_as_question_marks(tmp_path: Path,
                                                                        written: bytes) -> None:
    path = make_events(tmp_path / "lb1c01abq_corrtag_a.fits", np.arange(5.0),
                       primary={"TARGNAME": "T" * len(written)})
    path.write_bytes(path.read_bytes().replace(b"T" * len(written), written, 1))
    verdict = check_file(path)
    assert (verdict.ok, verdict.reason) == (False, errors.MISSING_KEYWORD), verdict.detail
    assert verdict.detail.startswith(f"{path.name}: ext 0 keyword TARGNAME holds non-ASCII")
    assert repr(written) in verdict.detail and "FITS headers are ASCII" in verdict.detail


def test_a_question_mark_written_in_the_file_is_kept(tmp_path: Path) -> None:
    path = make_events(tmp_path / "lb1c01abq_corrtag_a.fits", np.arange(5.0),
                       primary={"TARGNAME": "WHAT?"})
    assert check_file(path).ok
    with open_fits(path) as hdulist:
        assert read_observation_info(hdulist, path.name, Product.COS_FUV_CORRTAG_A).targname == "WHAT?"
