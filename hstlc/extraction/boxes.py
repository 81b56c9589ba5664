"""Extraction boxes, the event cuts and the per-box sums, shared by both accumulation paths.

A :class:`Box` is a band of detector rows of one segment, stripe or order; a
:class:`Selection` holds the cuts every box shares (data quality, columns, wavelength band,
airglow windows, GTIs) and the time grid; :class:`BoxSums` is what
:func:`hstlc.extraction.accumulate.accumulate_boxes` returns.  Overlapping boxes are cut
into :class:`Cells` so that each event is counted once per cell; both paths sum cells and
fold them into boxes with :func:`fold_cells`.  The time grid of a selection comes from
:func:`common_gti` (:func:`time_grid`, :func:`gti_exposure`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hstlc.errors import UnsupportedProductError
from hstlc.io.gti import validate_gti

SOURCE, BACKGROUND = "source", "background"


@dataclass(frozen=True)
class Box:
    """An extraction box: rows ``y0 <= YCORR < y1`` of one segment / stripe / order.

    ``scale`` multiplies the box's sums when they are combined: 1 for a source box,
    source height / total background height for a background box.
    """

    group: str
    role: str
    y0: float
    y1: float
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.role not in (SOURCE, BACKGROUND):
            raise ValueError(f"box role must be {SOURCE!r} or {BACKGROUND!r}, got {self.role!r}")
        if not self.y1 > self.y0:
            raise ValueError(f"empty box {self.group} {self.role}: [{self.y0}, {self.y1})")


@dataclass(frozen=True)
class Selection:
    """Event cuts shared by all boxes (see :func:`accumulate_boxes`)."""

    sdqflags: int
    xlim: tuple[float, float]
    wlim: tuple[float, float]
    airglow: tuple[tuple[float, float], ...]
    gti: np.ndarray
    origin: float
    step: float
    nbins: int


@dataclass
class BoxSums:
    """Per-box sums over time bins, the result of :func:`accumulate_boxes`.

    ``gross[j, k]`` is the sum of EPSILON over box ``j``'s events in bin ``k`` and
    ``flux`` the sum of EPSILON * conversion(lambda) (zeros when no conversion is given).
    ``count_variance[k]`` is the variance of the background-subtracted counts
    ``sum_j w_j gross[j, k]`` (``w = 1`` for a source box, ``-scale`` for a background
    box): ``sum over events of EPSILON**2 * W**2`` with ``W`` the sum of ``w_j`` over the
    boxes that count the event.  Boxes sharing events (the COS NUV stripes share their
    background rows) make it differ from the box-by-box ``sum_j w_j**2 sum EPSILON**2``.
    ``flux_variance[k]`` is the variance of ``sum_j w_j flux[j, k]``: ``sum over events of
    EPSILON**2 * C**2``, ``C`` the sum over the boxes counting the event of ``w_j`` times
    the event's conversion factor in box ``j``'s group (zeros without conversion).
    Per group, ``wave_range`` and ``x_range`` give the extreme wavelength and XCORR of
    the counted events (source and background).
    """

    gross: np.ndarray
    flux: np.ndarray
    count_variance: np.ndarray
    flux_variance: np.ndarray
    wave_range: dict[str, tuple[float, float]]
    x_range: dict[str, tuple[float, float]]


def bin_index(time: np.ndarray, origin: float, step: float, nbins: int) -> np.ndarray:
    """Index ``k`` of the bin ``[origin + k*step, origin + (k+1)*step)`` holding each time.

    Exact against edges computed as ``origin + step * k`` in float64; clipped to
    ``0 .. nbins - 1``.

    Examples
    --------
    >>> bin_index(np.array([0.0, 1.999, 2.0, 5.0]), 0.0, 2.0, 3).tolist()
    [0, 0, 1, 2]
    """
    time = np.asarray(time, np.float64)
    k = np.floor((time - origin) / step).astype(np.intp)
    k -= time < origin + step * k
    k += time >= origin + step * (k + 1)
    np.clip(k, 0, nbins - 1, out=k)
    return k


def threshold(value: float, dtype: np.dtype, up: bool) -> Any:
    """A scalar of ``dtype`` that compares with ``dtype`` arrays as float64 ``value`` would.

    ``up``: the smallest representable v >= value (use with ``>=`` and ``<``); otherwise
    the largest v <= value (use with ``>`` and ``<=``).
    """
    if dtype.kind != "f" or dtype.itemsize >= 8:
        return np.float64(value)
    cast = dtype.type(value)
    if np.isfinite(cast) and up and float(cast) < value:
        cast = np.nextafter(cast, dtype.type(np.inf))
    elif np.isfinite(cast) and not up and float(cast) > value:
        cast = np.nextafter(cast, dtype.type(-np.inf))
    return cast


class Cells:
    """Boxes cut into elementary row intervals x groups ("cells"), for overlapping boxes.

    Rows are split at every box edge; interval ``i`` holds ``edges[i-1] <= y < edges[i]``.
    A cell is an (interval, group) pair covered by at least one box of that group; an
    event counts once per cell of its interval, and a box is the sum of its cells.
    ``layers[d, i]`` is the d-th cell of interval ``i`` (-1: none); ``weight[c]`` is the
    sum over the boxes holding cell ``c`` of their weight in the counts (1 for a source
    box, ``-scale`` for a background box); ``background[c]`` says whether only
    background boxes hold it.
    """

    def __init__(self, boxes: Sequence[Box], groups: Sequence[str]):
        self.edges = np.unique(np.array([[b.y0, b.y1] for b in boxes], np.float64).ravel())
        index = {name: i for i, name in enumerate(groups)}
        cells: dict[tuple[int, int], int] = {}
        self.of_box = []
        for box in boxes:
            first = int(np.searchsorted(self.edges, box.y0)) + 1
            last = int(np.searchsorted(self.edges, box.y1))
            self.of_box.append([cells.setdefault((i, index[box.group]), len(cells))
                                for i in range(first, last + 1)])
        self.count = len(cells)
        self.weight = np.zeros(self.count)
        self.background = np.ones(self.count, bool)
        for box, ids in zip(boxes, self.of_box, strict=True):
            self.weight[ids] += 1.0 if box.role == SOURCE else -box.scale
            if box.role == SOURCE:
                self.background[ids] = False
        per_interval: dict[int, list[int]] = {}
        for (i, _), cell in cells.items():
            per_interval.setdefault(i, []).append(cell)
        depth = max(len(v) for v in per_interval.values())
        self.layers = np.full((depth, self.edges.size + 1), -1, np.intp)
        for i, ids in per_interval.items():
            self.layers[: len(ids), i] = ids
        self.covered = self.layers[0] >= 0
        #: Disjoint boxes with gaps between them: covered intervals are the odd ones.
        self.odd_covered = bool(np.array_equal(self.covered,
                                               np.arange(self.covered.size) % 2 == 1))
        self.group = np.zeros(self.count, np.intp)
        for (_, g), cell in cells.items():
            self.group[cell] = g


def merge_range(ranges: dict[str, tuple[float, float]], name: str, span: tuple[float, float]) -> None:
    """Widen ``ranges[name]`` to hold ``span`` (``(low, high)``)."""
    old = ranges.get(name)
    ranges[name] = span if old is None else (min(old[0], span[0]), max(old[1], span[1]))


def fold_cells(total: BoxSums, cells: Cells, nboxes: int) -> BoxSums:
    """Per-box sums from per-cell sums: a box is the sum of its cells."""
    shape = (nboxes, total.gross.shape[1])
    folded = BoxSums(np.zeros(shape), np.zeros(shape), total.count_variance,
                     total.flux_variance, total.wave_range, total.x_range)
    for j, ids in enumerate(cells.of_box):
        folded.gross[j] = total.gross[ids].sum(axis=0)
        folded.flux[j] = total.flux[ids].sum(axis=0)
    return folded


def time_grid(gti: np.ndarray, step: float, origin: float | None = None) -> tuple[float, int]:
    """``(origin, nbins)`` of the grid covering the GTIs with bins of ``step`` seconds.

    Examples
    --------
    >>> time_grid(np.array([[0.5, 10.5]]), 2.0)
    (0.5, 5)
    """
    if step <= 0:
        raise ValueError(f"step must be positive, got {step}")
    start = float(gti[0, 0]) if origin is None else float(origin)
    span = float(gti[-1, 1]) - start
    nbins = max(int(np.ceil(span / step - 1e-9)), 1) if span > 0 else 1
    return start, nbins


def gti_exposure(gti: np.ndarray, origin: float, step: float, nbins: int) -> np.ndarray:
    """Exposure (s) of each bin ``[origin + k*step, origin + (k+1)*step)`` inside the GTIs.

    Examples
    --------
    >>> gti_exposure(np.array([[1.0, 5.0]]), 0.0, 2.0, 3).tolist()
    [1.0, 2.0, 1.0]
    """
    edges = origin + step * np.arange(nbins + 1)
    exposure = np.zeros(nbins)
    for start, stop in gti:
        overlap = np.minimum(stop, edges[1:]) - np.maximum(start, edges[:-1])
        exposure += np.clip(overlap, 0.0, None)
    return exposure


def _intersect(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Intersection of two sorted, non-overlapping GTI lists."""
    out = [(max(a0, b0), min(a1, b1)) for a0, a1 in first for b0, b1 in second
           if min(a1, b1) > max(a0, b0)]
    return np.array(sorted(out), np.float64).reshape(-1, 2)


def common_gti(gtis: Sequence[np.ndarray], step: float, origin: float | None = None,
               filename: str = "") -> tuple[np.ndarray, float, int]:
    """The GTIs common to all event files, clipped to the time grid, and the grid.

    Both segments of a COS FUV pair count only when both were recording: their GTIs
    intersect.  The grid starts at ``origin`` (default: the first common GTI start);
    intervals before it are cut off.

    Returns
    -------
    gti : numpy.ndarray
        ``(n, 2)``, validated (:func:`hstlc.io.gti.validate_gti`).
    origin : float
        Start of the first bin.
    nbins : int
        Bins of the grid (see :func:`time_grid`).

    Examples
    --------
    >>> gti, origin, nbins = common_gti([np.array([[0.0, 10.0], [20.0, 30.0]]),
    ...                                 np.array([[5.0, 25.0]])], 4.0)
    >>> gti.tolist(), origin, nbins
    ([[5.0, 10.0], [20.0, 25.0]], 5.0, 5)
    """
    gti = gtis[0]
    for other in gtis[1:]:
        gti = _intersect(gti, other)
    if len(gti) == 0:
        raise UnsupportedProductError(f"{filename}: the segments' GTIs do not overlap",
                                      filename=filename)
    start, nbins = time_grid(gti, step, origin)
    gti = gti[gti[:, 1] > start].copy()
    if len(gti) == 0:
        raise ValueError(f"{filename}: origin {start} s is after the last GTI")
    gti[:, 0] = np.maximum(gti[:, 0], start)
    return validate_gti(gti, filename), start, nbins
