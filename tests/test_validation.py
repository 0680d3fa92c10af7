"""pipeline.ingest.validation: the SQL that types one batch of raw JSON lines or gives a
quarantine reason.

Each test feeds a few literal lines through `validation_sql` (no files) and checks the exact reason,
detail or typed value that comes out.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pyarrow as pa
import pytest

from pipeline import duck
from pipeline.config import Settings
from pipeline.ingest.validation import ACCESS_KIND, CONSENT_KIND, RecordKind, validation_sql

UTC = dt.UTC
NOON = dt.datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
ABSENT = object()


def validate(
    kind: RecordKind,
    lines: list[str],
    encoding_ok: list[bool] | None = None,
    settings: Settings | None = None,
) -> list[dict[str, Any]]:
    settings = settings or Settings()
    batch = pa.table(
        {
            "source_line": pa.array(range(1, len(lines) + 1), pa.int64()),
            "raw": pa.array(lines, pa.large_string()),
            "encoding_ok": pa.array(encoding_ok or [True] * len(lines)),
        }
    )
    con = duck.connect(settings)
    try:
        con.register("batch", batch)
        return con.sql(validation_sql(kind, settings)).to_arrow_table().to_pylist()
    finally:
        con.close()


def access_line(**changes: Any) -> str:
    record: dict[str, Any] = {
        "request_id": "r1",
        "event_time": "2024-03-10T12:00:00Z",
        "app_id": "app1",
        "user_id": "u1",
        "resource": "messages",
        "action": "read",
    }
    record.update(changes)
    return json.dumps({k: v for k, v in record.items() if v is not ABSENT})


def consent_line(**changes: Any) -> str:
    record: dict[str, Any] = {
        "event_id": "e1",
        "event_time": "2024-03-10T12:00:00Z",
        "user_id": "u1",
        "app_id": "app1",
        "event_type": "grant",
    }
    record.update(changes)
    return json.dumps({k: v for k, v in record.items() if v is not ABSENT})


def one(kind: RecordKind, line: str) -> dict[str, Any]:
    (row,) = validate(kind, [line])
    return row


_BATCHED: dict[str, list[str]] = {"access": [], "consent": []}
_RESULTS: dict[tuple[str, str], dict[str, Any]] = {}


def batched(kind: RecordKind, line: str) -> str:
    """Registers a parametrized case's line so the module validates them all in one query."""
    _BATCHED[kind.name].append(line)
    return line


def result(kind: RecordKind, line: str) -> dict[str, Any]:
    """The row of a registered line (one query per record kind per module: planning is slow)."""
    if (kind.name, line) not in _RESULTS:
        lines = list(dict.fromkeys(_BATCHED[kind.name]))
        for raw, row in zip(lines, validate(kind, lines), strict=True):
            _RESULTS[kind.name, raw] = row
    return _RESULTS[kind.name, line]


# ---------------------------------------------------------------------------------------------
# Rejected access records: reason and detail


ACCESS_REJECTS = [
    ('{"request_id": "r1", ', "invalid_json", "the line is not valid JSON"),
    ("[1, 2]", "not_a_json_object", "the line is JSON but not an object"),
    ('"just a string"', "not_a_json_object", "the line is JSON but not an object"),
    ("null", "not_a_json_object", "the line is JSON but not an object"),
    (access_line(user_id=ABSENT), "missing_field", "user_id is required"),
    (access_line(request_id=None), "missing_field", "request_id is required"),
    (access_line(event_time=ABSENT), "missing_field", "event_time is required"),
    (access_line(user_id=42), "wrong_type", "user_id must be a string, not an integer"),
    (access_line(app_id=["a"]), "wrong_type", "app_id must be a string, not a list"),
    (access_line(user_id=""), "empty_field", "user_id is empty"),
    (access_line(request_id=""), "empty_field", "request_id is empty"),
    # SPEC §2: identifiers with a control character (one NUL failed a day's PostgreSQL publish)
    *(
        (
            access_line(**{n: v}),
            "control_character",
            f"{n} holds a control character (U+0000-U+001F or U+007F)",
        )
        for n in ("request_id", "app_id", "user_id")
        for v in ("a\x00b", "app\x1f", "\x7f", "x\ny", "\t", "u1\r")
    ),
    (
        access_line(event_time=1710072000000.0),
        "wrong_type",
        "event_time must be an RFC 3339 string or integer epoch milliseconds, not a number",
    ),
    (
        access_line(action="erase"),
        "unknown_value",
        "action erase is not one of read, write, delete",
    ),
    (access_line(status="200"), "wrong_type", "status must be an integer, not a string"),
    (access_line(status=200.0), "wrong_type", "status must be an integer, not a number"),
    (access_line(status=600), "invalid_value", "status must be an HTTP status from 100 to 599"),
    (access_line(status=99), "invalid_value", "status must be an HTTP status from 100 to 599"),
    (
        access_line(resource=ABSENT, action=ABSENT, method="GET", path="/v2/me/unknown/1"),
        "unknown_route",
        "no resource/action given, and method GET /v2/me/unknown/1 matches no route",
    ),
    (
        access_line(resource=ABSENT, action=ABSENT),
        "unknown_route",
        "no resource/action given, and method (none) (no path) matches no route",
    ),
]


@pytest.mark.parametrize(("line", "reason", "detail"), ACCESS_REJECTS)
def test_validation_access_rejects_with_reason_and_detail(line: str, reason: str, detail: str):
    row = result(ACCESS_KIND, line)
    assert (row["reason"], row["detail"]) == (reason, detail)
    assert row["raw_redacted"] is not None


INVALID_TIMES = [
    "2024-03-10T12:00:00",  # no offset
    "2024-03-10 12:00:00",  # no offset
    "2026-02-30T00:00:00Z",  # not a real date
    "2024-13-01T00:00:00Z",
    "2024-03-10T12:00:60Z",
    "2024-03-10",
    "",
    "1710072000000",  # epoch millis, but as a string
    "2024-03-10T24:00:00Z",  # RFC 3339 hours are 00-23
    "2024-03-10T12:00:00+25:00",  # RFC 3339 offset hours are 00-23
]


@pytest.mark.parametrize("event_time", INVALID_TIMES)
def test_validation_access_rejects_invalid_time(event_time: str):
    row = result(ACCESS_KIND, access_line(event_time=event_time))
    assert row["reason"] == "invalid_time"
    assert row["detail"] == (
        f"event_time {json.dumps(event_time)} has no UTC offset, is not a real date or is out of "
        "range"
    )
    assert row["event_time"] is None


def test_validation_invalid_encoding_comes_first():
    (row,) = validate(ACCESS_KIND, [access_line(user_id=42)], encoding_ok=[False])
    assert (row["reason"], row["detail"]) == ("invalid_encoding", "the line is not valid UTF-8")


def test_validation_first_failing_field_is_reported():
    row = one(ACCESS_KIND, access_line(request_id=ABSENT, user_id=42, action="erase"))
    assert (row["reason"], row["detail"]) == ("missing_field", "request_id is required")


def test_validation_record_id_is_kept_when_readable():
    rows = validate(ACCESS_KIND, [access_line(user_id=42), access_line(request_id=7), "[1]"])
    assert [r["record_id"] for r in rows] == ["r1", None, None]


# ---------------------------------------------------------------------------------------------
# Rejected consent records


CONSENT_REJECTS = [
    *(
        (
            consent_line(**{n: "a\x00b"}),
            "control_character",
            f"{n} holds a control character (U+0000-U+001F or U+007F)",
        )
        for n in ("event_id", "app_id", "user_id")
    ),
    (consent_line(event_id=ABSENT), "missing_field", "event_id is required"),
    (consent_line(event_type=ABSENT), "missing_field", "event_type is required"),
    (
        consent_line(event_type="grnt"),
        "unknown_value",
        "event_type grnt is not one of grant, revoke",
    ),
    (consent_line(user_id=1), "wrong_type", "user_id must be a string, not an integer"),
    (consent_line(scopes="messages.read"), "wrong_type", "scopes must be a list, not a string"),
    (consent_line(scopes={"a": 1}), "wrong_type", "scopes must be a list, not an object"),
    (consent_line(scopes=[1]), "wrong_type", "scopes must be a list of strings"),
    (consent_line(scopes=["messages.read", 2]), "wrong_type", "scopes must be a list of strings"),
    (consent_line(scopes=[None]), "wrong_type", "scopes must be a list of strings"),
    (consent_line(event_time="2024-03-10T12:00:00"), "invalid_time", None),
]


@pytest.mark.parametrize(("line", "reason", "detail"), CONSENT_REJECTS)
def test_validation_consent_rejects_with_reason(line: str, reason: str, detail: str | None):
    row = result(CONSENT_KIND, line)
    assert row["reason"] == reason
    if detail is not None:
        assert row["detail"] == detail


@pytest.mark.parametrize(
    ("scopes", "stored"),
    [(ABSENT, None), (None, None), ([], []), (["messages.read"], ["messages.read"])],
)
def test_validation_grant_scopes_null_and_empty_are_distinct(scopes: Any, stored: Any):
    row = one(CONSENT_KIND, consent_line(scopes=scopes))
    assert row["reason"] is None
    assert row["scopes"] == stored


def test_validation_revoke_scopes_are_ignored():
    rows = validate(
        CONSENT_KIND,
        [
            consent_line(event_type="revoke", scopes=["messages.read"]),
            consent_line(event_type="revoke", scopes="not a list"),
        ],
    )
    assert [(r["reason"], r["event_type"], r["scopes"]) for r in rows] == [
        (None, "revoke", None),
        (None, "revoke", None),
    ]


# ---------------------------------------------------------------------------------------------
# Valid access records: typed values


TIMES = [
    ("2024-03-10T12:00:00Z", NOON),
    ("2024-03-10T12:00:00z", NOON),
    ("2024-03-10T14:00:00+02:00", NOON),
    ("2024-03-10T06:30:00-05:30", NOON),
    ("2024-03-10T12:00:00.5Z", NOON.replace(microsecond=500000)),
    ("2024-03-10T12:00:00.123456789Z", NOON.replace(microsecond=123456)),
    ("2024-03-10T12:00:00.9999999Z", NOON.replace(microsecond=999999)),
    (1710072000000, NOON),
    (1710072000123, NOON.replace(microsecond=123000)),
    (0, dt.datetime(1970, 1, 1, tzinfo=UTC)),
]


@pytest.mark.parametrize(("event_time", "expected"), TIMES)
def test_validation_event_time_normalised_to_utc_micros(event_time: Any, expected: dt.datetime):
    row = result(ACCESS_KIND, access_line(event_time=event_time))
    assert row["reason"] is None
    assert row["event_time"] == expected


ROUTES = [
    ("GET", "/v2/me/messages/1", "messages", "read"),
    ("get", "/v2/me/messages", "messages", "read"),
    ("HEAD", "/me/messages/1", "messages", "read"),
    ("DELETE", "/v2/users/u1/threads/9", "messages", "delete"),
    ("POST", "/v2/me/messages", "messages", "write"),
    ("PATCH", "/v2/users/u1/conversations/3", "messages", "write"),
    ("GET", "/v2/me/contacts?access_token=x", "contacts", "read"),
    ("GET", "/v1.1/me/photos/7", "photos", "read"),
]


def route_line(method: str, path: str) -> str:
    return access_line(resource=ABSENT, action=ABSENT, method=method, path=path)


@pytest.mark.parametrize(("method", "path", "resource", "action"), ROUTES)
def test_validation_route_table_derives_resource_and_action(
    method: str, path: str, resource: str, action: str
):
    row = result(ACCESS_KIND, route_line(method, path))
    assert row["reason"] is None
    assert (row["resource"], row["action"]) == (resource, action)


def test_validation_route_does_not_match_collection_prefix():
    row = one(
        ACCESS_KIND,
        access_line(resource=ABSENT, action=ABSENT, method="GET", path="/v2/me/messagesX/1"),
    )
    assert row["reason"] == "unknown_route"


def test_validation_explicit_resource_and_action_win_over_route():
    row = one(
        ACCESS_KIND,
        access_line(resource="contacts", action="read", method="DELETE", path="/v2/me/messages/1"),
    )
    assert (row["reason"], row["resource"], row["action"]) == (None, "contacts", "read")


def test_validation_status_defaults_to_200():
    rows = validate(ACCESS_KIND, [access_line(), access_line(status=None), access_line(status=404)])
    assert [(r["reason"], r["status"]) for r in rows] == [(None, 200), (None, 200), (None, 404)]


def test_validation_unknown_fields_are_ignored():
    row = one(ACCESS_KIND, access_line(extra={"x": 1}, another=[1, 2]))
    assert row["reason"] is None


def test_validation_path_secrets_redacted_in_typed_path():
    path = "/v2/me/messages/1?Access_Token=aa&page=2&CODE=bb#token=cc;password=dd"
    row = one(ACCESS_KIND, access_line(path=path))
    assert row["path"] == (
        "/v2/me/messages/1?Access_Token=REDACTED&page=2&CODE=REDACTED#token=REDACTED;"
        "password=REDACTED"
    )


@pytest.mark.parametrize(
    "line",
    [
        '{"request_id": "r1", "password": hunter2 S3CRET',  # not JSON: a bare value
        '{"request_id": "r1", "path": "/me/messages?token=ab S3CRET"',  # whitespace in a value
        '{"request_id": "r1", "path": "/me/messages?code=a\\"S3CRET"',  # an escaped quote
        '{"request_id": "r1", "path": "/me/messages?\\u0074oken=S3CRET"',  # an escaped name
        '{"request_id": 1, "path": "/me/messages?token=ab S3CRET"}',  # an object, rejected
    ],
)
def test_validation_quarantined_raw_keeps_no_secret(line: str):
    row = one(ACCESS_KIND, line)
    assert row["reason"] is not None
    assert "S3CRET" not in row["raw_redacted"]
    assert "r1" in row["raw_redacted"] or '"request_id":1' in row["raw_redacted"]


def test_validation_identical_content_has_same_hash_regardless_of_layout():
    a = (
        '{"request_id": "r1", "event_time": "2024-03-10T12:00:00Z", "app_id": "app1", '
        '"user_id": "u1", "resource": "messages", "action": "read"}'
    )
    b = (
        '{"action":"read","resource":"messages","user_id":"u1","app_id":"app1",'
        '"event_time":"2024-03-10T14:00:00+02:00","request_id":"r1","ignored":1}'
    )
    c = access_line(status=404)
    rows = validate(ACCESS_KIND, [a, b, c])
    assert rows[0]["content_hash"] == rows[1]["content_hash"]
    assert rows[0]["content_hash"] != rows[2]["content_hash"]


# Every parametrized case above is validated in one query per record kind.
for _line, *_ in ACCESS_REJECTS:
    batched(ACCESS_KIND, _line)
for _time in INVALID_TIMES:
    batched(ACCESS_KIND, access_line(event_time=_time))
for _time, _ in TIMES:
    batched(ACCESS_KIND, access_line(event_time=_time))
for _method, _path, *_ in ROUTES:
    batched(ACCESS_KIND, route_line(_method, _path))
for _line, *_ in CONSENT_REJECTS:
    batched(CONSENT_KIND, _line)
