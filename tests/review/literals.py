"""Tiny literal flags and anomalies tables (pipeline.schema FLAGS and ANOMALIES) for store tests."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa

from pipeline.detect.alert_ids import rule_alert_id
from pipeline.schema import ANOMALIES, FLAGS

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
