"""Streaming of FITS binary event tables, and the per-box accumulation of extraction.

An HST TIME-TAG event list (COS ``corrtag``, STIS ``corrtag``) can hold 10^7 rows, and
extraction needs only a few of its columns, row by row.  So the table is streamed:
blocks of rows are read from the table's data area straight into a reusable buffer
(``os.preadv``), viewed with the table's big-endian structured dtype (built from the
``TFORMn`` keywords), and only the requested columns are converted to native byte order,
again into reusable buffers.  Peak extra memory is a few blocks, whatever the file size.
Files that cannot be read that way (compressed files, tables with a heap) are read
through astropy, still block by block.

:func:`accumulate_boxes` makes one pass over such a stream and sums, per extraction box
and time bin, EPSILON, EPSILON**2 and EPSILON * conversion(wavelength): vectorised numpy
on each block (masks, ``np.flatnonzero``, ``np.bincount``; no Python loop over events),
with per-thread scratch arrays so that no block allocates large temporaries.  Blocks may
be processed by two threads at once (numpy releases the GIL in its loops); results are
always summed in row order, so the output does not depend on threads or block size.

This is an I/O module: FITS keyword strings live here.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from astropy.io import fits

from hstlc.errors import MissingKeywordError, UnreadableFileError, UnsupportedProductError

logger = logging.getLogger(__name__)

#: Rows per block: 2**16 rows of a COS corrtag are 2.5 MB, and the work arrays stay in cache.
DEFAULT_BLOCK_ROWS = 1 << 16

_TFORM = re.compile(r"^\s*(\d*)([LXBIJKAEDCMPQ])", re.IGNORECASE)
_CODES = {"L": "i1", "B": "u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4", "D": ">f8",
          "C": ">c8", "M": ">c16"}

#: First bytes of gzip, bzip2 and zip files (astropy reads them; they cannot be read in place).
_COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZ", b"PK")

T = TypeVar("T")


@dataclass(frozen=True)
class EventTable:
    """Where and how the rows of one FITS binary table are stored.

    Attributes
    ----------
    path : Path
        The FITS file.
    extension : int
        Index of the table's HDU.
    header : astropy.io.fits.Header
        The table's header.
    primary_header : astropy.io.fits.Header
        The primary header.
    nrows : int
        ``NAXIS2``.
    dtype : numpy.dtype
        Big-endian structured dtype of one row (``itemsize == NAXIS1``).
    data_offset : int or None
        Byte offset of the first row in the file; None when the rows cannot be read
        directly (compressed file, heap), in which case astropy is used.
    scaling : dict
        ``{column: (TSCAL, TZERO)}`` for scaled columns.
    gti : ndarray or None
        The file's validated good time intervals (``(n, 2)``, seconds), None without a
        ``GTI`` extension.
    """

    path: Path
    extension: int
    header: fits.Header
    primary_header: fits.Header
    nrows: int
    dtype: np.dtype
    data_offset: int | None
    scaling: dict[str, tuple[float, float]] = field(default_factory=dict)
    gti: np.ndarray | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        """Column names, as in the file."""
        return tuple(self.dtype.names or ())

    @property
    def nbytes(self) -> int:
        """Size of the table's rows in bytes."""
        return self.nrows * self.dtype.itemsize

    def column(self, name: str) -> str:
        """The file's spelling of column ``name`` (case-insensitive).

        Raises
        ------
        MissingKeywordError
            The table has no such column.
        """
        for candidate in self.columns:
            if candidate.upper() == name.upper():
                return candidate
        raise MissingKeywordError(
            f"{self.path.name}: ext {self.extension} has no column {name}",
            filename=self.path.name,
        )


def _row_dtype(header: fits.Header, filename: str) -> tuple[np.dtype, bool]:
    """Big-endian structured dtype from ``TTYPEn``/``TFORMn``; flag False if a heap is used."""
    names, formats = [], []
    direct = int(header.get("PCOUNT", 0)) == 0
    for index in range(1, int(header["TFIELDS"]) + 1):
        tform = str(header.get(f"TFORM{index}", ""))
        match = _TFORM.match(tform)
        if not match:
            raise UnsupportedProductError(f"{filename}: TFORM{index} = {tform!r} not understood",
                                          filename=filename)
        repeat = int(match.group(1) or 1)
        code = match.group(2).upper()
        if code in "PQ":
            direct = False
            code = "Q" if code == "Q" else "P"
            base, repeat = (">i8" if code == "Q" else ">i4"), 2
        elif code == "A":
            base, repeat = f"S{repeat}", 1
        elif code == "X":
            base, repeat = "u1", (repeat + 7) // 8
        else:
            base = _CODES[code]
        names.append(str(header.get(f"TTYPE{index}", f"COL{index}")).strip())
        formats.append(base if repeat == 1 else (base, (repeat,)))
    dtype = np.dtype({"names": names, "formats": formats})
    if dtype.itemsize != int(header["NAXIS1"]):
        raise UnsupportedProductError(
            f"{filename}: row of {dtype.itemsize} bytes from TFORMs but NAXIS1 = {header['NAXIS1']}",
            filename=filename,
        )
    return dtype, direct


def open_event_table(path: str | Path, extname: str = "EVENTS") -> EventTable:
    """Describe the binary table ``extname`` (or extension 1) of a FITS file.

    Parameters
    ----------
    path : str or Path
        The FITS file.
    extname : str
        Name of the table's extension; extension 1 is used when no HDU has that name.

    Returns
    -------
    EventTable

    Raises
    ------
    UnreadableFileError
        The file cannot be opened as FITS, or has no binary table where expected.
    """
    path = Path(path)
    try:
        with fits.open(path, memmap=True) as hdul:  # headers are read lazily, data not at all
            try:
                hdu = hdul[extname]
            except KeyError:
                hdu = hdul[1] if len(hdul) > 1 else hdul[0]
            extension = hdul.index_of(hdu)
            if not isinstance(hdu, fits.BinTableHDU):
                raise UnreadableFileError(f"{path.name}: ext {extension} is not a binary table",
                                          filename=path.name)
            header, primary, info = hdu.header, hdul[0].header, hdu.fileinfo()
            gti = _gti_of(hdul, path.name)
    except (OSError, ValueError, TypeError, IndexError) as error:
        raise UnreadableFileError(f"{path.name}: cannot read as FITS ({error})",
                                  filename=path.name) from error
    dtype, direct = _row_dtype(header, path.name)
    with open(path, "rb") as handle:
        compressed = handle.read(3)[:2] in _COMPRESSED_MAGIC
    scaling = {}
    for index, name in enumerate(dtype.names or (), start=1):
        tscal = float(header.get(f"TSCAL{index}", 1.0))
        tzero = float(header.get(f"TZERO{index}", 0.0))
        if (tscal, tzero) != (1.0, 0.0):
            scaling[name] = (tscal, tzero)
    offset = None if (compressed or not direct or info is None) else int(info["datLoc"])
    return EventTable(path, extension, header, primary, int(header["NAXIS2"]), dtype, offset,
                      scaling, gti)


def _gti_of(hdul: fits.HDUList, filename: str) -> np.ndarray | None:
    """The validated ``GTI`` table of an open file, or None when it has none."""
    try:
        data = hdul["GTI"].data
    except KeyError:
        return None
    if data is None or len(data) == 0:
        return np.zeros((0, 2))
    gti = np.column_stack([np.asarray(data["START"], np.float64),
                           np.asarray(data["STOP"], np.float64)])
    return validate_gti(gti, filename)


def _native(dtype: np.dtype) -> np.dtype:
    return dtype.newbyteorder("=") if dtype.byteorder not in ("=", "|") else dtype


class _BlockReader:
    """Per-thread reusable buffers for reading one table's blocks."""

    def __init__(self, table: EventTable, columns: Sequence[str], block_rows: int):
        self.table, self.columns, self.block_rows = table, list(columns), block_rows
        self._local = threading.local()
        self._hdul: Any = None
        self._lock = threading.Lock()

    def _raw(self) -> np.ndarray:
        if not hasattr(self._local, "raw"):
            self._local.raw = np.empty(self.block_rows * self.table.dtype.itemsize, np.uint8)
        return self._local.raw

    def _buffers(self) -> dict[str, np.ndarray]:
        local = self._local
        if not hasattr(local, "out"):
            local.out = {name: np.empty(self.block_rows, _native(self.table.dtype[name]))
                         for name in self.columns}
        return local.out

    def _fallback_rows(self, start: int, stop: int) -> np.ndarray:
        with self._lock:
            if self._hdul is None:
                self._hdul = fits.open(self.table.path, memmap=True)
            data = self._hdul[self.table.extension].data
            return np.asarray(data[start:stop]).view(np.ndarray)

    def read(self, fd: int | None, start: int) -> dict[str, np.ndarray]:
        """Native-byte-order columns of rows ``start:start+block_rows`` (reused buffers)."""
        stop = min(start + self.block_rows, self.table.nrows)
        count = stop - start
        if fd is None or self.table.data_offset is None:
            return self._convert(self._fallback_rows(start, stop), count)
        size = self.table.dtype.itemsize
        raw = self._raw()
        view = raw.data[: count * size]
        position, done = self.table.data_offset + start * size, 0
        while done < len(view):
            got = os.preadv(fd, [view[done:]], position + done)
            if got <= 0:
                raise UnreadableFileError(f"{self.table.path.name}: the file ends inside the "
                                          f"event table (row {start})",
                                          filename=self.table.path.name)
            done += got
        return self._convert(raw[: count * size].view(self.table.dtype), count)

    def _convert(self, rows: np.ndarray, count: int) -> dict[str, np.ndarray]:
        out = self._buffers()
        block = {}
        for name in self.columns:
            if name in self.table.scaling:
                tscal, tzero = self.table.scaling[name]
                block[name] = rows[name].astype(np.float64) * tscal + tzero
            else:
                target = out[name][:count]
                np.copyto(target, rows[name], casting="unsafe")
                block[name] = target
        return block

    def close(self) -> None:
        if self._hdul is not None:
            self._hdul.close()


def map_event_blocks(
    table: EventTable,
    columns: Sequence[str],
    function: Callable[[dict[str, np.ndarray]], T],
    *,
    block_rows: int = DEFAULT_BLOCK_ROWS,
    threads: int = 1,
) -> Iterator[T]:
    """Apply ``function`` to each block of rows and yield its results in row order.

    Parameters
    ----------
    table : EventTable
        From :func:`open_event_table`.
    columns : sequence of str
        Columns to read (case-insensitive).  Each block is a dict ``{name: array}``
        keyed by the names as given here, native byte order.  The arrays are reused
        buffers: ``function`` must not keep references to them.
    function : callable
        ``function(block) -> result``; it must be thread-safe when ``threads > 1``.
    block_rows : int
        Rows per block.
    threads : int
        Blocks processed at once.

    Yields
    ------
    result
        ``function``'s result for each block, in row order.
    """
    if block_rows < 1:
        raise ValueError(f"block_rows must be positive, got {block_rows}")
    spelled = {name: table.column(name) for name in columns}
    reader = _BlockReader(table, list(spelled.values()), block_rows)
    starts = range(0, table.nrows, block_rows)
    fd = os.open(table.path, os.O_RDONLY) if table.data_offset is not None else None

    def task(start: int) -> T:
        block = reader.read(fd, start)
        return function({name: block[spelled[name]] for name in columns})

    try:
        if threads <= 1 or len(starts) <= 1:
            for start in starts:
                yield task(start)
        else:
            with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="hstlc-events") as pool:
                # Submit a bounded window so results never pile up.
                window = 2 * threads
                pending = [pool.submit(task, start) for start in starts[:window]]
                next_index = window
                while pending:
                    result = pending.pop(0).result()
                    if next_index < len(starts):
                        pending.append(pool.submit(task, starts[next_index]))
                        next_index += 1
                    yield result
    finally:
        if fd is not None:
            os.close(fd)
        reader.close()


def iter_event_blocks(
    table: EventTable, columns: Sequence[str], *, block_rows: int = DEFAULT_BLOCK_ROWS
) -> Iterator[dict[str, np.ndarray]]:
    """Yield blocks ``{column: native array}`` one after the other (arrays are reused).

    Copy what you need to keep before asking for the next block.
    """
    yield from map_event_blocks(table, columns, lambda block: block, block_rows=block_rows)


def read_gti(path: str | Path) -> np.ndarray | None:
    """Good time intervals of an event file, as a sorted ``(n, 2)`` float64 array.

    Returns None when the file has no ``GTI`` extension.  Intervals are validated:
    ``START < STOP`` and no overlaps (touching intervals are merged).

    Raises
    ------
    UnsupportedProductError
        The GTI table is malformed (STOP <= START or overlapping intervals).
    """
    path = Path(path)
    with fits.open(path, memmap=False) as hdul:
        return _gti_of(hdul, path.name)


def validate_gti(gti: np.ndarray, filename: str = "") -> np.ndarray:
    """Check and normalise GTIs: sorted, ``START < STOP``, touching intervals merged.

    Examples
    --------
    >>> validate_gti(np.array([[5.0, 8.0], [0.0, 5.0]])).tolist()
    [[0.0, 8.0]]
    """
    gti = np.asarray(gti, np.float64).reshape(-1, 2)
    gti = gti[np.argsort(gti[:, 0], kind="stable")]
    if np.any(gti[:, 1] <= gti[:, 0]):
        raise UnsupportedProductError(f"{filename}: a GTI has STOP <= START", filename=filename)
    if np.any(gti[1:, 0] < gti[:-1, 1]):
        raise UnsupportedProductError(f"{filename}: the GTIs overlap", filename=filename)
    if len(gti) > 1:
        touching = gti[1:, 0] == gti[:-1, 1]
        if touching.any():
            keep_start = np.concatenate([[True], ~touching])
            keep_stop = np.concatenate([~touching, [True]])
            gti = np.column_stack([gti[keep_start, 0], gti[keep_stop, 1]])
    return gti


# ----------------------------------------------------------------------------- box accumulation
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

    ``gross[j, k]`` is the sum of EPSILON over box ``j``'s events in bin ``k``,
    ``variance`` the sum of EPSILON**2 and ``flux`` the sum of EPSILON * conversion(lambda)
    (zeros when no conversion is given).  Per group, ``wave_range`` and ``x_range`` give
    the extreme wavelength and XCORR of the counted events (source and background).
    """

    gross: np.ndarray
    variance: np.ndarray
    flux: np.ndarray
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
    ``layers[d, i]`` is the d-th cell of interval ``i`` (-1: none).
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
    """Sums of one block of events per (cell, time bin).

    Thread-safe: the only mutable state is per-thread scratch space.  The block is cut
    with full-length masks first; the surviving events are then compressed into scratch
    arrays and binned.
    """

    def __init__(self, boxes: Sequence[Box], groups: Sequence[str], selection: Selection,
                 conversion: Callable[..., np.ndarray] | None,
                 column_wavelength: np.ndarray | None, x_scale: float, block_rows: int,
                 want_x: bool = True):
        self.groups, self.sel, self.conversion = list(groups), selection, conversion
        self.want_x = want_x
        self.column_wavelength, self.x_scale = column_wavelength, x_scale
        self.cells = _Cells(boxes, groups)
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
        return BoxSums(np.zeros(self.shape), np.zeros(self.shape), np.zeros(self.shape), {}, {})

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
        wave = pick("WAVELENGTH") if self.column_wavelength is None else None
        code = np.take(code, rows, out=s("pick_code", code.dtype, m))
        inside = self._in_gti(time, s)
        if not inside.all():
            time, eps, code = time[inside], eps[inside], code[inside]
            x = None if x is None else x[inside]
            wave = None if wave is None else wave[inside]
            if time.size == 0:
                return out
        k = self._bins(time, s)
        for depth, layer in enumerate(self.cells.layers):
            cell = np.take(layer, code, out=s("cell", np.intp, code.size))
            if depth == 0:
                self._accumulate(out, s, cell, k, eps, x, wave)
            else:
                take = cell >= 0
                self._accumulate(out, s, cell[take], k[take], eps[take],
                                 None if x is None else x[take],
                                 None if wave is None else wave[take])
        return out

    def _accumulate(self, out: BoxSums, s: _Scratch, cell: np.ndarray, k: np.ndarray,
                    eps: np.ndarray, x: np.ndarray | None, wave: np.ndarray | None) -> None:
        """Add one layer of (event, cell) pairs to ``out``."""
        n = cell.size
        if n == 0:
            return
        group = self.cells.group[cell] if len(self.groups) > 1 else None
        counted: np.ndarray | None = None
        if wave is None:
            assert self.column_wavelength is not None and x is not None
            column = (x * self.x_scale).astype(np.intp)
            np.clip(column, 0, self.column_wavelength.shape[1] - 1, out=column)
            wave = self.column_wavelength[0 if group is None else group, column]
            counted = np.ones(n, bool)
            self._band(wave, counted, s)
            eps = np.where(counted, eps, 0.0)
        index = s("index", np.intp, n)
        np.multiply(cell, self.sel.nbins, out=index)
        index += k
        size = self.shape[0] * self.shape[1]
        out.gross += np.bincount(index, eps, size).reshape(self.shape)
        weight = s("weight", np.float64, n)
        np.multiply(eps, eps, out=weight)
        out.variance += np.bincount(index, weight, size).reshape(self.shape)
        if self.conversion is not None:
            factor = self.conversion(group, wave, out=s("factor", np.float32, n), scratch=s)
            np.multiply(factor, eps, out=weight)
            out.flux += np.bincount(index, weight, size).reshape(self.shape)
        self._ranges(out, group, counted, wave, x)

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
            total.variance += part.variance
            total.flux += part.flux
            for name, span in part.wave_range.items():
                _merge(total.wave_range, name, span)
            for name, span in part.x_range.items():
                _merge(total.x_range, name, span)
        shape = (len(boxes), self.sel.nbins)
        folded = BoxSums(np.zeros(shape), np.zeros(shape), np.zeros(shape), total.wave_range,
                         total.x_range)
        for j, ids in enumerate(self.cells.of_box):
            folded.gross[j] = total.gross[ids].sum(axis=0)
            folded.variance[j] = total.variance[ids].sum(axis=0)
            folded.flux[j] = total.flux[ids].sum(axis=0)
        return folded


def _merge(ranges: dict[str, tuple[float, float]], name: str, span: tuple[float, float]) -> None:
    old = ranges.get(name)
    ranges[name] = span if old is None else (min(old[0], span[0]), max(old[1], span[1]))


def accumulate_boxes(
    table: EventTable,
    boxes: Sequence[Box],
    selection: Selection,
    *,
    conversion: Callable[[np.ndarray | None, np.ndarray], np.ndarray] | None = None,
    column_wavelength: Mapping[str, np.ndarray] | None = None,
    x_scale: float = 1.0,
    block_rows: int = DEFAULT_BLOCK_ROWS,
    threads: int = 1,
    want_x_range: bool = True,
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
        ``column_wavelength`` is given, WAVELENGTH).
    boxes : sequence of Box
        The boxes; ``group`` names the segment / stripe / order.
    selection : Selection
        Cuts and the time grid (``nbins`` bins of ``step`` from ``origin``).
    conversion : callable, optional
        ``conversion(group_index, wavelength) -> factor`` per event, ``group_index``
        indexing the groups in order of first appearance in ``boxes`` (None when there
        is one group), e.g. :meth:`hstlc.calibrate.Response.indexed`.
    column_wavelength : mapping, optional
        Per group, the wavelength of each pixel column: an event's wavelength is then
        ``column_wavelength[group][int(XCORR * x_scale)]``, not its WAVELENGTH column.
    block_rows, threads : int
        Streaming block size; number of blocks processed at once.
    want_x_range : bool
        Also record each group's XCORR range (``BoxSums.x_range``).

    Returns
    -------
    BoxSums
        One row per box, in the order of ``boxes``.
    """
    groups = list(dict.fromkeys(box.group for box in boxes))
    block_rows = max(1, min(block_rows, table.nrows))  # small tables get small buffers
    columns_map = None
    if column_wavelength is not None:
        width = max(len(column_wavelength[g]) for g in groups)
        columns_map = np.full((len(groups), width), -np.inf)
        for i, g in enumerate(groups):
            columns_map[i, : len(column_wavelength[g])] = column_wavelength[g]
        columns_map[~np.isfinite(columns_map)] = -np.inf
    kernel = _BoxKernel(boxes, groups, selection, conversion, columns_map, x_scale, block_rows,
                        want_x_range)
    columns = ["TIME", "XCORR", "YCORR", "EPSILON", "DQ"]
    if column_wavelength is None:
        columns.append("WAVELENGTH")
    parts = map_event_blocks(table, columns, kernel, block_rows=block_rows, threads=threads)
    return kernel.reduce(parts, boxes)
