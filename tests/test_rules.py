"""pipeline.detect.rules.flags_for_day on tiny literal tables (SPEC §3): each rule at its edges."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pytest

from pipeline import schema
from pipeline.config import Settings
from pipeline.detect.registry import parse_registry
from pipeline.detect.rules import flags_for_day
from tests.landing import REGISTRY_HEADER

UTC = dt.UTC
DAY = dt.date(2024, 3, 10)
T = dt.datetime(2024, 3, 10, 12, tzinfo=UTC)  # the usual access time
US = dt.timedelta(microseconds=1)
H = dt.timedelta(hours=1)
ALL = "messages.read messages.write messages.delete"
REGISTRY = [f"p1,Partner One,app1,2024-01-01,,{ALL},", f"p1,Partner One,app2,2024-01-01,,{ALL},"]


def acc(
    request_id: str = "r1",
    when: dt.datetime = T,
    *,
    app: str = "app1",
    user: str = "u1",
    resource: str = "messages",
    action: str = "read",
    status: int = 200,
    delivered: dt.date = DAY,
) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "event_time": when,
        "app_id": app,
        "user_id": user,
        "resource": resource,
        "action": action,
        "method": "GET",
        "path": "/v2/me/messages/1",
        "status": status,
        "thread_id": None,
        "ip": "10.0.0.1",
        "user_agent": None,
        "delivery_date": delivered,
        "source_file": "a.jsonl",
        "source_line": 1,
    }


def grant(
    when: dt.datetime,
    scopes: list[str] | None = None,
    *,
    app: str = "app1",
    user: str = "u1",
    delivered: dt.date = DAY,
    event_id: str | None = None,
) -> dict[str, Any]:
    return {
        "event_id": event_id or f"g-{when.isoformat()}-{app}-{user}",
        "event_time": when,
        "user_id": user,
        "app_id": app,
        "event_type": "grant",
        "scopes": scopes,
        "delivery_date": delivered,
        "source_file": "c.jsonl",
        "source_line": 1,
    }


def revoke(
    when: dt.datetime, *, app: str = "app1", user: str = "u1", delivered: dt.date = DAY
) -> dict[str, Any]:
    record = grant(when, app=app, user=user, delivered=delivered)
    return record | {"event_id": f"v-{when.isoformat()}-{app}-{user}", "event_type": "revoke"}


SIGNED_IN = [grant(T - 2 * H)]


def flags(
    access: list[dict[str, Any]],
    consent: list[dict[str, Any]],
    registry: list[str] | None = None,
    day: dt.date = DAY,
    **settings: Any,
) -> pa.Table:
    reg = parse_registry("\n".join([REGISTRY_HEADER, *(registry or REGISTRY)]) + "\n")
    return flags_for_day(
        pa.Table.from_pylist(access, schema=schema.ACCESS),
        pa.Table.from_pylist(consent, schema=schema.CONSENT),
        reg,
        day,
        Settings(**settings),
    )


def rules(
    access: list[dict[str, Any]],
    consent: list[dict[str, Any]],
    registry: list[str] | None = None,
    day: dt.date = DAY,
    **settings: Any,
) -> list[tuple[str, str]]:
    table = flags(access, consent, registry, day, **settings)
    return [(r["request_id"], r["rule"]) for r in table.to_pylist()]


def test_rules_covered_access_has_no_flag():
    assert rules([acc()], SIGNED_IN) == []
    assert flags([acc()], SIGNED_IN).schema == schema.FLAGS


# ---------------------------------------------------------------------------------------------
# UNKNOWN_APP


def test_rules_unknown_app_suppresses_every_other_rule():
    (row,) = flags([acc(app="app9", action="delete")], []).to_pylist()
    assert (row["rule"], row["partner_id"], row["severity"]) == ("UNKNOWN_APP", None, "critical")


def test_rules_app_ids_compared_exactly():
    assert rules([acc(app="APP1")], [grant(T - H, app="APP1")]) == [("r1", "UNKNOWN_APP")]


# ---------------------------------------------------------------------------------------------
# Partnership periods


@pytest.mark.parametrize(
    ("end", "expected"),
    [
        ("2024-03-10T12:00:00Z", [("r1", "AFTER_PARTNERSHIP_END")]),  # timestamp end exclusive
        ("2024-03-10T12:00:00.000001Z", []),
        ("2024-03-10T13:00:00+01:00", [("r1", "AFTER_PARTNERSHIP_END")]),
        ("2024-03-10", []),  # a date end covers its whole day
        ("2024-03-09", [("r1", "AFTER_PARTNERSHIP_END")]),
    ],
)
def test_rules_partnership_end_edges(end: str, expected: list[tuple[str, str]]):
    assert rules([acc()], SIGNED_IN, [f"p1,P,app1,2024-01-01,{end},{ALL},"]) == expected


def test_rules_date_end_covers_last_microsecond_of_its_day():
    registry = [f"p1,P,app1,2024-01-01,2024-03-10,{ALL},"]
    last = dt.datetime(2024, 3, 10, 23, 59, 59, 999999, tzinfo=UTC)
    accesses = [acc("in", last), acc("out", last + US)]
    assert rules(accesses, [grant(T - H)], registry) == [("out", "AFTER_PARTNERSHIP_END")]


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        ("2024-03-10T12:00:00Z", []),  # start inclusive
        ("2024-03-10T12:00:00.000001Z", [("r1", "BEFORE_PARTNERSHIP_START")]),
        ("2024-03-10", []),
        ("2024-03-11", [("r1", "BEFORE_PARTNERSHIP_START")]),
    ],
)
def test_rules_partnership_start_edges(start: str, expected: list[tuple[str, str]]):
    assert rules([acc()], SIGNED_IN, [f"p1,P,app1,{start},,{ALL},"]) == expected


def test_rules_gap_between_periods_is_after_end_and_before_first_is_before_start():
    registry = [
        f"p1,P,app1,2024-01-01,2024-01-31,{ALL},",
        f"p1,P,app1,2024-04-01,,{ALL},",
    ]
    accesses = [
        acc("before", dt.datetime(2023, 12, 31, 23, 59, tzinfo=UTC)),
        acc("first", dt.datetime(2024, 1, 31, 23, 59, tzinfo=UTC)),
        acc("gap", T),
        acc("second", dt.datetime(2024, 4, 1, tzinfo=UTC)),
    ]
    consent = [grant(dt.datetime(2023, 1, 1, tzinfo=UTC))]
    table = flags(accesses, consent, registry)
    assert [
        (r["request_id"], r["rule"], r["partnership_start"], r["partnership_end"])
        for r in table.to_pylist()
    ] == [
        (
            "before",
            "BEFORE_PARTNERSHIP_START",
            dt.datetime(2024, 1, 1, tzinfo=UTC),
            dt.datetime(2024, 2, 1, tzinfo=UTC),
        ),
        (
            "gap",
            "AFTER_PARTNERSHIP_END",
            dt.datetime(2024, 1, 1, tzinfo=UTC),
            dt.datetime(2024, 2, 1, tzinfo=UTC),
        ),
    ]


def test_rules_scope_not_in_partnership_unless_some_covering_period_allows_it():
    only_read = ["p1,P,app1,2024-01-01,,messages.read,"]
    accesses = [acc("read"), acc("delete", action="delete")]
    assert rules(accesses, SIGNED_IN, only_read) == [("delete", "SCOPE_NOT_IN_PARTNERSHIP")]
    overlapping = [*only_read, "p1,P,app1,2024-03-01,2024-03-31,messages.delete,"]
    assert rules(accesses, SIGNED_IN, overlapping) == []
    ended = [*only_read, "p1,P,app1,2024-01-01,2024-03-09,messages.delete,"]
    assert rules(accesses, SIGNED_IN, ended) == [("delete", "SCOPE_NOT_IN_PARTNERSHIP")]


def test_rules_partnership_scopes_compared_exactly():
    registry = ["p1,P,app1,2024-01-01,,Messages.Read,"]
    assert rules([acc()], SIGNED_IN, registry) == [("r1", "SCOPE_NOT_IN_PARTNERSHIP")]


# ---------------------------------------------------------------------------------------------
# Consent


def test_rules_no_signin_without_grant_or_with_only_a_revoke():
    assert rules([acc()], []) == [("r1", "NO_SIGNIN")]
    assert rules([acc()], [revoke(T - H)]) == [("r1", "NO_SIGNIN")]


def test_rules_grant_at_access_time_counts_one_microsecond_later_does_not():
    assert rules([acc()], [grant(T)]) == []
    assert rules([acc()], [grant(T + US)]) == [("r1", "NO_SIGNIN")]


def test_rules_consent_is_per_app_not_per_partner():
    other_app = [grant(T - H, app="app2")]
    assert rules([acc()], other_app) == [("r1", "NO_SIGNIN")]


def test_rules_consent_is_per_user():
    assert rules([acc(user="u1")], [grant(T - H, user="u2")]) == [("r1", "NO_SIGNIN")]
    assert rules([acc(user="u1")], [grant(T - H, user="U1")]) == [("r1", "NO_SIGNIN")]


@pytest.mark.parametrize(
    ("consent", "expected"),
    [
        ([grant(T - H), revoke(T - H)], [("r1", "SIGNIN_REVOKED")]),  # tie: the revoke wins
        ([revoke(T - H), grant(T - H)], [("r1", "SIGNIN_REVOKED")]),  # whatever the row order
        ([grant(T - H), revoke(T)], [("r1", "SIGNIN_REVOKED")]),
        ([grant(T - H), revoke(T + US)], []),
        ([grant(T - 2 * H), revoke(T - H), grant(T - H + US)], []),  # signed in again
        ([revoke(T - 2 * H), grant(T - H)], []),
    ],
)
def test_rules_signin_revoked_edges(consent: list[dict], expected: list[tuple[str, str]]):
    assert rules([acc()], consent) == expected


def test_rules_revoked_flag_carries_revoke_evidence():
    (row,) = flags([acc()], [grant(T - 2 * H), revoke(T - H)]).to_pylist()
    assert (row["rule"], row["last_revoke_time"], row["last_grant_time"]) == (
        "SIGNIN_REVOKED",
        T - H,
        T - 2 * H,
    )


@pytest.mark.parametrize(
    ("granted_at", "expected"),
    [
        (T - dt.timedelta(days=1), []),  # exactly the TTL: still valid
        (T - dt.timedelta(days=1) - US, [("r1", "SIGNIN_EXPIRED")]),
    ],
)
def test_rules_signin_expired_at_ttl_boundary(
    granted_at: dt.datetime, expected: list[tuple[str, str]]
):
    registry = [f"p1,P,app1,2024-01-01,,{ALL},1"]
    assert rules([acc()], [grant(granted_at)], registry) == expected


def test_rules_fractional_ttl_and_expiry_evidence():
    registry = [f"p1,P,app1,2024-01-01,,{ALL},0.5"]
    granted = T - 12 * H - US
    (row,) = flags([acc()], [grant(granted)], registry).to_pylist()
    assert (row["rule"], row["grant_expired_at"], row["grant_ttl_days"]) == (
        "SIGNIN_EXPIRED",
        T - US,
        0.5,
    )


def test_rules_no_ttl_never_expires():
    assert rules([acc()], [grant(T - dt.timedelta(days=3000))]) == []


@pytest.mark.parametrize(
    ("scopes", "action", "expected"),
    [
        (None, "delete", []),  # null: every scope
        ([], "read", [("r1", "SCOPE_NOT_GRANTED")]),  # []: none
        (["messages.read"], "read", []),
        (["messages.read"], "write", [("r1", "SCOPE_NOT_GRANTED")]),
        (["Messages.Read"], "read", [("r1", "SCOPE_NOT_GRANTED")]),  # exact, case included
    ],
)
def test_rules_scope_not_granted(
    scopes: list[str] | None, action: str, expected: list[tuple[str, str]]
):
    assert rules([acc(action=action)], [grant(T - H, scopes)]) == expected


def test_rules_later_grant_replaces_scopes():
    consent = [
        grant(T - 3 * H, ["messages.read", "messages.write"]),
        revoke(T - 2 * H),
        grant(T - H, ["messages.read"]),
    ]
    (row,) = flags([acc(action="write")], consent).to_pylist()
    assert (row["rule"], row["last_grant_scopes"], row["last_grant_all_scopes"]) == (
        "SCOPE_NOT_GRANTED",
        ["messages.read"],
        False,
    )


def test_rules_late_consent_delivered_after_the_day_does_not_count():
    consent = [grant(T - H, delivered=DAY + dt.timedelta(days=1))]
    assert rules([acc()], consent, day=DAY) == [("r1", "NO_SIGNIN")]
    assert rules([acc()], consent, day=DAY + dt.timedelta(days=1)) == []


def test_rules_late_access_uses_consent_delivered_up_to_the_day():
    when = T - dt.timedelta(days=2)
    late = [acc("late", when, delivered=DAY)]
    assert rules(late, [grant(when - H, delivered=DAY - dt.timedelta(days=3))]) == []
    assert rules(late, [grant(when - H, delivered=DAY)]) == []
    assert rules(late, [grant(when + H, delivered=DAY - dt.timedelta(days=1))]) == [
        ("late", "NO_SIGNIN")
    ]


@pytest.mark.parametrize(
    ("skew", "expected"),
    [
        (0.0, [("r1", "NO_SIGNIN")]),
        (4.999999, [("r1", "NO_SIGNIN")]),
        (5.0, []),
        (30.0, []),
    ],
)
def test_rules_clock_skew_lets_a_slightly_later_grant_count(
    skew: float, expected: list[tuple[str, str]]
):
    consent = [grant(T + dt.timedelta(seconds=5))]
    assert rules([acc()], consent, clock_skew_seconds=skew) == expected


def test_rules_clock_skew_does_not_bring_later_revokes_forward():
    consent = [grant(T - H), revoke(T + dt.timedelta(seconds=2))]
    assert rules([acc()], consent, clock_skew_seconds=5.0) == []


def test_rules_grant_within_skew_after_a_revoke_wins():
    consent = [grant(T - 2 * H), revoke(T - H), grant(T + dt.timedelta(seconds=3))]
    assert rules([acc()], consent, clock_skew_seconds=5.0) == []
    assert rules([acc()], consent) == [("r1", "SIGNIN_REVOKED")]


# ---------------------------------------------------------------------------------------------
# Which events are checked


@pytest.mark.parametrize(
    ("status", "expected"),
    [(200, [("r1", "NO_SIGNIN")]), (399, [("r1", "NO_SIGNIN")]), (400, []), (500, [])],
)
def test_rules_failed_calls_are_never_flagged(status: int, expected: list[tuple[str, str]]):
    assert rules([acc(status=status)], []) == expected
    if status >= 400:
        assert rules([acc(status=status, app="app9")], []) == []


def test_rules_non_message_resources_are_never_flagged():
    accesses = [acc("c", resource="contacts"), acc("u", resource="contacts", app="app9")]
    assert rules(accesses, []) == []
    widened = rules(accesses, [], message_resources=("messages", "contacts"))
    assert sorted(widened) == [
        ("c", "NO_SIGNIN"),
        ("c", "SCOPE_NOT_IN_PARTNERSHIP"),  # the registry allows no contacts scope
        ("u", "UNKNOWN_APP"),
    ]


def test_rules_one_event_can_carry_a_partnership_and_a_consent_flag():
    registry = [f"p1,P,app1,2024-01-01,2024-03-01,{ALL},"]
    assert sorted(rules([acc()], [], registry)) == [
        ("r1", "AFTER_PARTNERSHIP_END"),
        ("r1", "NO_SIGNIN"),
    ]


# ---------------------------------------------------------------------------------------------
# Flag rows: ids, severity, explanation


def test_rules_flag_id_stable_across_runs_and_row_order_and_distinct_per_rule():
    registry = [f"p1,P,app1,2024-01-01,2024-03-01,{ALL},"]
    accesses = [acc("r1"), acc("r2", T + H)]
    first = flags(accesses, [], registry)
    again = flags(list(reversed(accesses)), [], registry)
    assert first.equals(again)
    ids = first["flag_id"].to_pylist()
    assert len(ids) == 4 and len(set(ids)) == 4
    assert all(isinstance(i, str) and i for i in ids)


def test_rules_flag_id_does_not_depend_on_evidence():
    before = flags([acc()], [grant(T - H, [])])
    after = flags([acc()], [grant(T - 2 * H, ["contacts.read"])])
    assert before["rule"].to_pylist() == after["rule"].to_pylist() == ["SCOPE_NOT_GRANTED"]
    assert before["flag_id"].to_pylist() == after["flag_id"].to_pylist()


@pytest.mark.parametrize(
    ("rule", "action", "severity"),
    [
        ("NO_SIGNIN", "read", "high"),
        ("NO_SIGNIN", "write", "critical"),
        ("NO_SIGNIN", "delete", "critical"),
        ("SCOPE_NOT_GRANTED", "read", "medium"),
        ("SCOPE_NOT_GRANTED", "delete", "high"),
    ],
)
def test_rules_severity_raised_for_write_and_delete(rule: str, action: str, severity: str):
    consent = [] if rule == "NO_SIGNIN" else [grant(T - H, [])]
    (row,) = flags([acc(action=action)], consent).to_pylist()
    assert (row["rule"], row["severity"]) == (rule, severity)


CASES = {
    "UNKNOWN_APP": ([acc(app="app9", user="alice")], [], None),
    "AFTER_PARTNERSHIP_END": (
        [acc(app="app1", user="alice")],
        [grant(T - H, user="alice")],
        [f"p1,P,app1,2024-01-01,2024-03-01,{ALL},"],
    ),
    "BEFORE_PARTNERSHIP_START": (
        [acc(app="app1", user="alice")],
        [grant(T - H, user="alice")],
        [f"p1,P,app1,2024-04-01,,{ALL},"],
    ),
    "SCOPE_NOT_IN_PARTNERSHIP": (
        [acc(app="app1", user="alice", action="delete")],
        [grant(T - H, user="alice")],
        ["p1,P,app1,2024-01-01,,messages.read,"],
    ),
    "NO_SIGNIN": ([acc(app="app1", user="alice")], [], None),
    "SIGNIN_REVOKED": (
        [acc(app="app1", user="alice")],
        [grant(T - 2 * H, user="alice"), revoke(T - H, user="alice")],
        None,
    ),
    "SIGNIN_EXPIRED": (
        [acc(app="app1", user="alice")],
        [grant(T - dt.timedelta(days=3), user="alice")],
        [f"p1,P,app1,2024-01-01,,{ALL},2"],
    ),
    "SCOPE_NOT_GRANTED": (
        [acc(app="app1", user="alice")],
        [grant(T - H, ["contacts.read"], user="alice")],
        None,
    ),
}


@pytest.mark.parametrize("rule", schema.RULES)
def test_rules_each_rule_explained_in_one_line_naming_user_and_app(rule: str):
    accesses, consent, registry = CASES[rule]
    (row,) = flags(accesses, consent, registry).to_pylist()
    assert row["rule"] == rule
    explanation = row["explanation"]
    assert explanation and "\n" not in explanation
    assert "alice" in explanation
    assert row["app_id"] in explanation
    assert row["severity"] in schema.SEVERITIES


def test_rules_flag_row_carries_event_and_partner_fields():
    (row,) = flags([acc(action="write")], []).to_pylist()
    assert {
        k: row[k]
        for k in (
            "rule",
            "request_id",
            "event_time",
            "app_id",
            "partner_id",
            "partner_name",
            "user_id",
            "resource",
            "action",
            "scope",
            "status",
            "method",
            "path",
            "ip",
            "last_grant_time",
            "delivery_date",
            "source_file",
            "source_line",
        )
    } == {
        "rule": "NO_SIGNIN",
        "request_id": "r1",
        "event_time": T,
        "app_id": "app1",
        "partner_id": "p1",
        "partner_name": "Partner One",
        "user_id": "u1",
        "resource": "messages",
        "action": "write",
        "scope": "messages.write",
        "status": 200,
        "method": "GET",
        "path": "/v2/me/messages/1",
        "ip": "10.0.0.1",
        "last_grant_time": None,
        "delivery_date": DAY,
        "source_file": "a.jsonl",
        "source_line": 1,
    }
