"""Logging of hstlc commands: one file per run under ``logs/`` plus the terminal.

The log file is the record of a command: the versions and the settings (secrets
masked), every record of the ``hstlc`` loggers, of the loggers :func:`also_log` adds
(Prefect's flow and task runs, Dask), every line :func:`report` shows the operator,
and the traceback of anything unexpected.
"""

from __future__ import annotations

import datetime as dt
import logging
import platform
import sys
import time
from pathlib import Path

import astropy
import numpy
import sqlalchemy

from hstlc._version import __version__

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
#: The logger of what goes to the file only: terminal lines (:func:`report`), settings,
#: tracebacks.
RECORD_LOGGER = "hstlc.record"
logging.getLogger(RECORD_LOGGER).propagate = False  # never the terminal, even before set-up
logging.getLogger(RECORD_LOGGER).addHandler(logging.NullHandler())
#: An error on the terminal, as the command line prints its other errors.
TERMINAL_FORMAT = "hstlc: %(message)s"


def versions() -> dict[str, str]:
    """Versions of Python and the libraries whose behaviour shapes the results."""
    return {
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "astropy": astropy.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "hstlc": __version__,
    }


def setup_command_logging(
    command: str, log_dir: Path, *, level: int = logging.INFO, stderr: bool | str = True
) -> Path:
    """Log the ``hstlc`` logger to ``log_dir/<command>-<UTC timestamp>.log`` and stderr.

    ``stderr="first"`` writes the versions line to stderr, then only the errors that no
    other handler (Prefect's console, once Prefect is imported) shows on the terminal:
    an error that ends the command is never only in the file.  ``False``: none.
    The first record lists the versions of Python, numpy, astropy, SQLAlchemy and hstlc.
    Returns the log file's path.
    """
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    path = log_dir / f"{command}-{stamp}.log"
    formatter = _RunFormatter(FORMAT)
    formatter.converter = _utc_converter
    file_handler = logging.FileHandler(path, encoding="utf-8")
    stream_handler = logging.StreamHandler(sys.stderr)
    logger = logging.getLogger("hstlc")
    for name in (*_ALSO, "hstlc", RECORD_LOGGER):
        for handler in list(logging.getLogger(name).handlers):
            if getattr(handler, "_hstlc_command", False):
                logging.getLogger(name).removeHandler(handler)
                handler.close()
    _ALSO.clear()
    handlers: tuple[logging.Handler, ...] = (file_handler, stream_handler) if stderr else (file_handler,)
    for handler in handlers:
        handler.setFormatter(formatter)
        handler._hstlc_command = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(level)
    record_logger = logging.getLogger(RECORD_LOGGER)
    record_logger.setLevel(logging.DEBUG)
    record_logger.addHandler(file_handler)
    _FILE[:] = [file_handler]
    text = ", ".join(f"{name} {value}" for name, value in versions().items())
    logger.info("%s started; versions: %s", command, text)
    if stderr == "first":
        stream_handler.setFormatter(logging.Formatter(TERMINAL_FORMAT))
        stream_handler.addFilter(_UnseenErrors(stream_handler))
    return path


_FILE: list[logging.FileHandler] = []  # the current command's log file handler
_ALSO: list[str] = []  # the loggers also_log added it to


def log_file() -> Path | None:
    """The current command's log file, if it has one."""
    return Path(_FILE[0].baseFilename) if _FILE else None


def also_log(*names: str) -> None:
    """Write the records of the loggers ``names`` (``"prefect"``, ``"distributed"``) to the
    current command's log file too.

    Call it after the library has configured its own logging (Prefect's set-up replaces
    the handlers of its loggers when it is imported).
    """
    for name in names:
        if _FILE and name not in _ALSO:
            logging.getLogger(name).addHandler(_FILE[0])
            _ALSO.append(name)


def report(line: str, *, error: bool = False) -> None:
    """Show ``line`` to the operator (stdout, or stderr for an ``error``) and record it in
    the log file."""
    print(line, file=sys.stderr if error else sys.stdout, flush=True)
    logging.getLogger(RECORD_LOGGER).log(logging.ERROR if error else logging.INFO, "%s", line)


def record(message: str, *args: object, exc_info: BaseException | None = None) -> None:
    """Write ``message`` (and a traceback) to the log file only."""
    logging.getLogger(RECORD_LOGGER).info(message, *args, exc_info=exc_info)


class _RunFormatter(logging.Formatter):
    """:data:`FORMAT`, with the flow or task run a record comes from (Prefect's records
    carry ``task_run_name`` or ``flow_run_name``)."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        text = super().formatMessage(record)
        for kind, attribute in (("Task run", "task_run_name"), ("Flow run", "flow_run_name")):
            run = getattr(record, attribute, None)
            if run:
                head, _, message = text.partition(": ")
                return f"{head}: {kind} {run!r} - {message}"
        return text


class _UnseenErrors(logging.Filter):
    """Pass errors that no other handler writes to the terminal (stderr or stdout)."""

    def __init__(self, own: logging.Handler) -> None:
        super().__init__()
        self._own = own

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR:
            return False
        return not any(_on_terminal(handler) for handler in _handlers_of(record.name)
                       if handler is not self._own)


def _handlers_of(name: str) -> list[logging.Handler]:
    """The handlers a record of logger ``name`` reaches (following propagation)."""
    handlers: list[logging.Handler] = []
    current: logging.Logger | None = logging.getLogger(name)
    while current is not None:
        handlers.extend(current.handlers)
        current = current.parent if current.propagate else None
    return handlers


def _on_terminal(handler: logging.Handler) -> bool:
    if isinstance(handler, logging.FileHandler) or not isinstance(handler, logging.StreamHandler):
        return False
    terminals = (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__)
    return any(handler.stream is stream for stream in terminals if stream is not None)


def _utc_converter(timestamp: float | None) -> time.struct_time:
    return dt.datetime.fromtimestamp(timestamp or 0, dt.UTC).timetuple()
