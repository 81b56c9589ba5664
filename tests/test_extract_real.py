"""Extraction of the real GJ-436 COS FUV exposures (``../shared/data/real``)."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from hstlc.extraction.extract import extract_lightcurve

ROOTS = ("ld9m10ujq", "ld9m10uyq")


@pytest.fixture(scope="module")
def gj436(real_data):
    return real_data / "cos_fuv_g130m_gj436"


def independent_sums(path) -> tuple[float, float]:
    """Source gross and scaled background of an FUV ``_a`` file, counted with astropy alone."""
    with fits.open(path) as hdul:
        data, header = hdul["EVENTS"].data, hdul["EVENTS"].header
        gti = hdul["GTI"].data
        time = np.asarray(data["TIME"], np.float64)
        x = np.asarray(data["XCORR"], np.float64)
        y = np.asarray(data["YCORR"], np.float64)
        wave = np.asarray(data["WAVELENGTH"], np.float64)
        epsilon = np.asarray(data["EPSILON"], np.float64)
        keep = (np.asarray(data["DQ"]).astype(int) & header["SDQFLAGS"]) == 0
        keep &= (x >= 0) & (x < 16384) & (wave > 915) & (wave < 1800)
        keep &= ~((wave >= 1208) & (wave <= 1225)) & ~((wave >= 1298) & (wave <= 1312))
        keep &= np.any([(time >= a) & (time < z) for a, z in zip(gti["START"], gti["STOP"],
                                                                 strict=True)], axis=0)

        def box(loc: str, height: str) -> np.ndarray:
            centre, size = header[loc], header[height]
            return keep & (y >= centre - size / 2) & (y < centre + size / 2)

        gross = epsilon[box("SP_LOC_A", "SP_HGT_A")].sum()
        raw = epsilon[box("B_BKG1_A", "B_HGT1_A")].sum() + epsilon[box("B_BKG2_A", "B_HGT2_A")].sum()
        scale = header["SP_HGT_A"] / (header["B_HGT1_A"] + header["B_HGT2_A"])
    return gross, scale * raw


@pytest.mark.parametrize("root", ROOTS)
def test_each_a_file_alone(gj436, root):
    path = gj436 / f"{root}_corrtag_a.fits"
    lc = extract_lightcurve(path)
    assert lc.meta["input_files"] == [path.name, f"{root}_x1d.fits"]
    assert {x["group"] for x in lc.meta["boxes"]} == {"FUVA"}
    assert lc.meta["targname"] == "GJ-436" and lc.meta["cenwave"] == 1291
    gross, background = independent_sums(path)
    assert lc.gross.sum() == pytest.approx(gross, rel=1e-12)
    assert lc.background.sum() == pytest.approx(background, rel=1e-12)
    with fits.open(path) as hdul:
        exptime, gti = hdul[1].header["EXPTIME"], hdul["GTI"].data
        assert lc.bins.sum() == pytest.approx(float(np.sum(gti["STOP"] - gti["START"])))
        assert lc.bins.sum() == pytest.approx(exptime, abs=1e-6)
        assert lc.times[0] == pytest.approx(gti["START"][0])


@pytest.mark.parametrize("root", ROOTS)
def test_flux_is_calibrated_from_the_x1d(gj436, root):
    lc = extract_lightcurve(gj436 / f"{root}_corrtag_a.fits", checksums=False)
    assert lc.meta["fluxcal"] == "X1D"  # FLUXTAB and TDSTAB are named but not available
    assert np.all(np.isfinite(lc.flux)) and np.all(np.isfinite(lc.flux_error))
    with fits.open(gj436 / f"{root}_x1d.fits") as hdul:
        row = hdul[1].data[list(hdul[1].data["SEGMENT"]).index("FUVA")]
        good = row["DQ_WGT"] > 0
        mean_x1d = np.mean(row["FLUX"][good & ~((row["WAVELENGTH"] >= 1298) &
                                                 (row["WAVELENGTH"] <= 1312))])
    # Segment A is complete (NEVENTSA = its rows; segment B was dropped), so the band
    # average agrees with the x1d's within the statistics of this faint source's net counts.
    relative_error = np.sqrt(np.sum(lc.error**2)) / lc.counts.sum()
    ratio = np.mean(lc.flux) / mean_x1d
    assert abs(ratio - 1.0) < 3 * relative_error, (ratio, relative_error)
