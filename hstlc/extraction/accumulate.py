"""Per-box accumulation of extraction: one pass over an event table.

:func:`accumulate_boxes` streams an event table (:mod:`hstlc.io.events`) once and
sums, per extraction box and time bin, EPSILON and EPSILON * conversion(wavelength),
and per time bin the variances of the background-subtracted counts and flux sum (see
:class:`BoxSums`).
Two engines give identical results, bit for bit:

* ``kernel`` -- the compiled single-pass kernel :func:`hstlc.extraction.kernel.accumulate_block`
  (numba), fed each block's rows as stored in the file: ~10 ns per event on the
  development VM, besides the ~5 ns of reading the bytes;
* ``numpy`` -- the reference: vectorised numpy on each block (masks,
  ``np.flatnonzero``, ``np.bincount``; no Python loop over events), with per-thread
  scratch arrays so that no block allocates large temporaries; ~25 ns per event.

``auto`` (the default) uses the kernel when numba is importable and the table and the
conversion are ones it handles (scalar E/D/I/J/K/B/L columns without TSCAL/TZERO, an
integer DQ, a :class:`hstlc.extraction.calibrate.ConversionLookup` or no conversion, sorted GTIs),
else numpy.  Blocks may be processed by two threads at once (numpy and the kernel
release the GIL); per-block sums are always added in row order, so the output does not
depend on threads, and both engines cut the same blocks, so they agree exactly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from hstlc.io.events import DEFAULT_BLOCK_ROWS, EventTable, map_event_blocks, map_raw_blocks

#: Values of ``accumulate_boxes(engine=...)``.
ENGINES = ("auto", "kernel", "numpy")


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


def _threshold(value: float, dtype: np.dtype, up: bool) -> Any:
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


class _Cells:
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


class _BoxKernel:
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
        self.cells = _Cells(boxes, groups)
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
        edges = [_threshold(e, y.dtype, up=True) for e in self.cells.edges]
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
        np.greater(wave, _threshold(wmin, kind, up=False), out=test)
        good &= test
        np.less(wave, _threshold(wmax, kind, up=True), out=test)
        good &= test
        for lo, hi in self.sel.airglow:
            if hi > wmin and lo < wmax:
                np.less(wave, _threshold(lo, kind, up=True), out=test)
                np.greater(wave, _threshold(hi, kind, up=False), out=other)
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
        np.greater_equal(x, _threshold(self.sel.xlim[0], x.dtype, up=True), out=test)
        good &= test
        np.less(x, _threshold(self.sel.xlim[1], x.dtype, up=True), out=test)
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
                        _merge(ranges, name, mine[name])
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
                _merge(ranges, self.groups[0], (float(values.min()), float(values.max())))
            return
        n = len(self.groups)
        for values, ranges in pairs:
            low, high = np.full(n, np.inf), np.full(n, -np.inf)
            np.minimum.at(low, group, values)
            np.maximum.at(high, group, values)
            for g in np.flatnonzero(np.isfinite(low)):
                _merge(ranges, self.groups[g], (float(low[g]), float(high[g])))

    def reduce(self, parts: Iterator[BoxSums], boxes: Sequence[Box]) -> BoxSums:
        """Sum per-block results (in order) and fold the cells into boxes."""
        total = self.empty()
        for part in parts:
            total.gross += part.gross
            total.flux += part.flux
            total.count_variance += part.count_variance
            total.flux_variance += part.flux_variance
            for name, span in part.wave_range.items():
                _merge(total.wave_range, name, span)
            for name, span in part.x_range.items():
                _merge(total.x_range, name, span)
        return _fold(total, self.cells, len(boxes))


def _merge(ranges: dict[str, tuple[float, float]], name: str, span: tuple[float, float]) -> None:
    old = ranges.get(name)
    ranges[name] = span if old is None else (min(old[0], span[0]), max(old[1], span[1]))


def _fold(total: BoxSums, cells: _Cells, nboxes: int) -> BoxSums:
    """Per-box sums from per-cell sums: a box is the sum of its cells."""
    shape = (nboxes, total.gross.shape[1])
    folded = BoxSums(np.zeros(shape), np.zeros(shape), total.count_variance,
                     total.flux_variance, total.wave_range, total.x_range)
    for j, ids in enumerate(cells.of_box):
        folded.gross[j] = total.gross[ids].sum(axis=0)
        folded.flux[j] = total.flux[ids].sum(axis=0)
    return folded


# ----------------------------------------------------------------------------- compiled path
#: Columns the kernel reads, in the order of :data:`hstlc.extraction.kernel.TIME` ... ``WAVELENGTH``.
_KERNEL_COLUMNS = ("TIME", "XCORR", "YCORR", "EPSILON", "DQ", "WAVELENGTH")


def kernel_available() -> bool:
    """True when numba can be imported (the compiled kernel can run)."""
    try:
        import hstlc.extraction.kernel  # noqa: F401
    except ImportError:
        return False
    return True


class _BlockPart(NamedTuple):
    """One block's contribution: sums over bins ``kmin..kmax`` and per-layer ranges."""

    kmin: int
    kmax: int
    sums: np.ndarray | None  # (2, cells, kmax - kmin + 1)
    variances: np.ndarray | None  # (2, kmax - kmin + 1)
    ranges: np.ndarray  # (4, depth, groups): wave min, wave max, x min, x max


class _CompiledKernel:
    """The arguments of :func:`hstlc.extraction.kernel.accumulate_block` for one table, and its blocks.

    Build with :meth:`plan`, which says why the kernel cannot be used (None when it can).
    Thread-safe: the sums and ranges being filled are per thread.
    """

    def __init__(self, table: EventTable, boxes: Sequence[Box], groups: list[str],
                 selection: Selection, conversion: Any, columns_map: np.ndarray | None,
                 x_scale: float, want_x: bool, background_only: bool = False):
        from hstlc.extraction import kernel as kernels

        self.k = kernels
        self.groups, self.sel, self.want_x = groups, selection, want_x
        self.cells = _Cells(boxes, groups)
        self.rowsize = table.dtype.itemsize
        self.layout = np.full(len(_KERNEL_COLUMNS), -1, np.int64)
        self.types = [0] * len(_KERNEL_COLUMNS)
        for row, name in enumerate(_KERNEL_COLUMNS):
            if name == "WAVELENGTH" and columns_map is not None and not background_only:
                continue
            spelled = table.column(name)
            fields = table.dtype.fields
            assert fields is not None  # a structured row dtype
            self.layout[row] = fields[spelled][1]
            self.types[row] = kernels.CODES.get(table.dtype[spelled].str, -1)
        wmin, wmax = (float(v) for v in selection.wlim)
        self.cuts = np.array([selection.xlim[0], selection.xlim[1], wmin, wmax,
                              selection.origin, selection.step, x_scale], np.float64)
        windows = [(float(lo), float(hi)) for lo, hi in selection.airglow
                   if hi > wmin and lo < wmax]
        self.airglow = np.array(windows, np.float64).reshape(-1, 2)
        self.gti_edges = np.ascontiguousarray(selection.gti, np.float64).ravel()
        self.layers = np.ascontiguousarray(self.cells.layers, np.int64)
        self.cell_group = np.ascontiguousarray(self.cells.group, np.int64)
        self.cell_weight = np.ascontiguousarray(self.cells.weight, np.float64)
        self.cell_mapped = np.ones(self.cells.count, np.bool_)
        self.flags = 0
        if columns_map is not None:
            self.flags |= kernels.COLUMN_WAVELENGTH
            if background_only:
                self.flags |= kernels.MIXED_WAVELENGTH
                self.cell_mapped = np.ascontiguousarray(self.cells.background, np.bool_)
            self.column_map = np.ascontiguousarray(columns_map, np.float64)
            probe = np.zeros(1, table.dtype[table.column("XCORR")].newbyteorder("="))
            if (probe * x_scale).dtype == np.float32:  # numpy's type for XCORR * x_scale
                self.flags |= kernels.X_SCALE_FLOAT32
        else:
            self.column_map = np.zeros((1, 1))
        self.table = np.full(1, np.nan, np.float32)
        self.conv64, self.conv32 = np.zeros((1, 3)), np.zeros((1, 3), np.float32)
        self.conv_base = np.zeros(1, np.int64)
        self.conversion = conversion
        if conversion is not None and self._lookup_parts(conversion):
            self.flags |= kernels.HAS_CONVERSION
            if len(groups) > 1 and conversion.size.size > 1:
                self.flags |= kernels.CONVERSION_BY_GROUP
            lookup = np.column_stack([conversion.start, conversion.inverse,
                                      conversion.size - 1]).astype(np.float64)
            self.table = np.ascontiguousarray(conversion.table, np.float32)
            self.conv64, self.conv32 = lookup, lookup.astype(np.float32)
            self.conv_base = np.ascontiguousarray(conversion.base, np.int64)
        self.nbins = int(selection.nbins)
        # Largest |time| / step of a counted event or a bin edge: below 1e8 the bin estimate
        # of the numpy path is exact (see hstlc.extraction.kernel.REUSE_BINS).
        reach = max(np.abs(self.gti_edges).max(initial=0.0),
                    abs(float(selection.origin)) + abs(float(selection.step)) * self.nbins)
        if selection.step > 0 and np.isfinite(reach) and reach / selection.step < 1e8:
            self.flags |= kernels.REUSE_BINS
        self.ncells, self.depth = self.cells.count, self.layers.shape[0]
        self.sdqflags = int(selection.sdqflags)
        self.type_codes = np.array([max(code, 0) for code in self.types], np.int64)
        self.covered = np.ascontiguousarray(self.cells.covered, np.bool_)
        self._local = threading.local()

    @staticmethod
    def _lookup_parts(conversion: Any) -> bool:
        from hstlc.extraction.calibrate import ConversionLookup

        return type(conversion) is ConversionLookup

    def plan(self) -> str | None:
        """Why this table / selection / conversion needs the numpy path; None if it does not."""
        k = self.k
        for row, name in enumerate(_KERNEL_COLUMNS):
            if self.layout[row] < 0 and name != "WAVELENGTH":
                return f"no {name} column"
            if self.layout[row] >= 0 and self.types[row] < 0:
                return f"column {name} has a type the kernel does not read"
        if self.types[k.DQ] in (k.F4, k.F8):
            return "DQ is not an integer column"
        if not 0 <= self.sdqflags < 2**63:
            return f"SDQFLAGS {self.sdqflags} is not a non-negative 64-bit integer"
        if self.conversion is not None:
            if not self._lookup_parts(self.conversion):
                return "the conversion is not a ConversionLookup"
            if (self.flags & k.CONVERSION_BY_GROUP) and self.conversion.size.size < len(self.groups):
                return "the conversion has fewer groups than the boxes"
        if (self.gti_edges.size < 2 or np.isnan(self.gti_edges).any()
                or np.any(np.diff(self.gti_edges) < 0)):
            return "the GTIs are empty or not sorted"
        if self.nbins < 1:
            return "no time bin"
        return None

    def check_columns(self, table: EventTable) -> str | None:
        """Why the table's columns need the numpy path (scaled or vector columns)."""
        for row, name in enumerate(_KERNEL_COLUMNS):
            if self.layout[row] < 0:
                continue
            spelled = table.column(name)
            if spelled in table.scaling:
                return f"column {name} is scaled (TSCAL/TZERO)"
            if table.dtype[spelled].shape != ():
                return f"column {name} is not a scalar column"
        return None

    def _state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        local = self._local
        if not hasattr(local, "sums"):
            local.sums = np.zeros((2, self.ncells * self.nbins))
            local.variances = np.zeros((2, self.nbins))
            local.ranges = np.empty((4, self.depth, len(self.groups), self.k.LANES))
            local.ranges[0::2] = np.inf
            local.ranges[1::2] = -np.inf
        return local.sums, local.variances, local.ranges

    def __call__(self, raw: np.ndarray, count: int) -> _BlockPart:
        sums, variances, ranges = self._state()
        kmin, kmax = self.k.accumulate_block(
            raw, count, self.rowsize, self.type_codes, self.layout, self.flags, self.cuts,
            self.sdqflags, self.nbins, self.airglow, self.gti_edges, self.cells.edges, self.covered,
            self.layers, self.cell_group, self.cell_weight, self.cell_mapped, self.table,
            self.conv64, self.conv32, self.conv_base, self.column_map, sums, variances, ranges)
        part = per_bin = None
        if kmax >= kmin:
            cells = sums.reshape(2, self.ncells, self.nbins)
            part = cells[:, :, kmin: kmax + 1].copy()
            cells[:, :, kmin: kmax + 1] = 0.0
            per_bin = variances[:, kmin: kmax + 1].copy()
            variances[:, kmin: kmax + 1] = 0.0
        spans = np.empty((4, self.depth, len(self.groups)))
        spans[0::2] = ranges[0::2].min(axis=-1)
        spans[1::2] = ranges[1::2].max(axis=-1)
        ranges[0::2] = np.inf
        ranges[1::2] = -np.inf
        return _BlockPart(int(kmin), int(kmax), part, per_bin, spans)

    def reduce(self, parts: Iterator[_BlockPart], boxes: Sequence[Box]) -> BoxSums:
        """Sum the blocks in row order, merge their ranges as the numpy path does, fold."""
        shape = (self.ncells, self.nbins)
        total = BoxSums(np.zeros(shape), np.zeros(shape), np.zeros(self.nbins),
                        np.zeros(self.nbins), {}, {})
        single = len(self.groups) == 1
        for part in parts:
            if part.sums is not None and part.variances is not None:
                window = slice(part.kmin, part.kmax + 1)
                total.gross[:, window] += part.sums[0]
                total.flux[:, window] += part.sums[1]
                total.count_variance[window] += part.variances[0]
                total.flux_variance[window] += part.variances[1]
            pairs = [(0, total.wave_range)] + ([(2, total.x_range)] if self.want_x else [])
            for d in range(self.depth):
                for first, ranges in pairs:
                    low, high = part.ranges[first, d], part.ranges[first + 1, d]
                    # numpy path: one group -> any counted event; several -> a finite minimum
                    keep = low <= high if single else np.isfinite(low)
                    for g in np.flatnonzero(keep):
                        _merge(ranges, self.groups[g], (float(low[g]), float(high[g])))
        return _fold(total, self.cells, len(boxes))


def accumulate_boxes(
    table: EventTable,
    boxes: Sequence[Box],
    selection: Selection,
    *,
    conversion: Callable[[np.ndarray | None, np.ndarray], np.ndarray] | None = None,
    column_wavelength: Mapping[str, np.ndarray] | None = None,
    column_wavelength_boxes: str = "all",
    x_scale: float = 1.0,
    block_rows: int = DEFAULT_BLOCK_ROWS,
    threads: int = 1,
    want_x_range: bool = True,
    engine: str = "auto",
) -> BoxSums:
    """Stream an event table once and sum each box's events per time bin.

    An event counts in a box when ``DQ & sdqflags == 0``, ``xlim[0] <= XCORR < xlim[1]``,
    ``y0 <= YCORR < y1``, its TIME lies in a GTI (``START <= t < STOP``), and its wavelength
    satisfies ``wlim[0] < lambda < wlim[1]`` outside every airglow window ``[lo, hi]``.
    Comparisons follow float64 semantics exactly, whatever the column types.  Boxes may
    overlap: an event then counts in each box that holds it.

    Parameters
    ----------
    table : EventTable
        The event table (columns TIME, XCORR, YCORR, EPSILON, DQ and, unless
        ``column_wavelength`` is given for all boxes, WAVELENGTH).
    boxes : sequence of Box
        The boxes; ``group`` names the segment / stripe / order.
    selection : Selection
        Cuts and the time grid (``nbins`` bins of ``step`` from ``origin``).
    conversion : callable, optional
        ``conversion(group_index, wavelength) -> factor`` per event, ``group_index``
        indexing the groups in order of first appearance in ``boxes`` (None when there
        is one group), e.g. :meth:`hstlc.extraction.calibrate.Response.indexed`.
    column_wavelength : mapping, optional
        Per group, the wavelength of each pixel column: an event's wavelength is then
        ``column_wavelength[group][int(XCORR * x_scale)]``, not its WAVELENGTH column.
    column_wavelength_boxes : str
        Which boxes take the column's wavelength: ``all``, or ``background`` (rows held
        by background boxes only; the others use WAVELENGTH: the COS NUV stripes, whose
        events carry the wavelength of the nearest stripe).  The band is then tested
        per box, with the wavelength that box gives the event.
    block_rows, threads : int
        Streaming block size; number of blocks processed at once.
    want_x_range : bool
        Also record each group's XCORR range (``BoxSums.x_range``).
    engine : str
        ``auto`` (the compiled kernel when it can run, else numpy), ``kernel`` (raise
        ValueError when it cannot) or ``numpy`` (the reference path).  Both engines give
        identical sums.

    Returns
    -------
    BoxSums
        One row per box, in the order of ``boxes``; the variances of the counts and of the
        flux sum per bin (boxes that share an event count it once, with their summed
        weight).
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if column_wavelength_boxes not in ("all", "background"):
        raise ValueError("column_wavelength_boxes must be 'all' or 'background', got "
                         f"{column_wavelength_boxes!r}")
    background_only = column_wavelength is not None and column_wavelength_boxes == "background"
    groups = list(dict.fromkeys(box.group for box in boxes))
    block_rows = max(1, min(block_rows, table.nrows))  # small tables get small buffers
    columns_map = None
    if column_wavelength is not None:
        width = max(len(column_wavelength[g]) for g in groups)
        columns_map = np.full((len(groups), width), -np.inf)
        for i, g in enumerate(groups):
            columns_map[i, : len(column_wavelength[g])] = column_wavelength[g]
        columns_map[~np.isfinite(columns_map)] = -np.inf
    if engine != "numpy":
        compiled, reason = _compiled(table, boxes, groups, selection, conversion, columns_map,
                                     x_scale, want_x_range, background_only)
        if compiled is not None:
            blocks = map_raw_blocks(table, compiled, block_rows=block_rows, threads=threads)
            return compiled.reduce(blocks, boxes)
        if engine == "kernel":
            raise ValueError(f"{table.path.name}: the compiled kernel cannot be used: {reason}")
    kernel = _BoxKernel(boxes, groups, selection, conversion, columns_map, x_scale, block_rows,
                        want_x_range, background_only)
    columns = ["TIME", "XCORR", "YCORR", "EPSILON", "DQ"]
    if column_wavelength is None or background_only:
        columns.append("WAVELENGTH")
    parts = map_event_blocks(table, columns, kernel, block_rows=block_rows, threads=threads)
    return kernel.reduce(parts, boxes)


def _compiled(table: EventTable, boxes: Sequence[Box], groups: list[str], selection: Selection,
              conversion: Any, columns_map: np.ndarray | None, x_scale: float,
              want_x: bool, background_only: bool) -> tuple[_CompiledKernel | None, str]:
    """The compiled kernel for this call, or None and the reason it cannot run."""
    if not kernel_available():
        return None, "numba is not installed"
    wave = () if columns_map is not None and not background_only else ("WAVELENGTH",)
    for name in _KERNEL_COLUMNS[:5] + wave:
        table.column(name)  # a missing column raises MissingKeywordError, as on the numpy path
    compiled = _CompiledKernel(table, boxes, groups, selection, conversion, columns_map,
                               x_scale, want_x, background_only)
    reason = compiled.check_columns(table) or compiled.plan()
    return (None, reason) if reason else (compiled, "")
