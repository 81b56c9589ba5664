"""The processes a run starts end with it, even when it is killed; signals stop a run.

Prefect's temporary server (uvicorn) is a child process that survives a parent killed
with SIGKILL.  :func:`end_children_with_this_process` gives the run a token in its
environment (:data:`hstlc.config.RUN_TOKEN_ENV`), which every child inherits, and starts
a watchdog that ends every process carrying the token once the run's process has ended,
however it ended.  Linux only (it reads ``/proc``); elsewhere a no-op.

:func:`stop_on_signals` makes SIGINT (Ctrl-C) and SIGTERM stop a command within
:data:`STOP_GRACE_S`: :class:`Interrupted` in the main thread, :func:`stop_reason` for
the loops of worker threads, and an end at the deadline whatever still runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from hstlc.config import RUN_TOKEN_ENV

#: Seconds a process of an ended run has to stop after SIGTERM, before SIGKILL.
CHILD_GRACE_S = 10.0
_WATCHDOG: list[subprocess.Popen[bytes]] = []  # the watchdog of this process, if started


def end_children_with_this_process() -> None:
    """Make sure every process this run starts from now on ends when this process ends.

    Prefect's temporary server (uvicorn) is a child process that survives a parent
    killed with SIGKILL.  Here the run gets a token in its environment, which every
    child inherits, and a watchdog process that holds the read end of a pipe from this
    process: the pipe closes when this process ends, however it ends, and the watchdog
    then ends every process carrying the token (SIGTERM, then SIGKILL after
    :data:`CHILD_GRACE_S`).  On a normal exit Prefect has already stopped its server
    and the watchdog finds nothing.  Needs ``/proc`` (Linux); elsewhere a no-op.
    """
    if _WATCHDOG or not Path("/proc/self/environ").exists():
        return
    token = uuid.uuid4().hex
    watchdog_env = {k: v for k, v in os.environ.items() if k != RUN_TOKEN_ENV}
    _WATCHDOG.append(subprocess.Popen(
        [sys.executable, "-c", "import sys; from hstlc.processes import watch; watch(sys.argv[1])",
         token],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=watchdog_env, start_new_session=True))
    os.environ[RUN_TOKEN_ENV] = token


def watch(token: str) -> None:
    """The watchdog: wait until the run's pipe closes, then end the run's processes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.stdin.buffer.read()  # returns at end of file: the run's process has ended
    end_processes(token)


def processes_with(token: str) -> list[int]:
    """Ids of the live processes of the run ``token`` (its :data:`RUN_TOKEN_ENV`)."""
    return processes_carrying(RUN_TOKEN_ENV, token)


def processes_carrying(variable: str, value: str) -> list[int]:
    """Ids of the live processes (not this one) whose environment has ``variable=value``."""
    marker = f"{variable}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()  # empty for a zombie
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def end_processes(token: str, grace_s: float = CHILD_GRACE_S) -> list[int]:
    """SIGTERM every process of the run ``token``, SIGKILL what is left after ``grace_s``.

    Returns the ids that were signalled.
    """
    signalled = processes_with(token)
    for pid in signalled:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while processes_with(token) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in processes_with(token):
        _signal(pid, signal.SIGKILL)
    return signalled


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:  # ended meanwhile
        pass


# -- stopping on SIGINT and SIGTERM ---------------------------------------------------------

#: Seconds an interrupted command has to stop by itself before it is ended at once.
STOP_GRACE_S = 10.0
_STOP: list[str] = []  # the reason to stop, once asked
_STOP_LOCK = threading.Lock()


class Interrupted(KeyboardInterrupt):
    """SIGINT (Ctrl-C) or SIGTERM asked the command to stop."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + the signal's number (130 for Ctrl-C)."""
        return 128 + self.signum


def request_stop(reason: str) -> None:
    """Ask this process's loops to stop before their next dataset, saying why.

    The first reason given is kept (a full disk, then the signals that follow it).
    """
    with _STOP_LOCK:
        if not _STOP:
            _STOP.append(reason)


def stop_reason() -> str | None:
    """Why this process was asked to stop (:func:`request_stop`), or ``None``."""
    return _STOP[0] if _STOP else None


def clear_stop() -> None:
    """Forget a request to stop (a new command starts)."""
    with _STOP_LOCK:
        _STOP.clear()


@contextmanager
def stop_on_signals(last_words: Callable[[int], object], grace_s: float = STOP_GRACE_S) -> Iterator[None]:
    """Turn SIGINT and SIGTERM into :class:`Interrupted`, with a deadline.

    The first signal asks the loops to stop (:func:`request_stop`: they stop between datasets),
    raises :class:`Interrupted` in the main thread, and starts a timer: a command still
    running ``grace_s`` later (a thread stuck in I/O, a library retrying a dead server)
    calls ``last_words(signum)`` and ends at once with ``128 + signum``.  A second signal
    ends it at once the same way.  Ending at once is safe by the pipeline's design: every
    product is written under a temporary name and renamed, every catalogue change is one
    transaction, and an input moves only after the catalogue knows where it goes.
    Handlers are installed only in the main thread; elsewhere this does nothing.  The
    deadline, once started, outlives the block: it bounds the process's exit too.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def end_now(signum: int) -> None:
        try:
            last_words(signum)
        finally:
            os._exit(128 + signum)

    def handler(signum: int, frame: object) -> None:
        if interrupted:
            end_now(signum)
        interrupted.append(signum)
        request_stop(f"interrupted ({signal.Signals(signum).name})")
        timer = threading.Timer(grace_s, end_now, args=(signum,))
        timer.daemon = True
        timer.start()
        raise Interrupted(signum)

    interrupted: list[int] = []
    clear_stop()
    previous = {signum: signal.signal(signum, handler) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:  # the request to stop stays: worker threads may still be finishing
        for signum, old in previous.items():
            signal.signal(signum, old)
