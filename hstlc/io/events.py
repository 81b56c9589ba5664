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

A pass can also give the sha256 of the whole file (``digest=FileDigest()``): a third
thread hashes the bytes before the table (headers, earlier HDUs), the very buffers the
blocks are read into, and the bytes after the table (GTI and later HDUs), in file order,
so that the file's bytes are read once and the digest equals
:func:`hstlc.fs.sha256_file`.  ``hashlib`` releases the GIL on large buffers, so the
hash runs beside the block work.

The per-box accumulation of extraction lives in :mod:`hstlc.extraction.accumulate`; the
good time intervals in :mod:`hstlc.io.gti`.

This is an I/O module: FITS keyword strings live here.
"""

from __future__ import annotations

import hashlib
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


class FileDigest:
    """The sha256 of an event table's whole file, filled in by one streaming pass.

    Give one to :func:`map_raw_blocks` or :func:`map_event_blocks` (``digest=``).  Once
    the pass has yielded its last block, :attr:`sha256` holds the digest of the file's
    bytes (64 hex digits, equal to :func:`hstlc.fs.sha256_file`).  It stays None when the
    pass stopped early or failed, or when the rows are read through astropy (compressed
    file, heap): the caller then hashes the file itself.
    """

    def __init__(self) -> None:
        self.sha256: str | None = None


class _HashFeed:
    """A thread feeding one file's bytes to sha256, in file order, from the blocks read.

    The bytes before the table and after it are read here; the rows are hashed from the
    buffers the blocks are read into.  Block ``i`` is read into slot ``i % slots``, which
    is free again once block ``i - slots`` has been hashed and its work is done.  A slot
    per block index (not the first free one) keeps the order: the hash, which takes the
    blocks in order, never waits for a block that waits for it.
    """

    def __init__(self, table: EventTable, fd: int, block_rows: int, nblocks: int, slots: int):
        assert table.data_offset is not None
        self.table, self.fd, self.nblocks = table, fd, nblocks
        size = block_rows * table.dtype.itemsize
        self.slots = [np.empty(size, np.uint8) for _ in range(max(1, min(slots, nblocks)))]
        self._cond = threading.Condition()
        self._ready: dict[int, int] = {}
        self._done = bytearray(nblocks)
        self._hashed = 0
        self._stopped = False
        self._hash = hashlib.sha256()
        self._digest: str | None = None
        self._thread = threading.Thread(target=self._run, name="hstlc-events-sha256", daemon=True)
        self._thread.start()

    def acquire(self, index: int) -> np.ndarray:
        """The buffer of block ``index``, once block ``index - slots`` no longer needs it."""
        count = len(self.slots)
        if index >= count:
            earlier = index - count
            with self._cond:
                self._cond.wait_for(lambda: bool(self._done[earlier])
                                    and (self._hashed > earlier or self._stopped))
        return self.slots[index % count]

    def ready(self, index: int, nbytes: int) -> None:
        """Block ``index`` holds its ``nbytes`` bytes: hash them when their turn comes."""
        with self._cond:
            self._ready[index] = nbytes
            self._cond.notify_all()

    def release(self, index: int) -> None:
        """The work on block ``index`` is done (its buffer is no longer read)."""
        with self._cond:
            self._done[index] = 1
            self._cond.notify_all()

    def stop(self) -> None:
        """Hash no further (the pass failed or stopped early); waiting blocks go on."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def finish(self) -> str | None:
        """Wait for the hash of the whole file; its hex digest (None if it failed)."""
        self._thread.join()
        return self._digest

    def abort(self) -> None:
        """Stop and wait for the thread (idempotent)."""
        self.stop()
        self._thread.join()

    def _run(self) -> None:
        table = self.table
        start = int(table.data_offset or 0)
        count = len(self.slots)
        try:
            self._hash_range(0, start)
            for index in range(self.nblocks):
                nbytes = self._wait_ready(index)
                if nbytes is None:
                    return
                self._hash.update(self.slots[index % count].data[:nbytes])  # releases the GIL
                with self._cond:
                    self._hashed = index + 1
                    self._cond.notify_all()
            self._hash_range(start + table.nrows * table.dtype.itemsize, None)
            self._digest = self._hash.hexdigest()
        except (OSError, UnreadableFileError) as error:
            logger.warning("%s: no sha256 from the read pass (%s)", table.path.name, error)
        finally:
            if self._digest is None:
                self.stop()

    def _wait_ready(self, index: int) -> int | None:
        """The bytes of block ``index`` once read; None when the pass stopped."""
        with self._cond:
            self._cond.wait_for(lambda: index in self._ready or self._stopped)
            return None if self._stopped else self._ready.pop(index)

    def _hash_range(self, position: int, stop: int | None) -> None:
        """Hash the bytes ``position:stop`` (``stop`` None: to the end of the file)."""
        scratch = memoryview(bytearray(1 << 20))
        while stop is None or position < stop:
            want = len(scratch) if stop is None else min(len(scratch), stop - position)
            got = os.preadv(self.fd, [scratch[:want]], position)
            if got <= 0:
                if stop is None:
                    return
                raise UnreadableFileError(f"{self.table.path.name}: the file ends at byte {position}",
                                          filename=self.table.path.name)
            self._hash.update(scratch[:got])
            position += got


def _native(dtype: np.dtype) -> np.dtype:
    return dtype.newbyteorder("=") if dtype.byteorder not in ("=", "|") else dtype


class _BlockReader:
    """Per-thread reusable buffers for reading one table's blocks."""

    def __init__(self, table: EventTable, columns: Sequence[str], block_rows: int):
        self.table, self.columns, self.block_rows = table, list(columns), block_rows
        self._local = threading.local()
        self._hdul: Any = None
        self._lock = threading.Lock()
        #: Set by :func:`_map_blocks` when the pass also hashes the file.
        self.feed: _HashFeed | None = None

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
        index = start // self.block_rows
        raw = self._raw() if self.feed is None else self.feed.acquire(index)
        view = raw.data[: count * size]
        position, done = self.table.data_offset + start * size, 0
        while done < len(view):
            got = os.preadv(fd, [view[done:]], position + done)
            if got <= 0:
                raise UnreadableFileError(f"{self.table.path.name}: the file ends inside the "
                                          f"event table (row {start})",
                                          filename=self.table.path.name)
            done += got
        if self.feed is not None:
            self.feed.ready(index, count * size)
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
    digest: FileDigest | None = None,
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
    digest : FileDigest, optional
        Also hash the whole file in this pass (a thread of its own; see
        :class:`FileDigest`).

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

    yield from _map_blocks(table, reader, task, block_rows, threads, digest)


def map_raw_blocks(
    table: EventTable,
    function: Callable[[np.ndarray, int], T],
    *,
    block_rows: int = DEFAULT_BLOCK_ROWS,
    threads: int = 1,
    digest: FileDigest | None = None,
) -> Iterator[T]:
    """Apply ``function(rows, count)`` to each block's rows as stored, in row order.

    ``rows`` is a uint8 array of ``count * table.dtype.itemsize`` bytes: the block's
    rows exactly as in the file (big-endian values, ``table.dtype`` describes a row).
    It is a reused buffer: ``function`` must neither keep a reference to it nor write
    to it (with ``digest``, the hash reads it at the same time).  Other parameters as
    :func:`map_event_blocks`.
    """
    if block_rows < 1:
        raise ValueError(f"block_rows must be positive, got {block_rows}")
    reader = _BlockReader(table, [], block_rows)

    def task(fd: int | None, start: int) -> T:
        return function(*reader.read_raw(fd, start))

    yield from _map_blocks(table, reader, task, block_rows, threads, digest)


def _map_blocks(table: EventTable, reader: _BlockReader, task: Callable[[int | None, int], T],
                block_rows: int, threads: int, digest: FileDigest | None = None) -> Iterator[T]:
    """Run ``task(fd, start)`` on every block, ``threads`` at once; yield in row order.

    With ``digest``, a :class:`_HashFeed` hashes the file from the same reads; the digest
    is set once the last block is done.
    """
    starts = range(0, table.nrows, block_rows)
    fd = os.open(table.path, os.O_RDONLY) if table.data_offset is not None else None
    feed = None
    if digest is not None:
        digest.sha256 = None
    try:
        if digest is not None and fd is not None:
            feed = reader.feed = _HashFeed(table, fd, block_rows, len(starts),
                                           slots=max(threads, 1) + 2)
        run = task if feed is None else _releasing(task, feed, block_rows)
        if threads <= 1 or len(starts) <= 1:
            for start in starts:
                yield run(fd, start)
        else:
            with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="hstlc-events") as pool:
                try:
                    # Submit a bounded window so results never pile up.
                    window = 2 * threads
                    pending = [pool.submit(run, fd, start) for start in starts[:window]]
                    next_index = window
                    while pending:
                        result = pending.pop(0).result()
                        if next_index < len(starts):
                            pending.append(pool.submit(run, fd, starts[next_index]))
                            next_index += 1
                        yield result
                except BaseException:
                    if feed is not None:
                        feed.stop()  # before the pool waits for the blocks still running
                    raise
        if feed is not None and digest is not None:
            digest.sha256 = feed.finish()
    finally:
        if feed is not None:
            feed.abort()
        if fd is not None:
            os.close(fd)
        reader.close()


def _releasing(task: Callable[[int | None, int], T], feed: _HashFeed, block_rows: int
               ) -> Callable[[int | None, int], T]:
    """``task`` that hands its block's buffer back to ``feed`` when done (stops it on error)."""
    def run(fd: int | None, start: int) -> T:
        index = start // block_rows
        try:
            return task(fd, start)
        except BaseException:
            feed.stop()
            raise
        finally:
            feed.release(index)

    return run


def iter_event_blocks(
    table: EventTable, columns: Sequence[str], *, block_rows: int = DEFAULT_BLOCK_ROWS
) -> Iterator[dict[str, np.ndarray]]:
    """Yield blocks ``{column: native array}`` one after the other (arrays are reused).

    Copy what you need to keep before asking for the next block.
    """
    yield from map_event_blocks(table, columns, lambda block: block, block_rows=block_rows)
