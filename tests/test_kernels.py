"""The compiled extraction kernel (hstlc.extraction.kernel) against the numpy reference path.

Both engines of :func:`hstlc.extraction.accumulate.accumulate_boxes` must give the same sums bit
for bit -- same float64 comparisons, same summation order -- on any events, boxes,
GTIs, limits, column types and blocks.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import builders as b
import numpy as np
import pytest
from astropy.io import fits
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hstlc.extraction import kernel as kernels
from hstlc.extraction.accumulate import accumulate_boxes
from hstlc.extraction.boxes import BACKGROUND, SOURCE, Box, BoxSums, Selection
from hstlc.extraction.calibrate import Response
from hstlc.extraction.extract import extract_lightcurve
from hstlc.extraction.kernel_path import kernel_available
from hstlc.io.events import open_event_table

pytestmark = pytest.mark.skipif(not kernel_available(), reason="numba is not installed")

#: Limits that float32 cannot represent (and some it can), and float32 values around them.
XLIM = [(0.0, 100.0), (3.3, 97.1), (-1e-7, 50.000001)]
WLIM = [(915.0, 1400.0), (1000.1, 1350.7), (-np.inf, np.inf)]
WINDOWS = [(1208.0, 1225.0), (1298.0, 1312.0), (1100.3, 1100.3), (1305.0, 1320.1),
           (1250.0, 1240.0), (800.0, 950.5), (1390.2, 1500.0), (1130.0, 1131.7)]
Y_EDGES = [10.0, 20.5, 20.3, 33.3, 47.0, 61.7, 75.0, 90.1, 5.5, 12.0, 15.3, 25.0, 28.7,
           38.1, 41.0, 52.25, 55.5, 66.6, 70.0, 81.3, 84.0, 95.5, 1.1, 3.0, 7.7]
#: The wavelength table of the tests' conversions, and the wavelengths where its lookup
#: switches from one entry to the next (ConversionLookup: 100 entries, nearest one).
CONVERSION_WAVE = np.linspace(900.0, 1400.0, 50)
CONVERSION_EDGES = 900.0 + (np.arange(0.5, 99.0, 3.0)) * 500.0 / 99.0
TYPES = {"E": np.float32, "D": np.float64, "I": np.int16, "J": np.int32, "K": np.int64,
         "B": np.uint8}


def _around(values: list[float]) -> list[float]:
    """Each value and the float32 numbers next to it (exactly on, just below, just above)."""
    out = []
    for value in values:
        if not np.isfinite(value):
            continue
        near = np.float32(value)
        out += [float(value), float(near), float(np.nextafter(near, np.float32(np.inf))),
                float(np.nextafter(near, np.float32(-np.inf)))]
    return out


def _column(rng: np.random.Generator, n: int, low: float, high: float,
            specials: list[float], kind: str) -> np.ndarray:
    """Random values of a FITS type; a third of them sit on or next to ``specials``."""
    values = rng.uniform(low, high, n)
    special = rng.random(n) < 0.35
    if specials:
        values[special] = rng.choice(np.array(specials), int(special.sum()))
    if TYPES[kind] in (np.float32, np.float64):
        out = values.astype(TYPES[kind])
        out[rng.random(n) < 0.01] = np.nan
        return out
    info = np.iinfo(TYPES[kind])
    return np.clip(np.round(values), info.min, info.max).astype(TYPES[kind])


def _write(path: Path, columns: dict[str, np.ndarray], formats: dict[str, str]) -> Path:
    hdu = fits.BinTableHDU.from_columns(
        [fits.Column(name=name, format=formats[name], array=values)
         for name, values in columns.items()], name="EVENTS")
    hdu.writeto(path, overwrite=True)
    return path


def _gzip(path: Path) -> Path:
    packed = path.with_name(path.name + ".gz")
    with open(path, "rb") as source, gzip.open(packed, "wb") as target:
        shutil.copyfileobj(source, target)
    return packed


def _assert_same(kernel: BoxSums, numpy: BoxSums) -> None:
    """Identical sums, bit for bit (NaN where NaN, the sign of zeros), identical ranges."""
    for name in ("gross", "flux", "count_variance", "flux_variance"):
        mine, reference = getattr(kernel, name), getattr(numpy, name)
        assert mine.shape == reference.shape
        np.testing.assert_array_equal(mine, reference, err_msg=name)
        np.testing.assert_array_equal(np.signbit(mine), np.signbit(reference), err_msg=name)
    assert kernel.wave_range == numpy.wave_range
    assert list(kernel.wave_range) == list(numpy.wave_range)
    assert kernel.x_range == numpy.x_range
    assert list(kernel.x_range) == list(numpy.x_range)


def _both(table, boxes, selection, **options) -> tuple[BoxSums, BoxSums]:
    return (accumulate_boxes(table, boxes, selection, engine="kernel", **options),
            accumulate_boxes(table, boxes, selection, engine="numpy", **options))


@st.composite
def scenarios(draw: st.DrawFn) -> dict:
    """Events, boxes, GTIs, limits, column types and streaming options."""
    seed = draw(st.integers(0, 2**32 - 1))
    n = draw(st.integers(0, 400))
    formats = {"TIME": draw(st.sampled_from("EED")), "XCORR": draw(st.sampled_from("EEDI")),
               "YCORR": draw(st.sampled_from("EED")), "WAVELENGTH": draw(st.sampled_from("EED")),
               "EPSILON": draw(st.sampled_from("EED")), "DQ": draw(st.sampled_from("IIJKB"))}
    xlim = draw(st.sampled_from(XLIM))
    wlim = draw(st.sampled_from(WLIM))
    airglow = tuple(draw(st.lists(st.sampled_from(WINDOWS), max_size=7, unique=True)))
    ngti = draw(st.sampled_from([1, 1, 2, 3, 12]))  # 12: more than 16 edges
    cuts = np.sort(np.array(draw(st.lists(st.integers(1, 199), min_size=2 * ngti,
                                          max_size=2 * ngti, unique=True)), dtype=float)) * 0.5
    if draw(st.booleans()) and ngti > 1:  # touching intervals
        cuts[2] = cuts[1]
    gti = cuts.reshape(-1, 2)
    step = draw(st.sampled_from([0.7, 1.0, 2.5, 0.1, 33.0]))
    origin = float(gti[0, 0]) - draw(st.sampled_from([0.0, 0.0, 1.3]))
    nbins = max(int(np.ceil((gti[-1, 1] - origin) / step)), 1)
    if draw(st.booleans()):
        nbins = max(nbins - 3, 1)  # events beyond the last bin are clipped into it
    groups = draw(st.sampled_from([["A"], ["A", "B"], ["A", "B", "C"]]))
    boxes = []
    for _ in range(draw(st.integers(1, 14))):  # many boxes: more than 16 edges
        y0, y1 = sorted(draw(st.lists(st.sampled_from(Y_EDGES), min_size=2, max_size=2,
                                      unique=True)))
        boxes.append(Box(draw(st.sampled_from(groups)), draw(st.sampled_from([SOURCE, BACKGROUND])),
                         y0, y1, draw(st.floats(0.1, 2.0))))
    return {"seed": seed, "n": n, "formats": formats, "xlim": xlim, "wlim": wlim,
            "airglow": airglow, "gti": gti, "step": step, "origin": origin, "nbins": nbins,
            "boxes": boxes, "sdqflags": draw(st.sampled_from([0, 8, 24, 40000, 2**40 + 8])),
            "calibration": draw(st.sampled_from(["lookup", "lookup", "none"])),
            "by_column": draw(st.sampled_from([False, True, "background"])),
            "x_scale": draw(st.sampled_from([0.5, 1.0, 0.3])),
            "block_rows": draw(st.sampled_from([1, 7, 64, 1000])),
            "threads": draw(st.sampled_from([1, 2])), "want_x": draw(st.booleans())}


def _events(s: dict) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(s["seed"])
    n, f = s["n"], s["formats"]
    times = _around(list(s["gti"].ravel()) + [s["origin"] + s["step"] * k for k in range(5)])
    waves = _around(list(s["wlim"]) + [w for window in s["airglow"] for w in window]
                    + list(CONVERSION_EDGES))
    t0, t1 = s["origin"] - 2.0, float(s["gti"][-1, 1]) + 2.0
    columns = {
        "TIME": np.sort(_column(rng, n, t0, t1, times, f["TIME"])),
        "XCORR": _column(rng, n, -5.0, 105.0, _around(list(s["xlim"])), f["XCORR"]),
        "YCORR": _column(rng, n, 0.0, 100.0, _around(Y_EDGES), f["YCORR"]),
        "WAVELENGTH": _column(rng, n, 850.0, 1450.0, waves, f["WAVELENGTH"]),
        "EPSILON": _column(rng, n, 0.5, 2.0, [1.0, 0.0, -0.0], f["EPSILON"]),
        "DQ": _column(rng, n, 0, 200, [0, 8, 16, 32, 250], f["DQ"]),
    }
    if n and f["TIME"] in "ED":
        columns["TIME"][rng.random(n) < 0.02] = np.nan  # unsorted NaN times are never counted
    return columns


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(scenario=scenarios())
def test_kernel_equals_numpy_path(tmp_path, scenario):
    s = scenario
    path = _write(tmp_path / "events.fits", _events(s), s["formats"])
    selection = Selection(s["sdqflags"], s["xlim"], s["wlim"], s["airglow"], s["gti"],
                          s["origin"], s["step"], s["nbins"])
    groups = list(dict.fromkeys(box.group for box in s["boxes"]))
    wave = CONVERSION_WAVE
    response = Response("X1D", {g: wave for g in groups},
                        {g: (1.0 + i) * 1e-12 * (1 + wave / 1e3) for i, g in enumerate(groups)})
    conversion = response.indexed(groups) if s["calibration"] == "lookup" else None
    column_wavelength = None
    if s["by_column"]:
        column_wavelength = {g: np.linspace(900.0 + 7 * i, 1400.0, 40 + 5 * i)
                             for i, g in enumerate(groups)}
        column_wavelength[groups[0]][3] = np.nan  # a column without wavelength
    mapped = "background" if s["by_column"] == "background" else "all"
    kernel, numpy = _both(open_event_table(path), s["boxes"], selection, conversion=conversion,
                          column_wavelength=column_wavelength, column_wavelength_boxes=mapped,
                          x_scale=s["x_scale"],
                          block_rows=s["block_rows"], threads=s["threads"],
                          want_x_range=s["want_x"])
    _assert_same(kernel, numpy)


def _simple_file(tmp_path: Path, n: int = 3000, seed: int = 3, **formats: str) -> Path:
    rng = np.random.default_rng(seed)
    kinds = {"TIME": "E", "XCORR": "E", "YCORR": "E", "WAVELENGTH": "E", "EPSILON": "E",
             "DQ": "I", **formats}
    columns = {"TIME": np.sort(rng.uniform(0, 100, n)), "XCORR": rng.uniform(-5, 105, n),
               "YCORR": rng.uniform(0, 100, n), "WAVELENGTH": rng.uniform(850, 1450, n),
               "EPSILON": rng.uniform(0.5, 2, n), "DQ": rng.choice([0, 8, 16], n)}
    columns = {k: v.astype(TYPES[kinds[k]]) for k, v in columns.items()}
    return _write(tmp_path / "simple.fits", columns, kinds)


BOXES = [Box("A", SOURCE, 40.0, 60.5), Box("A", BACKGROUND, 10.0, 30.0, 0.5),
         Box("A", BACKGROUND, 70.0, 90.0, 0.5)]
SELECTION = Selection(8, (0.0, 100.0), (915.0, 1400.0), ((1208.0, 1225.0),),
                      np.array([[0.0, 50.0], [60.0, 100.0]]), 0.0, 2.0, 50)


def test_compressed_file_goes_through_astropy_in_both_paths(tmp_path):
    plain = _simple_file(tmp_path)
    table = open_event_table(_gzip(plain))
    assert table.data_offset is None  # read block by block through astropy
    kernel, numpy = _both(table, BOXES, SELECTION, block_rows=500, threads=2)
    _assert_same(kernel, numpy)
    _assert_same(kernel, accumulate_boxes(open_event_table(plain), BOXES, SELECTION,
                                          block_rows=500))


def test_scaled_columns_and_foreign_conversions_use_the_numpy_path(tmp_path):
    path = _simple_file(tmp_path)
    with fits.open(path, mode="update") as hdul:
        hdul[1].header["TZERO2"] = 0.5  # XCORR is scaled
    table = open_event_table(path)
    assert table.scaling == {"XCORR": (1.0, 0.5)}
    with pytest.raises(ValueError, match="compiled kernel cannot be used: column XCORR is scaled"):
        accumulate_boxes(table, BOXES, SELECTION, engine="kernel")
    auto = accumulate_boxes(table, BOXES, SELECTION)  # falls back to numpy
    _assert_same(auto, accumulate_boxes(table, BOXES, SELECTION, engine="numpy"))
    (tmp_path / "plain").mkdir()
    plain = open_event_table(_simple_file(tmp_path / "plain", seed=4))

    def conversion(group, wave, out=None, scratch=None):
        return np.full(np.shape(wave), np.float32(2.0))

    with pytest.raises(ValueError, match="not a ConversionLookup"):
        accumulate_boxes(plain, BOXES, SELECTION, conversion=conversion, engine="kernel")
    _assert_same(accumulate_boxes(plain, BOXES, SELECTION, conversion=conversion),
                 accumulate_boxes(plain, BOXES, SELECTION, conversion=conversion, engine="numpy"))
    with pytest.raises(ValueError, match="engine must be one of"):
        accumulate_boxes(plain, BOXES, SELECTION, engine="fortran")


def test_many_gtis_and_far_times(tmp_path):
    """More GTIs than the fixed loops hold; times so far from 0 that bins are never reused."""
    path = _simple_file(tmp_path, n=5000, TIME="D")
    edges = np.linspace(0.0, 100.0, 41)
    gti = np.column_stack([edges[:-1:2], edges[1::2]])
    selection = Selection(8, (0.0, 100.0), (915.0, 1400.0), (), gti, 0.0, 0.5, 200)
    _assert_same(*_both(open_event_table(path), BOXES, selection, block_rows=999))
    with fits.open(path, mode="update") as hdul:
        hdul[1].data["TIME"] += 1e9
    far = Selection(8, (0.0, 100.0), (915.0, 1400.0), (), gti + 1e9, 1e9 - 0.3, 0.7, 144)
    _assert_same(*_both(open_event_table(path), BOXES, far, block_rows=999, threads=2))


def test_warm_up_then_every_column_type_gives_the_same_sums(tmp_path):
    """Equal values stored as float32, float64, int16, int32, int64 or uint8 columns give the
    same sums, and the numpy path's."""
    assert kernels.warm_up() < 60.0
    rng = np.random.default_rng(5)
    n = 3000
    values = {"TIME": np.sort(rng.uniform(0, 100, n)).astype(np.float32),
              "XCORR": np.round(rng.uniform(-5, 105, n)), "YCORR": np.round(rng.uniform(0, 100, n)),
              "WAVELENGTH": np.round(rng.uniform(850, 1450, n)),
              "EPSILON": rng.choice([0.0, 1.0, 2.0], n), "DQ": rng.choice([0, 8, 16], n)}
    first = None
    for kinds in ("EEEEEI", "DDDDDJ", "EIIIIK", "DJJJBB", "EKKKKI"):
        formats = dict(zip(values, kinds, strict=True))
        columns = {name: column.astype(TYPES[formats[name]]) for name, column in values.items()}
        table = open_event_table(_write(tmp_path / f"{kinds}.fits", columns, formats))
        kernel, numpy = _both(table, BOXES, SELECTION, block_rows=1000)
        _assert_same(kernel, numpy)
        first = first or kernel
        _assert_same(kernel, first)


# ----------------------------------------------------------------------------- whole extraction
def _same_lightcurve(kernel, numpy) -> None:
    assert kernel.meta == numpy.meta
    for name in ("times", "mjd", "bins", "gross", "counts", "net", "flux", "flux_error",
                 "background", "error", "dataset"):
        np.testing.assert_array_equal(getattr(kernel, name), getattr(numpy, name), err_msg=name)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    from hstlc.extraction.stis_corrtag import tag_to_corrtag

    folder = tmp_path_factory.mktemp("kernel-synthetic")
    cos = b.build_cos_fuv_pair(folder / "fuv", seed=21, exptime=800.0,
                               gti=[[0.0, 301.0], [400.5, 800.0]])
    nuv = b.build_cos_nuv(folder / "nuv", seed=22, exptime=500.0)
    stis = b.build_stis_tag(folder / "stis", mode="echelle", seed=23, exptime=400.0)
    corrtag = tag_to_corrtag(stis["tag"], stis["x1d"])
    return {"fuv": (cos["corrtag_a"], "auto"), "nuv": (nuv["corrtag"], "auto"),
            "stis": (corrtag, stis["x1d"])}


@pytest.mark.parametrize("kind", ["fuv", "nuv", "stis"])
def test_extraction_is_identical_with_either_engine(synthetic, kind):
    path, x1d = synthetic[kind]
    for options in ({}, {"step": 0.3, "block_rows": 777, "threads": 2}):
        kernel = extract_lightcurve(path, x1d, checksums=False, engine="kernel", **options)
        numpy = extract_lightcurve(path, x1d, checksums=False, engine="numpy", **options)
        _same_lightcurve(kernel, numpy)


@pytest.mark.parametrize("root", ["ld9m10ujq", "ld9m10uyq"])
def test_real_gj436_exposures_are_identical_with_either_engine(real_data, root):
    path = real_data / "cos_fuv_g130m_gj436" / f"{root}_corrtag_a.fits"
    for options in ({}, {"step": 0.5, "block_rows": 4099, "threads": 2}):
        kernel = extract_lightcurve(path, checksums=False, engine="kernel", **options)
        numpy = extract_lightcurve(path, checksums=False, engine="numpy", **options)
        _same_lightcurve(kernel, numpy)
    table = open_event_table(path)
    header = table.header
    boxes = [Box("FUVA", SOURCE, 400.0, 420.5), Box("FUVA", BACKGROUND, 415.0, 480.0, 0.3)]
    selection = Selection(int(header["SDQFLAGS"]), (0.0, 16384.0), (1100.0, 1400.0),
                          ((1298.0, 1312.0),), table.gti, float(table.gti[0, 0]), 1.0,
                          int(np.ceil(table.gti[-1, 1] - table.gti[0, 0])))
    _assert_same(*_both(table, boxes, selection, block_rows=1000, threads=2))
