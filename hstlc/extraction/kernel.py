"""Compiled single-pass kernel of the box accumulation (numba).

:func:`accumulate_block` reads one block of FITS binary-table rows *as stored*
(big-endian bytes, :attr:`Rows.size` bytes a row), decodes the few columns it needs and adds
every selected event to its cells' time bins: one pass over the block instead of the
~40 numpy passes of the reference path (:class:`hstlc.extraction.numpy_path.NumpySums`).  It
reproduces that path bit for bit:

* comparisons are made in float64 on the exact float64 value of every column value
  (what the reference's float32 thresholds emulate);
* a cell's sum in a time bin is built in event order from 0.0, like ``np.bincount``;
  the caller adds the per-block sums in row order, like the reference;
* an event's weight in the counts ``W`` (the sum of its counting cells' weights) and
  in the flux sum ``C`` (the sum of weight * conversion) are built over the layers in
  order from 0.0, and ``(EPSILON * W)**2``, ``(EPSILON * C)**2`` are added to its time
  bin's variances, as the reference does;
* the flux conversion repeats :class:`hstlc.extraction.calibrate.ConversionLookup` operation by
  operation, in float32 when the wavelength is float32;
* STIS, COS NUV background: events outside the band of a cell whose wavelength comes
  from the column map still add ``0.0`` (and ``conversion * 0.0``) to it, as
  ``np.where(counted, eps, 0.0)`` does.

The block goes through in chunks of :data:`CHUNK` rows whose work arrays stay in the L1
cache, each in four short loops:

1. *decode* (:func:`_decode_chunk`) TIME, XCORR, YCORR, WAVELENGTH, EPSILON and DQ of
   every row from the raw bytes (big-endian values assembled with shifts on unsigned
   indices, which LLVM turns into a load and a byte swap) into float64 / int64 work
   arrays;
2. *cut* (:func:`_select`): DQ, XCORR, band and airglow, GTIs, and the interval of box
   edges holding YCORR -- simple loops of fixed inner length (windows and edges padded),
   which LLVM vectorises (8 events per instruction with AVX-512);
3. *compact* the selected rows' indices (:func:`_select`);
4. *accumulate* the selected events only (in :func:`accumulate_block`): time bin (the
   previous event's bin is reused while the times stay in it), cells, conversion, sums
   and the wavelength / XCORR ranges; a tighter copy of this loop serves the usual COS
   case (one layer of cells, one group, the WAVELENGTH column).

About 10 ns per event on the 2-CPU development VM (AMD EPYC, 2.6 GHz) for a COS FUV
corrtag, against ~25 ns for the numpy path; reading the bytes costs another ~5 ns.

Compiled with ``nogil=True`` (two threads run two blocks at once) and ``cache=True``
(the machine code is kept beside this file in ``__pycache__``; without it the first
call compiles for a few seconds, see :func:`warm_up`).

The arguments come packed in four records -- :class:`Rows` (columns, cuts, time grid),
:class:`Cells` (boxes), :class:`Lookup` (flux conversion, column wavelengths) and
:class:`Totals` (the sums filled) -- which numba types as tuples of arrays and scalars.
This module has no FITS keyword; :mod:`hstlc.extraction.accumulate` prepares the records.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import numba
import numpy as np

#: Column type codes of :attr:`Rows.types` (FITS TFORM E, D, I, J, K, B, L).
F4, F8, I2, I4, I8, U1, I1 = range(7)
#: Big-endian numpy type string -> code.
CODES = {">f4": F4, ">f8": F8, ">i2": I2, ">i4": I4, ">i8": I8, "|u1": U1, "|i1": I1}
#: Entries of :attr:`Rows.types` and :attr:`Rows.layout`: the columns read.
TIME, XCORR, YCORR, EPSILON, DQ, WAVELENGTH = range(6)
#: Bits of :attr:`Rows.flags`.
HAS_CONVERSION, CONVERSION_BY_GROUP, COLUMN_WAVELENGTH, X_SCALE_FLOAT32, REUSE_BINS = 1, 2, 4, 8, 16
MIXED_WAVELENGTH = 32
#: Entries of :attr:`Rows.cuts`.
XMIN, XMAX, WMIN, WMAX, ORIGIN, STEP, XSCALE = range(7)
#: Slots per range accumulator (consecutive events update different slots).
LANES = 8
#: Rows per chunk.
CHUNK = 512
#: Airglow windows, box edges and GTI edges up to these numbers are tested by loops of
#: fixed length (the records hold them padded, see :func:`padded`); longer lists by a
#: plain loop / a binary search.
WINDOWS, EDGES = 4, 16


class Rows(NamedTuple):
    """What a table's rows hold, which of them count, and the time grid.

    Attributes
    ----------
    size : int
        Bytes per row.
    types, layout : int64 arrays (6,)
        Type code (:data:`CODES`) and byte offset in a row of TIME, XCORR, YCORR,
        EPSILON, DQ and WAVELENGTH (WAVELENGTH: offset -1 when not read).
    flags : int
        :data:`HAS_CONVERSION` | :data:`CONVERSION_BY_GROUP` | :data:`COLUMN_WAVELENGTH`
        | :data:`MIXED_WAVELENGTH` (with COLUMN_WAVELENGTH: only the cells with
        :attr:`Cells.mapped` take the column map's wavelength, the others the WAVELENGTH
        column, each cell testing the band) | :data:`X_SCALE_FLOAT32` (``XCORR *
        x_scale`` is computed in float32, as numpy does for a float32 column and a Python
        float) | :data:`REUSE_BINS` (every GTI edge and bin edge ``e`` has
        ``|e| / step < 1e8``, so the numpy path's bin estimate is exact: an event in the
        bin of the previous one is put there without recomputing).
    sdqflags : int
        Bad-event DQ bits.
    cuts : float64 array (7,)
        ``xmin, xmax, wmin, wmax, origin, step, x_scale``.
    nbins : int
        Time bins ``[origin + k*step, origin + (k+1)*step)``.
    windows : float64 array (max(m, WINDOWS), 2)
        Excluded wavelength windows (ends included), padded with ``[inf, -inf]``
        (excludes nothing).
    gti : float64 array (max(2n, EDGES),)
        Sorted GTI edges ``start0, stop0, start1, ...``, padded with NaN (never <= a
        time): an event is inside when an odd number of edges are <= its time.
    """

    size: int
    types: np.ndarray
    layout: np.ndarray
    flags: int
    sdqflags: int
    cuts: np.ndarray
    nbins: int
    windows: np.ndarray
    gti: np.ndarray


class Cells(NamedTuple):
    """The boxes as cells of the intervals between box edges.

    Attributes
    ----------
    edges : float64 array (max(e, EDGES),)
        Sorted box edges, padded with NaN: the rows between ``edges[i-1]`` and
        ``edges[i]`` are interval ``i``.
    covered : bool array (e + 1,)
        Whether a box holds interval ``i``.
    layers : int64 array (depth, e + 1)
        ``layers[d, i]``: the d-th cell of interval ``i`` (-1: none).
    group : int64 array (cells,)
        The group of each cell.
    weight : float64 array (cells,)
        Each cell's weight in the counts: source boxes +1, background boxes ``-scale``,
        summed over the boxes holding the cell.
    mapped : bool array (cells,)
        Whether the cell takes its wavelength from :attr:`Lookup.column_map` (with
        :data:`MIXED_WAVELENGTH`).
    """

    edges: np.ndarray
    covered: np.ndarray
    layers: np.ndarray
    group: np.ndarray
    weight: np.ndarray
    mapped: np.ndarray


class Lookup(NamedTuple):
    """The flux conversion (as :class:`hstlc.extraction.calibrate.ConversionLookup`) and
    the wavelength of each pixel column.

    Attributes
    ----------
    table : float32 array
        The conversion factors of all groups.
    terms64, terms32 : float64, float32 arrays (groups, 3)
        Per group ``start, inverse, top``: the table position of a wavelength is
        ``(wave - start) * inverse`` clipped to ``[0, top]``.
    base : int64 array (groups,)
        Offset of each group's part of the table.
    column_map : float64 array (groups, width)
        With :data:`COLUMN_WAVELENGTH`: the wavelength of column ``int(XCORR * x_scale)``.
    """

    table: np.ndarray
    terms64: np.ndarray
    terms32: np.ndarray
    base: np.ndarray
    column_map: np.ndarray


class Totals(NamedTuple):
    """What :func:`accumulate_block` fills.

    Attributes
    ----------
    sums : float64 array (2, cells * nbins)
        EPSILON and EPSILON * conversion by ``cell * nbins + bin``.  Added to.
    variances : float64 array (2, nbins)
        ``(EPSILON * W)**2`` and ``(EPSILON * C)**2`` by bin, ``W`` the sum of the weights
        of the cells counting the event and ``C`` the sum of weight * conversion: the
        variances of the background-subtracted counts and flux sum.  Added to.
    ranges : float64 array (4, depth, groups, LANES)
        Minimum and maximum wavelength, minimum and maximum XCORR of the counted events
        per layer and group, over :data:`LANES` slots the caller reduces.  Updated.
    """

    sums: np.ndarray
    variances: np.ndarray
    ranges: np.ndarray


class _Chunk(NamedTuple):
    """Work arrays of one chunk of :data:`CHUNK` rows (they stay in the L1 cache)."""

    values: np.ndarray  # float64 (6, CHUNK): decoded columns by TIME ... WAVELENGTH (DQ unused)
    dq: np.ndarray  # int64
    interval: np.ndarray  # int64: the interval of box edges holding YCORR
    ok: np.ndarray  # bool: the row passes the cuts
    selected: np.ndarray  # int64: the selected rows, compacted


@numba.njit(inline="always")
def _new_chunk():  # type: ignore[no-untyped-def]
    """A :class:`_Chunk` of uninitialised arrays."""
    return _Chunk(np.empty((6, CHUNK)), np.empty(CHUNK, np.int64), np.empty(CHUNK, np.int64),
                  np.empty(CHUNK, np.bool_), np.empty(CHUNK, np.int64))


def padded(values: np.ndarray, length: int, fill: float | tuple[float, float]) -> np.ndarray:
    """``values`` (float64) followed by rows of ``fill`` up to ``length`` rows in all."""
    values = np.asarray(values, np.float64)
    out = np.empty((max(len(values), length), *values.shape[1:]))
    out[:] = fill
    out[: len(values)] = values
    return out


# Decoding of big-endian values at byte ``p`` (uint64) of the uint8 rows: unsigned indices
# (numba adds no negative-index wraparound), and LLVM turns the shifts into one load and a
# byte swap.
@numba.njit(inline="always")
def _be16(raw, p):  # type: ignore[no-untyped-def]
    return np.uint16((np.uint16(raw[p]) << 8) | np.uint16(raw[p + np.uint64(1)]))


@numba.njit(inline="always")
def _be32(raw, p):  # type: ignore[no-untyped-def]
    return np.uint32((np.uint32(raw[p]) << 24) | (np.uint32(raw[p + np.uint64(1)]) << 16)
                     | (np.uint32(raw[p + np.uint64(2)]) << 8) | np.uint32(raw[p + np.uint64(3)]))


@numba.njit(inline="always")
def _be64(raw, p):  # type: ignore[no-untyped-def]
    high, low = np.uint64(_be32(raw, p)), np.uint64(_be32(raw, p + np.uint64(4)))
    return np.uint64((high << np.uint64(32)) | low)


@numba.njit
def _decode(raw, first, n, size, offset, code, out):  # type: ignore[no-untyped-def]
    """``out[i]`` = the column of type ``code`` at byte ``offset`` of row ``first + i``.

    The value is converted to ``out``'s type (float64: exact but for 64-bit integers,
    which round as in numpy; int64: exact for the integer types).  One loop per type:
    the type switch is outside the loops.
    """
    start = np.uint64(first) * size + offset
    if code == F4:
        for i in range(n):
            out[i] = _be32(raw, start + np.uint64(i) * size).view(np.float32)
    elif code == F8:
        for i in range(n):
            out[i] = _be64(raw, start + np.uint64(i) * size).view(np.float64)
    elif code == I2:
        for i in range(n):
            out[i] = _be16(raw, start + np.uint64(i) * size).view(np.int16)
    elif code == I4:
        for i in range(n):
            out[i] = _be32(raw, start + np.uint64(i) * size).view(np.int32)
    elif code == I8:
        for i in range(n):
            out[i] = _be64(raw, start + np.uint64(i) * size).view(np.int64)
    elif code == U1:
        for i in range(n):
            out[i] = raw[start + np.uint64(i) * size]
    else:
        for i in range(n):
            out[i] = np.uint8(raw[start + np.uint64(i) * size]).view(np.int8)


@numba.njit(inline="always")
def _count_fixed(padded, value):  # type: ignore[no-untyped-def]
    """Number of edges <= ``value`` among the first :data:`EDGES` (NaN-padded) edges."""
    count = 0
    for j in range(EDGES):
        count += value >= padded[j]
    return count


@numba.njit(inline="always")
def _count_sorted(edges, value):  # type: ignore[no-untyped-def]
    """Number of sorted ``edges`` <= ``value`` (0 for NaN), by binary search."""
    low, size = 0, edges.size
    while size > 0:
        half = size >> 1
        if value >= edges[low + half]:
            low += half + 1
            size -= half + 1
        else:
            size = half
    return low


@numba.njit(inline="always")
def _in_band(wave, wmin, wmax, windows, count):  # type: ignore[no-untyped-def]
    """``wmin < wave < wmax`` and outside the first ``count`` windows ``[lo, hi]``.

    Called with ``count`` = :data:`WINDOWS`, the loop has a fixed length (LLVM unrolls
    it and vectorises the loop over events around it).
    """
    ok = (wave > wmin) & (wave < wmax)
    for i in range(count):
        ok &= (wave < windows[i, 0]) | (wave > windows[i, 1])
    return ok


@numba.njit(inline="always")
def _column(xs):  # type: ignore[no-untyped-def]
    """``int(xs)`` as numpy's float -> intp cast on x86 (NaN, inf, overflow: minimum int)."""
    if (xs >= -9.223372036854775808e18) & (xs < 9.223372036854775808e18):  # +-2**63
        return np.int64(xs)
    return np.int64(-9223372036854775807 - 1)


@numba.njit(inline="always")
def _table_index(wave, start, inverse, top):  # type: ignore[no-untyped-def]
    """Conversion table index of ``wave``, as ``ConversionLookup`` computes it.

    The position ``(wave - start) * inverse`` (in the type of the arguments: numpy
    computes it in the wavelength's type), then ``np.fmax(position, 0)`` (NaN -> 0) and
    ``np.fmin(position, top)``, truncated.
    """
    position = (wave - start) * inverse
    if not position >= 0:
        return np.int64(0)
    if position > top:
        return np.int64(top)
    return np.int64(position)


@numba.njit(inline="always")
def _factor(lookup, h, wave, f32):  # type: ignore[no-untyped-def]
    """Conversion factor (float64) of ``wave`` from the part of the table of group ``h``.

    ``f32``: the wavelength is float32, and numpy computes its table position in float32.
    """
    if f32:
        terms32 = lookup.terms32
        index = _table_index(np.float32(wave), terms32[h, 0], terms32[h, 1], terms32[h, 2])
    else:
        terms64 = lookup.terms64
        index = _table_index(wave, terms64[h, 0], terms64[h, 1], terms64[h, 2])
    return np.float64(lookup.table[lookup.base[h] + index])


@numba.njit(inline="always")
def _add_variances(variances, k, eps, total, converted, has_conversion):  # type: ignore[no-untyped-def]
    """Add an event's ``(EPSILON * W)**2`` (and ``(EPSILON * C)**2``) to bin ``k``.

    ``total`` is ``W`` and ``converted`` ``C``: see :attr:`Totals.variances`.
    """
    spread = eps * total
    variances[0, k] += spread * spread
    if has_conversion:
        spread = eps * converted
        variances[1, k] += spread * spread


@numba.njit(inline="always")
def _widen(ranges, d, g, lane, wave_low, wave_high, x_low, x_high):  # type: ignore[no-untyped-def]
    """Extend the wavelength and XCORR ranges of slot ``ranges[:, d, g, lane]``."""
    ranges[0, d, g, lane] = min(ranges[0, d, g, lane], wave_low)
    ranges[1, d, g, lane] = max(ranges[1, d, g, lane], wave_high)
    ranges[2, d, g, lane] = min(ranges[2, d, g, lane], x_low)
    ranges[3, d, g, lane] = max(ranges[3, d, g, lane], x_high)


@numba.njit(inline="always")
def _bin_of(t, origin, step, nbins):  # type: ignore[no-untyped-def]
    """Bin index of time ``t`` (clipped to the grid) and the unclipped bin's edges.

    As the numpy path: the estimate ``(t - origin) / step``, made exact near an edge.
    """
    q = (t - origin) / step
    k = np.int64(q)
    fraction = q - k
    if fraction < 1e-6 or fraction > 1.0 - 1e-6:
        k = np.int64(np.floor(q))
        if t < origin + step * k:
            k -= 1
        if t >= origin + step * (k + 1):
            k += 1
    start, stop = origin + step * k, origin + step * (k + 1)
    return min(max(k, 0), nbins - 1), start, stop


@numba.njit(inline="always")
def _cached_bin(t, bin_start, bin_stop, bin_k, origin, step, nbins, reuse):  # type: ignore[no-untyped-def]
    """``(k, bin_start, bin_stop, bin_k)``: the previous event's bin when ``t`` is in it,
    else :func:`_bin_of`, remembered for the next event when ``reuse`` (sorted times).

    ``[bin_start, bin_stop)`` is the bin of the last event whose bin was computed: a later
    event in it is in that bin without a division.  The estimate of :func:`_bin_of`
    equals ``bin_index`` (the exact bin of the float64 edges) whenever its rounding error
    in units of bins is well below the 1e-6 margin: time / step < 1e8 guarantees it
    (the caller says, with :data:`REUSE_BINS`).
    """
    if (t >= bin_start) & (t < bin_stop):
        return bin_k, bin_start, bin_stop, bin_k
    k, start, stop = _bin_of(t, origin, step, nbins)
    if reuse & (t >= start) & (t < stop):
        return k, start, stop, k
    return k, bin_start, bin_stop, bin_k


@numba.njit
def _decode_chunk(raw, first, n, rows, chunk):  # type: ignore[no-untyped-def]
    """Step 1: decode the columns of rows ``first .. first + n - 1`` into ``chunk``."""
    size, types, layout = np.uint64(rows.size), rows.types, rows.layout
    read_wave = layout[WAVELENGTH] >= 0
    for c in (TIME, XCORR, YCORR, EPSILON, WAVELENGTH):
        if c != WAVELENGTH or read_wave:
            _decode(raw, first, n, size, np.uint64(layout[c]), types[c], chunk.values[c])
    _decode(raw, first, n, size, np.uint64(layout[DQ]), types[DQ], chunk.dq)


@numba.njit
def _select(n, rows, cells, chunk):  # type: ignore[no-untyped-def]
    """Steps 2 and 3: cut the chunk's ``n`` rows, compact the selected ones; their number.

    Simple loops of fixed inner length (windows and edges padded), which LLVM vectorises.
    """
    t_, x_, y_ = chunk.values[TIME], chunk.values[XCORR], chunk.values[YCORR]
    q_, ok_, interval_ = chunk.dq, chunk.ok, chunk.interval
    cuts, windows, gti, edges = rows.cuts, rows.windows, rows.gti, cells.edges
    xmin, xmax, wmin, wmax = cuts[XMIN], cuts[XMAX], cuts[WMIN], cuts[WMAX]
    for i in range(n):
        ok_[i] = ((q_[i] & rows.sdqflags) == 0) & (x_[i] >= xmin) & (x_[i] < xmax)
    if (rows.flags & COLUMN_WAVELENGTH) == 0:  # else each cell tests its wavelength's band
        w_ = chunk.values[WAVELENGTH]
        if windows.shape[0] == WINDOWS:
            for i in range(n):
                ok_[i] &= _in_band(w_[i], wmin, wmax, windows, WINDOWS)
        else:
            for i in range(n):
                ok_[i] &= _in_band(w_[i], wmin, wmax, windows, windows.shape[0])
    if np.isnan(gti[2]):  # one GTI (the edges are NaN-padded)
        for i in range(n):
            ok_[i] &= (t_[i] >= gti[0]) & (t_[i] < gti[1])
    elif gti.size == EDGES:
        for i in range(n):
            ok_[i] &= (_count_fixed(gti, t_[i]) & 1) == 1
    else:
        for i in range(n):
            ok_[i] &= (_count_sorted(gti, t_[i]) & 1) == 1
    if edges.size == EDGES:
        for i in range(n):
            interval_[i] = _count_fixed(edges, y_[i])
    else:
        for i in range(n):
            interval_[i] = _count_sorted(edges, y_[i])
    m, covered, selected = 0, cells.covered, chunk.selected
    for i in range(n):  # always write, advance when selected: no branch
        selected[m] = i
        m += ok_[i] & covered[interval_[i]]
    return m


@numba.njit(cache=True, nogil=True)
def accumulate_block(raw, nrows, rows, cells, lookup, totals):  # type: ignore[no-untyped-def]
    """Add one block of events to per-cell, per-bin sums.

    Parameters
    ----------
    raw : uint8 array
        The block's rows as stored (``nrows * rows.size`` bytes, big-endian values).
    nrows : int
        Rows in the block.
    rows : Rows
        The columns read, the cuts, the time grid.
    cells : Cells
        The boxes' cells.
    lookup : Lookup
        The flux conversion and the column wavelengths.
    totals : Totals
        The sums (added to) and ranges (updated).

    Returns
    -------
    (int, int)
        The first and last time bin that received an event (``nbins, -1`` if none).
    """
    flags, nbins, cuts, windows = rows.flags, rows.nbins, rows.cuts, rows.windows
    by_column = (flags & COLUMN_WAVELENGTH) != 0
    mixed = by_column and (flags & MIXED_WAVELENGTH) != 0
    x_f32 = (flags & X_SCALE_FLOAT32) != 0
    has_conversion = (flags & HAS_CONVERSION) != 0
    by_group = (flags & CONVERSION_BY_GROUP) != 0
    wave_f32 = ((not by_column) or mixed) and rows.types[WAVELENGTH] == F4
    wmin, wmax, origin, step = cuts[WMIN], cuts[WMAX], cuts[ORIGIN], cuts[STEP]
    x_scale, x_scale32 = cuts[XSCALE], np.float32(cuts[XSCALE])
    layers, cell_group, cell_weight, cell_mapped = cells.layers, cells.group, cells.weight, cells.mapped
    column_map = lookup.column_map
    sums, variances, ranges = totals
    chunk = _new_chunk()
    t_, x_, _, e_, _, w_ = chunk.values  # TIME, XCORR, YCORR, EPSILON, DQ, WAVELENGTH
    interval_, selected = chunk.interval, chunk.selected
    depth, width = layers.shape[0], column_map.shape[1]
    kmin, kmax = nbins, -1
    reuse_bins = (flags & REUSE_BINS) != 0
    bin_start, bin_stop, bin_k = np.inf, -np.inf, 0  # see _cached_bin
    simple = (depth == 1) & (ranges.shape[2] == 1) & (not by_column) & (
        wave_f32 | (not has_conversion))
    # group 0's conversion, for the tighter loop
    table0, terms32 = lookup.table[lookup.base[0]:], lookup.terms32
    start32, inverse32, top32 = terms32[0, 0], terms32[0, 1], terms32[0, 2]
    wave_low, wave_high, x_low, x_high = np.inf, -np.inf, np.inf, -np.inf
    for first in range(0, nrows, CHUNK):
        n = min(CHUNK, nrows - first)
        _decode_chunk(raw, first, n, rows, chunk)
        m = _select(n, rows, cells, chunk)
        # 4. accumulate
        if simple:  # one layer, one group, the wavelength column (COS): a tighter loop
            for j in range(m):
                i = selected[j]
                t, eps, wave, x = t_[i], e_[i], w_[i], x_[i]
                k, bin_start, bin_stop, bin_k = _cached_bin(t, bin_start, bin_stop, bin_k, origin,
                                                            step, nbins, reuse_bins)
                kmin, kmax = min(kmin, k), max(kmax, k)
                cell = layers[0, interval_[i]]
                slot, weight, factor = cell * nbins + k, cell_weight[cell], 0.0
                sums[0, slot] += eps
                if has_conversion:  # float32 wavelength, one group
                    factor = np.float64(table0[_table_index(np.float32(wave), start32, inverse32,
                                                            top32)])
                    sums[1, slot] += factor * eps
                _add_variances(variances, k, eps, weight, weight * factor, has_conversion)
                wave_low, wave_high = min(wave_low, wave), max(wave_high, wave)
                x_low, x_high = min(x_low, x), max(x_high, x)
            continue
        for j in range(m):
            i = selected[j]
            t, eps, x, interval = t_[i], e_[i], x_[i], interval_[i]
            k, bin_start, bin_stop, bin_k = _cached_bin(t, bin_start, bin_stop, bin_k, origin,
                                                        step, nbins, reuse_bins)
            kmin, kmax = min(kmin, k), max(kmax, k)
            lane, column = j & (LANES - 1), 0
            if by_column:
                xs = np.float64(np.float32(x) * x_scale32) if x_f32 else x * x_scale
                column = min(max(_column(xs), 0), width - 1)
            # the event's weight in the counts and in the flux sum, over the cells counting it
            total, converted = 0.0, 0.0
            for d in range(depth):
                cell = layers[d, interval]
                if cell < 0:
                    continue
                g = cell_group[cell]
                wave, f32, counted = w_[i], wave_f32, True
                if by_column and (cell_mapped[cell] or not mixed):
                    wave, f32 = column_map[g, column], False
                if by_column:
                    counted = _in_band(wave, wmin, wmax, windows, windows.shape[0])
                weight, flux, factor = eps if counted else 0.0, 0.0, 0.0
                if has_conversion:
                    factor = _factor(lookup, g if by_group else 0, wave, f32)
                    flux = factor * weight
                slot = cell * nbins + k
                sums[0, slot] += weight
                sums[1, slot] += flux
                if counted:
                    total += cell_weight[cell]
                    converted += cell_weight[cell] * factor
                    _widen(ranges, d, g, lane, wave, wave, x, x)
            _add_variances(variances, k, eps, total, converted, has_conversion)
    if simple:
        _widen(ranges, 0, 0, 0, wave_low, wave_high, x_low, x_high)
    return kmin, kmax


def warm_up() -> float:
    """Compile (or load from the cache) :func:`accumulate_block`; returns the seconds taken.

    The records hold the types :mod:`hstlc.extraction.accumulate` gives them, so that the
    signature compiled is the one extraction calls.
    """
    start = time.perf_counter()
    i64, f64 = np.zeros(6, np.int64), np.zeros(7)
    f64[STEP] = 1.0
    rows = Rows(39, i64, i64, 0, 0, f64, 1, padded(np.zeros((0, 2)), WINDOWS, (np.inf, -np.inf)),
                padded(np.zeros(2), EDGES, np.nan))
    cells = Cells(padded(np.zeros(2), EDGES, np.nan), np.zeros(3, np.bool_),
                  np.zeros((1, 3), np.int64), np.zeros(1, np.int64), np.zeros(1),
                  np.zeros(1, np.bool_))
    lookup = Lookup(np.zeros(1, np.float32), np.zeros((1, 3)), np.zeros((1, 3), np.float32),
                    np.zeros(1, np.int64), np.zeros((1, 1)))
    totals = Totals(np.zeros((2, 1)), np.zeros((1, 1)), np.zeros((4, 1, 1, LANES)))
    accumulate_block(np.zeros(39, np.uint8), 1, rows, cells, lookup, totals)
    return time.perf_counter() - start
