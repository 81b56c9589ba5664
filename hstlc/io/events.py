"""Streaming of FITS binary event tables.

An HST TIME-TAG event list (COS ``corrtag``, STIS ``corrtag``) can hold 10^7 rows, and
extraction needs only a few of its columns, row by row.  So the table is streamed:
blocks of rows are read from the table's data area straight into a reusable buffer
(``os.preadv``).  :func:`map_raw_blocks` hands each block over as stored (big-endian
bytes, for the compiled kernel of :mod:`hstlc.extraction.kernel`); :func:`map_event_blocks` views
it with the table's big-endian structured dtype (built from the ``TFORMn`` keywords) and
converts only the requested columns to native byte order, again into reusable buffers.
Peak extra memory is a few blocks, whatever the file size.  Files that cannot be read
that way (compressed files, tables with a heap) are read through astropy, still block
by block.  Blocks may be processed by two threads at once; results always come back in
row order.

The per-box accumulation of extraction lives in :mod:`hstlc.extraction.accumulate`; the
good time intervals in :mod:`hstlc.io.gti`.

This is an I/O module: FITS keyword strings live here.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from astropy.io import fits

from hstlc.errors import MissingKeywordError, UnreadableFileError, UnsupportedProductError
from hstlc.io.gti import read_gti

logger = logging.getLogger(__name__)

#: The column of event times (s since EXPSTART).
TIME_COLUMN = "TIME"

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
            gti = read_gti(hdul, path.name)
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
        if fd is None or self.table.data_offset is None:
            stop = min(start + self.block_rows, self.table.nrows)
            return self._convert(self._fallback_rows(start, stop), stop - start)
        raw, count = self.read_raw(fd, start)
        return self._convert(raw.view(self.table.dtype), count)

    def read_raw(self, fd: int | None, start: int) -> tuple[np.ndarray, int]:
        """Rows ``start:start+block_rows`` as stored: ``(uint8 bytes, row count)``.

        The bytes are a reused buffer (direct reads) or a fresh array (astropy fallback).
        """
        stop = min(start + self.block_rows, self.table.nrows)
        count = stop - start
        if fd is None or self.table.data_offset is None:
            rows = self._fallback_rows(start, stop)
            if rows.dtype != self.table.dtype:
                rows = rows.astype(self.table.dtype)
            return np.ascontiguousarray(rows).view(np.uint8).reshape(-1), count
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
        return raw[: count * size], count

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

    def task(fd: int | None, start: int) -> T:
        block = reader.read(fd, start)
        return function({name: block[spelled[name]] for name in columns})

    yield from _map_blocks(table, reader, task, block_rows, threads)


def map_raw_blocks(
    table: EventTable,
    function: Callable[[np.ndarray, int], T],
    *,
    block_rows: int = DEFAULT_BLOCK_ROWS,
    threads: int = 1,
) -> Iterator[T]:
    """Apply ``function(rows, count)`` to each block's rows as stored, in row order.

    ``rows`` is a uint8 array of ``count * table.dtype.itemsize`` bytes: the block's
    rows exactly as in the file (big-endian values, ``table.dtype`` describes a row).
    It is a reused buffer: ``function`` must not keep a reference to it.  Other
    parameters as :func:`map_event_blocks`.
    """
    if block_rows < 1:
        raise ValueError(f"block_rows must be positive, got {block_rows}")
    reader = _BlockReader(table, [], block_rows)

    def task(fd: int | None, start: int) -> T:
        return function(*reader.read_raw(fd, start))

    yield from _map_blocks(table, reader, task, block_rows, threads)


def _map_blocks(table: EventTable, reader: _BlockReader, task: Callable[[int | None, int], T],
                block_rows: int, threads: int) -> Iterator[T]:
    """Run ``task(fd, start)`` on every block, ``threads`` at once; yield in row order."""
    starts = range(0, table.nrows, block_rows)
    fd = os.open(table.path, os.O_RDONLY) if table.data_offset is not None else None
    try:
        if threads <= 1 or len(starts) <= 1:
            for start in starts:
                yield task(fd, start)
        else:
            with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="hstlc-events") as pool:
                # Submit a bounded window so results never pile up.
                window = 2 * threads
                pending = [pool.submit(task, fd, start) for start in starts[:window]]
                next_index = window
                while pending:
                    result = pending.pop(0).result()
                    if next_index < len(starts):
                        pending.append(pool.submit(task, fd, starts[next_index]))
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
