"""Compiled single-pass kernel of the box accumulation (numba).

:func:`accumulate_block` reads one block of FITS binary-table rows *as stored*
(big-endian bytes, ``rowsize`` bytes a row) and, event by event, decodes the few
columns it needs, applies the whole selection and adds the event to its cells' time
bins -- one pass over the block instead of the ~40 numpy passes of the reference path
(``hstlc.accumulate._BoxKernel``).  It reproduces that path bit for bit:

* comparisons are made in float64 on the exact float64 value of every column value
  (what the reference's float32 thresholds emulate);
* a cell's sum in a time bin is built in event order from 0.0, like ``np.bincount``;
  the caller adds the per-block sums in row order, like the reference;
* the flux conversion repeats :class:`hstlc.calibrate.ConversionLookup` operation by
  operation, in float32 when the wavelength is float32;
* STIS: events outside the band still add ``0.0`` (and ``conversion * 0.0``) to their
  cells, as ``np.where(counted, eps, 0.0)`` does.

The loop is branch-free on the selection: an event that is not selected adds zeros to
one of :data:`LANES` scratch slots (and an empty wavelength range to a scratch group),
so a random half of events failing the cuts costs no branch mispredictions, and the
scratch slots rotate so that they form no long chain of dependent additions.

Columns are decoded from the raw bytes (big-endian assembled with shifts on unsigned
indices, which LLVM turns into one load and a byte swap), so the block is read once
and nothing is converted to native byte order first.  Compiled with ``nogil=True``
(two threads run two blocks at once) and ``cache=True`` (the machine code is kept in
``__pycache__``; the first call in a fresh environment compiles for ~2-4 s).

This module has no FITS keyword; :mod:`hstlc.accumulate` prepares its arguments.
"""

from __future__ import annotations

import numba
import numpy as np

#: Column type codes of the ``layout`` argument (FITS TFORM E, D, I, J, K, B, L).
F4, F8, I2, I4, I8, U1, I1 = range(7)
#: Big-endian numpy type string -> code.
CODES = {">f4": F4, ">f8": F8, ">i2": I2, ">i4": I4, ">i8": I8, "|u1": U1, "|i1": I1,
         "|b1": I1}
#: Rows of ``layout``: the columns read.
TIME, XCORR, YCORR, EPSILON, DQ, WAVELENGTH = range(6)
#: Bits of ``flags``.
HAS_CONVERSION, CONVERSION_BY_GROUP, COLUMN_WAVELENGTH, X_SCALE_FLOAT32 = 1, 2, 4, 8
#: Scratch slots of unselected events (a power of two).
LANES = 8
#: Rows of ``cuts``.
XMIN, XMAX, WMIN, WMAX, ORIGIN, STEP, XSCALE = range(7)


@numba.njit(inline="always")
def _u16(raw, p):  # type: ignore[no-untyped-def]
    return np.uint16((np.uint16(raw[p]) << 8) | np.uint16(raw[p + np.uint64(1)]))


@numba.njit(inline="always")
def _u32(raw, p):  # type: ignore[no-untyped-def]
    return np.uint32((np.uint32(raw[p]) << 24) | (np.uint32(raw[p + np.uint64(1)]) << 16)
                     | (np.uint32(raw[p + np.uint64(2)]) << 8) | np.uint32(raw[p + np.uint64(3)]))


@numba.njit(inline="always")
def _i64(raw, p):  # type: ignore[no-untyped-def]
    high = np.int64(_u32(raw, p))
    low = np.int64(_u32(raw, p + np.uint64(4)))
    return np.int64((high << 32) | low)


@numba.njit(inline="always")
def _float(raw, p, code):  # type: ignore[no-untyped-def]
    """The exact float64 value of a big-endian number at byte ``p``."""
    if code == F4:
        return np.float64(_u32(raw, p).view(np.float32))
    if code == F8:
        return _i64(raw, p).view(np.float64)
    if code == I2:
        return np.float64(_u16(raw, p).view(np.int16))
    if code == I4:
        return np.float64(_u32(raw, p).view(np.int32))
    if code == I8:
        return np.float64(_i64(raw, p))
    if code == U1:
        return np.float64(raw[p])
    return np.float64(np.uint8(raw[p]).view(np.int8))


@numba.njit(inline="always")
def _integer(raw, p, code):  # type: ignore[no-untyped-def]
    """A big-endian integer at byte ``p``, sign-extended to int64."""
    if code == I2:
        return np.int64(_u16(raw, p).view(np.int16))
    if code == I4:
        return np.int64(_u32(raw, p).view(np.int32))
    if code == I8:
        return _i64(raw, p)
    if code == U1:
        return np.int64(raw[p])
    return np.int64(np.uint8(raw[p]).view(np.int8))


@numba.njit(inline="always")
def _count_le(edges, value):  # type: ignore[no-untyped-def]
    """Number of sorted ``edges`` <= ``value`` (0 for NaN)."""
    n = edges.size
    if n <= 16:
        count = 0
        for i in range(n):
            count += value >= edges[i]
        return count
    low, size = 0, n
    while size > 0:
        half = size >> 1
        if value >= edges[low + half]:
            low += half + 1
            size -= half + 1
        else:
            size = half
    return low


@numba.njit(inline="always")
def _in_band(wave, wmin, wmax, airglow):  # type: ignore[no-untyped-def]
    ok = (wave > wmin) & (wave < wmax)
    for i in range(airglow.shape[0]):
        ok &= (wave < airglow[i, 0]) | (wave > airglow[i, 1])
    return ok


@numba.njit(inline="always")
def _column(xs):  # type: ignore[no-untyped-def]
    """``int(xs)`` as numpy's float -> intp cast on x86 (NaN, inf, overflow: minimum int)."""
    if np.abs(xs) < 9.2e18:
        return np.int64(xs)
    return np.int64(-9223372036854775807 - 1)


@numba.njit(cache=True, nogil=True)
def accumulate_block(raw, nrows, rowsize, layout, cuts, sdqflags, nbins, airglow, gti,
                     edges, layers, cell_group, table, conv64, conv32, conv_base, flags,
                     column_map, sums, ranges):  # type: ignore[no-untyped-def]
    """Add one block of events to per-cell, per-bin sums.

    Parameters
    ----------
    raw : uint8 array
        The block's rows as stored (``nrows * rowsize`` bytes, big-endian values).
    nrows, rowsize : int
        Rows in the block; bytes per row.
    layout : int64 array (6, 2)
        Byte offset in a row and type code (:data:`CODES`) of TIME, XCORR, YCORR,
        EPSILON, DQ and WAVELENGTH (offset -1: not read).
    cuts : float64 array (7,)
        ``xmin, xmax, wmin, wmax, origin, step, x_scale``.
    sdqflags : int
        Bad-event DQ bits.
    nbins : int
        Time bins ``[origin + k*step, origin + (k+1)*step)``.
    airglow : float64 array (m, 2)
        Excluded wavelength windows (ends included).
    gti : float64 array (2n,)
        Sorted GTI edges ``start0, stop0, start1, ...``: an event is inside when an odd
        number of edges are <= its time.
    edges : float64 array (e,)
        Sorted box edges; ``layers[d, i]`` is the d-th cell of the rows between
        ``edges[i-1]`` and ``edges[i]`` (-1: none); ``cell_group[c]`` its group.
    table, conv64, conv32, conv_base :
        The conversion lookup: float32 table; per group ``start, inverse, top`` in float64
        and float32; offset of the group's part of the table.
    flags : int
        :data:`HAS_CONVERSION` | :data:`CONVERSION_BY_GROUP` | :data:`COLUMN_WAVELENGTH` |
        :data:`X_SCALE_FLOAT32` (``XCORR * x_scale`` is computed in float32, as numpy does
        for a float32 column and a Python float).
    column_map : float64 array (groups, width)
        With :data:`COLUMN_WAVELENGTH`: the wavelength of column ``int(XCORR * x_scale)``.
    sums : float64 array (3, cells * nbins + LANES)
        EPSILON, EPSILON**2 and EPSILON * conversion by ``cell * nbins + bin``; the last
        :data:`LANES` entries are scratch.  Added to.
    ranges : float64 array (4, depth, groups + 1, LANES)
        Minimum and maximum wavelength, minimum and maximum XCORR of the counted events
        per layer and group (lanes to be reduced by the caller; group ``groups`` is
        scratch).  Updated in place.

    Returns
    -------
    (int, int)
        The first and last time bin that received an event (``nbins, -1`` if none).
    """
    xmin, xmax, wmin, wmax = cuts[XMIN], cuts[XMAX], cuts[WMIN], cuts[WMAX]
    origin, step, x_scale = cuts[ORIGIN], cuts[STEP], cuts[XSCALE]
    x_scale32 = np.float32(x_scale)
    middle = origin + 0.5 * step  # a harmless time for unselected events
    o_t, c_t = np.uint64(layout[TIME, 0]), layout[TIME, 1]
    o_x, c_x = np.uint64(layout[XCORR, 0]), layout[XCORR, 1]
    o_y, c_y = np.uint64(layout[YCORR, 0]), layout[YCORR, 1]
    o_e, c_e = np.uint64(layout[EPSILON, 0]), layout[EPSILON, 1]
    o_q, c_q = np.uint64(layout[DQ, 0]), layout[DQ, 1]
    by_column = (flags & COLUMN_WAVELENGTH) != 0
    has_wave = layout[WAVELENGTH, 0] >= 0 and not by_column
    o_w = np.uint64(layout[WAVELENGTH, 0]) if has_wave else np.uint64(0)
    c_w = layout[WAVELENGTH, 1]
    wave_f32 = has_wave and c_w == F4
    x_f32 = (flags & X_SCALE_FLOAT32) != 0
    has_conversion = (flags & HAS_CONVERSION) != 0
    by_group = (flags & CONVERSION_BY_GROUP) != 0
    one_gti = gti.size == 2
    gti0, gti1 = (gti[0], gti[1]) if gti.size >= 2 else (0.0, 0.0)
    depth = layers.shape[0]
    ngroups = ranges.shape[2] - 1
    width = column_map.shape[1]
    trash = sums.shape[1] - LANES
    kmin, kmax = nbins, -1
    size = np.uint64(rowsize)
    for r in range(nrows):
        p = np.uint64(r) * size
        lane = r & (LANES - 1)
        t = _float(raw, p + o_t, c_t)
        x = _float(raw, p + o_x, c_x)
        y = _float(raw, p + o_y, c_y)
        eps = _float(raw, p + o_e, c_e)
        dq = _integer(raw, p + o_q, c_q)
        ok = ((dq & sdqflags) == 0) & (x >= xmin) & (x < xmax)
        wave = 0.0
        if has_wave:
            wave = _float(raw, p + o_w, c_w)
            ok &= _in_band(wave, wmin, wmax, airglow)
        if one_gti:
            ok &= (t >= gti0) & (t < gti1)
        else:
            ok &= (_count_le(gti, t) & 1) == 1
        # time bin: fast estimate, exact check near the edges (hstlc.accumulate.bin_index)
        time = t if ok else middle
        q = (time - origin) / step
        k = np.int64(q)
        fraction = q - k
        if fraction < 1e-6 or fraction > 1.0 - 1e-6:
            k = np.int64(np.floor(q))
            if time < origin + step * k:
                k -= 1
            if time >= origin + step * (k + 1):
                k += 1
        k = min(max(k, 0), nbins - 1)
        interval = _count_le(edges, y)
        xs = 0.0
        if by_column:
            xs = np.float64(np.float32(x) * x_scale32) if x_f32 else x * x_scale
        for d in range(depth):
            cell = layers[d, interval]
            valid = ok & (cell >= 0)
            c = cell if valid else 0
            g = cell_group[c]
            counted = True
            weight = eps
            cell_wave = wave
            if by_column:
                column = min(max(_column(xs), 0), width - 1)
                cell_wave = column_map[g, column]
                counted = _in_band(cell_wave, wmin, wmax, airglow)
                weight = eps if counted else 0.0
            flux = 0.0
            if has_conversion:
                h = g if by_group else 0
                if wave_f32:
                    position32 = (np.float32(cell_wave) - conv32[h, 0]) * conv32[h, 1]
                    if not position32 >= 0:  # fmax(position, 0): NaN -> 0
                        position32 = np.float32(0.0)
                    if position32 > conv32[h, 2]:
                        position32 = conv32[h, 2]
                    index = np.int64(position32)
                else:
                    position = (cell_wave - conv64[h, 0]) * conv64[h, 1]
                    if not position >= 0:
                        position = 0.0
                    if position > conv64[h, 2]:
                        position = conv64[h, 2]
                    index = np.int64(position)
                if by_group:
                    index += conv_base[h]
                flux = np.float64(table[index]) * weight
            slot = c * nbins + k if valid else trash + lane
            sums[0, slot] += weight if valid else 0.0
            sums[1, slot] += weight * weight if valid else 0.0
            sums[2, slot] += flux if valid else 0.0
            kmin = min(kmin, k if valid else nbins)
            kmax = max(kmax, k if valid else -1)
            rg = g if valid & counted else ngroups
            ranges[0, d, rg, lane] = min(ranges[0, d, rg, lane], cell_wave)
            ranges[1, d, rg, lane] = max(ranges[1, d, rg, lane], cell_wave)
            ranges[2, d, rg, lane] = min(ranges[2, d, rg, lane], x)
            ranges[3, d, rg, lane] = max(ranges[3, d, rg, lane], x)
    return kmin, kmax
