"""Each reader on the public samples of formats.md, field for field, as literal expectations: what
the reader makes of the record, then what the real ingest stores or quarantines."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import Source
from tests.formats.ingest_helpers import SAMPLES, canonical_lines, ingest, reconciles, rows

ACCESS_COLUMNS = ["request_id", "event_time", "app_id", "user_id", "resource", "action"]
ACCESS_COLUMNS += ["method", "path", "status", "ip", "user_agent", "source_file", "source_line"]
CONSENT_COLUMNS = ["event_id", "event_time", "user_id", "app_id", "event_type", "scopes"]


def sample(name: str) -> str:
    return (SAMPLES / name).read_text()


def test_google_workspace_token_activity_sample(tmp_path: Path):
    source = Source("gws", "both", "google_workspace_token", "gws", "gws.toml")
    text = sample("google_workspace_token.jsonl")
    assert canonical_lines(tmp_path, source, "access", text) == [
        {
            "line": 1,
            "request_id": "2267463811441111309@2022-09-18T16:42:31.789Z",
            "event_time": "2022-09-18T16:42:31.789Z",
            "user_id": "test@example.com",
            "app_id": "423.apps.googleusercontent.com",
            "resource": "admin",
            "action": "read",
            "method": "reports.activities.list",
            "ip": "1.2.3.4",
        }
    ]
    assert canonical_lines(tmp_path, source, "consent", text) == []  # an activity is no consent
    mapping = '[apps]\n"423.apps.googleusercontent.com" = "postman-web"\n'
    summaries, settings = ingest(tmp_path, source, {"token.jsonl": text}, mapping)
    assert summaries["access"]["totals"]["valid"] == 1
    assert summaries["consent"]["totals"]["read"] == 0
    (row,) = rows(settings, "access", ACCESS_COLUMNS)
    assert row["app_id"] == "postman-web"  # through the mapping
    assert row["event_time"].isoformat() == "2022-09-18T16:42:31.789000+00:00"
    assert (row["resource"], row["status"], row["source_file"], row["source_line"]) == (
        "admin",
        200,
        "gws/token.jsonl",
        1,
    )


def test_m365_bind_sample(tmp_path: Path):
    source = Source("m365", "access", "m365_mail_items_accessed")
    text = sample("m365_mail_items_accessed.jsonl")
    assert canonical_lines(tmp_path, source, "access", text) == [
        {
            "line": 1,
            "request_id": "f5493f9a-57ce-4859-94bd-fd2ad38d5680",
            "event_time": "2020-04-07T23:47:30Z",  # CreationTime is UTC without an offset
            "app_id": None,  # this Outlook-iOS record names no app
            "user_id": "tony.hawks@sample.com",
            "resource": "messages",
            "action": "read",
            "method": "Bind",
            "path": "\\Inbox/71ceaeec-6dc3-4452-839f-6db34dd95f95@DB5EUR01BG102.eop-EUR01.prod"
            ".protection.outlook.com",
            "status": 200,
            "ip": "2001:bb6:5f4f:f058:4163:e14a:1332:27c7",
            "user_agent": "Client=OutlookService;Outlook-iOS/2.0;",
        }
    ]
    summaries, settings = ingest(tmp_path, source, {"mia.jsonl": text})
    assert summaries["access"]["quarantine_reasons"] == {"missing_field": 1}
    assert reconciles(summaries["access"])
    with_app = text.replace('"UserId":', '"AppId":"11111111-2222-3333-4444-555555555555","UserId":')
    summaries, settings = ingest(tmp_path / "2", source, {"mia.jsonl": with_app})
    (row,) = rows(settings, "access", ["request_id", "app_id", "user_id", "method"])
    assert row == {
        "request_id": "f5493f9a-57ce-4859-94bd-fd2ad38d5680",
        "app_id": "11111111-2222-3333-4444-555555555555",
        "user_id": "tony.hawks@sample.com",
        "method": "Bind",
    }


def test_graph_activity_sample(tmp_path: Path):
    source = Source("graph", "access", "graph_activity")
    text = sample("graph_activity.jsonl")
    _, settings = ingest(tmp_path, source, {"graph.jsonl": text})
    (row,) = rows(settings, "access", ACCESS_COLUMNS)
    assert row["event_time"].isoformat() == "2024-05-02T10:15:03.120000+00:00"
    del row["event_time"]
    assert row == {
        "request_id": "3f0e…",
        "app_id": "11111111-2222-3333-4444-555555555555",
        "user_id": "9a8b…",
        "resource": "messages",
        "action": "read",
        "method": "GET",
        "path": "/v1.0/users/9a8b…/messages/AAMk…",
        "status": 200,
        "ip": "203.0.113.9",
        "user_agent": None,
        "source_file": "graph/graph.jsonl",
        "source_line": 1,
    }


def test_entra_consent_sample(tmp_path: Path):
    source = Source("entra", "consent", "entra_audit", "entra", "entra.toml")
    mapping = '[scopes]\n"Mail.Read" = "messages.read"\n'
    _, settings = ingest(tmp_path, source, {"audit.jsonl": sample("entra_audit.jsonl")}, mapping)
    (row,) = rows(settings, "consent", CONSENT_COLUMNS)
    assert row["event_time"].isoformat() == "2026-09-09T17:04:02+00:00"
    del row["event_time"]
    assert row == {
        "event_id": "audit-1",
        "user_id": "alice@example.test",
        "app_id": "11111111-2222-3333-4444-555555555555",
        "event_type": "grant",
        # the sample's permissions text ends in an ellipsis, kept as written
        "scopes": ["messages.read", "offline_access…"],
    }


def test_okta_revoke_sample_and_sso_record(tmp_path: Path):
    source = Source("okta", "consent", "okta_system_log")
    revoke = sample("okta_system_log.jsonl")
    assert canonical_lines(tmp_path, source, "consent", revoke) == [
        {
            "line": 1,
            "event_id": "1234fakeuuid",
            "event_time": "2020-11-29T00:23:39.508Z",
            "user_id": "00u7wxd79anps3KjF2p7",
            "app_id": None,  # the fixture names no client
            "event_type": "revoke",
            "scopes": None,
        }
    ]
    summaries, _ = ingest(tmp_path, source, {"log.jsonl": sample("okta_sso.jsonl") + revoke})
    assert summaries["consent"]["quarantine_reasons"] == {
        "missing_field": 1,
        "not_a_consent_event": 1,
    }
    assert reconciles(summaries["consent"])


def test_gateway_combined_sample(tmp_path: Path):
    source = Source("gw", "access", "gateway", pattern="combined")
    text = sample("gateway_combined.log")
    (line,) = canonical_lines(tmp_path, source, "access", text)
    assert line == {
        "line": 1,
        "request_id": "line-add6e9ec35f51253f360c7219438870a",
        "event_time": "2000-10-10T13:55:36-07:00",  # rearranged, not converted
        "app_id": None,  # combined logs no app: quarantined below
        "user_id": "frank",
        "method": "GET",
        "path": "/apache_pb.gif",
        "status": 200,
        "ip": "127.0.0.1",
        "user_agent": "Mozilla/4.08 [en] (Win98; I ;Nav)",
    }
    summaries, _ = ingest(tmp_path, source, {"access.log": text + "not a log line\n"})
    assert summaries["access"]["quarantine_reasons"] == {"missing_field": 1, "unmatched_line": 1}
