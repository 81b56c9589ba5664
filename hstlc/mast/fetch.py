"""Safe downloads from MAST, and the delivery of complete datasets into ``ingest/``.

One file (:meth:`Fetcher.fetch`):

1. a file already complete in ``download/`` (a verified earlier transfer waiting for its
   dataset) is checked and kept: a complete file is never fetched twice;
2. otherwise it is fetched into ``download/<name>.part`` (plain HTTP, the URL astroquery's
   ``download_file`` uses); a ``.part`` left by a cut connection or an earlier run is
   resumed with ``Range: bytes=<size>-`` (a server that answers 200 instead sends it whole
   again);
3. transient failures (timeouts, reset or refused connections, a cut mid-file, 429 after
   its ``Retry-After``, 5xx) are retried with exponential backoff; 404, 401 and 403 are
   recorded with their reason and not retried in this run;
4. the size (MAST's product list and the response's length) and the checksum (when the
   product list gives one: sha256 or md5) are checked; a file that does not match is
   deleted and never renamed; one that matches is renamed ``download/<name>``.

One dataset (:func:`fetch_dataset`): its files, then :func:`deliver` renames them into
``ingest/`` together once none failed for a reason the next run may not meet; otherwise
the verified ones wait in ``download/`` for the next run.  So the pipeline never sees a
partial file, and never a dataset cut in half by a network failure; a file MAST does not
serve (404) does not hold back the rest of its dataset.

Memory is one 1 MiB buffer per transfer; concurrency is bounded by the caller (a thread
pool of ``download_workers``: :func:`hstlc.mast.run.download_now`, or the flow's tasks).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hstlc.fs import Permissions, move_file
from hstlc.mast.client import (
    TOKEN_COOKIE,
    TOKEN_HELP,
    MastConnection,
    describe_network_error,
    is_network_error,
    is_transient_status,
    retry_after,
)
from hstlc.mast.query import Product

logger = logging.getLogger(__name__)

FETCHED, PRESENT, FAILED = "fetched", "present", "failed"
PART_SUFFIX = ".part"
CHUNK_BYTES = 1 << 20
#: Statuses that mean MAST does not serve the file to us: recorded, not retried this run.
UNAVAILABLE = frozenset({401, 403, 404, 410})


@dataclass(frozen=True)
class FetchResult:
    """What became of one file."""

    product: Product
    status: str
    reason: str | None = None
    http_status: int | None = None
    #: Bytes received in this run (a resumed file counts only what was added).
    transferred: int = 0
    size: int | None = None
    sha256: str | None = None
    attempts: int = 0
    seconds: float = 0.0
    #: Where the verified file is: ``download/<name>`` until delivered, then ``ingest/<name>``.
    path: Path | None = None
    #: Failed because MAST does not serve it (404, 401, 403): its dataset goes without it.
    unavailable: bool = False

    @property
    def ok(self) -> bool:
        return self.status in (FETCHED, PRESENT)


@dataclass
class _Attempt:
    """One request's outcome."""

    kind: str  # complete, transient, unavailable, refused, mismatch, restart
    reason: str | None = None
    http_status: int | None = None
    received: int = 0
    total: int | None = None
    resumed: bool = False
    digests: dict[str, str] = field(default_factory=dict)
    pause: float | None = None


def _hashers(product: Product) -> dict[str, Any]:
    kinds = {"sha256"} | ({product.checksum.kind} if product.checksum is not None else set())
    return {kind: hashlib.new(kind) for kind in sorted(kinds)}


def _prime(hashers: dict[str, Any], path: Path, upto: int) -> None:
    """Feed the first ``upto`` bytes of ``path`` (the part already received) to the hashers."""
    with open(path, "rb") as handle:
        left = upto
        while left > 0 and (block := handle.read(min(CHUNK_BYTES, left))):
            for hasher in hashers.values():
                hasher.update(block)
            left -= len(block)


def file_digests(path: Path, product: Product) -> dict[str, str]:
    hashers = _hashers(product)
    _prime(hashers, path, path.stat().st_size)
    return {kind: hasher.hexdigest() for kind, hasher in hashers.items()}


def mismatch(path: Path, product: Product, digests: dict[str, str], total: int | None = None
             ) -> str | None:
    """Why the file at ``path`` is not ``product`` as MAST lists it (``None``: it is)."""
    size = path.stat().st_size
    if total is not None and size != total:
        return f"size mismatch: received {size} of {total} bytes"
    if product.size is not None and size != product.size:
        return f"size mismatch: MAST lists {product.size} bytes, the file has {size}"
    listed = product.checksum
    if listed is not None and digests.get(listed.kind) != listed.value:
        return (f"checksum mismatch: MAST lists {listed.kind} {listed.value[:16]}..., "
                f"the file has {digests.get(listed.kind, '?')[:16]}...")
    return None


def _span(response: Any, offset: int) -> tuple[int, int | None]:
    """``(first byte, total size)`` of a 200 or 206 response."""
    if response.status_code == 206:
        text = response.headers.get("Content-Range", "")  # bytes 100-999/1000
        try:
            first = int(text.split()[1].split("-")[0])
            total = text.rsplit("/", 1)[1]
            return first, None if total == "*" else int(total)
        except (IndexError, ValueError):
            return -1, None
    length = response.headers.get("Content-Length")
    return 0, int(length) if length and length.isdigit() else None


class Fetcher:
    """Fetches products of one MAST connection into one ``download/`` folder.

    Thread-safe: each thread has its own HTTP session, kept (with its open connection) from
    one file to the next.  ``sleep`` waits between retries.
    """

    def __init__(self, connection: MastConnection, folder: Path, *,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.connection = connection
        self.folder = Path(folder)
        self.sleep = sleep
        self._local = threading.local()
        self._sessions: list[Any] = []
        self._lock = threading.Lock()

    def _session(self) -> Any:
        session = getattr(self._local, "session", None)
        if session is None:
            import requests

            session = requests.Session()
            host = urlsplit(self.connection.base_url).hostname or ""
            for name, value in self.connection.cookies().items():  # only to MAST's own host
                session.cookies.set(name, value, domain=host)
            assert set(self.connection.cookies()) <= {TOKEN_COOKIE}
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def close(self) -> None:
        with self._lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fetch(self, product: Product, on_bytes: Callable[[int], None] | None = None) -> FetchResult:
        """Fetch one product into ``download/`` (or find it there complete); never raises
        for a network or HTTP failure: the result says what happened.  ``on_bytes(n)`` is
        called with every block received (progress)."""
        started = time.monotonic()
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.folder / product.filename
        part = final.with_name(final.name + PART_SUFFIX)
        if final.is_file():
            digests = file_digests(final, product)
            if mismatch(final, product, digests) is None:
                return FetchResult(product, PRESENT, size=final.stat().st_size,
                                   sha256=digests["sha256"], path=final)
            logger.warning("%s: the complete copy in %s does not match MAST's listing; "
                           "fetched again", product.filename, self.folder)
            final.unlink()
        result = self._transfer(product, part, final, on_bytes)
        return replace(result, seconds=round(time.monotonic() - started, 3))

    def _transfer(self, product: Product, part: Path, final: Path,
                  on_bytes: Callable[[int], None] | None) -> FetchResult:
        policy = self.connection.retry
        received, restarted, attempt = 0, False, _Attempt("transient")
        for number in range(1, policy.retries + 2):
            attempt = self._attempt(product, part, on_bytes)
            received += attempt.received
            failed = FetchResult(product, FAILED, transferred=received, attempts=number,
                                 http_status=attempt.http_status, reason=attempt.reason)
            if attempt.kind == "complete":
                digests = attempt.digests or file_digests(part, product)
                problem = mismatch(part, product, digests, attempt.total)
                if problem is None:
                    size = part.stat().st_size
                    os.replace(part, final)
                    return replace(failed, status=FETCHED, reason=None, size=size,
                                   sha256=digests["sha256"], path=final)
                part.unlink(missing_ok=True)
                if attempt.resumed and not restarted:  # the earlier part may be stale
                    restarted = True
                    continue
                return replace(failed, reason=problem)
            if attempt.kind in ("unavailable", "refused", "mismatch"):
                if attempt.kind == "mismatch":
                    part.unlink(missing_ok=True)
                return replace(failed, unavailable=attempt.kind == "unavailable")
            if attempt.kind == "restart" or number > policy.retries:
                continue
            if attempt.pause is not None and attempt.pause > policy.max_retry_after_s:
                return replace(failed, reason=(
                    f"{attempt.reason}: MAST asks to wait {attempt.pause:.0f} s (Retry-After), "
                    f"more than {policy.max_retry_after_s:.0f} s; left for the next run"))
            delay = policy.wait(number, attempt.pause)
            logger.info("%s: %s; retry %d of %d in %.1f s", product.filename, attempt.reason,
                        number, policy.retries, delay)
            self.sleep(delay)
        return FetchResult(product, FAILED, transferred=received, attempts=policy.retries + 1,
                           http_status=attempt.http_status,
                           reason=f"{attempt.reason} ({policy.retries + 1} attempts); "
                                  "a partial file is resumed by the next run")

    def _attempt(self, product: Product, part: Path, on_bytes: Callable[[int], None] | None
                 ) -> _Attempt:
        offset = part.stat().st_size if part.is_file() else 0
        if product.size is not None and offset > product.size:
            part.unlink()
            offset = 0
        if product.size is not None and offset == product.size:
            return _Attempt("complete", total=offset, resumed=True)
        headers = {"Accept-Encoding": "identity"}  # byte ranges of the file itself
        if offset:
            headers["Range"] = f"bytes={offset}-"
        timeout = self.connection.timeout_s
        state = _Attempt("transient")
        try:
            with self._session().get(self.connection.retrieve_url(product.uri), headers=headers,
                                     stream=True, timeout=(timeout, timeout)) as response:
                return self._receive(response, product, part, offset, state, on_bytes)
        except Exception as error:
            if not is_network_error(error):
                raise
            state.reason = describe_network_error(error)
            return state

    def _receive(self, response: Any, product: Product, part: Path, offset: int,
                 state: _Attempt, on_bytes: Callable[[int], None] | None) -> _Attempt:
        status = state.http_status = response.status_code
        if status == 416:  # the part does not fit what the server has: start again
            part.unlink(missing_ok=True)
            return replace(state, kind="restart", reason="HTTP 416")
        if status in UNAVAILABLE:
            return replace(state, kind="unavailable", reason=self._unavailable(status, response))
        if is_transient_status(status):
            return replace(state, reason=f"HTTP {status} {response.reason or ''}".strip(),
                           pause=retry_after(response.headers))
        if status not in (200, 206):
            return replace(state, kind="refused", reason=f"HTTP {status} {response.reason or ''}".strip())
        first, total = _span(response, offset)
        if status == 206 and first != offset:
            part.unlink(missing_ok=True)
            return replace(state, kind="restart", reason=f"the server resumed at byte {first}, not {offset}")
        if status == 200:
            offset = 0
        if product.size is not None and total is not None and total != product.size:
            return replace(state, kind="mismatch", reason=(
                f"size mismatch: MAST lists {product.size} bytes, the server sends {total}"))
        hashers = _hashers(product)
        if offset:
            _prime(hashers, part, offset)
        with open(part, "ab" if offset else "wb") as out:
            # read1: what has arrived, block by block, so that a connection cut mid-file
            # keeps every byte received before the cut (read() would drop its last block).
            while block := response.raw.read1(CHUNK_BYTES):
                out.write(block)
                for hasher in hashers.values():
                    hasher.update(block)
                state.received += len(block)
                if on_bytes is not None:
                    on_bytes(len(block))
        if total is not None and offset + state.received < total:
            state.reason = "the connection was cut before the end of the file"
            return state
        digests = {kind: hasher.hexdigest() for kind, hasher in hashers.items()}
        return replace(state, kind="complete", total=total, resumed=offset > 0, digests=digests)

    def _unavailable(self, status: int, response: Any) -> str:
        text = f"HTTP {status} {response.reason or ''}".strip()
        if status == 404:
            return f"{text}: MAST does not serve this file"
        if status in (401, 403):
            if self.connection.token is None:
                return f"{text}: exclusive-access data; set mast_token (HSTLC_MAST_TOKEN) to fetch it"
            return f"{text}: the token does not give access to this file; {TOKEN_HELP}"
        return text


def deliver(results: list[FetchResult], ingest: Path, permissions: Permissions | None = None
            ) -> list[FetchResult]:
    """Rename a dataset's verified files into ``ingest/`` together, unless one failed for a
    reason the next run may not meet (then they wait in ``download/``)."""
    if any(not r.ok and not r.unavailable for r in results):
        return results
    delivered = []
    for result in results:
        if result.ok and result.path is not None:
            target = Path(ingest) / result.product.filename
            try:
                moved = move_file(result.path, target)
            except FileExistsError:
                result = replace(result, reason=f"{target} exists; this copy stays in {result.path.parent}")
            else:
                if permissions is not None:
                    permissions.apply(moved)
                result = replace(result, path=moved)
        delivered.append(result)
    return delivered


def fetch_dataset(products: Iterable[Product], fetcher: Fetcher, ingest: Path,
                  permissions: Permissions | None = None,
                  on_bytes: Callable[[int], None] | None = None) -> list[FetchResult]:
    """Fetch one dataset's files, then deliver them into ``ingest/`` (:func:`deliver`)."""
    return deliver([fetcher.fetch(product, on_bytes) for product in products], ingest, permissions)


class TransferProgress:
    """Files and bytes done of a total, with the rates: one line every ``interval_s``.

    Thread-safe; ``report`` receives the line (a logger's ``info``).
    """

    def __init__(self, files: int, total_bytes: int, report: Callable[[str], None],
                 interval_s: float = 5.0) -> None:
        self.files, self.total_bytes = files, total_bytes
        self.files_done = self.bytes_done = 0
        self.report, self.interval_s = report, interval_s
        self.started = self._last = time.monotonic()
        self._lock = threading.Lock()

    def add_bytes(self, count: int) -> None:
        with self._lock:
            self.bytes_done += count
        self._maybe_report()

    def add_files(self, count: int) -> None:
        with self._lock:
            self.files_done += count
        self._maybe_report(force=self.files_done >= self.files)

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        share = 100.0 * self.bytes_done / self.total_bytes if self.total_bytes else 100.0
        megabytes = self.bytes_done / 1e6
        return (f"{self.files_done}/{self.files} files, {megabytes:.1f} of "
                f"{self.total_bytes / 1e6:.1f} MB ({share:.0f}%), {megabytes / elapsed:.2f} MB/s, "
                f"{self.files_done / elapsed:.2f} files/s")

    def _maybe_report(self, force: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            if not force and now - self._last < self.interval_s:
                return
            self._last = now
        self.report(self.line())
