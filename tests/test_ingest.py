"""pipeline.ingest.ingest_day over real landing files (SPEC §2 and §4): quarantine reasons, counts,
duplicates, file order, time normalisation, routes and redaction."""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import json
import types
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import Settings
from pipeline.ingest.counts import IngestResult
from pipeline.ingest.day import ingest_day
from pipeline.ingest.dedupe import resolve_duplicates
from pipeline.ingest.row_keys import LINE_BITS
from pipeline.ingest.validation import ACCESS_KIND
from pipeline.readers.landing import Landing
from pipeline.warehouse import Warehouse
from tests.landing import access, consent, write_day

DAY = dt.date(2024, 3, 10)
NOON = "2024-03-10T12:00:00Z"
UTC = dt.UTC


def ingest(settings: Settings, kind: str = "access", day: dt.date = DAY) -> IngestResult:
    return ingest_day(kind, day, Landing(settings.landing), Warehouse(settings.warehouse), settings)


def rows(settings: Settings, table: str, *columns: str, day: dt.date = DAY) -> list[tuple]:
    data = Warehouse(settings.warehouse).read_partition(table, day)
    return [tuple(r[c] for c in columns) for r in data.to_pylist()]


def quarantine(settings: Settings, day: dt.date = DAY) -> list[tuple]:
    return rows(settings, "quarantine", "source_file", "source_line", "reason", day=day)


def file_counts(result: IngestResult) -> dict[str, tuple[int, int, dict[str, int], int]]:
    return {f.file: (f.read, f.valid, f.quarantined, f.duplicates_dropped) for f in result.files}


# ---------------------------------------------------------------------------------------------
# Quarantine: every kind of invalid record, the run continues


def test_ingest_quarantines_each_invalid_access_record_with_reason(
    landing_root: Path, settings: Settings
):
    no_route = access("r-route", NOON, method="GET", path="/v2/me/unknown")
    del no_route["resource"], no_route["action"]
    no_user = access("r-nouser", NOON)
    del no_user["user_id"]
    write_day(
        landing_root,
        "access",
        DAY,
        {
            "a.jsonl": [
                access("ok-1", NOON),
                '{"request_id": "broken", ',  # 2 invalid JSON
                "[1, 2, 3]",  # 3 JSON but not an object
                no_user,  # 4
                access("r-num", NOON, user="u1") | {"user_id": 17},  # 5
                access("r-empty", NOON, user=""),  # 6
                access("r-naive", "2024-03-10T12:00:00"),  # 7
                access("r-feb30", "2026-02-30T12:00:00Z"),  # 8
                access("r-float", 1710072000000.5),  # 9
                access("r-action", NOON, action="erase"),  # 10
                access("r-status-str", NOON, status="200"),  # 11
                access("r-status-range", NOON, status=700),  # 12
                no_route,  # 13
                access("ok-2", 1710072000123),  # 14
            ]
        },
    )
    result = ingest(settings)
    assert quarantine(settings) == [
        ("a.jsonl", 2, "invalid_json"),
        ("a.jsonl", 3, "not_a_json_object"),
        ("a.jsonl", 4, "missing_field"),
        ("a.jsonl", 5, "wrong_type"),
        ("a.jsonl", 6, "empty_field"),
        ("a.jsonl", 7, "invalid_time"),
        ("a.jsonl", 8, "invalid_time"),
        ("a.jsonl", 9, "wrong_type"),
        ("a.jsonl", 10, "unknown_value"),
        ("a.jsonl", 11, "wrong_type"),
        ("a.jsonl", 12, "invalid_value"),
        ("a.jsonl", 13, "unknown_route"),
    ]
    assert rows(settings, "access", "request_id", "source_line") == [("ok-1", 1), ("ok-2", 14)]
    assert result.totals() == {
        "files": 1,
        "read": 14,
        "valid": 2,
        "quarantined": 12,
        "duplicates_dropped": 0,
    }
    assert result.reasons() == {
        "empty_field": 1,
        "invalid_json": 1,
        "invalid_time": 2,
        "invalid_value": 1,
        "missing_field": 1,
        "not_a_json_object": 1,
        "unknown_route": 1,
        "unknown_value": 1,
        "wrong_type": 3,
    }


def test_ingest_quarantines_each_invalid_consent_record_with_reason(
    landing_root: Path, settings: Settings
):
    write_day(
        landing_root,
        "consent",
        DAY,
        {
            "a.jsonl": [
                consent("e-ok", NOON, scopes=["messages.read"]),
                consent("e-type", NOON, kind="allow"),
                consent("e-str", NOON, scopes="messages.read"),
                consent("e-ints", NOON, scopes=[1, 2]),
                consent("e-mixed", NOON, scopes=["messages.read", None]),
                consent("e-naive", "2024-03-10 12:00:00"),
                consent("e-revoke", NOON, kind="revoke"),
            ]
        },
    )
    ingest(settings, "consent")
    assert quarantine(settings) == [
        ("a.jsonl", 2, "unknown_value"),
        ("a.jsonl", 3, "wrong_type"),
        ("a.jsonl", 4, "wrong_type"),
        ("a.jsonl", 5, "wrong_type"),
        ("a.jsonl", 6, "invalid_time"),
    ]
    assert rows(settings, "consent", "event_id", "event_type", "scopes") == [
        ("e-ok", "grant", ["messages.read"]),
        ("e-revoke", "revoke", None),
    ]


def test_ingest_invalid_utf8_line_is_quarantined_and_neighbours_kept(
    landing_root: Path, settings: Settings
):
    folder = write_day(landing_root, "access", DAY, {})
    good = json.dumps(access("r2", NOON)).encode()
    bad = (
        b'{"request_id": "r1", "event_time": "2024-03-10T12:00:00Z", "app_id": "app1", '
        b'"user_id": "\xff\xfeu", "resource": "messages", "action": "read"}'
    )
    (folder / "a.jsonl").write_bytes(bad + b"\n" + good + b"\n")
    ingest(settings)
    assert quarantine(settings) == [("a.jsonl", 1, "invalid_encoding")]
    assert rows(settings, "access", "request_id") == [("r2",)]


def test_ingest_truncated_gz_is_unreadable_file_and_run_continues(
    landing_root: Path, settings: Settings
):
    folder = write_day(
        landing_root,
        "access",
        DAY,
        {"a.jsonl": [access("a1", NOON)], "c.jsonl": [access("c1", NOON)]},
    )
    payload = "".join(json.dumps(access(f"b{i}", NOON)) + "\n" for i in range(20)).encode()
    whole = gzip.compress(payload, mtime=0)
    (folder / "b.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    result = ingest(settings)
    (unreadable,) = [r for r in quarantine(settings) if r[0] == "b.jsonl.gz"]
    assert unreadable[2] == "unreadable_file"
    assert ("a1",) in rows(settings, "access", "request_id")
    assert ("c1",) in rows(settings, "access", "request_id")
    by_file = {f.file: f for f in result.files}
    assert by_file["b.jsonl.gz"].error is not None
    assert by_file["b.jsonl.gz"].quarantined == {"unreadable_file": 1}
    assert file_counts(result)["c.jsonl"] == (1, 1, {}, 0)


def test_ingest_truncated_gz_keeps_every_line_before_the_damage(
    landing_root: Path, settings: Settings
):
    """Blocks are validated several at a time: those read before the damage are all kept."""
    settings = dataclasses.replace(settings, read_block_bytes=1 << 16)
    folder = write_day(landing_root, "access", DAY, {})
    payload = "".join(json.dumps(access(f"b{i}", NOON)) + "\n" for i in range(20_000)).encode()
    whole = gzip.compress(payload, mtime=0)
    (folder / "b.jsonl.gz").write_bytes(whole[: len(whole) * 3 // 4])
    result = ingest(settings)
    (unreadable,) = quarantine(settings)
    kept = rows(settings, "access", "request_id")
    assert unreadable[2] == "unreadable_file"
    assert len(payload) * 3 // 4 > 8 * settings.read_block_bytes  # many blocks were read
    assert kept == [(f"b{i}",) for i in range(unreadable[1] - 1)]  # all before the damage
    assert file_counts(result)["b.jsonl.gz"][0] == len(kept) + 1


def test_ingest_blank_lines_are_counted_not_quarantined(landing_root: Path, settings: Settings):
    write_day(
        landing_root,
        "access",
        DAY,
        {"a.jsonl": ["", access("r1", NOON), "   ", "\t", "", access("r2", NOON)]},
    )
    result = ingest(settings)
    (counts,) = result.files
    assert (counts.lines, counts.blank_lines, counts.read, counts.valid) == (6, 4, 2, 2)
    assert quarantine(settings) == []
    assert rows(settings, "access", "request_id", "source_line") == [("r1", 2), ("r2", 6)]


def test_ingest_crlf_line_endings_are_accepted(landing_root: Path, settings: Settings):
    folder = write_day(landing_root, "access", DAY, {})
    body = json.dumps(access("r1", NOON)) + "\r\n" + json.dumps(access("r2", NOON)) + "\r\n"
    (folder / "a.jsonl").write_bytes(body.encode())
    ingest(settings)
    assert rows(settings, "access", "request_id") == [("r1",), ("r2",)]


def test_ingest_file_without_final_newline_keeps_last_line(landing_root: Path, settings: Settings):
    folder = write_day(landing_root, "access", DAY, {})
    (folder / "a.jsonl").write_text(
        json.dumps(access("r1", NOON)) + "\n" + json.dumps(access("r2", NOON))
    )
    ingest(settings)
    assert rows(settings, "access", "request_id") == [("r1",), ("r2",)]


def test_ingest_counts_reconcile_per_file_and_warehouse_holds_valid_rows(
    landing_root: Path, settings: Settings
):
    write_day(
        landing_root,
        "access",
        DAY,
        {
            "a.jsonl": [
                access("r1", NOON),
                access("r1", NOON),  # identical duplicate
                "not json",
                access("r2", NOON),
                "",
            ],
            "b.jsonl": [
                access("r2", "2024-03-10T13:00:00Z"),  # conflicts with a.jsonl line 4
                access("r3", NOON),
                access("r3", NOON, status=500),  # conflicts with line 2
            ],
        },
    )
    result = ingest(settings)
    assert file_counts(result) == {
        "a.jsonl": (4, 2, {"invalid_json": 1}, 1),
        "b.jsonl": (3, 1, {"conflicting_duplicate": 2}, 0),
    }
    for f in result.files:
        assert f.read == f.valid + sum(f.quarantined.values()) + f.duplicates_dropped
    assert result.totals() == {
        "files": 2,
        "read": 7,
        "valid": 3,
        "quarantined": 3,
        "duplicates_dropped": 1,
    }
    assert rows(settings, "access", "request_id", "source_file", "source_line") == [
        ("r1", "a.jsonl", 1),
        ("r2", "a.jsonl", 4),
        ("r3", "b.jsonl", 2),
    ]
    assert len(quarantine(settings)) == result.totals()["quarantined"]


# ---------------------------------------------------------------------------------------------
# Duplicates


def test_ingest_identical_duplicate_counted_once(landing_root: Path, settings: Settings):
    record = access("r1", NOON, path="/v2/me/messages/1")
    same_in_other_words = {**record, "event_time": "2024-03-10T14:00:00+02:00", "unknown": 1}
    write_day(landing_root, "access", DAY, {"a.jsonl": [record, record, same_in_other_words]})
    result = ingest(settings)
    assert file_counts(result) == {"a.jsonl": (3, 1, {}, 2)}
    assert rows(settings, "access", "request_id", "source_line") == [("r1", 1)]
    assert quarantine(settings) == []


def test_ingest_conflicting_duplicate_keeps_first_across_files(
    landing_root: Path, settings: Settings
):
    first = access("r1", NOON, user="u-first")
    second = access("r1", NOON, user="u-second", path="/v2/me/messages?access_token=tok_X")
    third = access("r1", NOON, user="u-third")
    write_day(
        landing_root,
        "access",
        DAY,
        {"b.jsonl.gz": [third], "a.jsonl": [access("r0", NOON), first, second]},
    )
    result = ingest(settings)
    assert rows(settings, "access", "request_id", "user_id", "source_file") == [
        ("r0", "u1", "a.jsonl"),
        ("r1", "u-first", "a.jsonl"),
    ]
    stored = rows(
        settings, "quarantine", "source_file", "source_line", "reason", "record_id", "raw"
    )

    def as_stored(record: dict) -> str:  # defined fields, then the names of any others
        return json.dumps({**record, "_other_fields": []}, separators=(",", ":"))

    assert stored == [
        (
            "a.jsonl",
            3,
            "conflicting_duplicate",
            "r1",
            as_stored(second).replace("tok_X", "REDACTED"),
        ),
        ("b.jsonl.gz", 1, "conflicting_duplicate", "r1", as_stored(third)),
    ]
    assert file_counts(result) == {
        "a.jsonl": (3, 2, {"conflicting_duplicate": 1}, 0),
        "b.jsonl.gz": (1, 0, {"conflicting_duplicate": 1}, 0),
    }


def test_ingest_files_read_in_name_order_not_numeric(landing_root: Path, settings: Settings):
    write_day(
        landing_root,
        "access",
        DAY,
        {
            "part-9.jsonl": [access("r1", NOON, user="from-9")],
            "part-10.jsonl": [access("r1", NOON, user="from-10")],
        },
    )
    ingest(settings)
    assert rows(settings, "access", "user_id", "source_file") == [("from-10", "part-10.jsonl")]
    assert quarantine(settings) == [("part-9.jsonl", 1, "conflicting_duplicate")]


def test_ingest_consent_deduplicated_by_event_id(landing_root: Path, settings: Settings):
    grant = consent("e1", NOON, scopes=["messages.read"])
    write_day(
        landing_root,
        "consent",
        DAY,
        {
            "a.jsonl": [grant, grant],
            "b.jsonl": [consent("e1", NOON, scopes=["messages.write"]), consent("e2", NOON)],
        },
    )
    result = ingest(settings, "consent")
    assert rows(settings, "consent", "event_id", "scopes", "source_file") == [
        ("e1", ["messages.read"], "a.jsonl"),
        ("e2", None, "b.jsonl"),
    ]
    assert rows(settings, "quarantine", "kind", "source_file", "source_line", "reason") == [
        ("consent", "b.jsonl", 1, "conflicting_duplicate")
    ]
    assert file_counts(result) == {
        "a.jsonl": (2, 1, {}, 1),
        "b.jsonl": (2, 1, {"conflicting_duplicate": 1}, 0),
    }


def test_ingest_duplicates_are_per_kind_and_invalid_copies_do_not_count(
    landing_root: Path, settings: Settings
):
    write_day(
        landing_root,
        "access",
        DAY,
        {"a.jsonl": [access("r1", "2024-03-10T12:00:00"), access("r1", NOON)]},
    )
    ingest(settings)
    assert quarantine(settings) == [("a.jsonl", 1, "invalid_time")]
    assert rows(settings, "access", "request_id", "source_line") == [("r1", 2)]


# ---------------------------------------------------------------------------------------------
# Reading files and typing values


def test_ingest_reads_plain_and_gz_in_name_order(landing_root: Path, settings: Settings):
    write_day(
        landing_root,
        "access",
        DAY,
        {
            "b.jsonl.gz": [access("b1", NOON), access("b2", NOON)],
            "a.jsonl": [access("a1", NOON)],
            "c.json": [access("ignored", NOON)],  # not a record file
        },
    )
    result = ingest(settings)
    assert [f.file for f in result.files] == ["a.jsonl", "b.jsonl.gz"]
    assert rows(settings, "access", "request_id", "source_file", "source_line") == [
        ("a1", "a.jsonl", 1),
        ("b1", "b.jsonl.gz", 1),
        ("b2", "b.jsonl.gz", 2),
    ]


def test_ingest_times_normalised_to_utc_microseconds(landing_root: Path, settings: Settings):
    write_day(
        landing_root,
        "access",
        DAY,
        {
            "a.jsonl": [
                access("plus", "2024-03-10T14:00:00+02:00"),
                access("minus", "2024-03-10T06:30:00-05:30"),
                access("micro", "2024-03-10T12:00:00.123456Z"),
                access("nano", "2024-03-10T12:00:00.987654321Z"),
                access("millis", 1710072000123),
            ]
        },
    )
    ingest(settings)
    noon = dt.datetime(2024, 3, 10, 12, tzinfo=UTC)
    assert rows(settings, "access", "request_id", "event_time") == [
        ("plus", noon),
        ("minus", noon),
        ("micro", noon.replace(microsecond=123456)),
        ("nano", noon.replace(microsecond=987654)),
        ("millis", noon.replace(microsecond=123000)),
    ]
    table = Warehouse(settings.warehouse).read_partition("access", DAY)
    assert str(table.schema.field("event_time").type) == "timestamp[us, tz=UTC]"


def test_ingest_routes_and_explicit_fields_and_default_status(
    landing_root: Path, settings: Settings
):
    def routed(request_id: str, method: str, path: str, **extra: Any) -> dict[str, Any]:
        record = access(request_id, NOON, method=method, path=path, **extra)
        del record["resource"], record["action"]
        return record

    write_day(
        landing_root,
        "access",
        DAY,
        {
            "a.jsonl": [
                routed("get", "GET", "/v2/me/messages/1"),
                routed("delete", "DELETE", "/v2/users/u1/threads/9", status=204),
                routed("post", "POST", "/v2/me/messages"),
                access(
                    "explicit",
                    NOON,
                    method="DELETE",
                    path="/v2/me/messages/1",
                    resource="contacts",
                    action="read",
                ),
            ]
        },
    )
    ingest(settings)
    assert rows(settings, "access", "request_id", "resource", "action", "method", "status") == [
        ("get", "messages", "read", "GET", 200),
        ("delete", "messages", "delete", "DELETE", 204),
        ("post", "messages", "write", "POST", 200),
        ("explicit", "contacts", "read", "DELETE", 200),
    ]


def test_ingest_keeps_optional_fields_and_lineage(landing_root: Path, settings: Settings):
    write_day(
        landing_root,
        "access",
        DAY,
        {"a.jsonl": [access("r1", NOON, thread_id="t9", ip="10.0.0.1", user_agent="ua/1")]},
    )
    ingest(settings)
    (row,) = Warehouse(settings.warehouse).read_partition("access", DAY).to_pylist()
    assert row == {
        "request_id": "r1",
        "event_time": dt.datetime(2024, 3, 10, 12, tzinfo=UTC),
        "app_id": "app1",
        "user_id": "u1",
        "resource": "messages",
        "action": "read",
        "method": None,
        "path": None,
        "status": 200,
        "thread_id": "t9",
        "ip": "10.0.0.1",
        "user_agent": "ua/1",
        "delivery_date": DAY,
        "source_file": "a.jsonl",
        "source_line": 1,
    }


def test_ingest_empty_day_writes_empty_partitions(landing_root: Path, settings: Settings):
    write_day(landing_root, "access", DAY, {})
    result = ingest(settings)
    assert result.totals()["files"] == 0
    warehouse = Warehouse(settings.warehouse)
    assert warehouse.has_partition("access", DAY)
    assert warehouse.read_partition("access", DAY).num_rows == 0


# ---------------------------------------------------------------------------------------------
# Redaction: no secret, no message body in the warehouse

SECRET = "tok_SECRET123"
BODY = "BODY-TEXT-XYZ"


@pytest.mark.parametrize(
    ("path", "stored"),
    [
        (f"/v2/me/messages?access_token={SECRET}", "/v2/me/messages?access_token=REDACTED"),
        (f"/v2/me/messages?page=2&TOKEN={SECRET}&x=1", "/v2/me/messages?page=2&TOKEN=REDACTED&x=1"),
        (f"/v2/me/messages?Code={SECRET}", "/v2/me/messages?Code=REDACTED"),
        (f"/v2/me/messages?client_secret={SECRET}", "/v2/me/messages?client_secret=REDACTED"),
        (f"/v2/me/messages?PassWord={SECRET}", "/v2/me/messages?PassWord=REDACTED"),
        (f"/v2/me/messages#access_token={SECRET}", "/v2/me/messages#access_token=REDACTED"),
        (f"/v2/me/messages?a=1#x=2&token={SECRET}", "/v2/me/messages?a=1#x=2&token=REDACTED"),
        ("/v2/me/messages?page=2", "/v2/me/messages?page=2"),
    ],
)
def test_ingest_redacts_secret_query_params_in_stored_path(
    landing_root: Path, settings: Settings, path: str, stored: str
):
    write_day(landing_root, "access", DAY, {"a.jsonl": [access("r1", NOON, path=path)]})
    ingest(settings)
    assert rows(settings, "access", "path") == [(stored,)]


def test_ingest_redacts_secrets_in_quarantined_raw(landing_root: Path, settings: Settings):
    write_day(
        landing_root,
        "access",
        DAY,
        {
            "a.jsonl": [
                access("r1", NOON, user=7, path=f"/v2/me/messages?access_token={SECRET}&p=1"),
                f'{{"request_id": "r2", "path": "/m?Token={SECRET}", "password": "{SECRET}"',
                access("r3", NOON, action="x", client_secret=SECRET, Password=SECRET),
            ]
        },
    )
    ingest(settings)
    raws = [r[0] for r in rows(settings, "quarantine", "raw")]
    assert raws == [
        '{"request_id":"r1","event_time":"2024-03-10T12:00:00Z","app_id":"app1","user_id":7,'
        '"resource":"messages","action":"read","path":"/v2/me/messages?access_token=REDACTED&p=1",'
        '"_other_fields":[]}',
        '{"request_id": "r2", "path": "/m?Token=REDACTED", "password": "REDACTED"',
        # a JSON object keeps its defined fields only; other members are named, not shown
        '{"request_id":"r3","event_time":"2024-03-10T12:00:00Z","app_id":"app1","user_id":"u1",'
        '"resource":"messages","action":"x","_other_fields":["client_secret","Password"]}',
    ]


def warehouse_text(root: Path) -> str:
    """Everything the warehouse stores, as text: every Parquet file's rows and metadata, and the
    bytes of every other file (manifests)."""
    pieces = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.suffix == ".parquet" or ".parquet." in path.name:
            parquet = pq.ParquetFile(path)
            pieces.append(str(parquet.metadata.schema))
            pieces.append(repr(parquet.read().to_pylist()))
        pieces.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(pieces)


def test_ingest_no_secret_or_body_reaches_any_warehouse_file(
    landing_root: Path, settings: Settings, tmp_path: Path
):
    leaky = {"body": BODY, "text": BODY, "content": BODY, "password": SECRET}
    write_day(
        landing_root,
        "access",
        DAY,
        {
            "a.jsonl": [
                access("valid-1", NOON, path=f"/v2/me/messages/1?access_token={SECRET}", **leaky),
                access(
                    "valid-2",
                    NOON,
                    method="POST",
                    path=f"/v2/me/messages?code={SECRET}",
                    message=BODY,
                    subject=BODY,
                    snippet=BODY,
                ),
                access("bad-1", NOON, user=5, path=f"/x?token={SECRET}", **leaky),
                access("bad-2", "no time", attachments=[{"name": BODY}], html=BODY),
                access("bad-3", NOON, action="zap", body={"parts": [BODY]}),
                f'{{"request_id": "bad-4", "body": "{BODY}", "path": "/x?client_secret={SECRET}',
                access("valid-1", NOON, body=BODY, user="other"),  # conflicting duplicate
            ]
        },
    )
    write_day(
        landing_root,
        "consent",
        DAY,
        {
            "a.jsonl": [
                consent("c1", NOON, text=BODY, access_token=SECRET),
                consent("c2", NOON, kind="nope", content=BODY, token=SECRET),
            ]
        },
    )
    ingest(settings)
    ingest(settings, "consent")
    text = warehouse_text(tmp_path / "warehouse")
    assert "valid-1" in text and "bad-4" in text and "c2" in text  # the scan sees the rows
    assert SECRET not in text
    assert BODY not in text


# Narrower leaks, one shape each.


def test_ingest_quarantine_raw_redacts_numeric_secret_member(
    landing_root: Path, settings: Settings
):
    write_day(landing_root, "access", DAY, {"a.jsonl": [access("r1", NOON, user=5, code=48291377)]})
    ingest(settings)
    (raw,) = rows(settings, "quarantine", "raw")
    assert "48291377" not in raw[0]


def test_ingest_quarantine_raw_drops_nested_body_field(landing_root: Path, settings: Settings):
    write_day(
        landing_root,
        "access",
        DAY,
        {"a.jsonl": [access("r1", NOON, user=5, message_meta={"content": [BODY]})]},
    )
    ingest(settings)
    (raw,) = rows(settings, "quarantine", "raw")
    assert BODY not in raw[0]


def test_ingest_quarantine_raw_drops_capitalised_body_object(
    landing_root: Path, settings: Settings
):
    write_day(
        landing_root, "access", DAY, {"a.jsonl": [access("r1", NOON, user=5, Body={"t": BODY})]}
    )
    ingest(settings)
    (raw,) = rows(settings, "quarantine", "raw")
    assert BODY not in raw[0]


def test_ingest_quarantine_detail_redacts_semicolon_secret_param(
    landing_root: Path, settings: Settings
):
    record = access("r1", NOON, method="GET", path=f"/v2/me/unknown;token={SECRET}")
    del record["resource"], record["action"]
    write_day(landing_root, "access", DAY, {"a.jsonl": [record]})
    ingest(settings)
    ((reason, detail, raw),) = rows(settings, "quarantine", "reason", "detail", "raw")
    assert reason == "unknown_route"
    assert SECRET not in raw
    assert SECRET not in detail


def test_dedupe_tells_apart_ids_whose_hashes_collide(tmp_path: Path):
    """Repeats are found by a 64-bit hash of the id; two ids that share one (as a collision
    would) are still told apart by the id itself, and a true repeat among them is still found."""
    ids, hashes, contents = ["x", "y", "x", "y", "z"], [7, 7, 7, 7, 9], [1, 2, 1, 5, 3]
    lines = list(range(1, len(ids) + 1))
    keys_path, records_path = tmp_path / "keys.parquet", tmp_path / "records.parquet"
    pq.write_table(
        pa.table(
            {
                "row_key": pa.array([(1 << LINE_BITS) + n for n in lines], pa.int64()),
                "id_hash": pa.array(hashes, pa.uint64()),
                "content_hash": pa.array(contents, pa.uint64()),
            }
        ),
        keys_path,
    )
    pq.write_table(
        pa.table({"request_id": ids, "source_file": ["b.jsonl"] * 5, "source_line": lines}),
        records_path,
    )
    staging = types.SimpleNamespace(keys=True, keys_path=str(keys_path))
    con = duckdb.connect()
    identical, conflicting = resolve_duplicates(
        con, staging, ACCESS_KIND, str(records_path), ["a.jsonl", "b.jsonl"]
    )
    assert _lines(identical) == [3]  # x again, same content
    assert _lines(conflicting) == [4]  # y again, other content; y's first copy is kept


def _lines(row_keys: pa.Table) -> list[int]:
    return sorted(k - (1 << LINE_BITS) for k in row_keys["row_key"].to_pylist())
