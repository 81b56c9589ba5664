"""The Prefect API of a command run: a server that answers, or a temporary one of its own.

With no ``PREFECT_API_URL``, Prefect would start a temporary server by itself.  hstlc
starts it instead (the same uvicorn application Prefect starts), so that:

* it runs in a session of its own: Ctrl-C in a terminal signals the whole foreground
  process group, and Prefect's own server died with the command's first signal, after
  which the command retried the dead server for minutes.  Here the command stops its
  flows and reports their end to a server still alive, then stops the server;
* its output goes to a log file beside the command's (``<command log>.prefect-server.log``),
  never to the terminal: a server on a full disk printed thousands of traceback lines;
* its address is in the environment before any worker process starts, so Dask workers
  report to this server instead of each starting a temporary server of their own;
* it carries the run's token, so the watchdog of :mod:`hstlc.processes` ends it even
  when the command is killed.

A ``PREFECT_API_URL`` that is set must answer before anything starts: an unreachable
one is one line naming the URL (:class:`PrefectUnreachableError`).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hstlc.errors import HstlcError

#: Seconds a configured Prefect API has to answer its health check.
HEALTH_TIMEOUT_S = 5.0
#: Seconds Prefect's log and event workers have to send what they hold at the end.
DRAIN_TIMEOUT_S = 5.0
#: Seconds the temporary server has to stop after SIGTERM, before SIGKILL.
STOP_TIMEOUT_S = 5.0


class PrefectUnreachableError(HstlcError):
    """The Prefect API the command must report to did not answer."""


def answers(api_url: str, timeout_s: float = HEALTH_TIMEOUT_S) -> str | None:
    """``None`` when the Prefect API at ``api_url`` answers its health check; else why not."""
    try:
        with urllib.request.urlopen(f"{api_url.rstrip('/')}/health", timeout=timeout_s) as reply:
            return None if reply.status == 200 else f"HTTP {reply.status}"
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code}"
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        return str(reason) or type(error).__name__


def require(api_url: str, *, temporary_hint: bool = True) -> None:
    """Raise :class:`PrefectUnreachableError` unless the API at ``api_url`` answers."""
    why = answers(api_url)
    if why is None:
        return
    hint = ("start that server, or unset PREFECT_API_URL to run on a temporary server"
            if temporary_hint else "start that server (`prefect server start`) and try again")
    raise PrefectUnreachableError(f"the Prefect server at {api_url} did not answer ({why}): {hint}")


@contextmanager
def prefect_api(configured: str | None, log_file: Path | None) -> Iterator[str]:
    """Yield the API URL the command's flows report to.

    ``configured`` (Prefect's ``PREFECT_API_URL``) must answer; without it a temporary
    server is started for the duration of the block, its URL in ``PREFECT_API_URL`` of
    this process's environment (for the workers it starts), its output beside
    ``log_file`` (``.prefect-server.log`` for ``.log``; discarded without a log file).
    """
    if configured:
        require(configured)
        yield configured
        return
    server = _start(log_file)
    previous = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = server.url
    try:
        yield server.url
    finally:
        if previous is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = previous
        _drain()
        server.stop()


class _Server:
    """A started uvicorn process serving Prefect's API on 127.0.0.1."""

    def __init__(self, process: subprocess.Popen[bytes], port: int) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}/api"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _start(log_file: Path | None) -> _Server:
    """Start the server and wait until it answers (Prefect's start-up timeout setting)."""
    timeout_s = float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120"))
    output = log_file.with_suffix(".prefect-server.log") if log_file is not None else Path(os.devnull)
    deadline = time.monotonic() + timeout_s
    for _ in range(3):  # the free port found may be taken before uvicorn binds it
        port = _free_port()
        with open(output, "ab") as sink:
            process = subprocess.Popen(_command(port), env=_environment(), stdin=subprocess.DEVNULL,
                                       stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
        server = _Server(process, port)
        while time.monotonic() < deadline and process.poll() is None:
            if answers(server.url, timeout_s=1.0) is None:
                return server
            time.sleep(0.1)
        if process.poll() is None:  # still starting at the deadline
            server.stop()
            raise HstlcError(f"Prefect's temporary server did not answer within {timeout_s:.0f} s "
                             f"(setting PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS); "
                             f"its output: {output}")
        if process.returncode != 3:  # uvicorn's exit code when the port was taken
            break
    raise HstlcError(f"Prefect's temporary server ended at start-up (exit code "
                     f"{process.returncode}); its output: {output}")


def _drain() -> None:
    """Send the logs and events Prefect still holds to the server before it stops."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        worker.drain_all(timeout=DRAIN_TIMEOUT_S)


def _command(port: int) -> list[str]:
    """The uvicorn command of Prefect's API application (as Prefect starts it)."""
    return [sys.executable, "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "error", "--lifespan", "on"]


def _environment() -> dict[str, str]:
    """This process's environment, with Prefect's switches for a temporary server."""
    env = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    env.update(PREFECT_UI_ENABLED="0", PREFECT__SERVER_EPHEMERAL="1", PREFECT__SERVER_FINAL="1")
    return env


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
