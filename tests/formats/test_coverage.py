"""Coverage per partner and reason (pipeline.detect.coverage) on tiny literal tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import pyarrow as pa

from pipeline.config import Settings
from pipeline.detect.coverage import coverage_table
from pipeline.detect.registry import parse_registry
from pipeline.schema import ACCESS, CONSENT

T = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
REGISTRY = parse_registry(
    "partner_id,partner_name,app_id,start,end,scopes,grant_ttl_days\n"
    "P1,Tunely,tunely,2024-01-01,,messages.read,\n"
    "P2,Streamflix,stream,2024-01-01,2026-03-01T10:01:00Z,messages.read,\n"
)


def access(n: int, app: str, user: str, **extra: object) -> dict:
    row = {
        "request_id": f"r{n}",
        "event_time": T,
        "app_id": app,
        "user_id": user,
        "resource": "messages",
        "action": "read",
        "status": 200,
        "delivery_date": T.date(),
        "source_file": "f",
        "source_line": n,
    }
    row.update(extra)
    return row


def consent(user: str, app: str, when: datetime, kind: str = "grant") -> dict:
    return {
        "event_id": f"{user}{app}{when}",
        "event_time": when,
        "user_id": user,
        "app_id": app,
        "event_type": kind,
        "delivery_date": T.date(),
        "source_file": "c",
        "source_line": 1,
    }


def coverage(accesses: list[dict], consents: list[dict]) -> list[dict]:
    con = duckdb.connect()
    con.register("a", pa.Table.from_pylist(accesses, schema=ACCESS))
    con.register("c", pa.Table.from_pylist(consents, schema=CONSENT))
    con.register("r", REGISTRY)
    return coverage_table(con, Settings(), "a", "c", "r").to_pylist()


def test_coverage_counts_each_access_under_its_first_reason():
    consents = [
        consent("alice", "tunely", T - timedelta(days=1)),
        consent("bob", "tunely", T + timedelta(seconds=30), "revoke"),  # inside a Bind window
        consent("carol", "other", T - timedelta(days=1)),
    ]
    accesses = [
        access(1, "tunely", "alice"),  # judged
        access(2, "tunely", "alice", method="Bind"),  # judged: nothing changes in its window
        access(3, "tunely", "bob", method="Bind"),  # a revoke 30 s into its window
        access(4, "tunely", "alice", resource="mail_folder", method="Sync"),
        access(5, "tunely", "alice", method="Bind throttled"),
        access(6, "tunely", "dave"),  # no consent source mentions dave
        access(7, "tunely", "dave", status=403),  # failed: not counted
        access(8, "tunely", "alice", resource="contacts"),  # not message content: not counted
        access(9, "unmapped-client", "alice"),
        access(10, "stream", "carol", method="Bind"),  # the partnership ends 60 s into it
        access(11, "stream", "carol"),  # an instant, not a window: judged
    ]
    zero = dict.fromkeys(["unknown_app", "folder_sync", "throttled", "aggregated_window"], 0) | {
        "user_not_in_consent_sources": 0
    }
    assert coverage(accesses, consents) == [
        {
            "partner_id": "(unknown app)",
            "partner_name": None,
            "accesses": 1,
            "judged": 0,
            "not_judged": 1,
            **zero,
            "unknown_app": 1,
            "not_judged_share": 1.0,
        },
        {
            "partner_id": "P1",
            "partner_name": "Tunely",
            "accesses": 6,
            "judged": 2,
            "not_judged": 4,
            **zero,
            "folder_sync": 1,
            "throttled": 1,
            "aggregated_window": 1,
            "user_not_in_consent_sources": 1,
            "not_judged_share": 4 / 6,
        },
        {
            "partner_id": "P2",
            "partner_name": "Streamflix",
            "accesses": 2,
            "judged": 1,
            "not_judged": 1,
            **zero,
            "aggregated_window": 1,
            "not_judged_share": 0.5,
        },
    ]
