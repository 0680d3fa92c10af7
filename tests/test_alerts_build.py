"""pipeline.detect.alerts.build_alerts (SPEC §5): a day's flags and anomalies → its alerts.

Tiny literal flag tables for grouping, counts, evidence and each rule's sentence; property tests
for random flag tables (counts add up, every flag names its alert, re-runs agree) and for the
flags the rules themselves give (each consent rule's users are in that rule's consent state).
(tests/test_alerts.py is about report notifications.)
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, note
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from pipeline import schema
from pipeline.config import Settings
from pipeline.detect.alert_ids import behaviour_alert_id, rule_alert_id
from pipeline.detect.alerts import build_alerts
from pipeline.detect.rules import flags_for_day
from tests.strategies import AuditCase, audit_cases

UTC = dt.UTC
DAY = dt.date(2026, 3, 9)
T = dt.datetime(2026, 3, 9, 10, tzinfo=UTC)
H = dt.timedelta(hours=1)
END = dt.datetime(2026, 3, 8, 12, tzinfo=UTC)
START = dt.datetime(2023, 6, 1, tzinfo=UTC)
READ_ONLY = ["messages.read", "profile.read"]


def flag(
    request_id: str,
    rule: str = "AFTER_PARTNERSHIP_END",
    *,
    when: dt.datetime = T,
    app: str = "streamflix-tv",
    partner: tuple[str, str] | None = ("P001", "Streamflix"),
    user: str = "u1",
    action: str = "read",
    severity: str = "high",
    day: dt.date = DAY,
    **evidence: Any,
) -> dict[str, Any]:
    """One flag row (schema FLAGS); evidence columns default to a partnership that ended."""
    row: dict[str, Any] = {
        "flag_id": f"f-{request_id}-{rule}",
        "alert_id": rule_alert_id(day, app, rule),
        "rule": rule,
        "severity": severity,
        "request_id": request_id,
        "event_time": when,
        "app_id": app,
        "partner_id": partner[0] if partner else None,
        "partner_name": partner[1] if partner else None,
        "user_id": user,
        "resource": "messages",
        "action": action,
        "scope": f"messages.{action}",
        "status": 200,
        "method": "GET",
        "path": "/v2/me/messages/1",
        "ip": None,
        "last_grant_time": dt.datetime(2026, 3, 1, tzinfo=UTC),
        "last_grant_scopes": None,
        "last_grant_all_scopes": True,
        "last_revoke_time": None,
        "grant_expired_at": None,
        "grant_ttl_days": None,
        "partnership_start": START if partner else None,
        "partnership_end": END if partner else None,
        "partnership_scopes": READ_ONLY if partner else None,
        "explanation": "a flag",
        "delivery_date": day,
        "source_file": "a.jsonl",
        "source_line": 1,
    }
    row.update(evidence)
    return row


def flags(*rows: dict[str, Any]) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=schema.FLAGS)


def by_rule(alerts: pa.Table) -> dict[tuple[str, str], dict[str, Any]]:
    return {(a["app_id"], a["rule"]): a for a in alerts.to_pylist()}


# ---------------------------------------------------------------- grouping and counts


def test_build_alerts_groups_by_day_app_and_rule_and_counts_them():
    alerts = build_alerts(
        flags(
            flag("r1", when=T, user="u1"),
            flag("r2", when=T + H, user="u1", action="delete", severity="critical"),
            flag("r3", when=T + 3 * H, user="u2", action="write", severity="critical"),
            flag("r3", "NO_SIGNIN", when=T + 3 * H, user="u2", last_grant_time=None),
            flag("r4", app="other", partner=("P002", "Other"), user="u3"),
        )
    )
    assert alerts.schema == schema.ALERTS
    got = by_rule(alerts)
    assert set(got) == {
        ("streamflix-tv", "AFTER_PARTNERSHIP_END"),
        ("streamflix-tv", "NO_SIGNIN"),
        ("other", "AFTER_PARTNERSHIP_END"),
    }
    after = got[("streamflix-tv", "AFTER_PARTNERSHIP_END")]
    assert after["kind"] == "rule" and after["day"] == DAY
    assert after["alert_id"] == rule_alert_id(DAY, "streamflix-tv", "AFTER_PARTNERSHIP_END")
    assert (after["partner_id"], after["partner_name"]) == ("P001", "Streamflix")
    assert after["severity"] == "critical"  # the highest of its flags
    assert (after["flags"], after["users"]) == (3, 2)
    assert (after["reads"], after["writes"], after["deletes"]) == (1, 1, 1)
    assert after["first_event_time"] == T and after["last_event_time"] == T + 3 * H
    assert after["flags_by_hour"] == [1 if h in (10, 11, 13) else 0 for h in range(24)]
    assert after["flags_by_severity"] == [0, 0, 1, 2]  # low, medium, high, critical
    assert after["sample_request_ids"] == ["r1", "r2", "r3"]
    assert got[("streamflix-tv", "NO_SIGNIN")]["flags"] == 1
    assert got[("other", "AFTER_PARTNERSHIP_END")]["users"] == 1


def test_build_alerts_orders_rows_most_severe_then_most_flags():
    alerts = build_alerts(
        flags(
            flag("r1", app="a", severity="medium"),
            flag("r2", app="b", severity="high"),
            flag("r3", app="c", severity="high"),
            flag("r4", app="c", severity="high"),
        )
    )
    assert alerts["app_id"].to_pylist() == ["c", "b", "a"]


def test_build_alerts_samples_the_earliest_request_ids_ties_by_id():
    rows = [flag(f"r{n}", when=T + (n % 3) * H, user=f"u{n}") for n in range(9)]
    (alert,) = build_alerts(flags(*rows)).to_pylist()
    # at 10:00 r0, r3, r6; at 11:00 r1, r4, r7
    assert alert["sample_request_ids"] == ["r0", "r3", "r6", "r1", "r4"]


def test_build_alerts_of_no_flags_is_an_empty_alerts_table():
    alerts = build_alerts(schema.FLAGS.empty_table())
    assert alerts.num_rows == 0 and alerts.schema == schema.ALERTS


# ---------------------------------------------------------------- evidence


def test_build_alerts_evidence_counts_users_by_consent_state_at_their_last_flag():
    grant = dt.datetime(2026, 3, 1, tzinfo=UTC)
    rows = [
        flag("r1", user="never", last_grant_time=None),
        # revoked after the first flag: the last flagged access decides
        flag("r2", user="revoker", when=T),
        flag("r3", user="revoker", when=T + H, last_revoke_time=T + H / 2),
        flag("r4", user="stale", grant_ttl_days=7.0, last_grant_time=grant),
        flag("r5", user="narrow", action="delete", last_grant_scopes=["messages.read"]),
        flag("r6", user="fine"),
    ]
    (alert,) = build_alerts(flags(*rows)).to_pylist()
    evidence = json.loads(alert["evidence"])
    assert alert["evidence"] == json.dumps(evidence, sort_keys=True, ensure_ascii=False)
    assert evidence["users_by_consent_state"] == {
        "never_granted": 1,
        "revoked": 1,
        "expired": 1,
        "granted_without_scope": 1,
        "granted": 1,
    }
    assert evidence["revoked"] == {
        "first": (T + H / 2).isoformat(),
        "last": (T + H / 2).isoformat(),
    }
    expired_at = (grant + dt.timedelta(days=7)).isoformat()
    assert evidence["expired"] == {"first": expired_at, "last": expired_at}
    assert evidence["partnerships"] == [
        {"start": START.isoformat(), "end": END.isoformat(), "scopes": READ_ONLY}
    ]
    assert evidence["scopes_used"] == {"messages.delete": 1, "messages.read": 5}
    assert evidence["grant_ttl_days"] == 7.0


def test_build_alerts_evidence_lists_each_partnership_its_flags_name_once():
    later = dt.datetime(2026, 3, 9, 6, tzinfo=UTC)
    rows = [
        flag("r1", partnership_end=END),
        flag("r2", partnership_end=END),
        flag("r3", partnership_end=later, partnership_start=END, when=T + H),
    ]
    (alert,) = build_alerts(flags(*rows)).to_pylist()
    periods = json.loads(alert["evidence"])["partnerships"]
    assert [(p["start"], p["end"]) for p in periods] == [
        (START.isoformat(), END.isoformat()),
        (END.isoformat(), later.isoformat()),
    ]
    assert alert["explanation"].endswith(
        "all after one of its partnerships had ended (the first on 2026-03-08 12:00 UTC, "
        "the last on 2026-03-09 06:00 UTC)."
    )


# ---------------------------------------------------------------- one sentence per rule


def test_build_alerts_explanation_as_in_the_spec_with_thousands():
    n_reads, n_deletes = 1_002, 3
    count = n_reads + n_deletes
    table = pa.table(
        {
            "request_id": [f"r{i:05d}" for i in range(count)],
            "user_id": [f"u{i % 1_001}" for i in range(count)],
            "action": ["read"] * n_reads + ["delete"] * n_deletes,
        }
    )
    base = flags(flag("x"))
    columns = {
        name: table[name] if name in table.column_names else pa.repeat(base[name][0], count)
        for name in schema.FLAGS.names
    }
    (alert,) = build_alerts(pa.table(columns, schema=schema.FLAGS)).to_pylist()
    assert alert["explanation"] == (
        "Streamflix (app streamflix-tv) made 1,005 message accesses (1,002 reads, 3 deletes) "
        "for 1,001 users on 2026-03-09, all after its partnership ended on 2026-03-08 12:00 UTC."
    )


WHO = "Streamflix (app streamflix-tv) made 2 message accesses (1 read, 1 write) for 2 users on "
RULE_SENTENCES = [
    (
        "AFTER_PARTNERSHIP_END",
        {},
        "2026-03-09, all after its partnership ended on 2026-03-08 12:00 UTC.",
    ),
    (
        "BEFORE_PARTNERSHIP_START",
        {"partnership_start": dt.datetime(2026, 3, 10, 9, tzinfo=UTC), "partnership_end": None},
        "2026-03-09, all before its partnership started on 2026-03-10 09:00 UTC.",
    ),
    (
        "SCOPE_NOT_IN_PARTNERSHIP",
        {"partnership_end": None},
        "2026-03-09, using scopes its partnership does not allow (messages.read, "
        "messages.write; allowed: messages.read, profile.read).",
    ),
    ("NO_SIGNIN", {"last_grant_time": None}, "2026-03-09 who had never signed in through the app."),
    (
        "SIGNIN_REVOKED",
        {"last_revoke_time": T - H},
        "2026-03-09, all after the users had revoked the sign-in.",
    ),
    (
        "SIGNIN_EXPIRED",
        {"grant_ttl_days": 7.0},
        "2026-03-09, all after the users' sign-ins had expired (sign-ins last 7 days).",
    ),
    (
        "SCOPE_NOT_GRANTED",
        {"last_grant_scopes": ["profile.read"]},
        "2026-03-09, using scopes the users had not granted (messages.read, messages.write).",
    ),
]


@pytest.mark.parametrize(("rule", "evidence", "tail"), RULE_SENTENCES)
def test_build_alerts_explanation_of_each_rule(rule: str, evidence: dict[str, Any], tail: str):
    rows = [
        flag("r1", rule, user="u1", **evidence),
        flag("r2", rule, user="u2", action="write", **evidence),
    ]
    (alert,) = build_alerts(flags(*rows)).to_pylist()
    assert alert["explanation"] == WHO + tail


def test_build_alerts_explanation_of_one_user_and_an_unknown_app():
    (alert,) = build_alerts(
        flags(flag("r1", "UNKNOWN_APP", app="shadowsync-web", partner=None))
    ).to_pylist()
    assert alert["partner_id"] is None and alert["partner_name"] is None
    assert alert["explanation"] == (
        "App shadowsync-web made 1 message access (1 read) for 1 user on 2026-03-09, "
        "but the app is not in the partnership registry."
    )
    assert json.loads(alert["evidence"])["partnerships"] == []


# ---------------------------------------------------------------- behaviour alerts


def anomalies(*rows: dict[str, Any]) -> pa.Table:
    base = {
        "day": DAY,
        "partner_id": "P001",
        "app_id": None,
        "user_id": None,
        "rank": 1,
        "model_name": "partner_behaviour",
        "model_version": "v1",
        "top_features": ["night_share"],
        "explanation": "Night-time share far above its usual.",
    }
    return pa.Table.from_pylist([{**base, **r} for r in rows], schema=schema.ANOMALIES)


def test_build_alerts_adds_a_behaviour_alert_per_alerted_anomaly_only():
    scored = anomalies(
        {"entity_kind": "partner_day", "score": 9.5, "alert": True},
        {"entity_kind": "partner_day", "partner_id": "P002", "score": 1.0, "alert": False},
        {
            "entity_kind": "app_user_day",
            "app_id": "streamflix-tv",
            "user_id": "u7",
            "score": 4.0,
            "alert": True,
        },
    )
    alerts = build_alerts(flags(flag("r1")), scored).to_pylist()
    assert [a["kind"] for a in alerts] == ["rule", "behaviour", "behaviour"]
    partner_day, app_user_day = alerts[1], alerts[2]
    assert partner_day["alert_id"] == behaviour_alert_id("partner_day", DAY, "P001", None, None)
    assert app_user_day["alert_id"] == behaviour_alert_id(
        "app_user_day", DAY, "P001", "streamflix-tv", "u7"
    )
    assert (partner_day["rule"], partner_day["severity"]) == ("partner_day", "high")
    assert (app_user_day["rule"], app_user_day["severity"]) == ("app_user_day", "medium")
    assert partner_day["partner_name"] == "Streamflix"  # from the day's flags
    assert partner_day["flags"] == 0 and partner_day["sample_request_ids"] == []
    assert partner_day["score"] == 9.5 and partner_day["model_version"] == "v1"
    assert partner_day["explanation"] == "Night-time share far above its usual."
    assert json.loads(partner_day["evidence"])["top_features"] == ["night_share"]
    assert build_alerts(flags(flag("r1")), None).num_rows == 1


# ---------------------------------------------------------------- stable across re-runs


def test_build_alerts_same_rows_from_a_relation_a_table_and_shuffled_input(tmp_path):
    rows = [
        flag("r1"),
        flag("r2", "NO_SIGNIN", last_grant_time=None, user="u2"),
        flag("r3", app="other", partner=("P002", "Other"), action="write", severity="critical"),
        flag("r4", when=T + 5 * H, user="u3"),
    ]
    first = build_alerts(flags(*rows))
    assert build_alerts(flags(*reversed(rows))).equals(first)
    path = tmp_path / "flags.parquet"
    pq.write_table(flags(*rows), path)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'Asia/Kolkata'")  # hours and times stay UTC
    assert build_alerts(con.read_parquet(str(path))).equals(first)


# ---------------------------------------------------------------- properties

APPS = ("a1", "a2", "a3")
PARTNERS = {"a1": ("P1", "One"), "a2": ("P2", "Two"), "a3": None}
DAYS = (DAY, DAY + dt.timedelta(1))


@st.composite
def flag_tables(draw: st.DrawFn) -> pa.Table:
    rows = []
    for n in range(draw(st.integers(0, 40))):
        app, day = draw(st.sampled_from(APPS)), draw(st.sampled_from(DAYS))
        rows.append(
            flag(
                f"r{draw(st.integers(0, 15))}-{n}",
                draw(st.sampled_from(schema.RULES)),
                when=dt.datetime.combine(day, dt.time(), UTC)
                + dt.timedelta(minutes=draw(st.integers(0, 24 * 60 - 1))),
                app=app,
                partner=PARTNERS[app],
                user=draw(st.sampled_from(("u1", "u2", "u3", "u4"))),
                action=draw(st.sampled_from(schema.ACTIONS)),
                severity=draw(st.sampled_from(schema.SEVERITIES)),
                day=day,
                last_grant_time=draw(st.none() | st.just(T - 48 * H)),
                last_revoke_time=draw(st.none() | st.just(T - 24 * H)),
                grant_ttl_days=draw(st.none() | st.just(1.0)),
            )
        )
    return flags(*rows)


@hsettings(max_examples=40, deadline=None)
@given(table=flag_tables(), seed=st.randoms())
def test_build_alerts_properties_of_random_flag_tables(table: pa.Table, seed: Any):
    alerts = build_alerts(table)
    assert sum(alerts["flags"].to_pylist()) == table.num_rows
    by_id = {a["alert_id"]: a for a in alerts.to_pylist()}
    assert len(by_id) == alerts.num_rows
    users: dict[str, set[str]] = {}
    for f in table.to_pylist():
        alert = by_id[f["alert_id"]]  # every flag names an alert ...
        assert (alert["day"], alert["app_id"], alert["rule"]) == (  # ... of its day, app, rule
            f["delivery_date"],
            f["app_id"],
            f["rule"],
        )
        users.setdefault(f["alert_id"], set()).add(f["user_id"])
    per_alert = Counter(table["alert_id"].to_pylist())
    for alert_id, alert in by_id.items():
        assert alert["flags"] == per_alert[alert_id]
        assert alert["users"] == len(users[alert_id])
        assert alert["reads"] + alert["writes"] + alert["deletes"] == alert["flags"]
        assert sum(alert["flags_by_hour"]) == sum(alert["flags_by_severity"]) == alert["flags"]
        states = json.loads(alert["evidence"])["users_by_consent_state"]
        assert sum(states.values()) == alert["users"]
    # a re-run, with the rows in another order, gives identical alerts
    order = list(range(table.num_rows))
    seed.shuffle(order)
    assert build_alerts(table.take(pa.array(order, pa.int64()))).equals(alerts)


CONSENT_STATE = {
    "NO_SIGNIN": "never_granted",
    "SIGNIN_REVOKED": "revoked",
    "SIGNIN_EXPIRED": "expired",
    "SCOPE_NOT_GRANTED": "granted_without_scope",
}


@hsettings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=audit_cases())
def test_build_alerts_of_the_rules_flags_put_each_consent_rule_in_its_state(case: AuditCase):
    """Over real rule output: a consent rule's alert has every user in that rule's state."""
    note(repr(case))
    settings = Settings(
        message_resources=case.message_resources, clock_skew_seconds=case.clock_skew_seconds
    )
    table = flags_for_day(case.access, case.consent, case.registry, case.day, settings)
    alerts = build_alerts(table)
    assert sum(alerts["flags"].to_pylist()) == table.num_rows
    assert set(alerts["alert_id"].to_pylist()) == set(table["alert_id"].to_pylist())
    for alert in alerts.to_pylist():
        states = json.loads(alert["evidence"])["users_by_consent_state"]
        if alert["rule"] in CONSENT_STATE:
            assert states[CONSENT_STATE[alert["rule"]]] == alert["users"], alert
