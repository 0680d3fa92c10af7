"""Tiny literal alerts, flags and anomalies tables (pipeline.schema ALERTS, FLAGS, ANOMALIES) for
review tests: alerts are built here by hand until the alerts step's builder is in main."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa

from pipeline.detect.alert_ids import behaviour_alert_id, rule_alert_id
from pipeline.schema import ALERTS, ANOMALIES, FLAGS

D1 = date(2026, 3, 10)
D2 = date(2026, 3, 11)


def at(day: date, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def flag(flag_id: str, day: date = D1, **values: Any) -> dict[str, Any]:
    """One flags row with plausible defaults; `values` override any column."""
    row: dict[str, Any] = {
        "flag_id": flag_id,
        "rule": "NO_SIGNIN",
        "severity": "high",
        "request_id": f"req-{flag_id}",
        "event_time": at(day),
        "app_id": "app-chat",
        "partner_id": "p-chat",
        "partner_name": "Chat Inc",
        "user_id": "u1",
        "resource": "messages",
        "action": "read",
        "scope": "messages.read",
        "status": 200,
        "method": "GET",
        "path": "/v1/me/messages",
        "ip": "10.0.0.1",
        "last_grant_time": None,
        "last_grant_scopes": None,
        "last_grant_all_scopes": None,
        "last_revoke_time": None,
        "grant_expired_at": None,
        "grant_ttl_days": None,
        "partnership_start": at(date(2025, 1, 1), 0),
        "partnership_end": None,
        "partnership_scopes": ["messages.read"],
        "explanation": f"{flag_id}: read messages of u1 with no sign-in",
        "delivery_date": day,
        "source_file": "access/part-0.jsonl",
        "source_line": 1,
    }
    row.update(values)
    row.setdefault("alert_id", rule_alert_id(row["delivery_date"], row["app_id"], row["rule"]))
    return row


def flags(*rows: dict[str, Any]) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=FLAGS)


def anomaly(day: date = D1, alert: bool = True, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "entity_kind": "partner_day",
        "day": day,
        "partner_id": "p-chat",
        "app_id": None,
        "user_id": None,
        "score": 0.9,
        "rank": 1,
        "alert": alert,
        "model_name": "partner_behaviour",
        "model_version": "v1",
        "top_features": ["message_reads", "night_share"],
        "explanation": "p-chat read 40x its usual messages",
    }
    row.update(values)
    return row


def anomalies(*rows: dict[str, Any]) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=ANOMALIES)


NO_ANOMALIES = anomalies()


def alert(day: date = D1, app_id: str = "app-chat", rule: str = "NO_SIGNIN", **values: Any) -> dict:
    """One rule alert row (schema.ALERTS) with plausible defaults; `values` override any column.
    Its id is the rule alert id of (day, app_id, rule) unless given."""
    flags_n = values.get("flags", 3)
    row: dict[str, Any] = {
        "alert_id": rule_alert_id(day, app_id, rule),
        "kind": "rule",
        "day": day,
        "partner_id": "p-chat",
        "partner_name": "Chat Inc",
        "app_id": app_id,
        "user_id": None,
        "rule": rule,
        "severity": "high",
        "flags": flags_n,
        "users": 2,
        "first_event_time": at(day, 8),
        "last_event_time": at(day, 17),
        "reads": flags_n,
        "writes": 0,
        "deletes": 0,
        "flags_by_hour": [0] * 8 + [flags_n] + [0] * 15,
        "evidence": json.dumps({"partnership_end": None, "users_by_consent": {"none": 2}}),
        "sample_request_ids": ["req-1", "req-2"],
        "score": None,
        "model_version": None,
        "explanation": f"Chat Inc (app {app_id}) made {flags_n} message accesses on {day}: {rule}",
    }
    row.update(values)
    return row


def behaviour_alert(day: date = D1, **values: Any) -> dict[str, Any]:
    """One behaviour alert row (a partner-day the model alerted on)."""
    values.setdefault("rule", "partner_day")
    app_id = values.pop("app_id", None)
    row = alert(day, app_id="", kind="behaviour", **values)
    row.update(
        {
            "app_id": app_id,
            "flags": values.get("flags", 0),
            "users": values.get("users", 0),
            "reads": values.get("reads", 0),
            "flags_by_hour": values.get("flags_by_hour"),
            "score": values.get("score", 0.9),
            "model_version": values.get("model_version", "v1"),
            "severity": values.get("severity", "medium"),
            "explanation": values.get("explanation", "p-chat read 40x its usual messages"),
        }
    )
    row["alert_id"] = values.get(
        "alert_id",
        behaviour_alert_id(row["rule"], day, row["partner_id"], row["app_id"], row["user_id"]),
    )
    return row


def alerts(*rows: dict[str, Any]) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=ALERTS)


NO_ALERTS = alerts()


def alerts_from_flags(
    day: date, day_flags: pa.Table, anomalies_table: pa.Table | None = None
) -> pa.Table:
    """The day's alerts made from its flags and anomalies the plain way, for review tests only
    (the pipeline's own builder is the alerts step's): one rule alert per (app_id, rule), one
    behaviour alert per alerting anomaly row."""
    import duckdb

    con = duckdb.connect()
    con.register("f", day_flags)
    rule_alerts = con.sql(
        """
        SELECT min(alert_id) AS alert_id, 'rule' AS kind, min(delivery_date) AS day,
               min(partner_id) AS partner_id, min(partner_name) AS partner_name, app_id,
               NULL::VARCHAR AS user_id, rule,
               CASE max(CASE severity WHEN 'low' THEN 0 WHEN 'medium' THEN 1 WHEN 'high' THEN 2
                    ELSE 3 END) WHEN 0 THEN 'low' WHEN 1 THEN 'medium' WHEN 2 THEN 'high'
                    ELSE 'critical' END AS severity,
               count(*) AS flags, count(DISTINCT user_id) AS users,
               min(event_time) AS first_event_time, max(event_time) AS last_event_time,
               count(*) FILTER (action = 'read') AS reads,
               count(*) FILTER (action = 'write') AS writes,
               count(*) FILTER (action = 'delete') AS deletes,
               [HOURS] AS fbh,
               to_json({'partnership_end': max(partnership_end)})::VARCHAR AS evidence,
               list(request_id ORDER BY event_time, flag_id)[1:3] AS sample_request_ids,
               NULL::DOUBLE AS score, NULL::VARCHAR AS model_version,
               coalesce(min(partner_name), app_id) || ' (app ' || app_id || ') made '
                   || count(*) || ' message accesses for ' || count(DISTINCT user_id)
                   || ' users: ' || rule AS explanation
        FROM f GROUP BY app_id, rule ORDER BY app_id, rule
        """.replace(
            "HOURS",
            ", ".join(f"count(*) FILTER (hour(event_time) = {h})" for h in range(24)),
        )
    ).to_arrow_table()
    con.close()
    rows = rule_alerts.rename_columns(
        ["flags_by_hour" if n == "fbh" else n for n in rule_alerts.column_names]
    ).to_pylist()
    if anomalies_table is not None:
        for row in anomalies_table.to_pylist():
            if not row["alert"]:
                continue
            kind = row["entity_kind"]
            rows.append(
                behaviour_alert(
                    day,
                    rule=kind,
                    partner_id=row["partner_id"],
                    app_id=row["app_id"],
                    user_id=row["user_id"],
                    users=1 if row["user_id"] else 0,
                    score=row["score"],
                    model_version=row["model_version"],
                    severity="high" if kind == "partner_day" else "medium",
                    explanation=row["explanation"],
                    evidence=json.dumps({"top_features": row["top_features"]}),
                    alert_id=behaviour_alert_id(
                        kind, day, row["partner_id"], row["app_id"], row["user_id"]
                    ),
                )
            )
    return alerts(*rows)
