"""pipeline.config.load_settings: defaults < config file < ACCESS_AUDIT_* < explicit overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import Route, Settings, load_settings
from pipeline.errors import ConfigError


@pytest.fixture(autouse=True)
def no_default_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run in an empty folder so ./access-audit.toml of the checkout is never read."""
    monkeypatch.chdir(tmp_path)


def toml(tmp_path: Path, text: str, name: str = "audit.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_config_defaults_without_file_or_environment():
    settings = load_settings(env={})
    assert settings == Settings()
    assert settings.landing.endswith("sample_logs")
    assert settings.clock_skew_seconds == 0.0
    assert settings.message_resources == ("messages",)


def test_config_file_then_env_then_overrides(tmp_path: Path):
    path = toml(
        tmp_path,
        'landing = "from-file"\nwarehouse = "wh-file"\nclock_skew_seconds = 1.5\n'
        'message_resources = ["messages", "contacts"]\nduckdb_threads = 2\n',
    )
    env = {"ACCESS_AUDIT_WAREHOUSE": "wh-env", "ACCESS_AUDIT_CLOCK_SKEW_SECONDS": "7"}
    settings = load_settings(path, env=env, clock_skew_seconds=9, landing=None)
    assert (
        settings.landing,
        settings.warehouse,
        settings.clock_skew_seconds,
        settings.message_resources,
        settings.duckdb_threads,
    ) == ("from-file", "wh-env", 9.0, ("messages", "contacts"), 2)


def test_config_file_named_by_environment(tmp_path: Path):
    path = toml(tmp_path, "clock_skew_seconds = 3\n")
    settings = load_settings(env={"ACCESS_AUDIT_CONFIG": str(path)})
    assert settings.clock_skew_seconds == 3.0


def test_config_explicit_file_wins_over_environment_file(tmp_path: Path):
    named = toml(tmp_path, "clock_skew_seconds = 3\n", "a.toml")
    env_file = toml(tmp_path, "clock_skew_seconds = 4\n", "b.toml")
    settings = load_settings(named, env={"ACCESS_AUDIT_CONFIG": str(env_file)})
    assert settings.clock_skew_seconds == 3.0


def test_config_default_file_in_working_directory(tmp_path: Path):
    toml(tmp_path, "clock_skew_seconds = 2\n", "access-audit.toml")
    assert load_settings(env={}).clock_skew_seconds == 2.0


def test_config_env_list_is_split_on_spaces_and_commas():
    settings = load_settings(env={"ACCESS_AUDIT_MESSAGE_RESOURCES": "messages, contacts photos"})
    assert settings.message_resources == ("messages", "contacts", "photos")


def test_config_routes_from_file(tmp_path: Path):
    path = toml(
        tmp_path,
        '[[routes]]\npath_regex = "^/inbox"\nresource = "messages"\n'
        '[[routes]]\npath_regex = "^/purge"\nresource = "messages"\naction = "delete"\n'
        '[method_actions]\nget = "read"\nREPORT = "read"\n',
    )
    settings = load_settings(path, env={})
    assert settings.routes == (
        Route("^/inbox", "messages"),
        Route("^/purge", "messages", "delete"),
    )
    assert settings.method_actions == (("GET", "read"), ("REPORT", "read"))


def test_config_unknown_setting_names_it(tmp_path: Path):
    path = toml(tmp_path, "clock_skew = 5\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert str(caught.value) == f"config file {path}: unknown setting 'clock_skew'"


@pytest.mark.parametrize(
    ("text", "env", "fragment"),
    [
        ('clock_skew_seconds = "soon"\n', {}, "setting 'clock_skew_seconds': 'soon'"),
        ("clock_skew_seconds = -1\n", {}, "'clock_skew_seconds' must be at least 0"),
        ("", {"ACCESS_AUDIT_CLOCK_SKEW_SECONDS": "-0.5"}, "must be at least 0"),
        ("", {"ACCESS_AUDIT_DUCKDB_THREADS": "four"}, "setting 'duckdb_threads': 'four'"),
        ("message_resources = [1, 2]\n", {}, "setting 'message_resources'"),
        ("routes = 5\n", {}, "setting 'routes' must be a list of tables"),
        ('[[routes]]\npath_regex = "^/x"\n', {}, "routes entry 1: needs path_regex and resource"),
        (
            '[[routes]]\npath_regex = "^/x"\nresource = "m"\naction = "rm"\n',
            {},
            "routes entry 1: action must be one of read, write, delete",
        ),
        ('[method_actions]\nGET = "fetch"\n', {}, "'method_actions' must map HTTP methods"),
        ("clock_skew_seconds = \n", {}, "config file"),  # not TOML
    ],
)
def test_config_bad_value_raises_config_error(
    tmp_path: Path, text: str, env: dict[str, str], fragment: str
):
    path = toml(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env=env)
    assert fragment in str(caught.value)


def test_config_missing_file_raises_config_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "absent.toml", env={})


def test_config_boolean_is_not_a_number(tmp_path: Path):
    path = toml(tmp_path, "clock_skew_seconds = true\n")
    with pytest.raises(ConfigError, match="clock_skew_seconds"):
        load_settings(path, env={})


def test_config_read_block_bytes_must_be_positive(tmp_path: Path):
    path = toml(tmp_path, "read_block_bytes = 0\n")
    with pytest.raises(ConfigError, match="read_block_bytes"):
        load_settings(path, env={})


def test_config_to_dict_is_json_ready():
    data = load_settings(env={}).to_dict()
    assert data["clock_skew_seconds"] == 0.0
    assert data["routes"][0] == {
        "path_regex": r"^/(?:v[0-9.]+/)?(?:me|users/[^/]+)/"
        r"(?:messages|threads|conversations)(?:/|$)",
        "resource": "messages",
        "action": None,
    }
    assert ("DELETE", "delete") in data["method_actions"]
