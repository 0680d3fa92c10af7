"""The access-audit command line (SPEC §5): exit codes, one-line errors, outputs, --help."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.cli import build_parser, main
from pipeline.config import load_settings
from pipeline.steps import run_day
from tests.test_steps import D1, D2, FLAGS_ON_D, D, build_landing

CLI = Path(sys.executable).parent / "access-audit"
PARTITIONED = ("access", "consent", "quarantine", "flags", "alerts", "runs")


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCESS_AUDIT_")}
    env["ACCESS_AUDIT_REVIEW_DB"] = f"sqlite:///{cwd / 'review.db'}"  # not the checkout's
    return subprocess.run(
        [str(CLI), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def locations(tmp_path: Path) -> list[str]:
    return ["--landing", str(tmp_path / "landing"), "--warehouse", str(tmp_path / "warehouse")]


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A landing zone whose day D was run once (in-process), for the read-only `flags` tests."""
    root = tmp_path_factory.mktemp("audited")
    build_landing(root / "landing")
    landing, warehouse = locations(root)[1::2]
    review_db = f"sqlite:///{root / 'review.db'}"
    run_day(D, load_settings(env={}, landing=landing, warehouse=warehouse, review_db=review_db))
    return root


# ---------------------------------------------------------------------------------------------
# run


def test_cli_run_end_to_end_exits_0_and_writes_every_partition(tmp_path: Path):
    build_landing(tmp_path / "landing")
    done = cli("run", "--date", D.isoformat(), *locations(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    for table in PARTITIONED:
        assert (tmp_path / "warehouse" / table / f"date={D}").is_dir(), table
    assert (tmp_path / "warehouse" / "flags" / f"date={D}" / "part-0.parquet").is_file()
    manifest = json.loads(
        (tmp_path / "warehouse" / "runs" / f"date={D}" / "manifest.json").read_text()
    )
    assert manifest["flags"]["total"] == len(FLAGS_ON_D)
    assert "Flags by rule" in done.stdout
    assert f"Alerts to review: 6   e.g. access-audit alerts --date {D}" in done.stdout


def test_cli_run_missing_success_marker_exits_1_with_one_line(tmp_path: Path):
    build_landing(tmp_path / "landing")
    (tmp_path / "landing" / "access" / D.isoformat() / "_SUCCESS").unlink()
    done = cli("run", "--date", D.isoformat(), *locations(tmp_path), cwd=tmp_path)
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"access-audit: {D} failed: missing input")
    assert f"access/{D}/_SUCCESS" in line
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "warehouse" / "flags" / f"date={D}").exists()


def test_cli_backfill_runs_every_day_and_reports_failed_days(tmp_path: Path):
    build_landing(tmp_path / "landing")
    (tmp_path / "landing" / "access" / D1.isoformat() / "_SUCCESS").unlink()
    done = cli(
        "backfill",
        "--start",
        D2.isoformat(),
        "--end",
        D.isoformat(),
        *locations(tmp_path),
        cwd=tmp_path,
    )
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"access-audit: {D1} failed: missing input")
    flags = tmp_path / "warehouse" / "flags"
    assert sorted(p.name for p in flags.iterdir()) == [f"date={D2}", f"date={D}"]


# ---------------------------------------------------------------------------------------------
# usage errors


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["run", "--date", "2024-02-30"], "'2024-02-30' is not a date (YYYY-MM-DD)"),
        (["run", "--date", "10/03/2024"], "'10/03/2024' is not a date (YYYY-MM-DD)"),
        (["run"], "the following arguments are required: --date"),
        (["backfill", "--start", "2024-03-10", "--end", "2024-03-09"], "is before --start"),
        (["backfill", "--start", "2024-03-10"], "backfill needs --start and --end"),
        (["flags", "--date", "2024-03-10", "--format", "xml"], "invalid choice: 'xml'"),
        (["alerts", "--date", "2024-03-10", "--format", "xml"], "invalid choice: 'xml'"),
        (["alerts", "--date", "2024-03-10", "--rule", "BOGUS"], "'BOGUS' is not one of"),
        (["alerts", "--rule", "NO_SIGNIN"], "the following arguments are required: --date"),
        (["run", "--date", "2024-03-10", "--bogus"], "unrecognized arguments: --bogus"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_cli_usage_error_exits_2_with_one_line(tmp_path: Path, args: list[str], fragment: str):
    done = cli(*args, *(locations(tmp_path) if args else []), cwd=tmp_path)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith("access-audit")
    assert fragment in line
    assert not (tmp_path / "warehouse").exists()


def test_cli_unknown_setting_in_config_exits_2_with_one_line(tmp_path: Path):
    config = tmp_path / "audit.toml"
    config.write_text("clock_skew = 5\n")
    done = cli("run", "--date", D.isoformat(), "--config", str(config), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"access-audit: error: config file {config}: unknown setting 'clock_skew'"
    ]


# ---------------------------------------------------------------------------------------------
# flags


def flags_out(audited: Path, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["flags", "--date", D.isoformat(), *locations(audited), *args]) == 0
    return capsys.readouterr().out


def test_cli_flags_json_lists_every_flag(audited: Path, capsys: pytest.CaptureFixture[str]):
    rows = [
        json.loads(line) for line in flags_out(audited, capsys, "--format", "json").splitlines()
    ]
    assert sorted((r["request_id"], r["rule"], r["partner_id"]) for r in rows) == FLAGS_ON_D
    (revoked,) = [r for r in rows if r["rule"] == "SIGNIN_REVOKED"]
    assert revoked["user_id"] == "u2"
    assert revoked["last_revoke_time"] == "2024-03-09 10:00:00+00:00"
    assert revoked["explanation"]


def test_cli_flags_rule_filter(audited: Path, capsys: pytest.CaptureFixture[str]):
    out = flags_out(audited, capsys, "--format", "json", "--rule", "NO_SIGNIN")
    rows = [json.loads(line) for line in out.splitlines()]
    assert sorted(r["request_id"] for r in rows) == ["r4", "r5"]
    assert {r["rule"] for r in rows} == {"NO_SIGNIN"}


def test_cli_flags_partner_filter_as_csv(audited: Path, capsys: pytest.CaptureFixture[str]):
    out = flags_out(audited, capsys, "--format", "csv", "--partner", "p2")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["request_id"], r["rule"], r["partner_id"]) for r in rows] == [
        ("r6", "SCOPE_NOT_IN_PARTNERSHIP", "p2")
    ]
    assert "flag_id" in rows[0] and "explanation" in rows[0]


def test_cli_flags_filters_combine_to_nothing(audited: Path, capsys: pytest.CaptureFixture[str]):
    out = flags_out(audited, capsys, "--format", "json", "--rule", "UNKNOWN_APP", "--partner", "p1")
    assert out == ""


def test_cli_flags_table_shows_count_and_rules(audited: Path, capsys: pytest.CaptureFixture[str]):
    out = flags_out(audited, capsys, "--format", "table")
    assert f"6 flags on {D}" in out
    for rule in ("SIGNIN_REVOKED", "NO_SIGNIN", "UNKNOWN_APP"):
        assert rule in out
    limited = flags_out(audited, capsys, "--limit", "2")
    assert f"6 flags on {D} (first 2)" in limited


def test_cli_flags_for_a_day_not_run_exits_2(audited: Path, capsys: pytest.CaptureFixture[str]):
    other = (D + dt.timedelta(days=1)).isoformat()
    assert main(["flags", "--date", other, *locations(audited)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"access-audit: error: no flags for {other}")


# ---------------------------------------------------------------------------------------------
# alerts


def alerts_out(audited: Path, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["alerts", "--date", D.isoformat(), *locations(audited), *args]) == 0
    return capsys.readouterr().out


def alert_keys() -> list[tuple[str, str | None]]:
    """(rule, partner) of D's alerts: FLAGS_ON_D's apps and rules, once each."""
    apps = {"r2": "app1", "r4": "app1", "r5": "app2", "r6": "app3", "r7": "app9"}
    return sorted({(apps[r], rule, p) for r, rule, p in FLAGS_ON_D})  # type: ignore[misc]


def test_cli_alerts_json_lists_every_alert(audited: Path, capsys: pytest.CaptureFixture[str]):
    out = alerts_out(audited, capsys, "--format", "json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert sorted((r["app_id"], r["rule"], r["partner_id"]) for r in rows) == alert_keys()
    assert sum(r["flags"] for r in rows) == len(FLAGS_ON_D)
    (revoked,) = [r for r in rows if r["rule"] == "SIGNIN_REVOKED"]
    assert revoked["evidence"]["users_by_consent_state"]["revoked"] == 1  # parsed, not text
    assert revoked["explanation"].startswith("Partner One (app app1) made 1 message access")


def test_cli_alerts_rule_and_partner_filters(audited: Path, capsys: pytest.CaptureFixture[str]):
    out = alerts_out(audited, capsys, "--format", "json", "--rule", "NO_SIGNIN")
    assert sorted(json.loads(line)["app_id"] for line in out.splitlines()) == ["app1", "app2"]
    out = alerts_out(audited, capsys, "--format", "csv", "--partner", "p2")
    (row,) = csv.DictReader(io.StringIO(out))
    assert (row["rule"], row["app_id"], row["flags"]) == ("SCOPE_NOT_IN_PARTNERSHIP", "app3", "1")
    assert row["flags_by_hour"] == " ".join("1" if h == 12 else "0" for h in range(24))
    assert alerts_out(audited, capsys, "--format", "json", "--partner", "nobody") == ""


def test_cli_alerts_table_shows_count_and_rules(audited: Path, capsys: pytest.CaptureFixture[str]):
    out = alerts_out(audited, capsys)
    assert f"6 alerts on {D}" in out
    for rule in ("SIGNIN_REVOKED", "NO_SIGNIN", "UNKNOWN_APP"):
        assert rule in out


def test_cli_alerts_for_a_day_not_run_exits_2(audited: Path, capsys: pytest.CaptureFixture[str]):
    other = (D + dt.timedelta(days=1)).isoformat()
    assert main(["alerts", "--date", other, *locations(audited)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"access-audit: error: no alerts for {other}")


# ---------------------------------------------------------------------------------------------
# --help


def _options(command: str) -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    return {s for a in sub._actions for s in a.option_strings if s.startswith("--")}


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("run", {"--date", "--landing", "--warehouse", "--config", "--verbose", "--help"}),
        (
            "backfill",
            {
                "--start",
                "--end",
                "--all",
                "--landing",
                "--warehouse",
                "--config",
                "--verbose",
                "--help",
            },
        ),
        (
            "flags",
            {
                "--date",
                "--rule",
                "--partner",
                "--format",
                "--limit",
                "--landing",
                "--warehouse",
                "--config",
                "--verbose",
                "--help",
            },
        ),
        (
            "alerts",
            {
                "--date",
                "--rule",
                "--partner",
                "--format",
                "--landing",
                "--warehouse",
                "--config",
                "--verbose",
                "--help",
            },
        ),
    ],
)
def test_cli_help_lists_every_option(
    command: str, expected: set[str], capsys: pytest.CaptureFixture[str]
):
    assert _options(command) == expected
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for option in expected:
        assert option in out, option


def test_cli_top_level_help_lists_commands(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for command in ("run", "backfill", "flags", "alerts"):
        assert command in out
