"""Errors against the scatter of constant sources: ``error`` for counts, ``flux_error`` for flux.

For a constant source every bin draws from the same distribution, so the standard
deviation of ``(x - mean) / x_error`` over many bins is 1 when ``x_error`` is right.
The faint cases have counts near zero, where ``error * |flux / counts|`` was meaningless.
"""

from __future__ import annotations

import builders as b
import numpy as np
import pytest

from hstlc.extraction.extract import extract_lightcurve
from hstlc.io.lightcurve_file import derive_columns

#: COS NUV boxes whose background rows (8 + 8) are shared by the three stripes: scale 0.5.
SHARED_BACKGROUND = {k: (loc, 8, 150.0, 8, 470.0, 8, loc)
                     for k, loc in (("A", 187.62), ("B", 290.35), ("C", 431.18))}


def _pulls(lc) -> tuple[float, float]:
    """Standard deviations of the counts' and the flux's deviations in units of their errors."""
    assert len(lc) >= 1000 and np.all(lc.bins == lc.bins[0])
    counts = (lc.counts - lc.counts.mean()) / lc.error
    flux = (lc.flux - lc.flux.mean()) / lc.flux_error
    return float(counts.std()), float(flux.std())


def _check(lc) -> None:
    counts, flux = _pulls(lc)
    assert 0.9 <= counts <= 1.1, counts
    assert 0.9 <= flux <= 1.1, flux


@pytest.mark.parametrize(("source_rate", "faint"), [(20.0, False), (0.1, True)])
def test_cos_fuv_flux_error_matches_the_scatter(tmp_path, source_rate, faint):
    pair = b.build_cos_fuv_pair(tmp_path, seed=12, exptime=2400.0, source_rate=source_rate,
                                background_rate=0.3, epsilon_scatter=0.25)
    lc = extract_lightcurve(pair["corrtag_a"], checksums=False)
    assert lc.meta["fluxcal"] == "X1D"
    _check(lc)
    if faint:  # counts near zero: within half an error of it on average
        assert abs(lc.counts.mean()) < 0.5 * np.median(lc.error)
        assert np.any(np.abs(lc.counts) < 0.5)


@pytest.mark.parametrize("source_rate", [10.0, 1.0])
def test_cos_nuv_shared_background_flux_error_matches_the_scatter(tmp_path, source_rate):
    nuv = b.build_cos_nuv(tmp_path, seed=83, exptime=2000.0, source_rate=source_rate,
                          background_rate=1.25, epsilon_scatter=0.2, boxes=SHARED_BACKGROUND)
    lc = extract_lightcurve(nuv["corrtag"], checksums=False)
    assert lc.background.sum() > 0.4 * lc.gross.sum()
    _check(lc)


@pytest.mark.parametrize("mode", ["first_order", "echelle"])
def test_stis_flux_error_matches_the_scatter(tmp_path, mode):
    from hstlc.extraction.stis_corrtag import tag_to_corrtag

    built = b.build_stis_tag(tmp_path, mode=mode, seed=41, exptime=2000.0, source_rate=2.0,
                             background_rate=0.3)
    corrtag = tag_to_corrtag(built["tag"], built["x1d"])
    _check(extract_lightcurve(corrtag, built["x1d"], checksums=False))


def test_derive_columns_takes_the_flux_variance():
    cols = derive_columns(np.array([4.0, 2.0, 6.0]), np.array([2.0, 2.0, 2.0]),
                          np.array([2.0, 2.0, 1.0]), np.array([2.0, 0.0, np.nan]),
                          np.array([5.0, 4.0, 7.0]), flux_variance=np.array([9.0, 0.25, 1.0]))
    assert cols["error"].tolist() == [np.sqrt(5.0), 2.0, np.sqrt(7.0)]
    np.testing.assert_array_equal(cols["flux_error"], [3.0, 0.5, np.nan])  # NaN flux: NaN
