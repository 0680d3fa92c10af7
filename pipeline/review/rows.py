"""A day's flags and anomaly alerts as review-item rows (plain dicts for bulk inserts)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.config import SEVERITIES
from pipeline.detect.alert_ids import ANOMALY_RULE, behaviour_alert_id
from pipeline.schema import ANOMALY_EVIDENCE, FLAG_EVIDENCE

# A whole partner behaving oddly weighs more than one app-user pair doing so.
ANOMALY_SEVERITY = {"partner_day": "high", "app_user_day": "medium"}
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}


def _json_safe(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def flag_rows(day: date, flags: pa.Table) -> list[dict[str, Any]]:
    """One item per flag; facts only (status and assignee are the store's)."""
    rows = []
    for flag in flags.to_pylist():
        rows.append(
            {
                "item_id": flag["flag_id"],
                "kind": "flag",
                "day": day,
                "event_time": flag["event_time"],
                "rule": flag["rule"],
                "severity": flag["severity"],
                "severity_rank": SEVERITY_RANK[flag["severity"]],
                "partner_id": flag["partner_id"],
                "app_id": flag["app_id"],
                "user_id": flag["user_id"],
                "request_id": flag["request_id"],
                "resource": flag["resource"],
                "action": flag["action"],
                "status_code": flag["status"],
                "explanation": flag["explanation"],
                "evidence": {key: _json_safe(flag.get(key)) for key in FLAG_EVIDENCE},
                "score": None,
            }
        )
    return rows


def anomaly_rows(day: date, anomalies: pa.Table) -> list[dict[str, Any]]:
    """One item per alerting anomaly row (alert == True); the others are not for review."""
    if anomalies.num_rows:
        anomalies = anomalies.filter(pc.equal(anomalies["alert"], True))
    rows = []
    for anomaly in anomalies.to_pylist():
        kind = anomaly["entity_kind"]
        severity = ANOMALY_SEVERITY.get(kind, "medium")
        rows.append(
            {
                "item_id": behaviour_alert_id(
                    kind, day, anomaly["partner_id"], anomaly["app_id"], anomaly["user_id"]
                ),
                "kind": "anomaly",
                "day": day,
                "event_time": None,
                "rule": ANOMALY_RULE,
                "severity": severity,
                "severity_rank": SEVERITY_RANK[severity],
                "partner_id": anomaly["partner_id"],
                "app_id": anomaly["app_id"],
                "user_id": anomaly["user_id"],
                "request_id": None,
                "resource": None,
                "action": None,
                "status_code": None,
                "explanation": anomaly["explanation"],
                "evidence": {key: _json_safe(anomaly.get(key)) for key in ANOMALY_EVIDENCE},
                "score": anomaly["score"],
            }
        )
    return rows
