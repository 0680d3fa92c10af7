"""Bad records of each format are quarantined with a reason (the format's own, or validation's on
the canonical record), secrets never reach the quarantine, duplicates of a record that unnests
are resolved event by event, and counts reconcile: read = valid + quarantined + duplicates."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from pipeline.config import Source
from pipeline.readers.formats.gateway import PRESETS
from tests.formats.ingest_helpers import canonical_lines, ingest, reconciles, rows, stored

TOOL = Path(__file__).resolve().parents[2] / "tools" / "make_sample_logs.py"
spec = importlib.util.spec_from_file_location("make_sample_logs_bad", TOOL)
assert spec is not None and spec.loader is not None
tool = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = tool
spec.loader.exec_module(tool)

T = "2026-03-01T10:00:00.000Z"


def text(*lines: str) -> str:
    return "".join(line + "\n" for line in lines)


def test_google_bad_records(tmp_path: Path):
    good = tool.google_token_record(
        "q1",
        T,
        "a@x.example",
        "cid",
        "activity",
        method_name="gmail.users.messages.get",
        api_name="gmail",
    )
    unknown_verb = good.replace("messages.get", "messages.frobnicate").replace('"q1"', '"q2"')
    other_app = good.replace('"token"', '"drive"').replace('"q1"', '"q3"')
    no_time = good.replace(T, "2026-03-01T10:00:00").replace('"q1"', '"q4"')
    grant = tool.google_token_record("g1", T, "a@x.example", "cid", "authorize", scopes=["s"])
    source = Source("gws", "both", "google_workspace_token")
    summaries, _ = ingest(
        tmp_path,
        source,
        {"t.jsonl": text(good, unknown_verb, other_app, no_time, "{not json", grant)},
    )
    assert summaries["access"]["quarantine_reasons"] == {
        "invalid_json": 1,
        "invalid_time": 1,
        "unknown_application": 1,
        "unknown_route": 1,
    }
    assert summaries["access"]["totals"]["valid"] == 1
    assert summaries["consent"]["totals"] == {  # the grant only: bad lines count once
        "files": 1,
        "read": 1,
        "valid": 1,
        "quarantined": 0,
        "duplicates_dropped": 0,
    }
    assert reconciles(summaries["access"]) and reconciles(summaries["consent"])


def test_m365_bad_records_and_duplicates_event_by_event(tmp_path: Path):
    def record(record_id: str, messages: list[str], **extra: object) -> str:
        line = tool.m365_record(
            record_id,
            "2026-03-01T10:00:00",
            "app-1",
            "a@x.example",
            "Bind",
            [("\\Inbox", messages)],
        )
        return json.dumps({**json.loads(line), **extra}, separators=(",", ":"))

    three = record("r1", ["<m1>", "<m2>", "<m3>"])
    changed = record("r1", ["<m1>", "<m2>", "<mX>"])  # same ids, third message differs
    send = record("r2", ["<m4>"], Operation="Send")
    odd = record("r3", ["<m5>"], OperationProperties=[{"Name": "MailAccessType", "Value": "Peek"}])
    no_app = record("r4", ["<m6>"], AppId=None, AppAccessContext=None)
    source = Source("m365", "access", "m365_mail_items_accessed")
    summaries, settings = ingest(
        tmp_path, source, {"a.jsonl": text(three, three, changed, send, odd, no_app)}
    )
    access = summaries["access"]
    assert access["quarantine_reasons"] == {
        "conflicting_duplicate": 1,  # r1/3 of line 3
        "missing_field": 1,
        "unknown_access_type": 1,
        "unknown_operation": 1,
    }
    assert access["totals"]["duplicates_dropped"] == 5  # line 2 whole, r1/1 and r1/2 of line 3
    assert access["totals"]["read"] == 12 and reconciles(access)
    kept = rows(settings, "access", ["request_id", "path", "source_line"])
    assert kept == [
        {"request_id": "r1/1", "path": "\\Inbox/<m1>", "source_line": 1},
        {"request_id": "r1/2", "path": "\\Inbox/<m2>", "source_line": 100000001},
        {"request_id": "r1/3", "path": "\\Inbox/<m3>", "source_line": 200000001},
    ]
    quarantine = stored(settings, "quarantine").to_pylist()
    conflict = next(q for q in quarantine if q["reason"] == "conflicting_duplicate")
    assert (conflict["record_id"], conflict["source_line"]) == ("r1/3", 200000003)


def test_secrets_are_not_quarantined_from_any_format(tmp_path: Path):
    secret = "tok_demo_SECRET"
    graph = tool.graph_record(
        "g1", "not a time", "app", "u", "GET", f"/v1.0/me/messages?access_token={secret}", 200
    )
    source = Source("graph", "access", "graph_activity")
    summaries, settings = ingest(tmp_path, source, {"g.jsonl": text(graph)})
    assert summaries["access"]["quarantine_reasons"] == {"invalid_time": 1}
    gateway = f'1.2.3.4 - - [bad time] "GET /me?token={secret} HTTP/1.1" 200 1 "-" "ua"'
    gw_summaries, gw_settings = ingest(
        tmp_path / "gw", Source("gw", "access", "gateway", pattern="combined"), {"a.log": gateway}
    )
    assert gw_summaries["access"]["quarantine_reasons"] == {"invalid_time": 1}
    for s in (settings, gw_settings):
        (row,) = stored(s, "quarantine").to_pylist()
        assert secret not in row["raw"] and "REDACTED" in row["raw"]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_gateway_presets_split_as_their_patterns_read(tmp_path: Path, name: str):
    """The quote-splitting reader of a preset and the preset's own pattern agree."""
    line = tool.gateway_line(
        "10.0.0.1",
        tool.midnight(tool.FIRST_DAY),
        "DELETE",
        "/v2/me/messages/1?page=2",
        204,
        "SDK/1 (x; y)",
        "r1",
        "app",
        "u1",
    )
    if name == "combined":
        line = line.rsplit(" r1 ", 1)[0]
    lines = text(line, "junk", '1.2.3.4 - - [x] "GET" 200')
    by_split = canonical_lines(
        tmp_path, Source("a", "access", "gateway", pattern=name), "access", lines
    )
    by_pattern = canonical_lines(
        tmp_path, Source("b", "access", "gateway", pattern=PRESETS[name]), "access", lines
    )
    assert by_split == by_pattern
    assert by_split[0]["path"] == "/v2/me/messages/1?page=2"
    assert [x.get("refused") for x in by_split] == [None, "unmatched_line", "unmatched_line"]
