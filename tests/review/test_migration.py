"""Migration 0002 turns a store of per-flag items (0001) into alerts, losing no decision, note or
audit entry; where an alert's items disagreed, the trail says how that was resolved."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

import pipeline.review.store as store_module
from pipeline.detect.alert_ids import behaviour_alert_id, rule_alert_id
from pipeline.review.store import AlertFilter, ReviewStore
from pipeline.review.tables import UTCDateTime
from tests.review.literals import D1, D2, at

OLD_ITEMS = sa.Table(
    "review_items",
    sa.MetaData(),
    *(
        sa.Column(name, kind)
        for name, kind in (
            ("item_id", sa.String(64)),
            ("kind", sa.String(16)),
            ("day", sa.Date),
            ("event_time", UTCDateTime),
            ("rule", sa.String(64)),
            ("severity", sa.String(16)),
            ("severity_rank", sa.SmallInteger),
            ("partner_id", sa.Text),
            ("app_id", sa.Text),
            ("user_id", sa.Text),
            ("request_id", sa.Text),
            ("resource", sa.Text),
            ("action", sa.String(32)),
            ("status_code", sa.Integer),
            ("explanation", sa.Text),
            ("evidence", sa.JSON),
            ("score", sa.Float),
            ("status", sa.String(16)),
            ("assignee", sa.Text),
            ("version", sa.Integer),
            ("suppressed_by", sa.Integer),
            ("created_at", UTCDateTime),
            ("updated_at", UTCDateTime),
        )
    ),
)
OLD_AUDIT = sa.Table(
    "review_audit",
    sa.MetaData(),
    *(
        sa.Column(name, kind)
        for name, kind in (
            ("id", sa.Integer),
            ("item_id", sa.String(64)),
            ("actor", sa.Text),
            ("at", UTCDateTime),
            ("action", sa.String(16)),
            ("from_value", sa.Text),
            ("to_value", sa.Text),
            ("note", sa.Text),
        )
    ),
)
OLD_SUPPRESSIONS = sa.table(
    "review_suppressions",
    *(sa.column(n) for n in ("id", "app_id", "rule", "until", "reason", "created_by")),
    sa.column("created_at", UTCDateTime),
    sa.column("until", sa.Date),
)
CREATED = datetime(2026, 3, 11, 6, tzinfo=UTC)


def item(item_id: str, **values: Any) -> dict[str, Any]:
    row = {
        "item_id": item_id, "kind": "flag", "day": D1, "event_time": at(D1, 9),
        "rule": "NO_SIGNIN", "severity": "high", "severity_rank": 2, "partner_id": "p-chat",
        "app_id": "app-chat", "user_id": "u1", "request_id": f"req-{item_id}",
        "resource": "messages", "action": "read", "status_code": 200,
        "explanation": f"{item_id} read messages", "evidence": {"path": "/m"}, "score": None,
        "status": "new", "assignee": None, "version": 1, "suppressed_by": None,
        "created_at": CREATED, "updated_at": CREATED,
    }  # fmt: skip
    row.update(values)
    return row


def entry(n: int, item_id: str, action: str, old: str | None, new: str | None, **more) -> dict:
    at_ = datetime(2026, 3, 11, 8, n, tzinfo=UTC)
    actor, note = more.get("actor", "alice"), more.get("note")
    return {"item_id": item_id, "actor": actor, "at": at_, "action": action,
            "from_value": old, "to_value": new, "note": note}  # fmt: skip


def open_at_0001(url: str) -> sa.Engine:
    engine = sa.create_engine(store_module.engine_url(url))
    config = Config()
    config.set_main_option(
        "script_location", str(Path(store_module.__file__).parent / "migrations")
    )
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    return engine


ANOMALY = behaviour_alert_id("partner_day", D1, "p-chat", None, None)


def seed_0001(engine: sa.Engine) -> None:
    items = [
        # one alert whose items disagree: f3 triaged first, then f2 confirmed and given to bob
        item("f1", user_id="u1", event_time=at(D1, 7)),
        item("f2", user_id="u2", status="confirmed", assignee="bob", version=3, action="delete"),
        item("f3", user_id="u2", status="triaged", version=2, severity="critical", severity_rank=3,
             event_time=at(D1, 20)),
        # one whose items agree
        item("g1", rule="SIGNIN_REVOKED", status="false_positive", version=2),
        item("g2", rule="SIGNIN_REVOKED", status="false_positive", version=2),
        # a suppressed one, and the next day of the first (a series of two days)
        item("s1", rule="SIGNIN_EXPIRED", suppressed_by=1),
        item("h1", day=D2, event_time=at(D2, 10)),
        # an anomaly item: its behaviour alert keeps its id and decision
        item(ANOMALY, kind="anomaly", rule="ANOMALY", app_id=None, user_id=None,
             event_time=None, action=None, request_id=None, score=0.9, status="triaged",
             assignee="carol", version=3,
             evidence={"entity_kind": "partner_day", "model_version": "v1",
                       "top_features": ["message_reads"]}),
    ]  # fmt: skip
    audit = [
        entry(1, "f3", "status", "new", "triaged"),
        entry(2, "g1", "status", "new", "false_positive"),
        entry(3, "g2", "status", "new", "false_positive"),
        entry(4, "f2", "status", "new", "confirmed", actor="rita", note="partner admitted it"),
        entry(5, "f2", "assign", None, "bob", actor="rita"),
        entry(6, "f1", "note", None, None, note="same user as last week"),
        entry(7, ANOMALY, "status", "new", "triaged", actor="carol"),
        entry(8, ANOMALY, "assign", None, "carol", actor="carol"),
        entry(9, "s1", "suppress", None, "1", actor="pipeline", note="known TTL bug"),
        {**entry(10, "", "ingest", None, "2026-03-10", actor="pipeline"), "item_id": None},
    ]
    with engine.begin() as connection:
        connection.execute(
            sa.insert(OLD_SUPPRESSIONS),
            [{"id": 1, "app_id": "app-chat", "rule": "SIGNIN_EXPIRED", "until": D2,
              "reason": "known TTL bug", "created_by": "alice", "created_at": CREATED}],
        )  # fmt: skip
        connection.execute(sa.insert(OLD_ITEMS), items)
        for row in audit:  # one by one: ids in this order
            connection.execute(sa.insert(OLD_AUDIT), row)


def test_migration_0002_turns_items_into_alerts_and_loses_nothing(store_url: str):
    engine = open_at_0001(store_url)
    seed_0001(engine)
    engine.dispose()

    store = ReviewStore.open(store_url)  # upgrades to head

    a = rule_alert_id(D1, "app-chat", "NO_SIGNIN")
    disagreed = store.alert(a)
    counted = (disagreed.kind, disagreed.flags, disagreed.users, disagreed.reads, disagreed.deletes)
    assert counted == ("rule", 3, 2, 2, 1)
    assert (disagreed.severity, disagreed.first_event_time, disagreed.last_event_time) == (
        "critical", at(D1, 7), at(D1, 20),
    )  # fmt: skip
    # the most recent status change (rita confirming f2) and assignment (bob) win
    assert (disagreed.status, disagreed.assignee) == ("confirmed", "bob")
    trail = store.audit_trail(a)
    assert sorted((e.item_id, e.action, e.to_value, e.note) for e in trail if e.item_id) == [
        ("f1", "note", None, "same user as last week"),
        ("f2", "assign", "bob", None),
        ("f2", "status", "confirmed", "partner admitted it"),
        ("f3", "status", "triaged", None),
    ]
    (how,) = [e for e in trail if e.action == "migrate"]
    assert how.from_value == "statuses: confirmed 1, new 1, triaged 1; assignees: bob 1, nobody 2"
    assert how.to_value == "confirmed, bob"
    assert "3 per-flag items became this alert and disagreed" in how.note
    assert "most recent change (entry #4 by rita)" in how.note
    assert "most recent change (entry #5 by rita)" in how.note

    agreed = store.alert(rule_alert_id(D1, "app-chat", "SIGNIN_REVOKED"))
    assert (agreed.status, agreed.flags, agreed.version) == ("false_positive", 2, 2)
    assert not [e for e in store.audit_trail(agreed.alert_id) if e.action == "migrate"]
    suppressed = store.alert(rule_alert_id(D1, "app-chat", "SIGNIN_EXPIRED"))
    assert suppressed.suppressed_by == 1
    assert [e.note for e in store.audit_trail(suppressed.alert_id)] == ["known TTL bug"]

    behaviour = store.alert(ANOMALY)
    assert (behaviour.kind, behaviour.rule, behaviour.status, behaviour.assignee) == (
        "behaviour", "partner_day", "triaged", "carol",
    )  # fmt: skip
    assert (behaviour.score, behaviour.model_version) == (0.9, "v1")
    assert len(store.audit_trail(ANOMALY)) == 2

    # the two days of app-chat NO_SIGNIN form one series, decided as one
    nxt = store.alert(rule_alert_id(D2, "app-chat", "NO_SIGNIN"))
    assert nxt.series_id == disagreed.series_id is not None
    # every former entry is still there, one more per disagreeing alert and one store-wide
    every = store.audit_trail(limit=1000)
    assert len([e for e in every if e.action != "migrate"]) == 10
    (summary,) = [e for e in every if e.action == "migrate" and e.alert_id is None]
    assert summary.note == (
        "8 per-flag review items became 5 alerts "
        "(1 of them from items that disagreed: see their entries)"
    )
    assert store.alerts(AlertFilter(include_suppressed=True)).total == 5
    # the migrated store works: decide the series, publish over it
    store.set_status([], "triaged", "alice", series_ids=[nxt.series_id])
    assert store.alert(a).status == "triaged"
    store.dispose()


def test_migration_0002_of_an_empty_store(store_url: str):
    open_at_0001(store_url).dispose()
    store = ReviewStore.open(store_url)
    assert store.alerts(AlertFilter()).total == 0
    assert store.audit_trail() == []
    store.dispose()
