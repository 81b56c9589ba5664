"""One small reader per product: photon event lists, x1d spectra, FUV segment pairs.

Readers take whole columns with astropy (memory-mapped when the file is not
compressed) and copy only the columns they need into native-endian numpy arrays;
there is no per-event Python.  The products are decided by
:func:`hstlc.io.products.detect_product` from headers and columns.

Column mapping of :class:`EventList`:

========== ============================== ===========================
field      COS corrtag / STIS corrtag      STIS MAMA tag
========== ============================== ===========================
time       TIME (s since EXPSTART, f8)     TIME
x          XCORR                           AXIS1 (high-res pixels)
y          YCORR                           AXIS2
wavelength WAVELENGTH                      None (needs :mod:`hstlc.extraction.stis_corrtag`)
epsilon    EPSILON                         None (no flat field applied)
dq         DQ                              None (no bad-pixel table applied)
========== ============================== ===========================

A STIS tag file carries no wavelengths, weights or data quality: those fields are
None rather than invented defaults, so that code which needs them must go
through the tag -> corrtag conversion (:mod:`hstlc.extraction.stis_corrtag`) instead of silently
using ones and zeros.

Good time intervals (``gti``, an ``N x 2`` float64 array of [start, stop] in
seconds since EXPSTART) come from the START/STOP columns of the GTI extension.
When that extension is absent or empty, every time counts as good (the
convention of ``stistools.inttag``): one interval ``[min(time), max(time)]``, or
``[0, EXPTIME]`` when there are no events.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
from astropy.io import fits

from hstlc.errors import (
    NO_EVENTS,
    MissingKeywordError,
    QualityError,
    UnreadableFileError,
    UnsupportedProductError,
)
from hstlc.io.headers import (
    DatasetFiles,
    ObservationInfo,
    group_dataset_files,
    read_observation_info,
)
from hstlc.io.products import Product, detect_product, open_fits

logger = logging.getLogger(__name__)

__all__ = [
    "Dataset",
    "DatasetFiles",
    "EventList",
    "X1dSpectrum",
    "group_dataset_files",
    "iter_time_chunks",
    "read_dataset",
    "read_events",
    "read_x1d",
]

TIME_COLUMN = "TIME"
_GTI_EXTNAME = "GTI"
_CORRTAG_COLUMNS = {"x": "XCORR", "y": "YCORR", "wavelength": "WAVELENGTH",
                    "epsilon": "EPSILON", "dq": "DQ"}
_TAG_COLUMNS = {"x": "AXIS1", "y": "AXIS2"}
_X1D_LABELS = ("SEGMENT", "SPORDER")
#: Rows of TIME converted at a time when streaming the column.
DEFAULT_CHUNK_ROWS = 1 << 22


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


@dataclass(frozen=True, eq=False)
class EventList:
    """The photon events of one file (one COS FUV segment, or a whole NUV/STIS exposure).

    Attributes
    ----------
    time : numpy.ndarray
        Event times (float64, s since EXPSTART).
    x, y : numpy.ndarray
        Event positions (XCORR/YCORR; AXIS1/AXIS2 for a STIS tag file).
    wavelength, epsilon, dq : numpy.ndarray or None
        Per-event wavelength (A), flat-field weight and data-quality bits; None for
        a STIS tag file.
    gti : numpy.ndarray
        Good time intervals, shape ``(N, 2)``, float64.
    info : ObservationInfo
        The file's header values.

    Arrays are read-only; equality is identity.
    """

    time: np.ndarray
    x: np.ndarray
    y: np.ndarray
    wavelength: np.ndarray | None
    epsilon: np.ndarray | None
    dq: np.ndarray | None
    gti: np.ndarray
    info: ObservationInfo

    def __post_init__(self) -> None:
        n = len(self.time)
        for name in ("x", "y", "wavelength", "epsilon", "dq"):
            array = getattr(self, name)
            if array is not None:
                if len(array) != n:
                    raise ValueError(
                        f"{self.info.filename}: {name} has {len(array)} rows, time {n}")
                _frozen(array)
        if self.gti.ndim != 2 or self.gti.shape[1] != 2:
            raise ValueError(f"{self.info.filename}: gti must be N x 2, got {self.gti.shape}")
        _frozen(self.time)
        _frozen(self.gti)

    def __len__(self) -> int:
        return len(self.time)

    def __repr__(self) -> str:
        return (f"EventList({self.info.filename!r}, {len(self.time)} events, "
                f"{len(self.gti)} GTI, {self.info.product.value})")


@dataclass(frozen=True, eq=False)
class X1dSpectrum:
    """The 1-D extracted spectrum (x1d) of an exposure, one row per segment or order.

    Attributes
    ----------
    labels : tuple of str
        Row labels: SEGMENT for COS (``'FUVA'``), SPORDER for STIS (``'1'``, ``'87'``).
    wavelength, flux, net : numpy.ndarray
        Shape ``(rows, NELEM)``, float64: A, erg s-1 cm-2 A-1 and count s-1.
    info : ObservationInfo
    """

    labels: tuple[str, ...]
    wavelength: np.ndarray
    flux: np.ndarray
    net: np.ndarray
    info: ObservationInfo

    def __repr__(self) -> str:
        return f"X1dSpectrum({self.info.filename!r}, rows {self.labels}, {self.wavelength.shape})"


@dataclass(frozen=True, eq=False)
class Dataset:
    """One exposure read as a whole: an FUV segment pair, or one NUV/STIS event list.

    Attributes
    ----------
    rootname : str
    product : Product
        Product of the first event list (segment A when present).
    segments : Mapping[str, EventList]
        ``'A'``/``'B'`` for COS FUV; for other products one entry keyed by DETECTOR
        (``'NUV'``, ``'FUV-MAMA'``, ``'NUV-MAMA'``).  Read-only.
    info : ObservationInfo
        Header values of the first event list.
    missing_segments : tuple of str
        FUV segments whose file was not given, e.g. ``('B',)``.
    x1d : pathlib.Path or None
        The x1d file that travels with the dataset, when given (not read).
    """

    rootname: str
    product: Product
    segments: Mapping[str, EventList]
    info: ObservationInfo
    missing_segments: tuple[str, ...] = ()
    x1d: Path | None = None


def _read_column(hdu: fits.BinTableHDU, name: str, filename: str,
                 dtype: np.dtype | type | None = None, rows: slice | None = None) -> np.ndarray:
    """Copy one column (optionally a slice of rows) into a native-endian array."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            column = hdu.data[name]
            if rows is not None:
                column = column[rows]
            wanted = np.dtype(dtype) if dtype is not None else column.dtype.newbyteorder("=")
            array = np.array(column, dtype=wanted)
    except KeyError:
        raise MissingKeywordError(f"{filename}: ext {hdu.name} has no column {name}",
                                  filename=filename) from None
    except (TypeError, ValueError, OSError) as exc:
        raise UnreadableFileError(f"{filename}: column {name} of ext {hdu.name} cannot be "
                                  f"read ({exc})", filename=filename) from exc
    for warning in caught:
        logger.warning("%s: astropy: %s", filename, str(warning.message).splitlines()[0])
    return array


def iter_time_chunks(hdulist: fits.HDUList, filename: str,
                     chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[np.ndarray]:
    """Stream the TIME column of ext 1 as float64 chunks of at most ``chunk_rows`` rows.

    Only TIME is touched; with a memory-mapped file at most one chunk is in memory.
    """
    hdu = hdulist[1]
    nrows = int(hdu.header.get("NAXIS2", 0))
    for start in range(0, nrows, chunk_rows):
        yield _read_column(hdu, TIME_COLUMN, filename, np.float64,
                           slice(start, start + chunk_rows))


def _find_gti_hdu(hdulist: fits.HDUList) -> fits.BinTableHDU | None:
    for hdu in hdulist[1:]:
        if hdu.name.upper() == _GTI_EXTNAME and isinstance(hdu, fits.BinTableHDU):
            return hdu
    return None


def _read_gti(hdulist: fits.HDUList, filename: str, time: np.ndarray,
              exptime: float) -> np.ndarray:
    """GTI ``N x 2`` from the GTI extension, or one interval covering the data."""
    hdu = _find_gti_hdu(hdulist)
    if hdu is not None and int(hdu.header.get("NAXIS2", 0)) > 0:
        start = _read_column(hdu, "START", filename, np.float64)
        stop = _read_column(hdu, "STOP", filename, np.float64)
        gti = np.column_stack([start, stop])
        if np.any(stop < start) or np.any(start[1:] < stop[:-1]):
            logger.warning("%s: GTI intervals are reversed or overlap: %s", filename, gti.tolist())
        return gti
    if len(time):
        interval = [float(time.min()), float(time.max())]
    else:
        interval = [0.0, float(exptime)]
    logger.info("%s: no GTI rows; using the whole interval %s", filename, interval)
    return np.array([interval], dtype=np.float64)


def _read_event_list(hdulist: fits.HDUList, filename: str, product: Product,
                     columns: Mapping[str, str]) -> EventList:
    info = read_observation_info(hdulist, filename, product)
    hdu = hdulist[1]
    arrays = {name: _read_column(hdu, col, filename) for name, col in columns.items()}
    time = _read_column(hdu, TIME_COLUMN, filename, np.float64)
    gti = _read_gti(hdulist, filename, time, info.exptime)
    return EventList(time=time, x=arrays["x"], y=arrays["y"],
                     wavelength=arrays.get("wavelength"), epsilon=arrays.get("epsilon"),
                     dq=arrays.get("dq"), gti=gti, info=info)


def read_corrtag(hdulist: fits.HDUList, filename: str, product: Product) -> EventList:
    """Read a COS (FUV segment or NUV) or hstlc STIS corrtag event list."""
    return _read_event_list(hdulist, filename, product, _CORRTAG_COLUMNS)


def read_stis_tag(hdulist: fits.HDUList, filename: str, product: Product) -> EventList:
    """Read a STIS MAMA tag event list (x = AXIS1, y = AXIS2; no wavelength, epsilon, dq)."""
    return _read_event_list(hdulist, filename, product, _TAG_COLUMNS)


_READERS: dict[Product, Callable[[fits.HDUList, str, Product], EventList]] = {
    Product.COS_FUV_CORRTAG_A: read_corrtag,
    Product.COS_FUV_CORRTAG_B: read_corrtag,
    Product.COS_NUV_CORRTAG: read_corrtag,
    Product.STIS_CORRTAG: read_corrtag,
    Product.STIS_TAG: read_stis_tag,
}


def read_events(path: str | os.PathLike[str]) -> EventList:
    """Read the event list of one corrtag or tag file.

    Raises
    ------
    UnreadableFileError, UnsupportedProductError, MissingKeywordError
        The file cannot be read, is no event list (an x1d is refused too), or lacks
        a required keyword or column.
    """
    path = Path(path)
    with open_fits(path) as hdulist:
        product = detect_product(hdulist, path.name)
        reader = _READERS.get(product)
        if reader is None:
            raise UnsupportedProductError(f"{path.name}: a {product.value} file, not an event list",
                                          filename=path.name)
        return reader(hdulist, path.name, product)


def read_x1d(path: str | os.PathLike[str]) -> X1dSpectrum:
    """Read the WAVELENGTH, FLUX and NET arrays of an x1d file (one row per segment/order)."""
    path = Path(path)
    with open_fits(path) as hdulist:
        product = detect_product(hdulist, path.name)
        if product is not Product.X1D:
            raise UnsupportedProductError(f"{path.name}: a {product.value} file, not an x1d",
                                          filename=path.name)
        info = read_observation_info(hdulist, path.name, product)
        hdu = hdulist[1]
        names = {str(name).upper() for name in hdu.columns.names if name}
        label_column = next((name for name in _X1D_LABELS if name in names), None)
        nrows = int(hdu.header.get("NAXIS2", 0))
        if label_column is None:
            labels = tuple(str(i) for i in range(nrows))
        else:
            labels = tuple(str(v).strip() for v in _read_column(hdu, label_column, path.name))
        arrays = {name: np.atleast_2d(_read_column(hdu, name.upper(), path.name, np.float64))
                  for name in ("wavelength", "flux", "net")}
    return X1dSpectrum(labels=labels, info=info, **arrays)


def _dataset_key(events: EventList) -> str:
    return events.info.product.fuv_segment or events.info.detector


def _collect_events(paths: Iterable[Path]) -> tuple[dict[str, EventList], Path | None]:
    """Read every event file, keyed by segment/detector; note the x1d."""
    found: dict[str, EventList] = {}
    x1d: Path | None = None
    for path in sorted(paths):
        with open_fits(path) as hdulist:
            product = detect_product(hdulist, path.name)
            if product is Product.X1D:
                x1d = path
                continue
            reader = _READERS.get(product)
            if reader is None:
                raise UnsupportedProductError(
                    f"{path.name}: a {product.value} file, not part of a dataset",
                    filename=path.name)
            events = reader(hdulist, path.name, product)
        key = _dataset_key(events)
        previous = found.get(key)
        if previous is not None:
            kinds = {previous.info.product, product}
            if kinds == {Product.STIS_TAG, Product.STIS_CORRTAG}:  # converted: corrtag wins
                found[key] = events if product is Product.STIS_CORRTAG else previous
                continue
            raise UnsupportedProductError(
                f"{path.name}: {key} already read from {previous.info.filename}",
                filename=path.name)
        found[key] = events
    return found, x1d


def read_dataset(paths: Iterable[str | os.PathLike[str]] | DatasetFiles) -> Dataset:
    """Read the event files of one exposure together (an FUV ``_a``/``_b`` pair is one dataset).

    A missing FUV partner is allowed and recorded in ``missing_segments``.  When a
    STIS tag file and its corrtag are both given, the corrtag is read.  An x1d among
    the paths is recorded, not read.

    Raises
    ------
    ValueError
        No paths, or files of several rootnames.
    UnreadableFileError, UnsupportedProductError, MissingKeywordError
        From the readers; also when two files claim the same segment, or FUV and
        NUV files are mixed.
    QualityError
        Only an x1d was given (reason ``No events``).
    """
    if isinstance(paths, DatasetFiles):
        paths = paths.files
    path_list = [Path(p) for p in paths]
    if not path_list:
        raise ValueError("read_dataset needs at least one file")
    found, x1d = _collect_events(path_list)
    names = ", ".join(p.name for p in path_list)
    if not found:
        raise QualityError(f"{names}: no event list in the dataset", reason=NO_EVENTS,
                           filename=path_list[0].name)
    rootnames = {events.info.rootname for events in found.values()}
    if len(rootnames) > 1:
        raise ValueError(f"read_dataset got files of several rootnames "
                         f"({sorted(rootnames)}): {names}")
    ordered = dict(sorted(found.items()))
    first = next(iter(ordered.values()))
    fuv = {events.info.product.is_cos_fuv for events in ordered.values()}
    if len(ordered) > 1 and fuv != {True}:
        raise UnsupportedProductError(f"{names}: event lists of different products in one dataset",
                                      filename=first.info.filename)
    missing: tuple[str, ...] = ()
    if first.info.product.is_cos_fuv:
        missing = tuple(s for s in ("A", "B") if s not in ordered)
        if missing:
            logger.info("%s: FUV segment %s missing; reading %s only",
                        first.info.rootname, "/".join(missing), "/".join(ordered))
    return Dataset(rootname=first.info.rootname, product=first.info.product,
                   segments=MappingProxyType(ordered), info=first.info,
                   missing_segments=missing, x1d=x1d)
