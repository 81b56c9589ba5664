"""Settings: sources and their order, defaults, validation messages, masking."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hstlc.cli import main
from hstlc.config import FOLDERS, load_settings, mask_url
from hstlc.errors import ConfigurationError


def test_defaults_put_everything_under_home(home):
    settings = load_settings()
    assert settings.home_dir == home
    for key, name in FOLDERS.items():
        assert settings.folder(key) == home / name
    assert settings.database_url == f"sqlite:///{home / 'hstlc.db'}"
    assert settings.lightcurve_step == 2.0
    assert settings.permission_mode == 0o770
    assert settings.bad_proposals == []


def test_environment_beats_yaml_beats_defaults(home, tmp_path, monkeypatch):
    config = tmp_path / "site.yaml"
    config.write_text("workers: 3\nlightcurve_step: 5\nplot_dir: /srv/plots\nhlsp:\n  lead: A. Person\n")
    monkeypatch.setenv("HSTLC_CONFIG", str(config))
    monkeypatch.setenv("HSTLC_WORKERS", "7")
    settings = load_settings()
    assert settings.workers == 7  # environment
    assert settings.lightcurve_step == 5.0  # YAML
    assert str(settings.plot_dir) == "/srv/plots"
    assert settings.hlsp.lead == "A. Person"
    assert settings.ingest_dir == home / "ingest"  # default


def test_yaml_mode_is_read_as_octal_digits_and_shown_so(home, tmp_path, capsys):
    (tmp_path / "hstlc.yaml").write_text("permission_mode: 750\n")
    assert load_settings().permission_mode == 0o750
    assert main(["config", "show"]) == 0
    assert '"permission_mode": "750"' in capsys.readouterr().out


def test_list_yaml_is_one_clear_error(home, tmp_path):
    (tmp_path / "hstlc.yaml").write_text("- a list\n- not a mapping\n")
    with pytest.raises(ConfigurationError, match="hstlc.yaml: not a valid hstlc settings file"):
        load_settings()


@pytest.mark.parametrize(("text", "where", "problem"), [
    ("workers: 2\n: : bad [yaml\n", "line 2 column 1", "expected <block end>, but found ':'"),
    ("workers: 2\n  bad: [x\n", "line 2 column 6", "mapping values are not allowed here"),
])
def test_yaml_syntax_error_names_file_line_and_column(home, tmp_path, monkeypatch, text, where,
                                                      problem):
    config = tmp_path / "site.yaml"
    config.write_text(text)
    monkeypatch.setenv("HSTLC_CONFIG", str(config))
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    assert str(info.value) == f"{config} {where}: not valid YAML: {problem}"


def test_invalid_yaml_value_names_the_file_and_line(home, tmp_path, capsys):
    (tmp_path / "hstlc.yaml").write_text(
        "# site settings\nlightcurve_step: 2\nworkers: many\nbad_proposals:\n  - 123\n  - abc\n"
        "hlsp:\n  lead: [A, B]\n")
    assert main(["config", "show"]) == 2
    err = capsys.readouterr().err
    assert "HSTLC_" not in err
    lines = sorted(err.strip().splitlines())
    assert lines == [
        "hstlc: hstlc.yaml line 3: invalid setting workers: got 'many', expected a valid "
        "integer, unable to parse string as an integer",
        "hstlc: hstlc.yaml line 6: invalid setting bad_proposals.1: got 'abc', expected a valid "
        "integer, unable to parse string as an integer",
        "hstlc: hstlc.yaml line 8: invalid setting hlsp.lead: got ['A', 'B'], expected a valid string",
    ]


def test_invalid_value_names_its_source_environment_or_yaml(home, tmp_path, monkeypatch):
    (tmp_path / "hstlc.yaml").write_text("workers: many\nlightcurve_step: -1\nbatch_size: 0\n")
    monkeypatch.setenv("HSTLC_WORKERS", "3")  # beats the YAML's invalid value
    monkeypatch.setenv("HSTLC_BATCH_SIZE", "-5")  # beats the YAML's, and is invalid too
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    lines = str(info.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("hstlc.yaml line 2: invalid setting lightcurve_step: got -1")
    assert lines[1].startswith("invalid setting batch_size (HSTLC_BATCH_SIZE): got '-5'")


def test_database_url_is_validated_and_shown_as_typed(home, monkeypatch):
    monkeypatch.setenv("HSTLC_DB_CONNECTION_STRING", "notaurl")  # no password: shown as typed
    with pytest.raises(ConfigurationError, match=r"HSTLC_DB_CONNECTION_STRING.*'notaurl'.*SQLAlchemy"):
        load_settings()


def test_invalid_database_url_never_shows_its_password(home, monkeypatch, capsys):
    monkeypatch.setenv("HSTLC_DB_CONNECTION_STRING", "postgresql://bob:s3cretpw@host:port/db")
    assert main(["config", "show"]) == 2
    err = capsys.readouterr().err
    assert "s3cretpw" not in err
    assert "'postgresql://bob:***@host:port/db'" in err  # the rest as typed: the port is wrong
    assert "HSTLC_DB_CONNECTION_STRING" in err and "SQLAlchemy database URL" in err


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql+psycopg2://bob:pw1@db:5432/hstlc", "postgresql+psycopg2://bob:***@db:5432/hstlc"),
    ("postgresql://bob:pw1@host:port/db", "postgresql://bob:***@host:port/db"),  # bad port
    ("postgresql://bob:p@w1@host:port/db", "postgresql://bob:***@host:port/db"),  # raw '@'
    ("postgres ql://bob:pw1@host/db", "postgres ql://bob:***@host/db"),  # bad scheme
    ("bob:pw1@host/db", "bob:***@host/db"),  # no scheme
    ("postgresql://bob:pw1", "postgresql://bob:***"),  # no host: 'pw1' could be a password
    ("postgresql://host/db?password=pw1&sslmode=require",
     "postgresql://host/db?password=***&sslmode=require"),
    ("host=db user=bob password=pw1 dbname=hstlc", "host=db user=bob password=*** dbname=hstlc"),
    ("notaurl", "notaurl"),
    ("sqlite:////data/hstlc.db", "sqlite:////data/hstlc.db"),
])
def test_mask_url_hides_only_the_password(url, shown):
    assert mask_url(url) == shown


@pytest.mark.parametrize("url", ["postgresql://bob:pw1@host:port/db", "postgres ql://bob:pw1@h/db",
                                 "bob:pw1@host/db", "postgresql://bob:pw1", "foo://bob:pw1@h/db",
                                 "host=db user=bob password=pw1"])
def test_invalid_database_url_message_shows_it_without_password(home, monkeypatch, url):
    monkeypatch.setenv("HSTLC_DB_CONNECTION_STRING", url)
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    message = str(info.value)
    assert "pw1" not in message
    assert f"got {mask_url(url)!r}" in message and "bob" in message


@pytest.mark.parametrize("url", ["foo://x", "postgresql+nosuchdriver://bob:pw1@db/hstlc"])
def test_database_url_of_an_unknown_dialect_is_refused(home, monkeypatch, url):
    monkeypatch.setenv("HSTLC_DB_CONNECTION_STRING", url)
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith("invalid setting db_connection_string (HSTLC_DB_CONNECTION_STRING)")
    assert f"got {mask_url(url)!r}" in message and "pw1" not in message
    assert "a dialect SQLAlchemy can load" in message and "postgresql+psycopg2" in message


def test_database_dialect_is_checked_without_importing_its_driver(tmp_path):
    code = ("import sys; from hstlc.config import load_settings; s = load_settings(); "
            "print(s.database_url.split(':')[0], 'psycopg2' in sys.modules)")
    env = {"HSTLC_HOME_DIR": str(tmp_path), "PATH": "/usr/bin:/bin",
           "HSTLC_DB_CONNECTION_STRING": "postgresql+psycopg2://bob:pw@db/hstlc"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                            cwd=tmp_path, timeout=60)
    assert result.stdout.split() == ["postgresql+psycopg2", "False"], result.stderr


def test_settings_error_never_echoes_the_password(home, monkeypatch):
    monkeypatch.setenv("HSTLC_DB_CONNECTION_STRING", "postgresql://bob:pw1@db/hstlc")
    monkeypatch.setenv("HSTLC_PLOT_DIR", str(home))  # an error about the settings as a whole
    with pytest.raises(ConfigurationError, match="must not lie inside") as info:
        load_settings()
    assert "pw1" not in str(info.value)


def test_misspelt_environment_variable_is_reported(home, monkeypatch, caplog):
    monkeypatch.setenv("HSTLC_WOKERS", "3")
    monkeypatch.setenv("HSTLC_HLSP__LEAD", "A. Person")  # a nested key is known
    monkeypatch.setenv("HSTLC_RUN_TOKEN", "0123abcd")  # set by a run for its processes
    settings = load_settings()
    assert settings.workers != 3 and settings.hlsp.lead == "A. Person"
    assert "HSTLC_WOKERS names no hstlc setting" in caplog.text
    assert "HSTLC_HLSP__LEAD" not in caplog.text and "HSTLC_RUN_TOKEN" not in caplog.text


def test_several_invalid_values_each_get_a_prefixed_line(home, monkeypatch, capsys):
    monkeypatch.setenv("HSTLC_WORKERS", "0")
    monkeypatch.setenv("HSTLC_LIGHTCURVE_STEP", "abc")
    assert main(["config", "show"]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if "invalid setting" in line]
    assert len(lines) == 2 and all(line.startswith("hstlc: invalid setting") for line in lines)


def test_unreachable_database_is_one_line(home, monkeypatch, capsys, caplog):
    monkeypatch.setenv("HSTLC_DB_CONNECTION_STRING", "postgresql+psycopg2://u:pw@127.0.0.1:1/x")
    assert main(["db", "upgrade"]) == 1
    assert "Connection refused" in caplog.text and "pw" not in caplog.text


def test_local_hstlc_yaml_is_read(home, tmp_path):
    (tmp_path / "hstlc.yaml").write_text("bad_proposals: [12345, 67890]\npermission_mode: '750'\n")
    settings = load_settings()
    assert settings.bad_proposals == [12345, 67890]
    assert settings.permission_mode == 0o750


def test_list_and_mode_from_environment(home, monkeypatch):
    monkeypatch.setenv("HSTLC_BAD_PROPOSALS", "111, 222 333")
    monkeypatch.setenv("HSTLC_PERMISSION_MODE", "0o755")
    monkeypatch.setenv("HSTLC_HLSP__NAME", "MYHLSP")
    settings = load_settings()
    assert settings.bad_proposals == [111, 222, 333]
    assert settings.permission_mode == 0o755
    assert settings.hlsp.name == "MYHLSP"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("HSTLC_LIGHTCURVE_STEP", "-2", "greater than 0"),
        ("HSTLC_WORKERS", "many", "valid integer"),
        ("HSTLC_PERMISSION_MODE", "rwx", "octal file mode"),
        ("HSTLC_BAD_PROPOSALS", "12,abc", "valid integer"),
    ],
)
def test_invalid_value_names_key_value_and_expectation(home, monkeypatch, variable, value, expected):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    message = str(info.value)
    assert variable in message
    assert repr(value) in message or repr(value.split(",")[-1]) in message
    assert expected in message


def test_missing_config_file_is_a_clear_error(home, monkeypatch):
    monkeypatch.setenv("HSTLC_CONFIG", "/nonexistent/hstlc.yaml")
    with pytest.raises(ConfigurationError, match="HSTLC_CONFIG='/nonexistent/hstlc.yaml'"):
        load_settings()


def test_unknown_yaml_key_is_refused(home, tmp_path):
    (tmp_path / "hstlc.yaml").write_text("workers: 3\nwokers: 3\n")
    with pytest.raises(ConfigurationError, match="^hstlc.yaml line 2: invalid setting wokers: unknown key$"):
        load_settings()


def test_config_show_masks_the_password(home, monkeypatch, capsys):
    monkeypatch.setenv("HSTLC_DB_CONNECTION_STRING", "postgresql+psycopg2://hstlc:s3cret@db:5432/hstlc")
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert "s3cret" not in out
    assert "postgresql+psycopg2://hstlc:***@db:5432/hstlc" in out


def test_invalid_setting_on_the_command_line_is_one_line_without_traceback(home, tmp_path):
    env = {"HSTLC_HOME_DIR": str(home), "HSTLC_WORKERS": "0", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-m", "hstlc.cli", "config", "show"], env=env,
                            capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "HSTLC_WORKERS" in lines[0] and "'0'" in lines[0] and "greater than or equal to 1" in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("key", "value"), [("HSTLC_PLOT_DIR", "{home}"),
                                            ("HSTLC_OUTPUTS_DIR", "{home}/ingest"),
                                            ("HSTLC_COMPOSITE_DIR", "{home}")])
def test_product_folders_may_not_hold_inputs(home, monkeypatch, key, value):
    monkeypatch.setenv(key, value.format(home=home))
    with pytest.raises(ConfigurationError, match="must not lie inside"):
        load_settings()


def test_max_time_span_from_the_environment(home, monkeypatch):
    from hstlc.config import DEFAULT_MAX_TIME_SPAN_S, Settings

    assert load_settings().max_time_span_s == DEFAULT_MAX_TIME_SPAN_S == 259_200.0
    assert "Time span too long" in (Settings.model_fields["max_time_span_s"].description or "")
    monkeypatch.setenv("HSTLC_MAX_TIME_SPAN_S", "86400")
    assert load_settings().max_time_span_s == 86_400.0
    monkeypatch.setenv("HSTLC_MAX_TIME_SPAN_S", "0")
    with pytest.raises(ConfigurationError, match="max_time_span_s"):
        load_settings()


@pytest.fixture
def home_that_cannot_be_created(tmp_path, monkeypatch):
    """A home under a plain file: no folder can ever be made there."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plain-file").write_text("not a folder")
    home = tmp_path / "plain-file" / "home"
    monkeypatch.setenv("HSTLC_HOME_DIR", str(home))
    return home


def test_loading_settings_creates_no_folder(home):
    settings = load_settings()
    assert [settings.folder(key) for key in FOLDERS] and not home.exists()


def test_settings_of_a_home_that_cannot_be_created_load(home_that_cannot_be_created):
    settings = load_settings()
    assert settings.home_dir == home_that_cannot_be_created
    assert [key for key in FOLDERS if settings.folder(key).exists()] == []


def test_config_show_works_when_the_home_cannot_be_created(home_that_cannot_be_created, capsys):
    assert main(["config", "show"]) == 0
    assert str(home_that_cannot_be_created) in capsys.readouterr().out
