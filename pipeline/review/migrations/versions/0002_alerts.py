"""Alerts, not per-flag items (SPEC §5): review_items become review_alerts.

Flag items are grouped by (day, app_id, rule) into the rule alert of that key (its id is
pipeline.detect.alert_ids.rule_alert_id); each anomaly item becomes the behaviour alert of the same
id. Every audit entry is kept and named after its alert (its item_id stays). Where an alert's
former items disagree, the alert takes the status of the most recent status change among them
and the assignee of the most recent assignment, and an audit entry says so. The alert's facts are
what the items tell (counts, times, users); the next publish of the day refreshes them whole.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

# the tables as this revision leaves them (a later revision that changes them brings its own)
from pipeline.review.series import refresh_series
from pipeline.review.tables import review_audit

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)
ACTOR = "migration 0002"
SEVERITIES = ("low", "medium", "high", "critical")  # the ranks 0001 stored


def _create_alerts() -> None:
    op.create_table(
        "review_alerts",
        sa.Column("alert_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("partner_id", sa.Text),
        sa.Column("partner_name", sa.Text),
        sa.Column("app_id", sa.Text),
        sa.Column("user_id", sa.Text),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("severity_rank", sa.SmallInteger, nullable=False),
        sa.Column("flags", sa.BigInteger, nullable=False),
        sa.Column("users", sa.BigInteger, nullable=False),
        sa.Column("first_event_time", UTC_TIME),
        sa.Column("last_event_time", UTC_TIME),
        sa.Column("reads", sa.BigInteger, nullable=False),
        sa.Column("writes", sa.BigInteger, nullable=False),
        sa.Column("deletes", sa.BigInteger, nullable=False),
        sa.Column("flags_by_hour", sa.JSON),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.Column("sample_request_ids", sa.JSON, nullable=False),
        sa.Column("score", sa.Float),
        sa.Column("model_version", sa.Text),
        sa.Column("explanation", sa.Text, nullable=False),
        sa.Column("series_id", sa.String(64)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("assignee", sa.Text),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("suppressed_by", sa.Integer, sa.ForeignKey("review_suppressions.id")),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
    )
    # a day holds hundreds of alerts, not millions of items: a few indexes serve every filter
    for name, columns in (
        ("day", ["day"]),
        ("series", ["series_id", "day"]),
        ("partner_day", ["partner_id", "day"]),
        ("app_rule_day", ["app_id", "rule", "day"]),
        ("status_day", ["status", "day"]),
        ("assignee", ["assignee"]),
    ):
        op.create_index(f"ix_review_alerts_{name}", "review_alerts", columns)


def _md5(text: str | None) -> str | None:
    return None if text is None else hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def _sql(bind: sa.Connection) -> dict[str, str]:
    """The dialect's spellings: a day as YYYY-MM-DD text, a JSON member as text."""
    if bind.dialect.name == "postgresql":
        return {
            "day": "to_char(i.day, 'YYYY-MM-DD')",
            "kind_of": "(i.evidence ->> 'entity_kind')",
            "model_of": "(i.evidence ->> 'model_version')",
        }
    # SQLite keeps dates as ISO text and has no md5: the migration gives it Python's
    bind.connection.driver_connection.create_function(  # type: ignore[union-attr]
        "md5", 1, _md5, deterministic=True
    )
    return {
        "day": "i.day",
        "kind_of": "json_extract(i.evidence, '$.entity_kind')",
        "model_of": "json_extract(i.evidence, '$.model_version')",
    }


def _alert_id_sql(sql: dict[str, str]) -> str:
    """The alert an item goes to: rule_alert_id(day, app_id, rule) of a flag, the id itself of an
    anomaly (behaviour alert ids were anomaly item ids already)."""
    return (
        "CASE WHEN i.kind = 'flag' THEN "
        f"md5('rule|' || {sql['day']} || '|' || i.app_id || '|' || i.rule) "
        "ELSE i.item_id END"
    )


def _move_items(bind: sa.Connection, sql: dict[str, str]) -> None:
    alert_id = _alert_id_sql(sql)
    severity = " ".join(f"WHEN {rank} THEN '{name}'" for rank, name in enumerate(SEVERITIES))
    # rule alerts: one per (day, app, rule) of flag items, facts counted by the database
    bind.exec_driver_sql(
        f"""
        INSERT INTO review_alerts (alert_id, kind, day, partner_id, app_id, rule, severity,
            severity_rank, flags, users, first_event_time, last_event_time, reads, writes,
            deletes, evidence, sample_request_ids, explanation, status, version, suppressed_by,
            created_at, updated_at)
        SELECT min({alert_id}), 'rule', i.day, max(i.partner_id), i.app_id, i.rule,
            CASE max(i.severity_rank) {severity} END, max(i.severity_rank), count(*),
            count(DISTINCT i.user_id), min(i.event_time), max(i.event_time),
            sum(CASE WHEN i.action = 'read' THEN 1 ELSE 0 END),
            sum(CASE WHEN i.action = 'write' THEN 1 ELSE 0 END),
            sum(CASE WHEN i.action = 'delete' THEN 1 ELSE 0 END),
            '{{}}', '[]',
            CAST(count(*) AS TEXT) || ' flag(s) of ' || i.rule || ' by app ' || i.app_id
                || ' on ' || min({sql["day"]}) || ', carried over from per-flag review items '
                || '(the next publish of the day gives the alert its full facts)',
            'new', max(i.version),
            CASE WHEN count(i.suppressed_by) = count(*) THEN min(i.suppressed_by) END,
            min(i.created_at), max(i.updated_at)
        FROM review_items i WHERE i.kind = 'flag' AND i.app_id IS NOT NULL
        GROUP BY i.day, i.app_id, i.rule
        """
    )
    # behaviour alerts: one per anomaly item, its decision as it was
    bind.exec_driver_sql(
        f"""
        INSERT INTO review_alerts (alert_id, kind, day, partner_id, app_id, user_id, rule,
            severity, severity_rank, flags, users, reads, writes, deletes, evidence,
            sample_request_ids, score, model_version, explanation, status, assignee, version,
            suppressed_by, created_at, updated_at)
        SELECT i.item_id, 'behaviour', i.day, i.partner_id, i.app_id, i.user_id,
            coalesce({sql["kind_of"]}, i.rule), i.severity, i.severity_rank, 0,
            CASE WHEN i.user_id IS NULL THEN 0 ELSE 1 END, 0, 0, 0, i.evidence, '[]', i.score,
            {sql["model_of"]}, i.explanation, i.status, i.assignee, i.version, i.suppressed_by,
            i.created_at, i.updated_at
        FROM review_items i WHERE i.kind <> 'flag'
        """
    )
    # every entry of an item is named after its alert (entries are never lost or rewritten)
    bind.exec_driver_sql(
        f"""
        UPDATE review_audit SET alert_id = (
            SELECT {alert_id} FROM review_items i WHERE i.item_id = review_audit.item_id)
        WHERE item_id IS NOT NULL
        """
    )


def _describe(combos: list[tuple[str, str | None, int]]) -> str:
    statuses: dict[str, int] = {}
    assignees: dict[str, int] = {}
    for status, assignee, n in combos:
        statuses[status] = statuses.get(status, 0) + n
        who = assignee or "nobody"
        assignees[who] = assignees.get(who, 0) + n
    return "; ".join(
        f"{label}: " + ", ".join(f"{k} {n:,}" for k, n in sorted(counts.items()))
        for label, counts in (("statuses", statuses), ("assignees", assignees))
    )


def _decide_rule_alerts(bind: sa.Connection) -> int:
    """Give each rule alert the decision of its items; returns how many alerts had items that
    disagreed (each gets an audit entry saying how that was resolved)."""
    from pipeline.detect.alert_ids import rule_alert_id

    combos: dict[str, list[tuple[str, str | None, int]]] = {}
    rows = bind.execute(
        sa.text(
            "SELECT day, app_id, rule, status, assignee, count(*) AS n FROM review_items "
            "WHERE kind = 'flag' AND app_id IS NOT NULL "
            "GROUP BY day, app_id, rule, status, assignee"
        ).columns(day=sa.Date)
    )
    for day, app_id, rule, status, assignee, n in rows:
        combos.setdefault(rule_alert_id(day, app_id, rule), []).append((status, assignee, n))
    latest = {
        action: {
            row.alert_id: row
            for row in bind.execute(
                sa.text(
                    "SELECT a.alert_id, a.id, a.to_value, a.actor, a.at FROM review_audit a "
                    "WHERE a.id IN (SELECT max(b.id) FROM review_audit b "
                    "WHERE b.action = :action AND b.alert_id IS NOT NULL GROUP BY b.alert_id)"
                ),
                {"action": action},
            )
        }
        for action in ("status", "assign")
    }
    updates: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    now = datetime.now(UTC)
    for alert_id, found in combos.items():
        if len(found) == 1:
            status, assignee, _n = found[0]
            if status != "new" or assignee is not None:
                updates.append({"b_id": alert_id, "b_status": status, "b_assignee": assignee})
            continue
        # the items disagree: the newest decision among them is the alert's
        status, status_how = _newest(latest["status"].get(alert_id), [(s, n) for s, _a, n in found])
        assignee, assignee_how = _newest(
            latest["assign"].get(alert_id), [(a, n) for _s, a, n in found]
        )
        how = [f"status {status} {status_how}", f"assignee {assignee or 'nobody'} {assignee_how}"]
        total = sum(n for _s, _a, n in found)
        updates.append({"b_id": alert_id, "b_status": status, "b_assignee": assignee})
        entries.append(
            {
                "alert_id": alert_id,
                "actor": ACTOR,
                "at": now,
                "action": "migrate",
                "from_value": _describe(found),
                "to_value": f"{status}, {assignee or 'nobody'}",
                "note": f"{total:,} per-flag items became this alert and disagreed; it took the "
                + " and the ".join(how),
            }
        )
    if updates:
        bind.execute(
            sa.text(
                "UPDATE review_alerts SET status = :b_status, assignee = :b_assignee "
                "WHERE alert_id = :b_id"
            ),
            updates,
        )
    if entries:
        bind.execute(sa.insert(review_audit), entries)
    return len(entries)


def _newest(entry: Any, held: list[tuple[Any, int]]) -> tuple[Any, str]:
    """The value of the newest audit entry if an item still holds it, else the value most items
    hold; and how it was chosen (for the audit trail)."""
    values = {value for value, _n in held}
    if entry is not None and entry.to_value in values:
        return entry.to_value, f"of the most recent change (entry #{entry.id} by {entry.actor})"
    counts: dict[Any, int] = {}
    for value, n in held:
        counts[value] = counts.get(value, 0) + n
    value = max(sorted(counts, key=lambda v: (v is None, v or "")), key=counts.__getitem__)
    return value, "held by most of the items (no recorded change is still held)"


def upgrade() -> None:
    bind = op.get_bind()
    _create_alerts()
    with op.batch_alter_table("review_audit") as batch:
        batch.add_column(sa.Column("alert_id", sa.String(64)))
        batch.add_column(sa.Column("via", sa.Text))
    op.create_index("ix_review_audit_alert", "review_audit", ["alert_id", "id"])
    sql = _sql(bind)
    items = bind.exec_driver_sql("SELECT count(*) FROM review_items").scalar_one()
    if items:
        _move_items(bind, sql)
        disagreed = _decide_rule_alerts(bind)
        alerts = bind.exec_driver_sql("SELECT count(*) FROM review_alerts").scalar_one()
        refresh_series(bind)
        bind.execute(
            sa.insert(review_audit),
            {
                "actor": ACTOR,
                "at": datetime.now(UTC),
                "action": "migrate",
                "to_value": "alerts",
                "note": f"{items:,} per-flag review items became {alerts:,} alerts "
                f"({disagreed:,} of them from items that disagreed: see their entries)",
            },
        )
    op.drop_table("review_items")


def downgrade() -> None:
    raise NotImplementedError("alerts cannot be split back into per-flag items")
