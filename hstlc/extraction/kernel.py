"""Compiled single-pass kernel of the box accumulation (numba).

:func:`accumulate_block` reads one block of FITS binary-table rows *as stored*
(big-endian bytes, ``rowsize`` bytes a row), decodes the few columns it needs and adds
every selected event to its cells' time bins: one pass over the block instead of the
~40 numpy passes of the reference path (``hstlc.extraction.accumulate._BoxKernel``).  It
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

1. *decode* TIME, XCORR, YCORR, WAVELENGTH, EPSILON and DQ of every row from the raw
   bytes (big-endian values assembled with shifts on unsigned indices, which LLVM turns
   into a load and a byte swap) into float64 / int64 work arrays;
2. *cut*: DQ, XCORR, band and airglow, GTIs, and the interval of box edges holding
   YCORR -- simple loops of fixed inner length (windows and edges padded), which LLVM
   vectorises (8 events per instruction with AVX-512);
3. *compact* the selected rows' indices;
4. *accumulate* the selected events only: time bin (the previous event's bin is
   reused while the times stay in it), cells, conversion, sums and the wavelength /
   XCORR ranges; a tighter copy of this loop serves the usual COS case (one layer of
   cells, one group, the WAVELENGTH column).

About 10 ns per event on the 2-CPU development VM (AMD EPYC, 2.6 GHz) for a COS FUV
corrtag, against ~25 ns for the numpy path; reading the bytes costs another ~5 ns.

Compiled with ``nogil=True`` (two threads run two blocks at once) and ``cache=True``
(the machine code is kept beside this file in ``__pycache__``; without it the first
call compiles for a few seconds, see :func:`warm_up`).

This module has no FITS keyword; :mod:`hstlc.extraction.accumulate` prepares its arguments.
"""

from __future__ import annotations

import time

import numba
import numpy as np

#: Column type codes of the ``types`` argument (FITS TFORM E, D, I, J, K, B, L).
F4, F8, I2, I4, I8, U1, I1 = range(7)
#: Big-endian numpy type string -> code.
CODES = {">f4": F4, ">f8": F8, ">i2": I2, ">i4": I4, ">i8": I8, "|u1": U1, "|i1": I1}
#: Entries of ``types`` and ``layout``: the columns read.
TIME, XCORR, YCORR, EPSILON, DQ, WAVELENGTH = range(6)
#: Bits of ``flags``.
HAS_CONVERSION, CONVERSION_BY_GROUP, COLUMN_WAVELENGTH, X_SCALE_FLOAT32, REUSE_BINS = 1, 2, 4, 8, 16
MIXED_WAVELENGTH = 32
#: Entries of ``cuts``.
XMIN, XMAX, WMIN, WMAX, ORIGIN, STEP, XSCALE = range(7)
#: Slots per range accumulator (consecutive events update different slots).
LANES = 8
#: Rows per chunk.
CHUNK = 512
#: Airglow windows, box edges and GTI edges up to these numbers are tested by loops of
#: fixed length (padded); longer lists by a plain loop / a binary search.
WINDOWS, EDGES = 4, 16


# Decoding of big-endian values at byte ``p`` (uint64) of the uint8 rows: unsigned indices
# (numba adds no negative-index wraparound), and LLVM turns the shifts into one load and a
# byte swap.  One function per column kind, the type switch outside the loops.
@numba.njit
def _be_u64(raw, p):  # type: ignore[no-untyped-def]
    high, low = np.uint64(0), np.uint64(0)
    for b in range(4):
        high |= np.uint64(raw[p + np.uint64(b)]) << np.uint64(24 - 8 * b)
        low |= np.uint64(raw[p + np.uint64(b + 4)]) << np.uint64(24 - 8 * b)
    return np.uint64((high << np.uint64(32)) | low)


@numba.njit
def _decode_float(raw, first, n, size, offset, code, out):  # type: ignore[no-untyped-def]
    """``out[i]`` = the exact float64 value of the column at byte ``offset`` of row ``first + i``."""
    one, two, three = np.uint64(1), np.uint64(2), np.uint64(3)
    start = np.uint64(first) * size + offset
    if code == F4:
        for i in range(n):
            p = start + np.uint64(i) * size
            bits = np.uint32((np.uint32(raw[p]) << 24) | (np.uint32(raw[p + one]) << 16)
                             | (np.uint32(raw[p + two]) << 8) | np.uint32(raw[p + three]))
            out[i] = np.float64(bits.view(np.float32))
    elif code == I4:
        for i in range(n):
            p = start + np.uint64(i) * size
            bits = np.uint32((np.uint32(raw[p]) << 24) | (np.uint32(raw[p + one]) << 16)
                             | (np.uint32(raw[p + two]) << 8) | np.uint32(raw[p + three]))
            out[i] = np.float64(bits.view(np.int32))
    elif code == F8:
        for i in range(n):
            bits = np.uint64(_be_u64(raw, start + np.uint64(i) * size))
            out[i] = bits.view(np.float64)
    elif code == I8:
        for i in range(n):
            bits = np.uint64(_be_u64(raw, start + np.uint64(i) * size))
            out[i] = np.float64(bits.view(np.int64))
    elif code == I2:
        for i in range(n):
            p = start + np.uint64(i) * size
            half = np.uint16((np.uint16(raw[p]) << 8) | np.uint16(raw[p + one]))
            out[i] = np.float64(half.view(np.int16))
    elif code == U1:
        for i in range(n):
            out[i] = np.float64(raw[start + np.uint64(i) * size])
    else:
        for i in range(n):
            byte = np.uint8(raw[start + np.uint64(i) * size])
            out[i] = np.float64(byte.view(np.int8))


@numba.njit
def _decode_integer(raw, first, n, size, offset, code, out):  # type: ignore[no-untyped-def]
    """``out[i]`` = the integer column at byte ``offset`` of row ``first + i`` (int64)."""
    one, two, three = np.uint64(1), np.uint64(2), np.uint64(3)
    start = np.uint64(first) * size + offset
    if code == I2:
        for i in range(n):
            p = start + np.uint64(i) * size
            half = np.uint16((np.uint16(raw[p]) << 8) | np.uint16(raw[p + one]))
            out[i] = np.int64(half.view(np.int16))
    elif code == I4:
        for i in range(n):
            p = start + np.uint64(i) * size
            bits = np.uint32((np.uint32(raw[p]) << 24) | (np.uint32(raw[p + one]) << 16)
                             | (np.uint32(raw[p + two]) << 8) | np.uint32(raw[p + three]))
            out[i] = np.int64(bits.view(np.int32))
    elif code == I8:
        for i in range(n):
            p = start + np.uint64(i) * size
            bits = np.uint64(_be_u64(raw, p))
            out[i] = bits.view(np.int64)
    elif code == U1:
        for i in range(n):
            out[i] = np.int64(raw[start + np.uint64(i) * size])
    else:
        for i in range(n):
            byte = np.uint8(raw[start + np.uint64(i) * size])
            out[i] = np.int64(byte.view(np.int8))


@numba.njit(inline="always")
def _count_fixed(padded, value):  # type: ignore[no-untyped-def]
    """Number of edges <= ``value``; ``padded`` holds :data:`EDGES` (NaN-padded) edges."""
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
def _in_band(wave, wmin, wmax, windows):  # type: ignore[no-untyped-def]
    """``wmin < wave < wmax`` and outside every window ``[lo, hi]`` (rows of ``windows``)."""
    ok = (wave > wmin) & (wave < wmax)
    for i in range(windows.shape[0]):
        ok &= (wave < windows[i, 0]) | (wave > windows[i, 1])
    return ok


@numba.njit(inline="always")
def _in_band_fixed(wave, wmin, wmax, padded):  # type: ignore[no-untyped-def]
    """:func:`_in_band` with :data:`WINDOWS` windows (padding ``[inf, -inf]`` excludes none)."""
    ok = (wave > wmin) & (wave < wmax)
    for i in range(WINDOWS):
        ok &= (wave < padded[i, 0]) | (wave > padded[i, 1])
    return ok


@numba.njit(inline="always")
def _column(xs):  # type: ignore[no-untyped-def]
    """``int(xs)`` as numpy's float -> intp cast on x86 (NaN, inf, overflow: minimum int)."""
    if (xs >= -9.223372036854775808e18) & (xs < 9.223372036854775808e18):  # +-2**63
        return np.int64(xs)
    return np.int64(-9223372036854775807 - 1)


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
    else :func:`_bin_of`, remembered for the next event when ``reuse`` (sorted times)."""
    if (t >= bin_start) & (t < bin_stop):
        return bin_k, bin_start, bin_stop, bin_k
    k, start, stop = _bin_of(t, origin, step, nbins)
    if reuse & (t >= start) & (t < stop):
        return k, start, stop, k
    return k, bin_start, bin_stop, bin_k


@numba.njit(cache=True, nogil=True)
def accumulate_block(raw, nrows, rowsize, types, layout, flags, cuts, sdqflags, nbins,
                     windows, gti, edges, covered, layers, cell_group, cell_weight,
                     cell_mapped, table, conv64, conv32, conv_base, column_map, sums,
                     variances, ranges):  # type: ignore[no-untyped-def]
    """Add one block of events to per-cell, per-bin sums.

    Parameters
    ----------
    raw : uint8 array
        The block's rows as stored (``nrows * rowsize`` bytes, big-endian values).
    nrows, rowsize : int
        Rows in the block; bytes per row.
    types, layout : int64 arrays (6,)
        Type code (:data:`CODES`) and byte offset in a row of TIME, XCORR, YCORR,
        EPSILON, DQ and WAVELENGTH (WAVELENGTH: offset -1 when not read).
    flags : int
        :data:`HAS_CONVERSION` | :data:`CONVERSION_BY_GROUP` | :data:`COLUMN_WAVELENGTH`
        | :data:`MIXED_WAVELENGTH` (with COLUMN_WAVELENGTH: only the cells with
        ``cell_mapped`` take the column map's wavelength, the others the WAVELENGTH
        column, each cell testing the band) | :data:`X_SCALE_FLOAT32` (``XCORR *
        x_scale`` is computed in float32, as numpy does for a float32 column and a Python
        float) | :data:`REUSE_BINS` (every GTI
        edge and bin edge ``e`` has ``|e| / step < 1e8``, so the numpy path's bin
        estimate is exact: an event in the bin of the previous one is put there without
        recomputing).
    cuts : float64 array (7,)
        ``xmin, xmax, wmin, wmax, origin, step, x_scale``.
    sdqflags : int
        Bad-event DQ bits.
    nbins : int
        Time bins ``[origin + k*step, origin + (k+1)*step)``.
    windows : float64 array (m, 2)
        Excluded wavelength windows (ends included).
    gti : float64 array (2n,)
        Sorted GTI edges ``start0, stop0, start1, ...``: an event is inside when an odd
        number of edges are <= its time.
    edges : float64 array (e,)
        Sorted box edges: the rows between ``edges[i-1]`` and ``edges[i]`` are interval
        ``i``; ``covered[i]`` says whether a box holds them, ``layers[d, i]`` is their
        d-th cell (-1: none), ``cell_group[c]`` the group of cell ``c`` and
        ``cell_weight[c]`` its weight in the counts (source boxes +1, background boxes
        ``-scale``, summed over the boxes holding the cell); ``cell_mapped[c]`` says
        whether the cell takes its wavelength from ``column_map`` (with
        :data:`MIXED_WAVELENGTH`).
    table, conv64, conv32, conv_base :
        The conversion lookup: float32 table; per group ``start, inverse, top`` in float64
        and float32; offset of the group's part of the table.
    column_map : float64 array (groups, width)
        With :data:`COLUMN_WAVELENGTH`: the wavelength of column ``int(XCORR * x_scale)``.
    sums : float64 array (2, cells * nbins)
        EPSILON and EPSILON * conversion by ``cell * nbins + bin``.  Added to.
    variances : float64 array (2, nbins)
        ``(EPSILON * W)**2`` and ``(EPSILON * C)**2`` by bin, ``W`` the sum of the weights
        of the cells counting the event and ``C`` the sum of weight * conversion: the
        variances of the background-subtracted counts and flux sum.  Added to.
    ranges : float64 array (4, depth, groups, LANES)
        Minimum and maximum wavelength, minimum and maximum XCORR of the counted events
        per layer and group, over :data:`LANES` slots the caller reduces.  Updated.

    Returns
    -------
    (int, int)
        The first and last time bin that received an event (``nbins, -1`` if none).
    """
    by_column = (flags & COLUMN_WAVELENGTH) != 0
    mixed = by_column and (flags & MIXED_WAVELENGTH) != 0
    read_wave = (not by_column) or mixed  # the WAVELENGTH column is decoded
    x_f32 = (flags & X_SCALE_FLOAT32) != 0
    has_conversion = (flags & HAS_CONVERSION) != 0
    by_group = (flags & CONVERSION_BY_GROUP) != 0
    wave_f32 = read_wave and types[WAVELENGTH] == F4
    xmin, xmax, wmin, wmax = cuts[XMIN], cuts[XMAX], cuts[WMIN], cuts[WMAX]
    origin, step, x_scale = cuts[ORIGIN], cuts[STEP], cuts[XSCALE]
    x_scale32 = np.float32(x_scale)
    c_t, c_x, c_y, c_e, c_q, c_w = (types[TIME], types[XCORR], types[YCORR], types[EPSILON],
                                    types[DQ], types[WAVELENGTH])
    o_t, o_x = np.uint64(layout[TIME]), np.uint64(layout[XCORR])
    o_y, o_e = np.uint64(layout[YCORR]), np.uint64(layout[EPSILON])
    o_q, o_w = np.uint64(layout[DQ]), np.uint64(max(layout[WAVELENGTH], 0))
    size = np.uint64(rowsize)
    # short lists padded to fixed lengths (NaN is never <= a value; [inf, -inf] excludes none)
    few_windows = windows.shape[0] <= WINDOWS
    padded_windows = np.empty((WINDOWS, 2))
    padded_windows[:, 0], padded_windows[:, 1] = np.inf, -np.inf
    padded_windows[: min(windows.shape[0], WINDOWS)] = windows[:WINDOWS]
    few_edges, few_gti, one_gti = edges.size <= EDGES, gti.size <= EDGES, gti.size == 2
    padded_edges = np.full(EDGES, np.nan)
    padded_edges[: min(edges.size, EDGES)] = edges[:EDGES]
    padded_gti = np.full(EDGES, np.nan)
    padded_gti[: min(gti.size, EDGES)] = gti[:EDGES]
    gti0, gti1 = gti[0], gti[1]
    # work arrays of one chunk
    t_, x_, y_ = np.empty(CHUNK), np.empty(CHUNK), np.empty(CHUNK)
    w_, e_ = np.empty(CHUNK), np.empty(CHUNK)
    q_, interval_ = np.empty(CHUNK, np.int64), np.empty(CHUNK, np.int64)
    ok_ = np.empty(CHUNK, np.bool_)
    rows_ = np.empty(CHUNK, np.int64)
    depth, width = layers.shape[0], column_map.shape[1]
    kmin, kmax = nbins, -1
    # The bin [start, stop) of the last event whose bin was computed: a later event in it
    # is in that bin without a division.  The estimate above equals ``bin_index`` (the
    # exact bin of the float64 edges) whenever its rounding error in units of bins is
    # well below the 1e-6 margin: time / step < 1e8 guarantees it (the caller says).
    reuse_bins = (flags & REUSE_BINS) != 0
    bin_start, bin_stop, bin_k = np.inf, -np.inf, 0
    simple = (depth == 1) & (ranges.shape[2] == 1) & (not by_column) & (
        wave_f32 | (not has_conversion))
    first_layer = layers[0]
    start32, inverse32, top32 = conv32[0, 0], conv32[0, 1], conv32[0, 2]
    wave_low, wave_high, x_low, x_high = np.inf, -np.inf, np.inf, -np.inf
    for first in range(0, nrows, CHUNK):
        n = min(CHUNK, nrows - first)
        # 1. decode, column by column (the type switch is outside the loops)
        _decode_float(raw, first, n, size, o_t, c_t, t_)
        _decode_float(raw, first, n, size, o_x, c_x, x_)
        _decode_float(raw, first, n, size, o_y, c_y, y_)
        _decode_float(raw, first, n, size, o_e, c_e, e_)
        _decode_integer(raw, first, n, size, o_q, c_q, q_)
        if read_wave:
            _decode_float(raw, first, n, size, o_w, c_w, w_)
        # 2. cuts
        for i in range(n):
            ok_[i] = ((q_[i] & sdqflags) == 0) & (x_[i] >= xmin) & (x_[i] < xmax)
        if not by_column:
            if few_windows:
                for i in range(n):
                    ok_[i] &= _in_band_fixed(w_[i], wmin, wmax, padded_windows)
            else:
                for i in range(n):
                    ok_[i] &= _in_band(w_[i], wmin, wmax, windows)
        if one_gti:
            for i in range(n):
                ok_[i] &= (t_[i] >= gti0) & (t_[i] < gti1)
        elif few_gti:
            for i in range(n):
                ok_[i] &= (_count_fixed(padded_gti, t_[i]) & 1) == 1
        else:
            for i in range(n):
                ok_[i] &= (_count_sorted(gti, t_[i]) & 1) == 1
        if few_edges:
            for i in range(n):
                interval_[i] = _count_fixed(padded_edges, y_[i])
        else:
            for i in range(n):
                interval_[i] = _count_sorted(edges, y_[i])
        # 3. compact (always write, advance when selected: no branch)
        m = 0
        for i in range(n):
            rows_[m] = i
            m += ok_[i] & covered[interval_[i]]
        # 4. accumulate
        if simple:  # one layer, one group, the wavelength column (COS): a tighter loop
            for j in range(m):
                i = rows_[j]
                t, eps, wave, x = t_[i], e_[i], w_[i], x_[i]
                k, bin_start, bin_stop, bin_k = _cached_bin(t, bin_start, bin_stop, bin_k, origin,
                                                            step, nbins, reuse_bins)
                kmin, kmax = min(kmin, k), max(kmax, k)
                cell = first_layer[interval_[i]]
                slot = cell * nbins + k
                spread = eps * cell_weight[cell]
                sums[0, slot] += eps
                variances[0, k] += spread * spread
                if has_conversion:  # ConversionLookup, float32 wavelength, one group
                    position = (np.float32(wave) - start32) * inverse32
                    if not position >= 0:  # np.fmax(position, 0): NaN -> 0
                        position = np.float32(0.0)
                    if position > top32:  # np.fmin(position, top)
                        position = top32
                    factor = np.float64(table[np.int64(position)])
                    sums[1, slot] += factor * eps
                    spread = eps * (cell_weight[cell] * factor)
                    variances[1, k] += spread * spread
                wave_low, wave_high = min(wave_low, wave), max(wave_high, wave)
                x_low, x_high = min(x_low, x), max(x_high, x)
            continue
        for j in range(m):
            i = rows_[j]
            t, eps, x, interval = t_[i], e_[i], x_[i], interval_[i]
            k, bin_start, bin_stop, bin_k = _cached_bin(t, bin_start, bin_stop, bin_k, origin,
                                                        step, nbins, reuse_bins)
            kmin, kmax = min(kmin, k), max(kmax, k)
            lane = j & (LANES - 1)
            xs = 0.0
            if by_column:
                xs = np.float64(np.float32(x) * x_scale32) if x_f32 else x * x_scale
            # the event's weight in the counts and in the flux sum, over the cells counting it
            total, converted = 0.0, 0.0
            for d in range(depth):
                cell = layers[d, interval]
                if cell < 0:
                    continue
                g = cell_group[cell]
                weight, counted, f32 = eps, True, wave_f32
                if by_column:
                    if mixed and not cell_mapped[cell]:
                        wave = w_[i]
                    else:
                        wave = column_map[g, min(max(_column(xs), 0), width - 1)]
                        f32 = False
                    if few_windows:
                        counted = _in_band_fixed(wave, wmin, wmax, padded_windows)
                    else:
                        counted = _in_band(wave, wmin, wmax, windows)
                    weight = eps if counted else 0.0
                else:
                    wave = w_[i]
                flux, factor = 0.0, 0.0
                if has_conversion:
                    h = g if by_group else 0
                    if f32:  # numpy computes the position in the wavelength's type
                        position32 = (np.float32(wave) - conv32[h, 0]) * conv32[h, 1]
                        if not position32 >= 0:  # np.fmax(position, 0): NaN -> 0
                            position32 = np.float32(0.0)
                        if position32 > conv32[h, 2]:  # np.fmin(position, top)
                            position32 = conv32[h, 2]
                        index = np.int64(position32)
                    else:
                        position = (wave - conv64[h, 0]) * conv64[h, 1]
                        if not position >= 0:
                            position = 0.0
                        if position > conv64[h, 2]:
                            position = conv64[h, 2]
                        index = np.int64(position)
                    if by_group:
                        index += conv_base[h]
                    factor = np.float64(table[index])
                    flux = factor * weight
                slot = cell * nbins + k
                sums[0, slot] += weight
                sums[1, slot] += flux
                if counted:
                    total += cell_weight[cell]
                    converted += cell_weight[cell] * factor
                    ranges[0, d, g, lane] = min(ranges[0, d, g, lane], wave)
                    ranges[1, d, g, lane] = max(ranges[1, d, g, lane], wave)
                    ranges[2, d, g, lane] = min(ranges[2, d, g, lane], x)
                    ranges[3, d, g, lane] = max(ranges[3, d, g, lane], x)
            spread = eps * total
            variances[0, k] += spread * spread
            if has_conversion:
                spread = eps * converted
                variances[1, k] += spread * spread
    if simple:
        ranges[0, 0, 0, 0] = min(ranges[0, 0, 0, 0], wave_low)
        ranges[1, 0, 0, 0] = max(ranges[1, 0, 0, 0], wave_high)
        ranges[2, 0, 0, 0] = min(ranges[2, 0, 0, 0], x_low)
        ranges[3, 0, 0, 0] = max(ranges[3, 0, 0, 0], x_high)
    return kmin, kmax


def warm_up() -> float:
    """Compile (or load from the cache) :func:`accumulate_block`; returns the seconds taken."""
    start = time.perf_counter()
    row = np.zeros(39, np.uint8)
    i64, f64 = np.zeros(6, np.int64), np.zeros(7)
    f64[STEP] = 1.0
    accumulate_block(row, 1, 39, i64, i64, 0, f64, 0, 1, np.zeros((0, 2)), np.zeros(2),
                     np.zeros(2), np.zeros(3, np.bool_), np.zeros((1, 3), np.int64),
                     np.zeros(1, np.int64), np.zeros(1), np.zeros(1, np.bool_),
                     np.zeros(1, np.float32),
                     np.zeros((1, 3)), np.zeros((1, 3), np.float32), np.zeros(1, np.int64),
                     np.zeros((1, 1)), np.zeros((2, 1)), np.zeros((1, 1)),
                     np.zeros((4, 1, 1, LANES)))
    return time.perf_counter() - start
