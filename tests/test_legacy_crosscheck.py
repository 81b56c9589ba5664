"""Cross-check against the 2016 library (``lightcurve`` 0.6.2, ``lightcurve.io.read``).

Where the algorithms agree the numbers must agree exactly; each intended difference
(box rows, background scale, GTIs, time grid and MJD) is shown by its own test.
"""

from __future__ import annotations

import contextlib
import gc
import io
import shutil
import warnings

import builders as b
import numpy as np
import pytest
from astropy.io import fits

from hstlc.extraction.accumulate import accumulate_boxes
from hstlc.extraction.boxes import BACKGROUND, SOURCE, Box, Selection
from hstlc.extraction.extract import AIRGLOW_WINDOWS, extract_lightcurve
from hstlc.io.events import open_event_table

lightcurve_io = pytest.importorskip("lightcurve.io")

# Even heights: the 2016 rows LOC -/+ HGT//2 and ours LOC -/+ HGT/2 are then the same.
EVEN_BOXES = {"A": (425.1910656982463, 40, 367.0, 36, 570.0, 36, 425.7),
              "B": (485.6997976921326, 40, 426.0, 36, 629.0, 36, 486.51)}


def run_legacy(path, **options):
    """``lightcurve.io.read`` unpatched; its prints, numpy warnings and unclosed files muted."""
    with warnings.catch_warnings(), np.errstate(all="ignore"), \
            contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        table = lightcurve_io.read(str(path), **options)
        gc.collect()  # its HDULists are never closed: collect them while warnings are muted
    return table


def legacy_start(paths) -> float:
    """The 2016 grid start: the largest of the segments' first event times."""
    starts = []
    for path in paths:
        with fits.open(path) as hdul:
            starts.append(float(hdul[1].data["TIME"].min()))
    return max(starts)


@pytest.fixture(scope="module")
def even(tmp_path_factory):
    return b.build_cos_fuv_pair(tmp_path_factory.mktemp("legacy"), seed=61, exptime=1000.0,
                                source_rate=25.0, background_rate=0.3, boxes=EVEN_BOXES)


@pytest.fixture(scope="module")
def both(even):
    legacy = run_legacy(even["corrtag_a"], step=2)
    ours = extract_lightcurve(even["corrtag_a"],
                              origin=legacy_start([even["corrtag_a"], even["corrtag_b"]]),
                              checksums=False)
    return legacy, ours


def test_legacy_runs_unpatched(both):
    legacy, _ = both
    assert {"gross", "background", "flux", "mjd", "times", "bins"} <= set(legacy.colnames)
    assert len(legacy) > 400


def test_same_gross_on_the_same_grid_and_boxes(both):
    legacy, ours = both
    n = len(legacy)
    np.testing.assert_allclose(ours.times[:n], legacy["times"], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(ours.gross[:n], np.asarray(legacy["gross"], np.float64))


def test_background_differs_by_the_corrected_scale(both):
    legacy, ours = both
    # 2016: (bkg2 height / source height) / 2; now: source height / (bkg1 + bkg2 heights)
    old, new = (36 / 40) / 2, 40 / (36 + 36)
    n = len(legacy)
    np.testing.assert_allclose(ours.background[:n], np.asarray(legacy["background"]) * new / old,
                               rtol=1e-6)
    assert new / old == pytest.approx(1.2345679)


def test_gti_gaps_are_respected_now(even, tmp_path):
    paths = []
    for key in ("corrtag_a", "corrtag_b"):
        paths.append(shutil.copy(even[key], tmp_path))
        with fits.open(paths[-1], mode="update") as hdul:
            hdul["GTI"].data["STOP"][0] = 400.0
    legacy = run_legacy(paths[0], step=2)
    ours = extract_lightcurve(paths[0], origin=legacy_start(paths), x1d=None, checksums=False)
    after = np.asarray(legacy["times"]) >= 400.0
    assert np.asarray(legacy["gross"])[after].sum() > 0  # 2016: counted outside the GTI
    assert ours.times.max() < 400.0 and ours.bins.sum() == pytest.approx(400.0 - ours.times[0])
    n = int(np.count_nonzero(~after)) - 1  # the bin holding t = 400 s is partial for us
    np.testing.assert_array_equal(ours.gross[:n], np.asarray(legacy["gross"], float)[:n])


def test_time_grid_and_exact_mjd(even, both):
    legacy, ours = both
    n = len(legacy)
    expstart = ours.meta["expstart"]
    assert np.all(ours.mjd == expstart + ours.times / 86400.0)
    drift = np.asarray(legacy["mjd"]) - ours.mjd[:n]  # 2016: the rounded 1.15741e-5 d/s
    np.testing.assert_allclose(drift, ours.times[:n] * (1.15741e-5 - 1 / 86400.0), atol=1e-10)
    assert drift[-1] * 86400 > 0.002  # milliseconds by the end of the exposure
    default = extract_lightcurve(even["corrtag_a"], checksums=False)
    assert default.times[0] == 0.0  # our grid starts at the GTI start, not the first event
    assert default.bins.sum() == pytest.approx(1000.0)  # no partial bin thrown away


@pytest.fixture(scope="module")
def real_a(real_data):
    return real_data / "cos_fuv_g130m_gj436" / "ld9m10ujq_corrtag_a.fits"


def test_real_gross_matches_with_the_2016_boxes(real_a):
    legacy = run_legacy(real_a, step=2)
    table = open_event_table(real_a)
    header = table.header
    loc, height = header["SP_LOC_A"], header["SP_HGT_A"]
    start = legacy_start([real_a])
    end = min(float(fits.getdata(real_a, 1)["TIME"].max()), header["EXPTIME"])
    edges = np.arange(start, end + 2, 2)
    nbins = len(edges) - 1
    old_boxes = [Box("FUVA", SOURCE, loc - height // 2, loc + height // 2)]
    for n in (1, 2):
        centre, size = header[f"B_BKG{n}_A"], header[f"B_HGT{n}_A"]
        old_boxes.append(Box("FUVA", BACKGROUND, centre - size // 2, centre + size // 2))
    selection = Selection(header["SDQFLAGS"], (0.0, 16384.0), (915.0, 1800.0),
                          AIRGLOW_WINDOWS, np.array([[start, edges[-1] + 1]]), start, 2.0,
                          nbins)
    sums = accumulate_boxes(table, old_boxes, selection)
    assert len(legacy) == nbins - 1  # the 2016 code drops its last, partial bin
    gross, old = sums.gross[0, :-1], np.asarray(legacy["gross"], np.float64)
    assert gross.sum() == pytest.approx(old.sum(), rel=1e-6)
    # The 2016 edges were float32 (np.arange from the float32 first TIME): an event within
    # float32 rounding of an edge can land one bin later there.  Such bins pair up.
    legacy_edges = np.asarray(legacy["times"], np.float64)
    moved = np.flatnonzero(np.abs(gross - old) > 0.1)  # an event moved (EPSILON ~ 1)
    assert moved.size < 0.05 * gross.size
    time = np.asarray(fits.getdata(real_a, 1)["TIME"], np.float64)
    for k in moved[::2]:
        assert moved[np.searchsorted(moved, k) + 1] == k + 1
        assert gross[k] - old[k] == pytest.approx(old[k + 1] - gross[k + 1], abs=1e-3)
        edge = legacy_edges[k + 1]
        assert edge < edges[k + 1] and np.any((time >= edge) & (time < edges[k + 1]))
    same = np.setdiff1d(np.arange(gross.size), moved)
    np.testing.assert_allclose(gross[same], old[same], rtol=1e-5, atol=1e-3)
    old_scale = ((header["B_HGT2_A"] // 2 * 2) / (height // 2 * 2)) / 2
    raw = sums.gross[1, :-1] + sums.gross[2, :-1]
    assert old_scale * raw.sum() == pytest.approx(float(np.sum(legacy["background"])), rel=1e-6)


def test_real_box_rows_now_span_the_full_height(real_a):
    """SP_HGT = 39: rows LOC -/+ 19.5 now, LOC -/+ 19 in 2016; the extra half rows count."""
    ours = extract_lightcurve(real_a, checksums=False)
    legacy = run_legacy(real_a, step=2)
    with fits.open(real_a) as hdul:
        data, header, gti = hdul[1].data, hdul[1].header, hdul["GTI"].data
        y = np.asarray(data["YCORR"], np.float64)
        wave = np.asarray(data["WAVELENGTH"], np.float64)
        time = np.asarray(data["TIME"], np.float64)
        good = ((np.asarray(data["DQ"]).astype(int) & header["SDQFLAGS"]) == 0)
        good &= (wave > 915) & (wave < 1800) & ~((wave >= 1208) & (wave <= 1225))
        good &= ~((wave >= 1298) & (wave <= 1312)) & (data["XCORR"] >= 0)
        good &= (time >= gti["START"][0]) & (time < gti["STOP"][0])
        loc = header["SP_LOC_A"]
        halves = good & (((y >= loc - 19.5) & (y < loc - 19)) | ((y >= loc + 19) & (y < loc + 19.5)))
        old = good & (y >= loc - 19) & (y < loc + 19)
        eps = np.asarray(data["EPSILON"], np.float64)
    assert ours.gross.sum() == pytest.approx(eps[old].sum() + eps[halves].sum(), rel=1e-12)
    assert eps[halves].sum() > 0
    assert np.asarray(legacy["gross"], float).sum() <= eps[old].sum() * (1 + 1e-6)  # float32 sums
