"""The compiled path of the per-box sums: the records of the numba kernel for one table.

:class:`CompiledSums` turns a table, its boxes, the cuts and the conversion into the
records of :func:`hstlc.extraction.kernel.accumulate_block` once, says why the kernel
cannot be used (:meth:`CompiledSums.plan`), runs it on each block of raw rows and sums
the blocks in row order exactly as the numpy path (:mod:`hstlc.extraction.numpy_path`)
does, so that both give the same sums bit for bit.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np

from hstlc.extraction.boxes import Box, BoxSums, Cells, Selection, fold_cells, merge_range
from hstlc.io.events import EventTable

#: Columns the kernel reads, in the order of :data:`hstlc.extraction.kernel.TIME` ... ``WAVELENGTH``.
KERNEL_COLUMNS = ("TIME", "XCORR", "YCORR", "EPSILON", "DQ", "WAVELENGTH")


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


class CompiledSums:
    """The records of :func:`hstlc.extraction.kernel.accumulate_block` for one table, and its blocks.

    Build with :meth:`plan`, which says why the kernel cannot be used (None when it can).
    Thread-safe: the sums and ranges being filled are per thread.
    """

    def __init__(self, table: EventTable, boxes: Sequence[Box], groups: list[str],
                 selection: Selection, conversion: Any, columns_map: np.ndarray | None,
                 x_scale: float, want_x: bool, background_only: bool = False):
        from hstlc.extraction import kernel as kernels

        self.k = kernels
        self.groups, self.sel, self.want_x = groups, selection, want_x
        self.cells = Cells(boxes, groups)
        self.layout = np.full(len(KERNEL_COLUMNS), -1, np.int64)
        self.types = [0] * len(KERNEL_COLUMNS)
        for row, name in enumerate(KERNEL_COLUMNS):
            if name == "WAVELENGTH" and columns_map is not None and not background_only:
                continue
            spelled = table.column(name)
            fields = table.dtype.fields
            assert fields is not None  # a structured row dtype
            self.layout[row] = fields[spelled][1]
            self.types[row] = kernels.CODES.get(table.dtype[spelled].str, -1)
        wmin, wmax = (float(v) for v in selection.wlim)
        windows = [(float(lo), float(hi)) for lo, hi in selection.airglow
                   if hi > wmin and lo < wmax]
        self.gti_edges = np.ascontiguousarray(selection.gti, np.float64).ravel()
        cell_mapped = np.ones(self.cells.count, np.bool_)
        column_map = np.zeros((1, 1))
        self.flags = 0
        if columns_map is not None:
            self.flags |= kernels.COLUMN_WAVELENGTH
            if background_only:
                self.flags |= kernels.MIXED_WAVELENGTH
                cell_mapped = np.ascontiguousarray(self.cells.background, np.bool_)
            column_map = np.ascontiguousarray(columns_map, np.float64)
            probe = np.zeros(1, table.dtype[table.column("XCORR")].newbyteorder("="))
            if (probe * x_scale).dtype == np.float32:  # numpy's type for XCORR * x_scale
                self.flags |= kernels.X_SCALE_FLOAT32
        # without a conversion, a table the kernel never reads (HAS_CONVERSION unset)
        lookup = kernels.Lookup(np.full(1, np.nan, np.float32), np.zeros((1, 3)),
                                np.zeros((1, 3), np.float32), np.zeros(1, np.int64), column_map)
        self.conversion = conversion
        if conversion is not None and self._lookup_parts(conversion):
            self.flags |= kernels.HAS_CONVERSION
            if len(groups) > 1 and conversion.size.size > 1:
                self.flags |= kernels.CONVERSION_BY_GROUP
            terms = np.column_stack([conversion.start, conversion.inverse,
                                     conversion.size - 1]).astype(np.float64)
            lookup = kernels.Lookup(np.ascontiguousarray(conversion.table, np.float32), terms,
                                    terms.astype(np.float32),
                                    np.ascontiguousarray(conversion.base, np.int64), column_map)
        self.nbins = int(selection.nbins)
        # Largest |time| / step of a counted event or a bin edge: below 1e8 the bin estimate
        # of the numpy path is exact (see hstlc.extraction.kernel.REUSE_BINS).
        reach = max(np.abs(self.gti_edges).max(initial=0.0),
                    abs(float(selection.origin)) + abs(float(selection.step)) * self.nbins)
        if selection.step > 0 and np.isfinite(reach) and reach / selection.step < 1e8:
            self.flags |= kernels.REUSE_BINS
        self.ncells, self.depth = self.cells.count, self.cells.layers.shape[0]
        self.sdqflags = int(selection.sdqflags)
        cuts = np.array([selection.xlim[0], selection.xlim[1], wmin, wmax, selection.origin,
                         selection.step, x_scale], np.float64)
        rows = kernels.Rows(
            int(table.dtype.itemsize), np.array([max(code, 0) for code in self.types], np.int64),
            self.layout, self.flags, self.sdqflags, cuts, self.nbins,
            kernels.padded(np.array(windows, np.float64).reshape(-1, 2), kernels.WINDOWS,
                           (np.inf, -np.inf)),
            kernels.padded(self.gti_edges, kernels.EDGES, np.nan))
        cells = kernels.Cells(
            kernels.padded(self.cells.edges, kernels.EDGES, np.nan),
            np.ascontiguousarray(self.cells.covered, np.bool_),
            np.ascontiguousarray(self.cells.layers, np.int64),
            np.ascontiguousarray(self.cells.group, np.int64),
            np.ascontiguousarray(self.cells.weight, np.float64), cell_mapped)
        #: ``accumulate_block``'s records but the block and the totals.
        self.records = (rows, cells, lookup)
        self._local = threading.local()

    @staticmethod
    def _lookup_parts(conversion: Any) -> bool:
        from hstlc.extraction.calibrate import ConversionLookup

        return type(conversion) is ConversionLookup

    def plan(self) -> str | None:
        """Why this table / selection / conversion needs the numpy path; None if it does not."""
        k = self.k
        for row, name in enumerate(KERNEL_COLUMNS):
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
        for row, name in enumerate(KERNEL_COLUMNS):
            if self.layout[row] < 0:
                continue
            spelled = table.column(name)
            if spelled in table.scaling:
                return f"column {name} is scaled (TSCAL/TZERO)"
            if table.dtype[spelled].shape != ():
                return f"column {name} is not a scalar column"
        return None

    def _state(self) -> Any:
        """This thread's :class:`hstlc.extraction.kernel.Totals`."""
        local = self._local
        if not hasattr(local, "totals"):
            ranges = np.empty((4, self.depth, len(self.groups), self.k.LANES))
            ranges[0::2] = np.inf
            ranges[1::2] = -np.inf
            local.totals = self.k.Totals(np.zeros((2, self.ncells * self.nbins)),
                                         np.zeros((2, self.nbins)), ranges)
        return local.totals

    def __call__(self, raw: np.ndarray, count: int) -> _BlockPart:
        totals = self._state()
        sums, variances, ranges = totals
        kmin, kmax = self.k.accumulate_block(raw, count, *self.records, totals)
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
                        merge_range(ranges, self.groups[g], (float(low[g]), float(high[g])))
        return fold_cells(total, self.cells, len(boxes))
