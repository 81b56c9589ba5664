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

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from hstlc.extraction.boxes import Box, BoxSums, Selection
from hstlc.extraction.kernel_path import KERNEL_COLUMNS, CompiledSums, kernel_available
from hstlc.extraction.numpy_path import NumpySums
from hstlc.io.events import (
    DEFAULT_BLOCK_ROWS,
    EventTable,
    FileDigest,
    map_event_blocks,
    map_raw_blocks,
)

#: Values of ``accumulate_boxes(engine=...)``.
ENGINES = ("auto", "kernel", "numpy")


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
    digest: FileDigest | None = None,
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
    digest : FileDigest, optional
        Also take the sha256 of the table's whole file from this pass (see
        :class:`hstlc.io.events.FileDigest`); the sums do not depend on it.

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
            blocks = map_raw_blocks(table, compiled, block_rows=block_rows, threads=threads,
                                    digest=digest)
            return compiled.reduce(blocks, boxes)
        if engine == "kernel":
            raise ValueError(f"{table.path.name}: the compiled kernel cannot be used: {reason}")
    kernel = NumpySums(boxes, groups, selection, conversion, columns_map, x_scale, block_rows,
                        want_x_range, background_only)
    columns = ["TIME", "XCORR", "YCORR", "EPSILON", "DQ"]
    if column_wavelength is None or background_only:
        columns.append("WAVELENGTH")
    parts = map_event_blocks(table, columns, kernel, block_rows=block_rows, threads=threads,
                             digest=digest)
    return kernel.reduce(parts, boxes)


def _compiled(table: EventTable, boxes: Sequence[Box], groups: list[str], selection: Selection,
              conversion: Any, columns_map: np.ndarray | None, x_scale: float,
              want_x: bool, background_only: bool) -> tuple[CompiledSums | None, str]:
    """The compiled kernel for this call, or None and the reason it cannot run."""
    if not kernel_available():
        return None, "numba is not installed"
    wave = () if columns_map is not None and not background_only else ("WAVELENGTH",)
    for name in KERNEL_COLUMNS[:5] + wave:
        table.column(name)  # a missing column raises MissingKeywordError, as on the numpy path
    compiled = CompiledSums(table, boxes, groups, selection, conversion, columns_map,
                               x_scale, want_x, background_only)
    reason = compiled.check_columns(table) or compiled.plan()
    return (None, reason) if reason else (compiled, "")
