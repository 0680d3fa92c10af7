"""`pipeline.detect.rules.flags_for_day` against a naive reading of SPEC §3 (tests/spec_oracle.py).

The example-based tests check the oracle itself against hand-derived expectations at the sharpest
edges; the same examples and a hypothesis property test then hold the implementation to it.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, note
from hypothesis import settings as hsettings

from pipeline import schema
from pipeline.config import Settings
from tests.spec_oracle import CONSENT_RULES, Evidence, FlagKey, oracle_flags
from tests.strategies import (
    BASE,
    DAY,
    PARTNERS,
    SCOPE_SET,
    AuditCase,
    access_row,
    audit_cases,
    grant,
    registry_row,
    revoke,
    table,
)

FlagsForDay = Callable[[pa.Table, pa.Table, pa.Table, dt.date, Settings], pa.Table]

H = dt.timedelta(hours=1)
US = dt.timedelta(microseconds=1)
T = BASE + 12 * H  # the usual access time in the examples: DAY 12:00Z
ALWAYS = BASE - 10 * 24 * H  # a period start long before every example's times


@pytest.fixture(scope="module")
def flags_for_day() -> FlagsForDay:
    if importlib.util.find_spec("pipeline.detect.rules") is None:
        pytest.skip("pipeline/rules.py does not exist yet")
    from pipeline.detect.rules import flags_for_day as impl

    return impl


# ---------------------------------------------------------------------------------------------
# Comparing an implementation's flags with the oracle


def _oracle(case: AuditCase) -> dict[FlagKey, Evidence]:
    return oracle_flags(
        case.access.to_pylist(),
        case.consent.to_pylist(),
        case.registry.to_pylist(),
        case.day,
        message_resources=case.message_resources,
        clock_skew_seconds=case.clock_skew_seconds,
    )


def _run(impl: FlagsForDay, case: AuditCase, *, reverse: bool = False) -> pa.Table:
    def rows(tbl: pa.Table) -> pa.Table:
        if not reverse:
            return tbl
        return tbl.take(pa.array(range(tbl.num_rows - 1, -1, -1), type=pa.int64()))

    settings = Settings(
        message_resources=case.message_resources, clock_skew_seconds=case.clock_skew_seconds
    )
    return impl(rows(case.access), rows(case.consent), rows(case.registry), case.day, settings)


def _flag_ids(flags: pa.Table) -> dict[FlagKey, str]:
    return {
        (row["request_id"], row["rule"]): row["flag_id"]
        for row in flags.select(["request_id", "rule", "flag_id"]).to_pylist()
    }


def _evidence_problems(flag: dict[str, Any], evidence: Evidence) -> list[str]:
    """Differences between a consent flag's evidence columns and the oracle's evidence."""
    problems = []
    for column in ("last_grant_time", "last_revoke_time"):
        if flag[column] != evidence[column]:
            problems.append(f"{column}={flag[column]} but the oracle says {evidence[column]}")
    scopes, all_scopes = flag["last_grant_scopes"], flag["last_grant_all_scopes"]
    if not evidence["has_grant"]:
        if scopes is not None or all_scopes:
            problems.append(f"no grant, yet last_grant_scopes={scopes} all_scopes={all_scopes}")
    elif evidence["last_grant_scopes"] is None:
        if scopes is not None or all_scopes is not True:
            problems.append(f"last grant covers all scopes, got {scopes} all_scopes={all_scopes}")
    elif scopes != evidence["last_grant_scopes"] or all_scopes is not False:
        problems.append(
            f"last_grant_scopes={scopes} all_scopes={all_scopes}, "
            f"the oracle says {evidence['last_grant_scopes']}"
        )
    if flag["rule"] == "SIGNIN_EXPIRED":
        for column in ("grant_ttl_days", "grant_expired_at"):
            if flag[column] != evidence[column]:
                problems.append(f"{column}={flag[column]} but the oracle says {evidence[column]}")
    return problems


def check_flags(flags: pa.Table, case: AuditCase, expected: dict[FlagKey, Evidence]) -> None:
    """Asserts that `flags` holds exactly the oracle's flags, with consistent columns."""
    assert [(f.name, f.type) for f in flags.schema] == [(f.name, f.type) for f in schema.FLAGS]
    rows = flags.to_pylist()
    got = {(row["request_id"], row["rule"]): row for row in rows}
    assert len(got) == len(rows), "the same (request_id, rule) was flagged twice"
    missing, unexpected = sorted(expected.keys() - got.keys()), sorted(got.keys() - expected.keys())
    assert not missing and not unexpected, (
        f"flags differ from the oracle: missing {missing}, unexpected {unexpected}"
    )

    access = {row["request_id"]: row for row in case.access.to_pylist()}
    flag_ids = [row["flag_id"] for row in rows]
    assert len(set(flag_ids)) == len(flag_ids), f"flag_id not unique: {flag_ids}"
    for key, flag in got.items():
        assert flag["flag_id"], f"{key}: empty flag_id"
        assert isinstance(flag["explanation"], str) and flag["explanation"].strip(), (
            f"{key}: empty explanation"
        )
        assert "\n" not in flag["explanation"].strip(), f"{key}: explanation is not one line"
        assert flag["rule"] in schema.RULES and flag["severity"] in schema.SEVERITIES, key
        event = access[flag["request_id"]]
        for column in (
            "event_time",
            "app_id",
            "user_id",
            "resource",
            "action",
            "status",
            "method",
            "path",
            "ip",
            "delivery_date",
            "source_file",
            "source_line",
        ):
            assert flag[column] == event[column], f"{key}: {column}={flag[column]!r}"
        assert flag["scope"] == f"{event['resource']}.{event['action']}", key
        partner = PARTNERS.get(event["app_id"]) if flag["rule"] != "UNKNOWN_APP" else None
        assert flag["partner_id"] == (partner[0] if partner else None), key
        if flag["rule"] in CONSENT_RULES:
            problems = _evidence_problems(flag, expected[key])
            assert not problems, f"{key}: " + "; ".join(problems)


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=audit_cases())
def test_flags_for_day_matches_spec_oracle(flags_for_day: FlagsForDay, case: AuditCase) -> None:
    note(repr(case))
    expected = _oracle(case)
    note(f"oracle: {sorted(expected)}")
    flags = _run(flags_for_day, case)
    note(f"implementation: {sorted(_flag_ids(flags))}")
    check_flags(flags, case, expected)

    # flag_id is stable: a re-run, even with the input rows in another order, gives the same ids.
    again = _run(flags_for_day, case, reverse=True)
    assert _flag_ids(again) == _flag_ids(flags)


# ---------------------------------------------------------------------------------------------
# Hand-derived examples at the sharpest edges: first the oracle, then the implementation


@dataclass
class Example:
    access: list[dict[str, Any]]
    expected: dict[FlagKey, dict[str, Any]]  # (request_id, rule) -> the evidence that must hold
    consent: list[dict[str, Any]] = field(default_factory=list)
    registry: list[dict[str, Any]] = field(
        default_factory=lambda: [registry_row("app_a", ALWAYS, None, list(SCOPE_SET))]
    )
    clock_skew_seconds: float = 0.0
    message_resources: tuple[str, ...] = ("messages",)

    def case(self) -> AuditCase:
        return AuditCase(
            access=table(self.access, schema.ACCESS),
            consent=table(self.consent, schema.CONSENT),
            registry=table(self.registry, schema.REGISTRY),
            day=DAY,
            message_resources=self.message_resources,
            clock_skew_seconds=self.clock_skew_seconds,
        )


def _ttl_registry(ttl_days: float) -> list[dict[str, Any]]:
    return [registry_row("app_a", ALWAYS, None, list(SCOPE_SET), grant_ttl_days=ttl_days)]


EXAMPLES = {
    # Grant and revoke at the same instant: the revoke wins, whatever their lineage.
    "grant_revoke_tie_is_signin_revoked": Example(
        access=[access_row("r1", T), access_row("r2", T - 6 * H, source_line=2)],
        consent=[
            revoke("e1", T - 6 * H, source_file="consent/2024-03-10/a.jsonl", source_line=1),
            grant("e2", T - 6 * H, source_file="consent/2024-03-10/b.jsonl", source_line=9),
        ],
        expected={
            ("r1", "SIGNIN_REVOKED"): {"last_grant_time": T - 6 * H, "last_revoke_time": T - 6 * H},
            ("r2", "SIGNIN_REVOKED"): {"last_grant_time": T - 6 * H, "last_revoke_time": T - 6 * H},
        },
    ),
    # t - g.time == TTL is not expired; one microsecond more is.
    "ttl_exactly_elapsed_is_not_expired": Example(
        access=[access_row("r1", T), access_row("r2", T + US, source_line=2)],
        consent=[grant("e1", T - 12 * H)],
        registry=_ttl_registry(0.5),
        expected={("r2", "SIGNIN_EXPIRED"): {"last_grant_time": T - 12 * H, "grant_expired_at": T}},
    ),
    # 0.7 days is exactly 16:48:00 (the float 0.7 * 86400e6 is 60479999999.99999).
    "ttl_of_0_7_days_exactly_elapsed_is_not_expired": Example(
        access=[access_row("r1", T), access_row("r2", T + US, source_line=2)],
        consent=[grant("e1", T - dt.timedelta(hours=16, minutes=48))],
        registry=_ttl_registry(0.7),
        expected={("r2", "SIGNIN_EXPIRED"): {"grant_expired_at": T}},
    ),
    # A TTL of 0 days: valid only at the grant's own instant.
    "ttl_zero_expires_right_after_the_grant": Example(
        access=[access_row("r1", T), access_row("r2", T + US, source_line=2)],
        consent=[grant("e1", T)],
        registry=_ttl_registry(0.0),
        expected={("r2", "SIGNIN_EXPIRED"): {"last_grant_time": T}},
    ),
    # No TTL: a grant never expires.
    "no_ttl_never_expires": Example(
        access=[access_row("r1", T)],
        consent=[grant("e1", T - 1000 * 24 * H)],
        expected={},
    ),
    # period_end is exclusive: an access at exactly the end is after it; at the start it is in.
    "access_at_period_end_is_after_partnership_end": Example(
        access=[access_row("r1", T), access_row("r2", BASE, source_line=2)],
        consent=[grant("e1", BASE - 24 * H)],
        registry=[registry_row("app_a", BASE, T, list(SCOPE_SET))],
        expected={("r1", "AFTER_PARTNERSHIP_END"): {"partnership_end": T}},
    ),
    "access_just_before_period_start_is_before_partnership_start": Example(
        access=[access_row("r1", T - US)],
        consent=[grant("e1", BASE)],
        registry=[registry_row("app_a", T, None, list(SCOPE_SET))],
        expected={("r1", "BEFORE_PARTNERSHIP_START"): {}},
    ),
    # In a gap between two periods one row has ended: after end, not before start.
    "access_in_gap_between_periods_is_after_partnership_end": Example(
        access=[access_row("r1", BASE + 6 * H)],
        consent=[grant("e1", BASE - 48 * H)],
        registry=[
            registry_row("app_a", T, None, list(SCOPE_SET), registry_line=3),
            registry_row("app_a", BASE - 24 * H, BASE, list(SCOPE_SET), registry_line=2),
        ],
        expected={("r1", "AFTER_PARTNERSHIP_END"): {}},
    ),
    # Covering rows that lack the scope, while an ended row allowed it.
    "scope_only_in_ended_period_is_not_in_partnership": Example(
        access=[access_row("r1", T, action="delete"), access_row("r2", T, source_line=2)],
        consent=[grant("e1", BASE)],
        registry=[
            registry_row("app_a", BASE - 24 * H, BASE, list(SCOPE_SET)),
            registry_row("app_a", BASE, None, ["messages.read"], registry_line=2),
            registry_row("app_a", BASE, T + H, [], registry_line=3),
        ],
        expected={("r1", "SCOPE_NOT_IN_PARTNERSHIP"): {}},
    ),
    # Consent delivered the day after D does not count (yet); the day before does.
    "consent_delivered_next_day_is_no_signin": Example(
        access=[access_row("r1", T), access_row("r2", T, app_id="app_b", source_line=2)],
        consent=[
            grant("e1", T - 6 * H, delivery_date=DAY + dt.timedelta(days=1)),
            grant("e2", T - 6 * H, app_id="app_b", delivery_date=DAY - dt.timedelta(days=1)),
        ],
        registry=[
            registry_row("app_a", ALWAYS, None, list(SCOPE_SET)),
            registry_row("app_b", ALWAYS, None, list(SCOPE_SET), registry_line=2),
        ],
        expected={("r1", "NO_SIGNIN"): {"last_grant_time": None, "last_revoke_time": None}},
    ),
    # Consent of another user or app, or later than t, does not count; a revoke alone is no grant.
    "other_user_other_app_or_future_consent_is_no_signin": Example(
        access=[access_row("r1", T)],
        consent=[
            grant("e1", T - H, user_id="u2"),
            grant("e2", T - H, app_id="app_b", source_line=2),
            grant("e3", T + US, source_line=3),
            revoke("e4", T - 2 * H, source_line=4),
        ],
        expected={("r1", "NO_SIGNIN"): {"last_grant_time": None, "last_revoke_time": T - 2 * H}},
    ),
    # Two grants at one instant: the one ingested later wins (date, then file name, then line).
    "grants_tie_later_delivery_wins": Example(
        access=[access_row("r1", T)],
        consent=[
            grant(
                "e1",
                T - H,
                scopes=["messages.read"],
                delivery_date=DAY - dt.timedelta(days=1),
                source_file="consent/2024-03-09/z.jsonl",
                source_line=99,
            ),
            grant("e2", T - H, scopes=[], source_file="consent/2024-03-10/a.jsonl"),
        ],
        expected={("r1", "SCOPE_NOT_GRANTED"): {"last_grant_scopes": []}},
    ),
    "grants_tie_later_file_wins": Example(
        access=[access_row("r1", T)],
        consent=[
            grant(
                "e1",
                T - H,
                scopes=["contacts.read"],
                source_file="consent/2024-03-10/part-10.jsonl",
                source_line=50,
            ),
            grant(
                "e2",
                T - H,
                scopes=["messages.read"],
                source_file="consent/2024-03-10/part-9.jsonl",
                source_line=1,
            ),
        ],
        expected={},
    ),
    "grants_tie_later_line_wins": Example(
        access=[access_row("r1", T)],
        consent=[
            grant("e2", T - H, scopes=["messages.read"], source_line=10),
            grant("e1", T - H, scopes=["messages.write"], source_line=9),
        ],
        expected={},
    ),
    # Clock skew: a grant up to skew after t counts, one microsecond more does not; a revoke after
    # t never counts.
    "grant_within_clock_skew_counts": Example(
        access=[
            access_row("r1", T),
            access_row("r2", T - US, source_line=2),
            access_row("r3", T - 7 * H, source_line=3),
        ],
        consent=[
            grant("e1", T - 6 * H, scopes=["contacts.read"]),
            revoke("e2", T - 6 * H + 10 * US, source_line=2),
            grant("e3", T + 30 * dt.timedelta(seconds=1), source_line=3),
            revoke("e4", T + US, source_line=4),
        ],
        clock_skew_seconds=30.0,
        expected={
            ("r2", "SIGNIN_REVOKED"): {
                "last_grant_time": T - 6 * H,
                "last_revoke_time": T - 6 * H + 10 * US,
            },
            ("r3", "NO_SIGNIN"): {"last_grant_time": None},
        },
    ),
    "grant_within_clock_skew_after_revoke_wins": Example(
        access=[access_row("r1", T)],
        consent=[
            grant("e1", T - H),
            revoke("e2", T, source_line=2),
            grant("e3", T + 10 * dt.timedelta(seconds=1), source_line=3),
        ],
        clock_skew_seconds=30.0,
        expected={},
    ),
    # A regrant after a revoke replaces the old grant's scopes.
    "regrant_after_revoke_replaces_scopes": Example(
        access=[access_row("r1", T, action="write")],
        consent=[
            grant("e1", T - 3 * H),
            revoke("e2", T - 2 * H, source_line=2),
            grant("e3", T - H, scopes=["messages.read"], source_line=3),
        ],
        expected={
            ("r1", "SCOPE_NOT_GRANTED"): {
                "last_grant_time": T - H,
                "last_revoke_time": T - 2 * H,
                "last_grant_scopes": ["messages.read"],
            }
        },
    ),
    # Null scopes cover everything, [] covers nothing.
    "empty_grant_scopes_cover_nothing": Example(
        access=[access_row("r1", T), access_row("r2", T, user_id="u2", source_line=2)],
        consent=[grant("e1", T, scopes=[]), grant("e2", T, user_id="u2", source_line=2)],
        expected={("r1", "SCOPE_NOT_GRANTED"): {"last_grant_scopes": []}},
    ),
    # Expired and lacking the scope: one consent flag only, the expiry.
    "expired_grant_lacking_scope_is_only_expired": Example(
        access=[access_row("r1", T, action="delete")],
        consent=[grant("e1", T - 48 * H, scopes=["messages.read"])],
        registry=_ttl_registry(1.0),
        expected={("r1", "SIGNIN_EXPIRED"): {"last_grant_scopes": ["messages.read"]}},
    ),
    # A partnership flag and a consent flag on one event.
    "partnership_and_consent_flags_together": Example(
        access=[access_row("r1", T)],
        registry=[registry_row("app_a", BASE - 24 * H, BASE, list(SCOPE_SET))],
        expected={("r1", "AFTER_PARTNERSHIP_END"): {}, ("r1", "NO_SIGNIN"): {}},
    ),
    # An app with no registry row: UNKNOWN_APP and nothing else.
    "unknown_app_suppresses_other_rules": Example(
        access=[access_row("r1", T, app_id="app_z")],
        expected={("r1", "UNKNOWN_APP"): {}},
    ),
    # Only successful (status < 400) calls on message content are checked.
    "failed_or_non_message_calls_are_ignored": Example(
        access=[
            access_row("r1", T, status=399),
            access_row("r2", T, status=400, source_line=2),
            access_row("r3", T, status=500, source_line=3),
            access_row("r4", T, resource="contacts", source_line=4),
        ],
        expected={("r1", "NO_SIGNIN"): {}},
    ),
    "configured_message_resources_are_checked": Example(
        access=[access_row("r1", T, resource="contacts", status=302)],
        consent=[grant("e1", T, scopes=["contacts.write"])],
        message_resources=("messages", "contacts"),
        expected={("r1", "SCOPE_NOT_GRANTED"): {"last_grant_scopes": ["contacts.write"]}},
    ),
}


@pytest.mark.parametrize("example", EXAMPLES.values(), ids=EXAMPLES.keys())
def test_oracle_matches_hand_derived_flags(example: Example) -> None:
    flags = _oracle(example.case())
    assert set(flags) == set(example.expected)
    for key, evidence in example.expected.items():
        for name, value in evidence.items():
            assert flags[key][name] == value, (key, name)


@pytest.mark.parametrize("example", EXAMPLES.values(), ids=EXAMPLES.keys())
def test_flags_for_day_matches_hand_derived_flags(
    flags_for_day: FlagsForDay, example: Example
) -> None:
    case = example.case()
    check_flags(_run(flags_for_day, case), case, _oracle(case))


def test_grant_revoke_tie_is_signin_revoked() -> None:
    case = EXAMPLES["grant_revoke_tie_is_signin_revoked"].case()
    assert set(_oracle(case)) == {("r1", "SIGNIN_REVOKED"), ("r2", "SIGNIN_REVOKED")}


def test_ttl_exactly_equal_is_not_expired() -> None:
    case = EXAMPLES["ttl_exactly_elapsed_is_not_expired"].case()
    assert ("r1", "SIGNIN_EXPIRED") not in _oracle(case)


def test_access_at_period_end_is_after_partnership_end() -> None:
    case = EXAMPLES["access_at_period_end_is_after_partnership_end"].case()
    assert set(_oracle(case)) == {("r1", "AFTER_PARTNERSHIP_END")}


def test_consent_delivered_next_day_is_no_signin() -> None:
    case = EXAMPLES["consent_delivered_next_day_is_no_signin"].case()
    assert set(_oracle(case)) == {("r1", "NO_SIGNIN")}
