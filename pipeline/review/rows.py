"""A day's alerts (schema.ALERTS) as review-store rows: plain dicts for one executemany.

A day holds few alerts (one per app and rule, plus what the behaviour model alerted on), so one
dict per alert is cheap; nothing here ever sees a flag.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pyarrow as pa

from pipeline.config import SEVERITIES
from pipeline.review.lifecycle import KINDS
from pipeline.schema import ALERTS

SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
# The facts of an alert: what a publish writes and a re-publish refreshes (never the decision).
FACTS = (
    "kind",
    "day",
    "partner_id",
    "partner_name",
    "app_id",
    "user_id",
    "rule",
    "severity",
    "severity_rank",
    "flags",
    "users",
    "first_event_time",
    "last_event_time",
    "reads",
    "writes",
    "deletes",
    "flags_by_hour",
    "evidence",
    "sample_request_ids",
    "score",
    "model_version",
    "explanation",
)


def _evidence(text: str | None) -> dict[str, Any]:
    """The alert's evidence object; text that is not one is kept whole under `text`."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {"text": text}
    return value if isinstance(value, dict) else {"value": value}


def alert_rows(day: date, alerts: pa.Table) -> list[dict[str, Any]]:
    """One row per alert of `day`; a row of another day, kind or severity is refused."""
    table = alerts.select(ALERTS.names).cast(ALERTS)
    rows = []
    for alert in table.to_pylist():
        if alert["day"] != day:
            raise ValueError(f"alert {alert['alert_id']} is of {alert['day']}, not {day}")
        if alert["kind"] not in KINDS:
            raise ValueError(f"alert {alert['alert_id']}: unknown kind {alert['kind']!r}")
        if alert["severity"] not in SEVERITY_RANK:
            raise ValueError(f"alert {alert['alert_id']}: unknown severity {alert['severity']!r}")
        alert["severity_rank"] = SEVERITY_RANK[alert["severity"]]
        alert["evidence"] = _evidence(alert["evidence"])
        alert["sample_request_ids"] = list(alert["sample_request_ids"] or [])
        rows.append({"alert_id": alert["alert_id"], **{name: alert[name] for name in FACTS}})
    return rows
