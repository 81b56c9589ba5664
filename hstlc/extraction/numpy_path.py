"""The numpy reference path of the per-box sums: vectorised numpy on each block of rows.

Masks, ``np.flatnonzero`` and ``np.bincount`` on each block, no Python loop over events,
with per-thread scratch arrays so that no block allocates large temporaries (~25 ns per
event on the development VM).  The compiled kernel (:mod:`hstlc.extraction.kernel`) must
give these sums bit for bit; this path is the definition it is tested against.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from hstlc.extraction.boxes import (
    Box,
    BoxSums,
    Cells,
    Selection,
    bin_index,
    fold_cells,
    merge_range,
    threshold,
)


class _Scratch:
    """Reusable work arrays of one thread: no allocation (and no page faults) per block."""

    def __init__(self, size: int):
        self.size = size
        self.arrays: dict[str, np.ndarray] = {}

    def __call__(self, name: str, dtype: Any, n: int) -> np.ndarray:
        dtype = np.dtype(dtype)
        array = self.arrays.get(name)
        if array is None or array.dtype != dtype or array.size < n:
            array = self.arrays[name] = np.empty(max(n, self.size), dtype)
        return array[:n]


class NumpySums:
    """Sums of one block of events per (cell, time bin): the numpy reference path.

    Thread-safe: the only mutable state is per-thread scratch space.  The block is cut
    with full-length masks first; the surviving events are then compressed into scratch
    arrays and binned.
    """

    def __init__(self, boxes: Sequence[Box], groups: Sequence[str], selection: Selection,
                 conversion: Callable[..., np.ndarray] | None,
                 column_wavelength: np.ndarray | None, x_scale: float, block_rows: int,
                 want_x: bool = True, background_only: bool = False):
        self.groups, self.sel, self.conversion = list(groups), selection, conversion
        self.want_x = want_x
        self.column_wavelength, self.x_scale = column_wavelength, x_scale
        self.cells = Cells(boxes, groups)
        #: Only the background cells take the column's wavelength; the others WAVELENGTH.
        self.mixed = column_wavelength is not None and background_only
        self.shape = (self.cells.count, selection.nbins)
        self.block_rows = block_rows
        self._local = threading.local()

    def _scratch(self) -> _Scratch:
        if not hasattr(self._local, "scratch"):
            self._local.scratch = _Scratch(self.block_rows)
        return self._local.scratch

    def _interval(self, y: np.ndarray, s: _Scratch) -> np.ndarray:
        """Number of box edges <= y: the elementary interval of each event."""
        edges = [threshold(e, y.dtype, up=True) for e in self.cells.edges]
        if len(edges) > 16:
            kind = y.dtype if y.dtype.kind == "f" else np.float64
            return np.searchsorted(np.array(edges, kind), y, side="right")
        code, above = s("code", np.uint8, y.size), s("above", bool, y.size)
        code.fill(0)
        for edge in edges:
            np.greater_equal(y, edge, out=above)
            np.add(code, above, out=code, casting="unsafe")
        return code

    def _band(self, wave: np.ndarray, good: np.ndarray, s: _Scratch) -> None:
        """``good &= wmin < lambda < wmax`` and outside every airglow window ``[lo, hi]``."""
        (wmin, wmax), kind, n = self.sel.wlim, wave.dtype, wave.size
        test, other = s("band1", bool, n), s("band2", bool, n)
        np.greater(wave, threshold(wmin, kind, up=False), out=test)
        good &= test
        np.less(wave, threshold(wmax, kind, up=True), out=test)
        good &= test
        for lo, hi in self.sel.airglow:
            if hi > wmin and lo < wmax:
                np.less(wave, threshold(lo, kind, up=True), out=test)
                np.greater(wave, threshold(hi, kind, up=False), out=other)
                test |= other
                good &= test

    def _good(self, block: dict[str, np.ndarray], code: np.ndarray, s: _Scratch) -> np.ndarray:
        """Events in some box, with good DQ, inside the XCORR limits (and the band)."""
        n = code.size
        good, test = s("good", bool, n), s("test", bool, n)
        if self.cells.odd_covered and code.dtype == np.uint8:
            np.bitwise_and(code, 1, out=good.view(np.uint8))
        else:
            np.take(self.cells.covered, code, out=good)
        dq = block["DQ"]
        if dq.dtype.kind in "iu" and self.sel.sdqflags > np.iinfo(dq.dtype).max:
            dq = dq.astype(np.int64)
        bits = s("dq", dq.dtype, n)
        np.bitwise_and(dq, self.sel.sdqflags, out=bits)
        np.equal(bits, 0, out=test)
        good &= test
        x = block["XCORR"]
        np.greater_equal(x, threshold(self.sel.xlim[0], x.dtype, up=True), out=test)
        good &= test
        np.less(x, threshold(self.sel.xlim[1], x.dtype, up=True), out=test)
        good &= test
        if self.column_wavelength is None:
            self._band(block["WAVELENGTH"], good, s)
        return good

    def _subsets(self, cell: np.ndarray, first: bool) -> list[tuple[np.ndarray | None, bool]]:
        """The events of one layer that have a cell, by kind of wavelength: ``(rows, mapped)``.

        ``rows`` None: all events (the first layer covers every selected event);
        ``mapped``: the cells take the column's wavelength.
        """
        mapped = self.column_wavelength is not None
        if not self.mixed:
            return [(None if first else np.flatnonzero(cell >= 0), mapped)]
        valid = cell >= 0
        background = self.cells.background[cell]
        return [(np.flatnonzero(valid & ~background), False),
                (np.flatnonzero(valid & background), True)]

    def _in_gti(self, time: np.ndarray, s: _Scratch) -> np.ndarray:
        gti = self.sel.gti
        if len(gti) > 1:
            return (np.searchsorted(gti.ravel(), time, side="right") & 1).astype(bool)
        inside, test = s("inside", bool, time.size), s("test", bool, time.size)
        np.greater_equal(time, gti[0, 0], out=inside)
        np.less(time, gti[0, 1], out=test)
        inside &= test
        return inside

    def _bins(self, time: np.ndarray, s: _Scratch) -> np.ndarray:
        """:func:`bin_index` in scratch space: fast estimate, exact check near edges."""
        origin, step, n = self.sel.origin, self.sel.step, time.size
        k, q, near = s("k", np.intp, n), s("q", np.float64, n), s("near", bool, n)
        np.subtract(time, origin, out=q)
        q /= step
        np.copyto(k, q, casting="unsafe")  # q >= 0: truncation is floor
        q -= k
        np.less(q, 1e-6, out=near)
        test = s("test", bool, n)
        np.greater(q, 1.0 - 1e-6, out=test)
        near |= test
        if near.any():
            rows = np.flatnonzero(near)
            k[rows] = bin_index(time[rows], origin, step, self.sel.nbins)
        np.clip(k, 0, self.sel.nbins - 1, out=k)
        return k

    def empty(self) -> BoxSums:
        return BoxSums(np.zeros(self.shape), np.zeros(self.shape), np.zeros(self.shape[1]),
                       np.zeros(self.shape[1]), {}, {})

    def __call__(self, block: dict[str, np.ndarray]) -> BoxSums:
        out, s = self.empty(), self._scratch()
        code = self._interval(block["YCORR"], s)
        good = self._good(block, code, s)
        m = int(np.count_nonzero(good))
        if m == 0:
            return out

        rows = np.flatnonzero(good)

        def pick(name: str) -> np.ndarray:
            column = block[name]
            return np.take(column, rows, out=s(f"pick_{name}", column.dtype, m))

        time = s("time", np.float64, m)
        np.copyto(time, pick("TIME"))
        eps = s("eps", np.float64, m)
        np.copyto(eps, pick("EPSILON"))
        need_x = self.want_x or self.column_wavelength is not None
        x = pick("XCORR") if need_x else None
        wave = pick("WAVELENGTH") if self.column_wavelength is None or self.mixed else None
        code = np.take(code, rows, out=s("pick_code", code.dtype, m))
        inside = self._in_gti(time, s)
        if not inside.all():
            time, eps, code = time[inside], eps[inside], code[inside]
            x = None if x is None else x[inside]
            wave = None if wave is None else wave[inside]
            if time.size == 0:
                return out
        k = self._bins(time, s)
        # each event's weight in the counts and in the flux sum, summed over the cells
        # (layers) that count it
        total, converted = np.zeros(time.size), np.zeros(time.size)
        for depth, layer in enumerate(self.cells.layers):
            cell = np.take(layer, code, out=s("cell", np.intp, code.size))
            # the sums go to out's arrays, the ranges to this layer's own dictionaries
            spans = BoxSums(out.gross, out.flux, out.count_variance, out.flux_variance, {}, {})
            for take, mapped in self._subsets(cell, depth == 0):
                if take is None:
                    weights, factors = self._accumulate(spans, s, cell, k, eps, x, wave, mapped)
                    total += weights
                    converted += factors
                    continue
                weights, factors = self._accumulate(
                    spans, s, cell[take], k[take], eps[take], None if x is None else x[take],
                    None if wave is None else wave[take], mapped)
                total[take] += weights
                converted[take] += factors
            # the layer's ranges in the order of the groups, whatever the subsets' order
            for name in self.groups:
                for mine, ranges in ((spans.wave_range, out.wave_range),
                                     (spans.x_range, out.x_range)):
                    if name in mine:
                        merge_range(ranges, name, mine[name])
        pairs = [(total, out.count_variance)]
        if self.conversion is not None:
            pairs.append((converted, out.flux_variance))
        for weight, variance in pairs:
            weight *= eps
            weight *= weight
            variance += np.bincount(k, weight, self.sel.nbins)
        return out

    def _accumulate(self, out: BoxSums, s: _Scratch, cell: np.ndarray, k: np.ndarray,
                    eps: np.ndarray, x: np.ndarray | None, wave: np.ndarray | None,
                    mapped: bool) -> tuple[np.ndarray, np.ndarray]:
        """Add (event, cell) pairs of one layer to ``out``.

        ``mapped``: the cells take the wavelength of the event's column (``wave`` is
        ignored); otherwise ``wave``, tested against the band here when some cells are
        mapped (else the band cut was made already).  Returns the cells' weights in the
        counts and in the flux sum (weight * conversion) of each pair, 0 where the event
        is not counted (outside the band of its cell).
        """
        n = cell.size
        weights = self.cells.weight[cell]
        factors = np.zeros(n)
        if n == 0:
            return weights, factors
        group = self.cells.group[cell] if len(self.groups) > 1 else None
        counted: np.ndarray | None = None
        if mapped:
            assert self.column_wavelength is not None and x is not None
            column = (x * self.x_scale).astype(np.intp)
            np.clip(column, 0, self.column_wavelength.shape[1] - 1, out=column)
            wave = self.column_wavelength[0 if group is None else group, column]
        assert wave is not None
        if self.column_wavelength is not None:  # the band of each cell's wavelength
            counted = np.ones(n, bool)
            self._band(wave, counted, s)
            eps = np.where(counted, eps, 0.0)
        index = s("index", np.intp, n)
        np.multiply(cell, self.sel.nbins, out=index)
        index += k
        size = self.shape[0] * self.shape[1]
        out.gross += np.bincount(index, eps, size).reshape(self.shape)
        if self.conversion is not None:
            weight = s("weight", np.float64, n)
            factor = self.conversion(group, wave, out=s("factor", np.float32, n), scratch=s)
            np.multiply(factor, eps, out=weight)
            out.flux += np.bincount(index, weight, size).reshape(self.shape)
            np.multiply(weights, factor, out=factors)
        if counted is not None:
            weights[~counted] = 0.0
            factors[~counted] = 0.0
        self._ranges(out, group, counted, wave, x)
        return weights, factors

    def _ranges(self, out: BoxSums, group: np.ndarray | None, counted: np.ndarray | None,
                wave: np.ndarray, x: np.ndarray | None) -> None:
        """Merge the wavelength (and XCORR) extremes of the counted events, per group."""
        if counted is not None:
            group = None if group is None else group[counted]
            wave, x = wave[counted], None if x is None else x[counted]
        if wave.size == 0:
            return
        pairs = [(wave, out.wave_range)] + ([(x, out.x_range)] if self.want_x and x is not None
                                            else [])
        if group is None:
            for values, ranges in pairs:
                merge_range(ranges, self.groups[0], (float(values.min()), float(values.max())))
            return
        n = len(self.groups)
        for values, ranges in pairs:
            low, high = np.full(n, np.inf), np.full(n, -np.inf)
            np.minimum.at(low, group, values)
            np.maximum.at(high, group, values)
            for g in np.flatnonzero(np.isfinite(low)):
                merge_range(ranges, self.groups[g], (float(low[g]), float(high[g])))

    def reduce(self, parts: Iterator[BoxSums], boxes: Sequence[Box]) -> BoxSums:
        """Sum per-block results (in order) and fold the cells into boxes."""
        total = self.empty()
        for part in parts:
            total.gross += part.gross
            total.flux += part.flux
            total.count_variance += part.count_variance
            total.flux_variance += part.flux_variance
            for name, span in part.wave_range.items():
                merge_range(total.wave_range, name, span)
            for name, span in part.x_range.items():
                merge_range(total.x_range, name, span)
        return fold_cells(total, self.cells, len(boxes))
