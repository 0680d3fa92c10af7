"""Post-revocation and post-termination use per partner (detect/measures.py) and the incomplete
coverage alerts (detect/coverage_alerts.py), on tiny literal tables."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import duckdb
import pyarrow as pa

from pipeline.config import Settings
from pipeline.detect.coverage import COVERAGE
from pipeline.detect.coverage_alerts import coverage_alert_id, coverage_alerts
from pipeline.detect.measures import post_revocation_use, post_termination_use
from pipeline.report.coverage import duration_text
from pipeline.schema import ALERTS, FLAGS

T = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)


def flag(n: int, rule: str, app: str, user: str, at: timedelta, **evidence: object) -> dict:
    return {
        "flag_id": f"f{n}",
        "alert_id": f"alert-{app}-{rule}",
        "rule": rule,
        "severity": "high",
        "request_id": f"r{n}",
        "event_time": T + at,
        "app_id": app,
        "partner_id": {"tv": "P2", "ios": "P1"}.get(app),
        "partner_name": {"tv": "Streamflix", "ios": "Tunely"}.get(app),
        "user_id": user,
        "resource": "messages",
        "action": "read",
        "scope": "messages.read",
        "status": 200,
        "explanation": "x",
        "delivery_date": T.date(),
        "source_file": "f",
        "source_line": n,
        **evidence,
    }


def measures(flags: list[dict]) -> tuple[list[dict], list[dict]]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("flags", pa.Table.from_pylist(flags, schema=FLAGS))
    return post_revocation_use(con, "flags").to_pylist(), post_termination_use(
        con, "flags"
    ).to_pylist()


def test_measures_per_partner_with_worst_cases():
    revoked_a, revoked_b, end = T, T + timedelta(hours=1), T - timedelta(days=1)
    flags = [
        flag(1, "SIGNIN_REVOKED", "ios", "alice", timedelta(minutes=5), last_revoke_time=revoked_a),
        flag(
            2, "SIGNIN_REVOKED", "ios", "alice", timedelta(minutes=50), last_revoke_time=revoked_a
        ),
        flag(3, "SIGNIN_REVOKED", "ios", "bob", timedelta(hours=3), last_revoke_time=revoked_b),
        flag(4, "AFTER_PARTNERSHIP_END", "tv", "carol", timedelta(0), partnership_end=end),
        flag(5, "AFTER_PARTNERSHIP_END", "tv", "dave", timedelta(hours=2), partnership_end=end),
        flag(6, "NO_SIGNIN", "ios", "erin", timedelta(0)),  # neither measure
    ]
    revocation, termination = measures(flags)
    assert revocation == [
        {
            "partner_id": "P1",
            "partner_name": "Tunely",
            "cases": 2,
            "calls": 3,
            "median_seconds": (50 * 60 + 2 * 3600) / 2,
            "max_seconds": 2 * 3600.0,
            "worst": [
                {
                    "app_id": "ios",
                    "user_id": "bob",
                    "since": revoked_b,
                    "last_call": T + timedelta(hours=3),
                    "seconds": 2 * 3600.0,
                    "calls": 1,
                    "alert_id": "alert-ios-SIGNIN_REVOKED",
                },
                {
                    "app_id": "ios",
                    "user_id": "alice",
                    "since": revoked_a,
                    "last_call": T + timedelta(minutes=50),
                    "seconds": 50 * 60.0,
                    "calls": 2,
                    "alert_id": "alert-ios-SIGNIN_REVOKED",
                },
            ],
        }
    ]
    (tv,) = termination
    assert (tv["partner_id"], tv["cases"], tv["calls"], tv["max_seconds"]) == (
        "P2",
        1,
        2,
        26 * 3600.0,
    )
    assert tv["worst"][0]["user_id"] is None and tv["worst"][0]["since"] == end


def test_coverage_alert_above_the_share_only():
    day = date(2026, 3, 9)
    zero = {"unknown_app": 0, "folder_sync": 0, "throttled": 0, "aggregated_window": 0}
    rows = [
        {"partner_id": "P1", "partner_name": "Tunely", "accesses": 10, "judged": 7,
         "not_judged": 3, **zero, "folder_sync": 3, "user_not_in_consent_sources": 0,
         "not_judged_share": 0.3},
        {"partner_id": "P2", "partner_name": "Streamflix", "accesses": 10, "judged": 9,
         "not_judged": 1, **zero, "throttled": 1, "user_not_in_consent_sources": 0,
         "not_judged_share": 0.1},
        {"partner_id": "(unknown app)", "partner_name": None, "accesses": 4, "judged": 0,
         "not_judged": 4, **zero, "unknown_app": 4, "user_not_in_consent_sources": 0,
         "not_judged_share": 1.0},
    ]  # fmt: skip
    alerts = coverage_alerts(day, pa.Table.from_pylist(rows, schema=COVERAGE), Settings())
    assert alerts.schema == ALERTS
    (alert,) = alerts.to_pylist()
    assert alert["alert_id"] == coverage_alert_id(day, "P1") != coverage_alert_id(day, "P2")
    assert (alert["kind"], alert["rule"], alert["partner_id"]) == (
        "coverage",
        "INCOMPLETE_COVERAGE",
        "P1",
    )
    assert json.loads(alert["evidence"])["folder_sync"] == 3
    assert alert["explanation"] == (
        "Tunely (P1): 3 of its 10 message accesses on 2026-03-09 (30%) could not be judged: "
        "3 folder syncs."
    )


def test_partner_measures_read_the_warehouse_flags(tmp_path):
    from pipeline.detect.measures import partner_measures
    from pipeline.warehouse import Warehouse

    warehouse = Warehouse(str(tmp_path))
    revoked = T
    rows = [
        flag(1, "SIGNIN_REVOKED", "ios", "alice", timedelta(minutes=5), last_revoke_time=revoked),
        flag(2, "AFTER_PARTNERSHIP_END", "tv", "carol", timedelta(hours=1), partnership_end=T),
    ]
    warehouse.write_table("flags", T.date(), pa.Table.from_pylist(rows, schema=FLAGS))
    measured = partner_measures(warehouse, [T.date(), T.date() + timedelta(days=1)], Settings())
    assert measured["post_revocation"].to_pylist()[0]["max_seconds"] == 300.0
    assert measured["post_termination"].to_pylist()[0]["max_seconds"] == 3600.0


def test_lags_read_at_a_glance():
    assert [duration_text(s) for s in (None, 0, 45.4, 725, 7200, 12600, 2 * 86400 + 4 * 3600)] == [
        "",
        "0 s",
        "45 s",
        "12 min 05 s",
        "2 h 00 min",
        "3 h 30 min",
        "2 d 4 h",
    ]
