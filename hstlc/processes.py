"""The processes a run starts end with it, even when it is killed.

Prefect's temporary server (uvicorn) is a child process that survives a parent killed
with SIGKILL.  :func:`end_children_with_this_process` gives the run a token in its
environment (:data:`hstlc.config.RUN_TOKEN_ENV`), which every child inherits, and starts
a watchdog that ends every process carrying the token once the run's process has ended,
however it ended.  Linux only (it reads ``/proc``); elsewhere a no-op.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
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
