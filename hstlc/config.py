"""Settings for hstlc (pydantic-settings).

Sources, highest priority first:

1. environment variables ``HSTLC_<KEY>`` (``HSTLC_HOME_DIR``, ``HSTLC_DB_CONNECTION_STRING``;
   nested groups with ``__``, e.g. ``HSTLC_HLSP__LEAD``);
2. a YAML file: the path in ``HSTLC_CONFIG``, else ``./hstlc.yaml`` when it exists;
3. the defaults below.

Keys keep the 2016 names (``db_connection_string``, ``home_dir``, ``ingest_dir``, ...).
Every folder defaults to a sub-folder of ``home_dir`` and the database to a SQLite
file inside it, so a new user needs no configuration at all.

Settings are read once, at the edge (command line, Prefect task), and passed down as
plain values; library functions never read them on their own.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    YamlConfigSettingsSource,
)

from hstlc.errors import ConfigurationError

ENV_PREFIX = "HSTLC_"
CONFIG_ENV = "HSTLC_CONFIG"
SECRET_KEYS = frozenset({"db_connection_string"})
#: Secrets shown as this, whole (a token has no part that may be shown).
OPAQUE_SECRET_KEYS = frozenset({"mast_token"})
MASKED = "***"
#: HSTLC_* variables that are no setting: the settings file, the demo set, the tests' real
#: files, and the token a run gives the processes it starts (:mod:`hstlc.processes`).
RUN_TOKEN_ENV = "HSTLC_RUN_TOKEN"
OTHER_ENV = frozenset({CONFIG_ENV, "HSTLC_DEMO_DATA", "HSTLC_REAL_DATA", RUN_TOKEN_ENV})

logger = logging.getLogger(__name__)
DEFAULT_CONFIG_FILE = "hstlc.yaml"
#: Longest time span (s) of one exposure's EXPTIME, GTIs or event times: 3 days.  No HST
#: TIME-TAG exposure comes near it; a file beyond it is refused before any time grid is made.
DEFAULT_MAX_TIME_SPAN_S = 259_200.0
#: MAST's public web API.
DEFAULT_MAST_URL = "https://mast.stsci.edu"

#: What a database URL must look like, and the dialects hstlc is used with.
URL_EXPECTED = ("a SQLAlchemy database URL such as sqlite:///path/hstlc.db or "
                "postgresql+psycopg2://user:password@host:5432/hstlc")
DIALECT_EXPECTED = "a dialect SQLAlchemy can load, such as sqlite or postgresql (postgresql+psycopg2)"

#: Folder keys and their default name under ``home_dir``.
FOLDERS: dict[str, str] = {
    "ingest_dir": "ingest",
    "filesystem_dir": "filesystem",
    "outputs_dir": "outputs",
    "composite_dir": "outputs/composite",
    "log_dir": "logs",
    "download_dir": "download",
    "plot_dir": "plots",
    "bad_data_dir": "bad_data",
}


#: Folders whose content a filesystem reset removes, and folders it must never touch.
PRODUCT_FOLDERS = ("outputs_dir", "composite_dir", "plot_dir")
INPUT_FOLDERS = ("ingest_dir", "filesystem_dir", "bad_data_dir", "download_dir", "log_dir")


class HlspSettings(BaseModel):
    """Keywords of the high-level science product (composite lightcurves)."""

    name: str = Field("HSTLC", description="HLSPNAME: name of the high-level science product.")
    lead: str = Field("hstlc team", description="HLSPLEAD: principal investigator of the HLSP.")
    proposid: str = Field(
        "HSTLC", description="PROPOSID written in HLSP headers (the HLSP program identifier)."
    )
    version: str = Field("v1", description="Version tag in HLSP file names.")


def _config_file() -> Path | None:
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigurationError(f"{CONFIG_ENV}={explicit!r}: no such file")
        return path
    local = Path(DEFAULT_CONFIG_FILE)
    return local if local.is_file() else None


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity; the machine's count elsewhere)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class Settings(BaseSettings):
    """Every setting of hstlc, with its source resolved."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    home_dir: Path = Field(Path("hstlc-data"), description="Root of every hstlc folder.")
    db_connection_string: SecretStr | None = Field(
        None,
        description=(
            "SQLAlchemy URL of the catalogue database; default: SQLite file "
            "<home_dir>/hstlc.db. PostgreSQL: postgresql+psycopg2://user:pw@host:port/db."
        ),
    )
    ingest_dir: Path | None = Field(None, description="New input files wait here.")
    filesystem_dir: Path | None = Field(None, description="Ingested inputs, by target.")
    outputs_dir: Path | None = Field(None, description="Individual lightcurves, by target.")
    composite_dir: Path | None = Field(None, description="Composite (HLSP) lightcurves.")
    log_dir: Path | None = Field(None, description="One log file per command run.")
    download_dir: Path | None = Field(None, description="MAST downloads land here.")
    plot_dir: Path | None = Field(None, description="Plots and web pages.")
    bad_data_dir: Path | None = Field(None, description="Rejected input files.")

    permission_group: str | None = Field(
        None, description="Group given to products and moved files (none: leave as is)."
    )
    permission_mode: int = Field(
        770,  # octal digits, as in YAML and the environment: 770 means rwxrwx---
        description="Mode of folders, as octal digits (770); files get it without execute bits.",
    )
    lightcurve_step: float = Field(2.0, gt=0, description="Lightcurve bin step in seconds.")
    bad_proposals: Annotated[list[int], NoDecode] = Field(
        default_factory=list, description="Proposal IDs whose data are refused (Bad Proposal)."
    )
    max_time_span_s: float = Field(
        DEFAULT_MAX_TIME_SPAN_S, gt=0,
        description="Longest EXPTIME, GTI span or event-time range (s) of one exposure; "
                    "longer files are refused as 'Time span too long'.",
    )
    stats_min_bins: int = Field(
        20, ge=2, description="Fewest exposed bins a lightcurve needs for statistics (else a "
                              "stats row with the reason).")
    fap_threshold: float = Field(
        1e-3, gt=0, lt=1, description="A lightcurve is periodic when its period search's "
                                      "false-alarm probability is below this.")
    deliver_min_counts: float = Field(
        1000.0, ge=0, description="Fewest total counts of a composite delivered as an HLSP "
                                  "(2016 'deliver'; every member ingested without error too).")
    interesting_poisson_factor: float = Field(
        3.0, gt=0, description="The site's 'interesting' view lists lightcurves whose "
                               "poisson_factor (stdev / sqrt(mean) of counts) is at least this, ...")
    interesting_fap: float = Field(
        1e-3, gt=0, le=1, description="... or whose period search's false-alarm probability is at "
                                      "most this, ...")
    interesting_flares: int = Field(
        1, ge=1, description="... or that have at least this many flares.")
    site_top_targets: int = Field(
        25, ge=1, description="Targets shown in the site's exposure-time chart (the longest "
                              "exposed).")
    min_free_mb: float = Field(
        200.0, ge=0,
        description="Free space (MB) a run needs on the file systems it writes to; below "
                    "it the run does not start (and stops if a disk fills).",
    )
    workers: int = Field(
        default_factory=usable_cores, ge=1, le=256,
        description="Parallel workers (threads or processes) for per-file tasks; default: "
                    "the cores this process may use.")
    task_runner: Literal["auto", "threads", "dask"] = Field(
        "auto", description="Where per-file tasks run: auto (threads for a small run, a "
                            "local cluster of workers processes for a large one), threads, "
                            "or dask (a Dask cluster whatever the size).")
    dask_address: str | None = Field(
        None, description="Dask scheduler address (tcp://host:8786); none: a local cluster."
    )
    batch_size: int = Field(
        50, ge=1, description="Datasets per task in batch mode (large backfills)."
    )
    batch_threshold: int = Field(
        200, ge=1, description="Above this many datasets the ingest runs in batches."
    )
    nightly_cron: str = Field(
        "0 6 * * *", description="Cron schedule (UTC) of the nightly pipeline deployment."
    )
    mast_url: str = Field(
        DEFAULT_MAST_URL,
        description="Base URL of MAST's web API (the HST mission search, product lists and "
                    "file retrieval hang under it).",
    )
    mast_token: SecretStr | None = Field(
        None,
        description="MAST API token, for exclusive-access data (a secret: shown as ***, never "
                    "logged); none: public data only.",
    )
    download_limit: int = Field(
        500, ge=1, description="Most datasets (exposures) one download run fetches."
    )
    download_workers: int = Field(
        4, ge=1, le=32, description="Files downloaded at the same time."
    )
    download_timeout_s: float = Field(
        120.0, gt=0,
        description="Seconds a MAST request may wait to connect, or between two reads, "
                    "before it is retried.",
    )
    download_retries: int = Field(
        5, ge=0, le=20,
        description="Retries of a MAST request after a timeout, a reset connection, 429 or "
                    "5xx (exponential backoff; Retry-After honoured).",
    )
    download_backoff_s: float = Field(
        1.0, ge=0,
        description="Wait (s) before the first retry of a MAST request; doubled each retry "
                    "(at most 60 s).",
    )
    download_cron: str = Field(
        "0 5 * * *",
        description="Cron schedule (UTC) of the scheduled download deployment; set it before "
                    "nightly_cron.",
    )
    reference_dir: Path | None = Field(
        None,
        description="Folder of HST reference files (lref/oref); none: calibrate from x1d files.",
    )
    hlsp: HlspSettings = Field(
        default_factory=HlspSettings,  # type: ignore[arg-type]
        description="HLSP keywords.",
    )

    @field_validator("permission_mode", mode="before")
    @classmethod
    def _octal_mode(cls, value: Any) -> Any:
        # YAML reads 770 as the integer seven hundred and seventy: modes are octal digits.
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str):
            text = value.strip().lower().removeprefix("0o")
            try:
                value = int(text, 8)
            except ValueError:
                raise ValueError("an octal file mode such as 770") from None
        if isinstance(value, int) and not 0 <= value <= 0o7777:
            raise ValueError("an octal file mode between 000 and 7777")
        return value

    @field_serializer("permission_mode")
    def _show_mode(self, value: int) -> str:
        return f"{value:o}"

    @field_validator("db_connection_string", mode="before")
    @classmethod
    def _database_url(cls, value: Any) -> Any:
        if value is None:
            return value
        text = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(text)
        except (ArgumentError, ValueError):  # ValueError: e.g. a port that is not a number
            raise ValueError(URL_EXPECTED) from None
        try:
            url.get_dialect()  # the dialect class only: its database driver is not imported
        except ArgumentError:  # NoSuchModuleError: no dialect or driver of that name
            raise ValueError(f"{DIALECT_EXPECTED}; it cannot load {url.drivername!r}") from None
        return value

    @field_validator("mast_url")
    @classmethod
    def _mast_url(cls, value: str) -> str:
        text = value.strip().rstrip("/")
        scheme, _, rest = text.partition("://")
        if scheme.lower() not in ("http", "https") or not rest or "?" in rest or "#" in rest:
            raise ValueError("an http or https URL such as https://mast.stsci.edu")
        return text

    @field_validator("bad_proposals", mode="before")
    @classmethod
    def _proposal_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip().removeprefix("[").removesuffix("]")
            return [item for item in text.replace(",", " ").split() if item]
        if isinstance(value, int):
            return [value]
        return value

    @model_validator(mode="after")
    def _resolve_folders(self) -> Settings:
        home = self.home_dir.expanduser().absolute()
        object.__setattr__(self, "home_dir", home)
        for key, name in FOLDERS.items():
            value = getattr(self, key)
            path = home / name if value is None else value.expanduser().absolute()
            object.__setattr__(self, key, path)
        for product in PRODUCT_FOLDERS:
            for kept in INPUT_FOLDERS:
                inner, outer = Path(getattr(self, kept)), Path(getattr(self, product))
                if inner == outer or inner.is_relative_to(outer):
                    raise ValueError(
                        f"{kept} ({inner}) must not lie inside {product} ({outer}): "
                        f"products are emptied by a filesystem reset, inputs never"
                    )
        if self.db_connection_string is None:
            url = f"sqlite:///{home / 'hstlc.db'}"
            object.__setattr__(self, "db_connection_string", SecretStr(url))
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = _config_file()
        if config_file is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)

    # -- conveniences ------------------------------------------------------------------

    @property
    def database_url(self) -> str:
        """The catalogue database URL (a secret: never print it)."""
        assert self.db_connection_string is not None
        return self.db_connection_string.get_secret_value()

    def folder(self, key: str) -> Path:
        """Return the resolved folder for ``key`` (one of :data:`FOLDERS`)."""
        if key not in FOLDERS:
            raise KeyError(key)
        return Path(getattr(self, key))

    def masked(self) -> dict[str, Any]:
        """Effective settings as plain values, with secrets and passwords masked."""
        values = self.model_dump(mode="json")
        values["db_connection_string"] = mask_url(self.database_url)
        if self.mast_token is not None:
            values["mast_token"] = MASKED
        return values


#: ``user:password@`` (the scheme before it optional): the password runs to the last ``@``,
#: so that one typed with a raw ``@`` is hidden whole.
_USERINFO_PASSWORD = re.compile(r"^(?P<user>(?:[^:/@]+://)?[^:/@]*):(?P<password>.*)@", re.DOTALL)
#: ``scheme://user:password`` with no ``@host``: what follows the colon, unless a port number.
_HOSTLESS_PASSWORD = re.compile(r"^(?P<user>[^:/@]+://[^:/@]*):(?!\d*(?:[/?#]|$))[^/?#@]*")
#: ``password=...`` in a URL's query or in a ``key=value`` (libpq) connection string.
_KEYWORD_PASSWORD = re.compile(r"(?P<key>\b(?:password|passwd|pwd)=)[^&;\s]*", re.IGNORECASE)


def mask_url(url: str) -> str:
    """Show a database URL, or any string given as one, with only its password hidden.

    A URL SQLAlchemy parses is rendered with its password as ``***``; any other string is
    shown as typed but for what looks like a password (``user:***@host``, a hostless
    ``scheme://user:***``, ``password=***``), so the operator sees what was typed.

    Examples
    --------
    >>> mask_url("postgresql+psycopg2://hstlc:s3cret@db:5432/hstlc")
    'postgresql+psycopg2://hstlc:***@db:5432/hstlc'
    >>> mask_url("postgresql://hstlc:s3cret@db:port/hstlc")
    'postgresql://hstlc:***@db:port/hstlc'
    >>> mask_url("notaurl")
    'notaurl'
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):  # not a URL SQLAlchemy reads: mask by its shape
        shown, found = _USERINFO_PASSWORD.subn(r"\g<user>:***@", url, count=1)
        if not found:
            shown = _HOSTLESS_PASSWORD.sub(r"\g<user>:***", url, count=1)
    return _KEYWORD_PASSWORD.sub(r"\g<key>***", shown)


def _env_name(loc: tuple[Any, ...]) -> str:
    return ENV_PREFIX + "__".join(str(part) for part in loc).upper()


def _field_path(loc: tuple[Any, ...]) -> tuple[str, ...]:
    """The setting names of an error location, without list indices (``bad_proposals``)."""
    return tuple(itertools.takewhile(lambda part: isinstance(part, str), loc))


def _env_variable(loc: tuple[Any, ...], environ: Mapping[str, str]) -> str | None:
    """The ``HSTLC_*`` variable that set the value at ``loc`` (``HSTLC_HLSP__LEAD``), if any."""
    present = {name.upper() for name in environ}
    fields = _field_path(loc)
    for end in range(len(fields), 0, -1):  # HSTLC_HLSP__LEAD, then HSTLC_HLSP (a JSON object)
        if _env_name(fields[:end]) in present:
            return _env_name(fields[:end])
    return None


def _yaml_document(path: Path | None) -> yaml.Node | None:
    """The YAML node tree of the settings file (with line numbers), or ``None``."""
    if path is None:
        return None
    with path.open("rb") as stream:
        return yaml.compose(stream)


def _yaml_line(document: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The line (from 1) of the key or list item at ``loc`` in ``document``; ``None`` when
    the file does not hold it (the value came from elsewhere)."""
    line, node = None, document
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = [(key, value) for key, value in node.value
                     if str(key.value).lower() == str(part).lower()]
            if not found:
                return None
            key_node, node = found[-1]  # a repeated key: YAML keeps the last
            line = key_node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break  # the error points inside a value (a union member's name, say)
    return line


def _describe_error(item: Any, environ: Mapping[str, str], config_file: Path | None,
                    document: yaml.Node | None) -> str:
    """One line for one pydantic error: where the value came from, key, value, expectation."""
    loc = tuple(part for part in item.get("loc", ()) if part != "__root__")
    message = item.get("msg", "invalid").removeprefix("Value error, ")
    message = message.removeprefix("Input should be ")
    if not loc:  # the settings as a whole: never echo them, they hold the database password
        return f"invalid settings: {message}"
    key = ".".join(str(part) for part in loc)
    variable = _env_variable(loc, environ)
    line = None if variable else _yaml_line(document, loc)
    if line is not None:
        setting = f"{config_file} line {line}: invalid setting {key}"
    else:
        setting = f"invalid setting {key} ({variable or _env_name(_field_path(loc))})"
    if item.get("type") == "extra_forbidden":
        return f"{setting}: unknown key"
    value = item.get("input")
    if loc[0] in OPAQUE_SECRET_KEYS and value is not None:  # never echo a token
        value = MASKED
    if loc[0] in SECRET_KEYS and value is not None:  # never echo a password
        value = mask_url(value.get_secret_value() if isinstance(value, SecretStr) else str(value))
    return f"{setting}: got {value!r}, expected {message}"


def describe_validation_error(error: ValidationError, *, config_file: Path | None = None) -> str:
    """One line per invalid value: where it came from, key, value found and what is expected.

    A value set in the environment names its variable
    (``invalid setting workers (HSTLC_WORKERS): got '0', ...``); one from the settings file
    ``config_file`` names the file and the line of its key
    (``hstlc.yaml line 3: invalid setting workers: got 'many', ...``).
    """
    document = _yaml_document(config_file)
    return "\n".join(_describe_error(item, os.environ, config_file, document)
                     for item in error.errors())


def _describe_yaml_error(path: Path | None, error: yaml.MarkedYAMLError) -> str:
    """One line for a YAML syntax error: file, line, column and the parser's problem."""
    mark = error.problem_mark or error.context_mark
    where = f" line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
    return f"{path}{where}: not valid YAML: {error.problem or error.context}"


def unknown_environment_keys(environ: Mapping[str, str] | None = None) -> list[str]:
    """``HSTLC_*`` variables that name no setting (a typo is otherwise silently ignored).

    Examples
    --------
    >>> unknown_environment_keys({"HSTLC_HOME_DIR": "x", "HSTLC_HOMEDIR": "y", "PATH": "/bin"})
    ['HSTLC_HOMEDIR']
    """
    environ = os.environ if environ is None else environ
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields} | OTHER_ENV
    return sorted(key for key in environ if key.upper().startswith(ENV_PREFIX)
                  and key.upper().split("__", 1)[0] not in known)


def load_settings(**overrides: Any) -> Settings:
    """Read the settings; raise :class:`ConfigurationError` with a readable message.

    ``HSTLC_*`` variables that name no setting are logged as a warning.
    """
    for key in unknown_environment_keys():
        logger.warning("environment variable %s names no hstlc setting; ignored", key)
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise ConfigurationError(
            describe_validation_error(error, config_file=_config_file())) from None
    except SettingsError as error:
        cause = error.__cause__
        detail = f": {cause}" if cause else ""
        raise ConfigurationError(f"invalid settings: {error}{detail}") from None
    except yaml.MarkedYAMLError as error:
        raise ConfigurationError(_describe_yaml_error(_config_file(), error)) from None
    except (yaml.YAMLError, TypeError, ValueError) as error:
        where = _config_file()
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigurationError(f"{where}: not a valid hstlc settings file: {first}") from None
