"""pipeline.detect.registry.parse_registry (SPEC §2, partners.csv); an invalid
registry fails a run."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.detect.registry import parse_registry
from pipeline.errors import RegistryError
from tests.landing import REGISTRY_HEADER, access, consent, write_day, write_registry

UTC = dt.UTC
DAY = dt.date(2024, 3, 10)
CLI = Path(sys.executable).parent / "access-audit"


def registry(*rows: str) -> list[dict]:
    return parse_registry("\n".join([REGISTRY_HEADER, *rows]) + "\n").to_pylist()


def error(*rows: str, header: str = REGISTRY_HEADER) -> str:
    with pytest.raises(RegistryError) as caught:
        parse_registry("\n".join([header, *rows]) + "\n")
    return str(caught.value)


def periods(*rows: str) -> list[tuple]:
    return [(r["period_start"], r["period_end"]) for r in registry(*rows)]


# ---------------------------------------------------------------------------------------------
# Valid rows


def test_registry_row_parsed_to_typed_columns():
    assert registry(
        "p1,Partner One,app1,2024-03-01,2024-03-05,messages.read  messages.write,1.5"
    ) == [
        {
            "partner_id": "p1",
            "partner_name": "Partner One",
            "app_id": "app1",
            "period_start": dt.datetime(2024, 3, 1, tzinfo=UTC),
            "period_end": dt.datetime(2024, 3, 6, tzinfo=UTC),
            "period_scopes": ["messages.read", "messages.write"],
            "grant_ttl_days": 1.5,
            "registry_line": 2,
        }
    ]


def test_registry_date_end_covers_its_whole_day():
    assert periods("p1,P,app1,2024-03-10,2024-03-10,messages.read,") == [
        (dt.datetime(2024, 3, 10, tzinfo=UTC), dt.datetime(2024, 3, 11, tzinfo=UTC))
    ]


def test_registry_timestamp_end_is_kept_exclusive_and_in_utc():
    assert periods(
        "p1,P,app1,2024-03-10T08:00:00+02:00,2024-03-11T12:30:00.1234567Z,messages.read,"
    ) == [
        (
            dt.datetime(2024, 3, 10, 6, tzinfo=UTC),
            dt.datetime(2024, 3, 11, 12, 30, 0, 123456, tzinfo=UTC),
        )
    ]


def test_registry_empty_end_is_ongoing_and_empty_ttl_never_expires():
    (row,) = registry("p1,P,app1,2024-03-10,,messages.read,")
    assert (row["period_end"], row["grant_ttl_days"]) == (None, None)


def test_registry_empty_scopes_allow_nothing():
    (row,) = registry("p1,P,app1,2024-03-10,,,")
    assert row["period_scopes"] == []


def test_registry_several_periods_and_apps_keep_their_lines():
    rows = registry(
        "p1,P,app1,2024-01-01,2024-01-31,messages.read,2",
        "p1,P,app2,2024-01-01,,messages.read,",
        "p1,P,app1,2024-03-01,,messages.read,2",
    )
    assert [(r["app_id"], r["registry_line"]) for r in rows] == [
        ("app1", 2),
        ("app2", 3),
        ("app1", 4),
    ]


def test_registry_header_only_is_empty():
    assert registry() == []


# ---------------------------------------------------------------------------------------------
# Invalid registries: the message names the line and the column


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            ["p1,P,app1,2024-02-30,,messages.read,"],
            "partners.csv line 2, column start: '2024-02-30' is not a date (YYYY-MM-DD) or an "
            "RFC 3339 timestamp",
        ),
        (
            ["p1,P,app1,2024-03-01,,messages.read,", "p1,P,app1,2024-03-01,03/09/2024,x,"],
            "partners.csv line 3, column end: '03/09/2024' is not a date (YYYY-MM-DD) or an "
            "RFC 3339 timestamp",
        ),
        (
            ["p1,P,app1,2024-03-01T00:00:00,,messages.read,"],
            "partners.csv line 2, column start: '2024-03-01T00:00:00' is not a date (YYYY-MM-DD) "
            "or an RFC 3339 timestamp",
        ),
        (
            ["p1,P,app1,2024-03-10,2024-03-09,messages.read,"],
            "partners.csv line 2, column end: the period ends before it starts",
        ),
        (
            ["p1,P,app1,2024-03-10T12:00:00Z,2024-03-10T12:00:00Z,messages.read,"],
            "partners.csv line 2, column end: the period ends before it starts",
        ),
        (
            ["p1,P,app1,2024-03-10,,messages.read,ten"],
            "partners.csv line 2, column grant_ttl_days: 'ten' is not a number of days (or empty "
            "for no expiry)",
        ),
        (
            ["p1,P,app1,2024-03-10,,messages.read,-1"],
            "partners.csv line 2, column grant_ttl_days: '-1' is not a number of days (or empty "
            "for no expiry)",
        ),
        (
            ["p1,P,app1,2024-01-01,2024-01-31,messages.read,30", "p1,P,app1,2024-03-01,,x,7"],
            "partners.csv line 3, column grant_ttl_days: app app1 has grant_ttl_days 7 here but a "
            "different value on line 2; it must be the same on every row of an app",
        ),
        (
            ["p1,P,app1,2024-01-01,2024-01-31,messages.read,30", "p1,P,app1,2024-03-01,,x,"],
            "partners.csv line 3, column grant_ttl_days: app app1 has grant_ttl_days (empty) here "
            "but a different value on line 2; it must be the same on every row of an app",
        ),
        (
            ["p1,P,app1,2024-01-01,,messages.read,", "p2,Q,app1,2024-03-01,,messages.read,"],
            "partners.csv line 3, column partner_id: app app1 belongs to partner p1 on line 2",
        ),
        (
            ["p1,P,,2024-01-01,,messages.read,"],
            "partners.csv line 2, column app_id: empty, but required",
        ),
        (
            ["p1,P,app1,2024-01-01,,messages.read,", "", "p1,P,app1,bad,,messages.read,"],
            "partners.csv line 4, column start: 'bad' is not a date (YYYY-MM-DD) or an RFC 3339 "
            "timestamp",
        ),
    ],
)
def test_registry_invalid_row_names_line_and_column(rows: list[str], message: str):
    assert error(*rows) == message


def test_registry_missing_column_is_named():
    message = error(
        "p1,P,app1,2024-01-01,,messages.read",
        header="partner_id,partner_name,app_id,start,end,scopes",
    )
    assert message == "partners.csv: missing column(s) grant_ttl_days"


# ---------------------------------------------------------------------------------------------
# An invalid registry fails the run with that one line


def test_registry_invalid_fails_cli_run_with_one_line(tmp_path: Path, landing_root: Path):
    write_day(landing_root, "access", DAY, {"a.jsonl": [access("r1", "2024-03-10T12:00:00Z")]})
    write_day(landing_root, "consent", DAY, {"a.jsonl": [consent("e1", "2024-03-10T11:00:00Z")]})
    write_registry(landing_root, ["p1,P,app1,2024-03-10,2024-03-01,messages.read,"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCESS_AUDIT_")}
    done = subprocess.run(
        [
            str(CLI),
            "run",
            "--date",
            DAY.isoformat(),
            "--landing",
            str(landing_root),
            "--warehouse",
            str(tmp_path / "warehouse"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        f"access-audit: {DAY} failed: {landing_root}/partners.csv line 2, column end: "
        "the period ends before it starts"
    ]
    assert not (tmp_path / "warehouse" / "flags" / f"date={DAY}").exists()


# ---------------------------------------------------------------------------------------------
# Identifiers holding a control character (SPEC §2): refused, naming the row and the character


@pytest.mark.parametrize(
    ("row", "line", "column", "char", "at"),
    [
        ("p1,P,app\x001,2024-01-01,,messages.read,", 3, "app_id", "0000", 4),
        ("p\x1f1,P,app1,2024-01-01,,messages.read,", 3, "partner_id", "001F", 2),
        ("p1,P,app1\x7f,2024-01-01,,messages.read,", 3, "app_id", "007F", 5),
        # a quoted line break: the row is named by the line it ends on, as every registry error
        ('p1,P,"app\n1",2024-01-01,,messages.read,', 4, "app_id", "000A", 4),
        ("p1,P,a\tb,2024-01-01,,messages.read,", 3, "app_id", "0009", 2),  # inside: not trimmed
    ],
)
def test_registry_identifier_with_control_character_is_refused(
    row: str, line: int, column: str, char: str, at: int
):
    assert error("p0,Fine,app0,2024-01-01,,messages.read,", row) == (
        f"partners.csv line {line}, column {column}: holds a control character (U+{char} at "
        f"character {at}); identifiers may not"
    )


def test_registry_control_characters_elsewhere_and_outer_whitespace_are_kept():
    """Only identifiers are refused: a name may hold a tab; blanks around an id are trimmed."""
    rows = registry("p1,Tab\tName,\tapp1 ,2024-01-01,,messages.read,")
    assert (rows[0]["partner_name"], rows[0]["app_id"]) == ("Tab\tName", "app1")
