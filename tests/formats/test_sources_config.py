"""[[sources]] in the config file (SPEC §2): parsed into Settings.sources, checked, and turned into
the landing folders a day's ingest reads; without any, the canonical access/ and consent/."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from pipeline.config import Settings, Source, load_settings
from pipeline.errors import ConfigError
from pipeline.readers.landing import Landing
from pipeline.sources import day_files, delivery_days, missing_markers, sources_of


@pytest.fixture(autouse=True)
def no_default_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_sources_parsed_with_folder_defaulting_to_name(tmp_path: Path):
    path = tmp_path / "a.toml"
    path.write_text(
        '[[sources]]\nname = "gws"\nkind = "both"\nformat = "google_workspace_token"\n'
        'mapping = "mappings/gws.toml"\n'
        '[[sources]]\nname = "m365"\nkind = "access"\nformat = "m365_mail_items_accessed"\n'
        'folder = "exports/m365"\n'
    )
    settings = load_settings(path, env={})
    assert settings.sources == (
        Source("gws", "both", "google_workspace_token", "gws", "mappings/gws.toml"),
        Source("m365", "access", "m365_mail_items_accessed", "exports/m365"),
    )
    assert [s.name for s in sources_of(settings, "consent")] == ["gws"]
    assert [s.name for s in sources_of(settings, "access")] == ["gws", "m365"]


def test_no_sources_means_canonical_folders():
    assert sources_of(Settings(), "access") == [Source("access", "access", "canonical", "access")]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('name = "x"\nkind = "access"', "needs name, kind and format"),
        ('name = "x"\nkind = "mail"\nformat = "gateway"', "kind must be one of"),
        ('name = "x"\nkind = "access"\nformat = "splunk"', "format must be one of"),
        ('name = "x"\nkind = "both"\nformat = "canonical"', "canonical source is access or"),
        ('name = "a/b"\nkind = "access"\nformat = "gateway"', "must be a plain word"),
        ('name = "x"\nkind = "access"\nformat = "gateway"\ncolour = "red"', "unknown key"),
    ],
)
def test_bad_source_is_a_one_line_config_error(tmp_path: Path, entry: str, message: str):
    path = tmp_path / "a.toml"
    path.write_text("[[sources]]\n" + entry + "\n")
    with pytest.raises(ConfigError, match=message):
        load_settings(path, env={})


def test_source_names_are_unique(tmp_path: Path):
    path = tmp_path / "a.toml"
    one = '[[sources]]\nname = "x"\nkind = "access"\nformat = "gateway"\n'
    path.write_text(one + one)
    with pytest.raises(ConfigError, match="used twice"):
        load_settings(path, env={})


def test_day_files_markers_and_days_follow_the_sources(tmp_path: Path):
    day = date(2026, 3, 1)
    for folder, name in (
        ("gw", "a.log"),
        ("gw", "b.jsonl"),
        ("gw", "skip.csv"),
        ("okta", "o.jsonl"),
    ):
        (tmp_path / folder / day.isoformat()).mkdir(parents=True, exist_ok=True)
        (tmp_path / folder / day.isoformat() / name).write_text("x\n")
    (tmp_path / "gw" / day.isoformat() / "_SUCCESS").write_text("")
    (tmp_path / "okta" / "2026-02-28").mkdir()
    settings = Settings(
        landing=str(tmp_path),
        sources=(
            Source("gw", "access", "gateway", "gw"),
            Source("okta", "consent", "okta_system_log", "okta"),
        ),
    )
    landing = Landing(str(tmp_path))
    assert [f.name for f in day_files(landing, settings, "access", day)] == [
        "gw/a.log",
        "gw/b.jsonl",
    ]
    assert missing_markers(landing, settings, "access", day) == []
    assert missing_markers(landing, settings, "consent", day) == ["okta/2026-03-01/_SUCCESS"]
    assert delivery_days(landing, settings, "consent") == [date(2026, 2, 28), day]
