"""The ``hstlc`` command line and the 2016-named console scripts.

Every command but ``config show`` logs to ``logs/<command>-<UTC timestamp>.log``,
starting with the versions of Python, numpy, astropy, SQLAlchemy and hstlc and the
settings.  An invalid setting prints one line naming the key, the value and what is
expected; an error that ends a command always reaches the terminal, once, as one line
(docs/OPERATIONS.md lists them).  Exit codes: :data:`EXIT_OK`, :data:`EXIT_FAILED`,
:data:`EXIT_USAGE`, :data:`EXIT_BUSY`, and 128 + the signal's number when SIGINT (130)
or SIGTERM (143) stopped the command.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence

from sqlalchemy.exc import SQLAlchemyError

from hstlc.config import Settings, load_settings
from hstlc.errors import ConfigurationError, HstlcError

logger = logging.getLogger("hstlc.cli")

Handler = Callable[[argparse.Namespace, Settings], int]

#: Exit codes of every hstlc command (documented in README and docs/RELIABILITY.md).
EXIT_OK = 0
EXIT_FAILED = 1  # a dataset or a composite failed, or an error ended the command
EXIT_USAGE = 2  # an invalid setting or argument
EXIT_BUSY = 3  # another run holds the home: nothing was done


class RunInProgressError(HstlcError):
    """Another hstlc run holds the home's run lock; this one did nothing."""


# -- handlers -----------------------------------------------------------------------------


def _config_show(args: argparse.Namespace, settings: Settings) -> int:
    print(json.dumps(settings.masked(), indent=2))
    return EXIT_OK


def _engine(settings: Settings):  # type: ignore[no-untyped-def]
    from hstlc.catalogue.engine import create_catalogue_engine

    return create_catalogue_engine(settings.database_url)


def _db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    """Migrate to the revision, then repair what drifted and can be created safely."""
    from hstlc.catalogue.migrate import head_revision, repair_schema, upgrade
    from hstlc.config import mask_url
    from hstlc.logs import report

    engine = _engine(settings)
    try:
        before, after = upgrade(engine, args.revision)
        # Only at the head: at an older revision the models differ from it on purpose.
        repair = repair_schema(engine) if after == head_revision() else None
    finally:
        engine.dispose()
    where = mask_url(settings.database_url)
    report(f"{where}: schema at revision {after} (was {before or 'empty'})")
    for line in repair.repaired if repair is not None else ():
        report(f"  {line}")
    for line in repair.remaining if repair is not None else ():
        report(f"hstlc: {line}", error=True)
    return EXIT_FAILED if repair is not None and repair.remaining else EXIT_OK


def _db_check(args: argparse.Namespace, settings: Settings) -> int:
    """Compare the catalogue with the models: the revision, then each difference in words."""
    from hstlc.catalogue.migrate import current_revision, head_revision, schema_differences
    from hstlc.logs import report

    engine = _engine(settings)
    try:
        current, head = current_revision(engine), head_revision()
        differences = schema_differences(engine) if current == head else []
    finally:
        engine.dispose()
    if current != head:
        report(f"hstlc: schema at revision {current or 'none'}, expected {head}: run `hstlc db upgrade`",
               error=True)
        return EXIT_FAILED
    for line in differences:
        report(f"hstlc: {line}", error=True)
    if differences:
        report(f"{len(differences)} differences from the models: `hstlc db upgrade` repairs what "
               "it can and says what to do for the rest")
        return EXIT_FAILED
    report(f"schema at revision {head}; no difference from the models")
    return EXIT_OK


def _confirm(question: str, assume_yes: bool) -> bool:
    if assume_yes:
        return True
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        answer = ""
    return answer.strip().lower() in {"y", "yes"}


def _db_reset(args: argparse.Namespace, settings: Settings) -> int:
    from hstlc.admin import reset_database, tables_to_reset
    from hstlc.catalogue.migrate import upgrade

    try:
        tables = tables_to_reset(args.table, keep_bad_data=args.keep_bad_data)
    except ValueError as error:
        print(str(error), file=sys.stderr)
        return EXIT_USAGE
    if not _confirm(f"Delete every row of {', '.join(tables)}?", args.yes):
        print("reset cancelled; nothing changed")
        return EXIT_FAILED
    engine = _engine(settings)
    try:
        upgrade(engine)
        counts = reset_database(engine, tables)
    finally:
        engine.dispose()
    for name, count in counts.items():
        print(f"{name}: {count} rows deleted")
    return EXIT_OK


def _fs_reset(args: argparse.Namespace, settings: Settings) -> int:
    from hstlc.admin import apply_filesystem_reset, plan_filesystem_reset
    from hstlc.fs import Layout

    layout = Layout.from_settings(settings)
    plan = plan_filesystem_reset(layout)
    lines = plan.describe()
    for line in lines:
        print(("would " if args.dry_run else "") + line)
    if not lines:
        print("nothing to do")
    if args.dry_run or not lines:
        return EXIT_OK
    question = f"Move {len(plan.moves)} inputs to ingest/ and remove {len(plan.removals)} products?"
    if not _confirm(question, args.yes):
        print("reset cancelled; nothing changed")
        return EXIT_FAILED
    apply_filesystem_reset(layout, plan)
    print(f"moved {len(plan.moves)} inputs, kept {len(plan.kept)}, removed {len(plan.removals)}")
    return EXIT_OK


# -- parsers ------------------------------------------------------------------------------


def _add_db_reset_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("table", nargs="?", help="one table to empty (default: all)")
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    parser.add_argument(
        "--keep-bad-data", action="store_true", help="keep the bad_data rows across the reset"
    )
    parser.set_defaults(handler=_db_reset, command_name="hstlc-db-reset")


def _add_fs_reset_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="print the plan; change nothing")
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    parser.set_defaults(handler=_fs_reset, command_name="hstlc-fs-reset")


def build_parser() -> argparse.ArgumentParser:
    """The ``hstlc`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="hstlc", description="Lightcurves and a catalogue from HST TIME-TAG data."
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="log at DEBUG level")
    commands = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")

    config = commands.add_parser("config", help="show the effective settings")
    config_commands = config.add_subparsers(dest="action", required=True)
    show = config_commands.add_parser("show", help="print settings (secrets masked)")
    show.set_defaults(handler=_config_show, command_name="hstlc-config-show", log_file=False)

    db = commands.add_parser("db", help="catalogue database")
    db_commands = db.add_subparsers(dest="action", required=True)
    up = db_commands.add_parser("upgrade", help="create or migrate the schema")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(handler=_db_upgrade, command_name="hstlc-db-upgrade")
    check = db_commands.add_parser("check", help="compare the schema with the models")
    check.set_defaults(handler=_db_check, command_name="hstlc-db-check")
    _add_db_reset_arguments(db_commands.add_parser("reset", help="empty all tables or one"))

    fs = commands.add_parser("fs", help="filesystem")
    fs_commands = fs.add_subparsers(dest="action", required=True)
    _add_fs_reset_arguments(
        fs_commands.add_parser("reset", help="move inputs back to ingest/, empty outputs")
    )
    for register in _command_plugins():
        register(commands)
    return parser


def _command_plugins() -> list[Callable[[argparse._SubParsersAction], None]]:
    """Subcommands contributed by other installed packages (group ``hstlc.commands``).

    The orchestration commands (``run``, ``ingest``, ``serve`` ...) live with the
    Prefect flows, so that this library never imports Prefect.
    """
    from importlib.metadata import entry_points

    return [entry.load() for entry in entry_points(group="hstlc.commands")]


# -- entry points -------------------------------------------------------------------------


def _fail(error: BaseException | str, code: int) -> int:
    """Each line of an error on stderr (and in the log file), prefixed with the program name."""
    from hstlc.logs import report

    text = str(error)
    for line in text.splitlines() or [type(error).__name__]:
        report(f"hstlc: {line}", error=True)
    return code


def run(args: argparse.Namespace, command_name: str | None = None) -> int:
    """Load settings, set up logging, call the handler, turn errors into exit codes.

    Every error that ends a command is one line on the terminal (what failed, where,
    what to do) and in the log file; an unexpected one also leaves its traceback in the
    log file.  SIGINT and SIGTERM stop the command within a few seconds
    (:func:`hstlc.processes.stop_on_signals`): it says "interrupted" and what the
    command reports of its progress (``args.progress``, set by the handler, if any).
    """
    from hstlc.logs import record, setup_command_logging
    from hstlc.processes import Interrupted, stop_on_signals

    try:
        settings = load_settings()
    except ConfigurationError as error:
        return _fail(error, EXIT_USAGE)
    name = command_name or args.command_name
    path = None
    if name is not None and getattr(args, "log_file", True):
        level = logging.DEBUG if getattr(args, "verbose", False) else logging.INFO
        try:
            path = setup_command_logging(
                name, settings.folder("log_dir"), level=level,
                stderr=True if getattr(args, "log_to_stderr", True) else "first",
            )
        except OSError as error:
            return _fail(f"cannot write the log file in {settings.log_dir} ({_os_error(error)}); "
                         "make that folder writable or set log_dir elsewhere", EXIT_FAILED)
        record("settings: %s", json.dumps(settings.masked(), default=str))
    try:
        with stop_on_signals(lambda signum: _fail(_interrupted(args, signum), 128 + signum)):
            return int(args.handler(args, settings))
    except Interrupted as error:
        return _fail(_interrupted(args, error.signum), error.exit_code)
    except RunInProgressError as error:
        return _fail(error, EXIT_BUSY)
    except ConfigurationError as error:
        return _fail(error, EXIT_USAGE)
    except HstlcError as error:
        return _fail(error, EXIT_FAILED)
    except SQLAlchemyError as error:
        from hstlc.config import mask_url

        cause = getattr(error, "orig", None) or error
        first = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        return _fail(f"catalogue database {mask_url(settings.database_url)}: {first}", EXIT_FAILED)
    except OSError as error:
        from hstlc.fs import disk_full

        return _fail(disk_full(error) or _os_error(error), EXIT_FAILED)
    except Exception as error:  # a defect: one line here, the traceback in the log file
        record("unexpected error", exc_info=error)
        where = f"; the traceback is in {path}" if path is not None else ""
        return _fail(f"unexpected error: {type(error).__name__}: {error}{where}", EXIT_FAILED)


def _interrupted(args: argparse.Namespace, signum: int) -> str:
    """The line of an interrupted command: the signal and what it had done."""
    import signal

    progress = getattr(args, "progress", None)
    done = f": {progress()}" if callable(progress) else ""
    return f"interrupted ({signal.Signals(signum).name}){done}"


def _os_error(error: OSError) -> str:
    """``<path>: <strerror>`` for a file-system error that ended a command."""
    what = error.strerror or str(error) or type(error).__name__
    return f"{error.filename}: {what}" if error.filename else what


def main(argv: Sequence[str] | None = None) -> int:
    """``hstlc`` console script."""
    args = build_parser().parse_args(argv)
    return run(args)


def _legacy(prog: str, add_arguments: Callable[[argparse.ArgumentParser], None], description: str):  # type: ignore[no-untyped-def]
    def entry(argv: Sequence[str] | None = None) -> int:
        parser = argparse.ArgumentParser(prog=prog, description=description)
        add_arguments(parser)
        return run(parser.parse_args(argv), command_name=prog)

    entry.__name__ = prog
    entry.__doc__ = f"``{prog}`` console script (2016 name)."
    return entry


reset_hstlc_database = _legacy(
    "reset_hstlc_database", _add_db_reset_arguments, "Empty all catalogue tables or one."
)
reset_hstlc_filesystem = _legacy(
    "reset_hstlc_filesystem",
    _add_fs_reset_arguments,
    "Move ingested inputs back to ingest/ and empty outputs/ and plots/.",
)

if __name__ == "__main__":
    sys.exit(main())
