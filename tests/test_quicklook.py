"""Quicklook PNGs: one per lightcurve, gaps left visible."""

from __future__ import annotations

import threading

import numpy as np
from builders import build_cos_nuv
from matplotlib.image import imread

from hstlc.extraction.extract import extract_lightcurve
from hstlc.io.lightcurve_file import write_lightcurve
from hstlc.plots.quicklook import break_gaps, draw_quicklook, plot_quicklook


def test_break_gaps_inserts_one_nan_per_gap():
    times = np.array([0, 2, 4, 100, 102, 300], dtype=float)
    x, y = break_gaps(times, np.ones(6), 2.0)
    assert np.isnan(y).sum() == 2
    assert x.size == 8 and np.all(np.diff(x) > 0)


def test_quicklook_leaves_the_gti_gap_empty(tmp_path):
    files = build_cos_nuv(tmp_path, rootname="lb1c02nuq", seed=1, exptime=400.0,
                          gti=[(0.0, 150.0), (250.0, 500.0)])
    columns = extract_lightcurve(files["corrtag"], x1d=files["x1d"], step=2.0).columns()
    figure = draw_quicklook(columns, "gap")
    for axis in figure.axes:
        (line,) = axis.get_lines()
        x, y = line.get_xdata(), line.get_ydata()
        inside = (x > 150.0) & (x < 248.0)
        assert np.isnan(y[inside]).sum() == 1 and not np.isfinite(y[inside]).any()  # one break
        assert np.isfinite(y[x <= 148.0]).all() and np.isfinite(y[x >= 250.0]).all()
        # the error band: two pieces, one each side of the gap, none inside it
        (band,) = axis.collections
        pieces = band.get_paths()
        assert len(pieces) == 2
        for piece in pieces:
            xs = piece.vertices[:, 0]
            assert xs.max() <= 150.0 + 1e-9 or xs.min() >= 250.0 - 1e-9


def test_quicklook_png_of_a_lightcurve_file(tmp_path):
    files = build_cos_nuv(tmp_path, rootname="lb1c02nuq", seed=1, exptime=400.0,
                          gti=[(0.0, 150.0), (250.0, 500.0)])
    curve = write_lightcurve(extract_lightcurve(files["corrtag"], x1d=files["x1d"]),
                             tmp_path / "lb1c02nuq_curve.fits")
    png = plot_quicklook(curve, curve.with_suffix(".png"))
    image = imread(png)
    assert image.shape[0] > 300 and image.shape[1] > 600
    assert image[..., :3].std() > 0.05  # something was drawn
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_reused_canvas_draws_the_bytes_of_a_fresh_one(tmp_path):
    curves = []
    for seed, root in ((2, "lb1c03nuq"), (3, "lb1c04nuq")):
        files = build_cos_nuv(tmp_path, rootname=root, seed=seed, exptime=300.0)
        curves.append(write_lightcurve(extract_lightcurve(files["corrtag"], x1d=files["x1d"]),
                                       tmp_path / f"{root}_curve.fits"))
    first = plot_quicklook(curves[0], tmp_path / "first.png").read_bytes()
    plot_quicklook(curves[1], tmp_path / "other.png")
    again = plot_quicklook(curves[0], tmp_path / "again.png").read_bytes()
    fresh = tmp_path / "fresh.png"  # a new thread: a new canvas
    worker = threading.Thread(target=plot_quicklook, args=(curves[0], fresh))
    worker.start()
    worker.join()
    assert first == again == fresh.read_bytes()
    assert first != (tmp_path / "other.png").read_bytes()
