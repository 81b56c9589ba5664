"""Settings: sources and their order, defaults, validation messages, masking."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hstlc.cli import main
from hstlc.config import FOLDERS, load_settings
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


@pytest.mark.parametrize("text", [": : bad [yaml\n", "- a list\n- not a mapping\n"])
def test_malformed_yaml_is_one_clear_error(home, tmp_path, text):
    (tmp_path / "hstlc.yaml").write_text(text)
    with pytest.raises(ConfigurationError, match="hstlc.yaml: not a valid hstlc settings file"):
        load_settings()


def test_database_url_is_validated(home, monkeypatch):
    monkeypatch.setenv("HSTLC_DB_CONNECTION_STRING", "notaurl")  # shown masked: it may hold a password
    with pytest.raises(ConfigurationError, match=r"HSTLC_DB_CONNECTION_STRING.*'\*\*\*'.*SQLAlchemy"):
        load_settings()


def test_invalid_database_url_never_shows_its_password(home, monkeypatch, capsys):
    monkeypatch.setenv("HSTLC_DB_CONNECTION_STRING", "postgresql://bob:s3cretpw@host:port/db")
    assert main(["config", "show"]) == 2
    err = capsys.readouterr().err
    assert "s3cretpw" not in err and "bob" not in err
    assert "HSTLC_DB_CONNECTION_STRING" in err and "SQLAlchemy database URL" in err


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
    (tmp_path / "hstlc.yaml").write_text("wokers: 3\n")
    with pytest.raises(ConfigurationError, match="wokers.*unknown key"):
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
