"""The hstlc filesystem: folder layout, safe target folders, permissions, atomic writes.

Layout under ``home_dir`` (each folder configurable, created on demand)::

    ingest/                 new inputs wait here
    bad_data/               refused inputs
    filesystem/<TARGNAME>/  ingested inputs
    outputs/<TARGNAME>/     individual lightcurves and quicklook plots
    outputs/composite/      composite (HLSP) lightcurves
    plots/  download/  logs/
"""

from __future__ import annotations

import errno
import functools
import grp
import hashlib
import logging
import os
import re
import shutil
import threading
import time
import unicodedata
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hstlc.errors import DiskFullError, HstlcError

logger = logging.getLogger(__name__)

#: The name :func:`atomic_path` gives a file while it is being written.
TEMPORARY_NAME = re.compile(r"\..+\.[0-9a-f]{12}\.tmp")

#: Longest folder name made from a target name (bytes are ASCII, so also characters).
MAX_DIRNAME = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")
_HASH_CHARS = 8


@dataclass(frozen=True)
class Layout:
    """Where every hstlc folder is."""

    ingest: Path
    filesystem: Path
    outputs: Path
    composite: Path
    logs: Path
    download: Path
    plots: Path
    bad_data: Path

    @classmethod
    def from_settings(cls, settings) -> Layout:  # type: ignore[no-untyped-def]
        """Build the layout from :class:`hstlc.config.Settings`."""
        return cls(
            ingest=Path(settings.ingest_dir),
            filesystem=Path(settings.filesystem_dir),
            outputs=Path(settings.outputs_dir),
            composite=Path(settings.composite_dir),
            logs=Path(settings.log_dir),
            download=Path(settings.download_dir),
            plots=Path(settings.plot_dir),
            bad_data=Path(settings.bad_data_dir),
        )

    def folders(self) -> dict[str, Path]:
        """Every folder by name."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    def ensure(self, *names: str, permissions: Permissions | None = None) -> None:
        """Create the named folders (all when none is named)."""
        for name in names or tuple(self.folders()):
            path = getattr(self, name)
            make_dir(path, permissions)

    def prepared_target_dir(self, root: str, targname: str, permissions: Permissions | None) -> Path:
        """``<root>/<TARGNAME>/`` (root: ``filesystem`` or ``outputs``), created with permissions."""
        self.ensure(root, permissions=permissions)
        return make_dir(target_dir(getattr(self, root), targname), permissions)

    def target_input_dir(self, targname: str) -> Path:
        """``filesystem/<TARGNAME>/`` for a target (never outside ``filesystem/``)."""
        return target_dir(self.filesystem, targname)


def safe_dirname(targname: str) -> str:
    """Turn a target name into one folder name, deterministically.

    A name made only of ``A-Z a-z 0-9 . _ + -`` (not starting with a dot, at most
    :data:`MAX_DIRNAME` characters) is kept as it is, so ``GJ-436`` stays ``GJ-436``.
    Any other name is reduced to those characters (accents are dropped, runs of other
    characters become one ``_``, leading dots are removed, length is capped) and gets
    ``-`` plus the first 8 hex digits of the sha256 of the original name, so that two
    different names can never share a folder.

    Examples
    --------
    >>> safe_dirname("GJ-436")
    'GJ-436'
    >>> safe_dirname("../../etc").startswith("etc-")
    True
    >>> "/" in safe_dirname("A/B")
    False
    """
    if not isinstance(targname, str):
        raise TypeError(f"target name must be a string, got {type(targname).__name__}")
    if (
        targname
        and not _UNSAFE.search(targname)
        and not targname.startswith(".")
        and len(targname) <= MAX_DIRNAME
    ):
        return targname
    digest = hashlib.sha256(targname.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_CHARS]
    ascii_name = unicodedata.normalize("NFKD", targname).encode("ascii", "ignore").decode()
    cleaned = _UNSAFE.sub("_", ascii_name).lstrip("._").rstrip("_")
    cleaned = cleaned[: MAX_DIRNAME - _HASH_CHARS - 1] or "target"
    return f"{cleaned}-{digest}"


def target_dir(root: Path, targname: str) -> Path:
    """``root / safe_dirname(targname)``, checked to lie directly inside ``root``."""
    path = Path(root) / safe_dirname(targname)
    if path.parent.resolve() != Path(root).resolve():
        raise HstlcError(f"target name {targname!r} maps outside {root}")
    return path


@functools.cache
def _group_id(group: str) -> int | None:
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        logger.warning("permission group %r does not exist on this machine; group left unchanged",
                       group)
        return None


@dataclass(frozen=True)
class Permissions:
    """Mode and group to give folders and files (files lose the execute bits)."""

    mode: int = 0o770
    group: str | None = None

    @classmethod
    def from_settings(cls, settings) -> Permissions:  # type: ignore[no-untyped-def]
        return cls(mode=settings.permission_mode, group=settings.permission_group)

    def gid(self) -> int | None:
        """The group id, or ``None`` (with one warning per process) when it does not exist."""
        return None if self.group is None else _group_id(self.group)

    def apply(self, path: Path) -> None:
        """Set the mode (and group, when it exists) of ``path``."""
        path = Path(path)
        if path.is_symlink():  # chmod and chown would change the link's target
            logger.debug("%s is a symbolic link: its permissions are left alone", path)
            return
        mode = self.mode if path.is_dir() else self.mode & 0o666
        try:
            os.chmod(path, mode)
            gid = self.gid()
            if gid is not None:
                os.chown(path, -1, gid)
        except PermissionError as error:
            logger.warning("cannot set permissions of %s: %s", path, error)


def make_dir(path: Path, permissions: Permissions | None = None) -> Path:
    """Create ``path`` and its parents when missing; apply ``permissions`` to it."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if permissions is not None:
        permissions.apply(path)
    return path


_HELD: dict[Path, int] = {}  # run locks this process holds, with their depth
_HELD_GUARD = threading.Lock()


@contextmanager
def run_lock(home: Path, *, wait_s: float = 0.0, poll_s: float = 5.0) -> Iterator[Path]:
    """Hold ``<home>/.hstlc-run.lock`` for the duration of a run (one run per home).

    Re-entrant within a process (a command holding it may start a flow that takes it
    again).  When another process holds it, wait up to ``wait_s`` seconds (checking
    every ``poll_s``), then raise :class:`HstlcError` naming the holder.
    """
    import fcntl

    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    path = (home / ".hstlc-run.lock").resolve()
    with _HELD_GUARD:
        if _HELD.get(path):
            _HELD[path] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield path
        finally:
            with _HELD_GUARD:
                _HELD[path] -= 1
        return
    deadline = time.monotonic() + wait_s
    with open(path, "a+") as handle:
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                if time.monotonic() >= deadline:
                    raise HstlcError(f"another hstlc run is in progress in {home} ({holder}); "
                                     f"lock {path}") from None
                logger.info("waiting for the hstlc run in progress in %s (%s)", home, holder)
                time.sleep(min(poll_s, max(deadline - time.monotonic(), 0.0)))
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        with _HELD_GUARD:
            _HELD[path] = 1
        try:
            yield path
        finally:
            with _HELD_GUARD:
                _HELD.pop(path, None)
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def content_digest(path: Path) -> str:
    """The sha256 of a file's bytes; of a symbolic link, the sha256 of the path it holds.

    A link is never followed: what it points at may lie outside every hstlc folder, may
    not exist, or may be a folder.
    """
    path = Path(path)
    if path.is_symlink():
        return hashlib.sha256(os.fsencode(os.readlink(path))).hexdigest()
    return sha256_file(path)


def refused_destination(folder: Path, name: str, sha256: str) -> Path:
    """Where a refused file called ``name`` with content ``sha256`` goes in ``folder``.

    ``folder/<name>`` when free or holding this very content; else ``<name>.<8 hex>``
    (then the full 64 hex) of the sha256, so that a refusal never replaces another.
    """
    for candidate in (name, f"{name}.{sha256[:_HASH_CHARS]}", f"{name}.{sha256}"):
        path = Path(folder) / candidate
        if not os.path.lexists(path) or content_digest(path) == sha256:
            return path
    raise FileExistsError(f"{folder}: {name} and its content-named copies hold other content")


def sha256_file(path: Path, block: int = 1 << 20) -> str:
    """The sha256 of a file's bytes, as 64 hex digits.

    Read in ``block``-byte pieces into one reused buffer (no new bytes object per piece;
    ~7 % faster than ``read()`` here).  sha256 is what the catalogue keeps and MAST
    lists, so it is the one content hash; an event table's pass can compute the same
    digest while it reads (:class:`hstlc.io.events.FileDigest`).
    """
    digest = hashlib.sha256()
    buffer = bytearray(block)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        while count := handle.readinto(buffer):
            digest.update(view[:count])
    return digest.hexdigest()


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it into place on success.

    The temporary path does not exist yet: the caller writes it.  On error the temporary
    file is removed and ``final`` is left as it was.  A full disk raised while writing
    (often without a file name) is raised again naming ``final``.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.with_name(f".{final.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        yield temporary
        os.replace(temporary, final)
    except OSError as error:
        full = full_disk_error(error)
        if full is None and _nearly_full(final.parent):  # a library's own short-write error
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(final)) from error
        if full is not None and not full.filename:
            raise OSError(full.errno, full.strerror, str(final)) from error
        raise
    finally:
        if os.path.lexists(temporary):
            temporary.unlink()


def move_file(source: Path, destination: Path, *, overwrite: bool = False) -> Path:
    """Move a file (or a symbolic link, as a link) without ever losing it.

    Within one file system this is an atomic rename.  Across file systems the file is
    copied to a temporary name beside the destination, flushed, renamed into place,
    and only then is the source removed.  An existing destination is an error unless
    ``overwrite`` is given (then it is replaced atomically, never deleted first).
    """
    source, destination = Path(source), Path(destination)
    link = source.is_symlink()
    if not (link or source.is_file()):
        raise FileNotFoundError(f"{source}: no such file to move")
    if os.path.lexists(destination) and not overwrite:
        raise FileExistsError(f"{destination} exists; not overwriting it with {source}")
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(source, destination)
        return destination
    except OSError as error:
        if error.errno != errno.EXDEV:  # source and destination on different file systems
            raise
    with atomic_path(destination) as temporary:
        if link:  # the link itself, never what it points at
            os.symlink(os.readlink(source), temporary)
        else:
            shutil.copy2(source, temporary)
            with open(temporary, "rb+") as handle:
                os.fsync(handle.fileno())
    source.unlink()
    return destination


def sweep_debris(layout: Layout) -> list[Path]:
    """Remove the temporary files a killed run left beside its products; return them.

    Only names made by :func:`atomic_path` (``.<name>.<12 hex>.tmp``) in the
    hstlc folders are removed, and only under the run lock: no live writer owns them.
    """
    removed = []
    for folder in {p.resolve() for p in layout.folders().values()}:
        for root, _, names in os.walk(folder):
            for name in names:
                if TEMPORARY_NAME.fullmatch(name):
                    path = Path(root) / name
                    path.unlink(missing_ok=True)
                    removed.append(path)
    if removed:
        logger.warning("removed %d temporary files left by an interrupted run: %s",
                       len(removed), ", ".join(str(p) for p in sorted(removed)))
    return removed


#: errno values of a full file system or an exhausted quota.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def free_bytes(path: Path) -> int:
    """Bytes free to this user on the file system of ``path`` (or of its nearest parent)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def describe_free(path: Path) -> str:
    """``"1.8 MB free on the file system of PATH"`` (the figure as it is now)."""
    try:
        return f"{free_bytes(path) / 1e6:.1f} MB free on the file system of {path}"
    except OSError as error:
        return f"free space of {path} unknown ({error.strerror})"


def require_free_space(folders: dict[str, Path], minimum_mb: float) -> None:
    """Raise :class:`~hstlc.errors.DiskFullError` when a folder's file system is nearly full.

    ``folders`` maps a name the operator knows (a setting, "Prefect's database") to a
    folder; the first one with less than ``minimum_mb`` megabytes free is named.
    """
    for name, folder in folders.items():
        try:
            free = free_bytes(folder)
        except OSError:
            continue  # an unreadable folder is reported by whatever uses it, in its words
        if free < minimum_mb * 1e6:
            raise DiskFullError(f"{name} {folder}: only {free / 1e6:.1f} MB free on its file system, "
                                f"below the {minimum_mb:g} MB a run needs (setting min_free_mb); "
                                "free space there and run again; nothing was done")


def _nearly_full(folder: Path) -> bool:
    """Less than one FITS block (2880 bytes) free on ``folder``'s file system now."""
    try:
        return free_bytes(folder) < 2880
    except OSError:
        return False


def full_disk_error(error: BaseException) -> OSError | None:
    """The ``OSError`` of a full file system or quota in ``error`` or the errors it was
    raised from (a library may raise its own ``OSError`` while handling ENOSPC: astropy
    does); ``None`` when there is none."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in DISK_FULL_ERRNOS:
            return current
        current = current.__cause__ or current.__context__
    return None


def disk_full(error: BaseException) -> DiskFullError | None:
    """A :class:`~hstlc.errors.DiskFullError` naming the path and the free space, for an
    error caused by a full file system or quota; ``None`` for any other error."""
    full = full_disk_error(error)
    if full is None:
        return None
    where = Path(full.filename) if full.filename else None
    free = describe_free(where.parent) if where is not None else "free space unknown"
    return DiskFullError(f"no space left writing {where or 'a file'} ({free}); "
                         "free space there and run again")
