"""Alert ids (SPEC §5): stable, so that re-runs and backfills refresh an alert, never duplicate it.

A rule alert's id is a function of its delivery day, app and rule alone; a behaviour alert's of its
entity kind, day and entity. The SQL and the Python forms give the same text.
"""

from __future__ import annotations

import hashlib
from datetime import date

RULE_ALERT = "rule"
BEHAVIOUR_ALERT = "behaviour"
COVERAGE_ALERT = "coverage"  # a partner-day the audit could judge too little of
ANOMALY_RULE = "ANOMALY"  # kept in behaviour alert ids so that ids made before alerts still match


def rule_alert_id(day: date, app_id: str, rule: str) -> str:
    """md5 hex of "rule|D|app_id|rule", as rule_alert_id_sql computes it."""
    text = "|".join((RULE_ALERT, day.isoformat(), app_id, rule))
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def rule_alert_id_sql(day: date, app_column: str = "app_id", rule_column: str = "rule") -> str:
    """The same id as a DuckDB expression over columns of a flags query."""
    return f"md5(concat_ws('|', '{RULE_ALERT}', '{day.isoformat()}', {app_column}, {rule_column}))"


def behaviour_alert_id(
    entity_kind: str, day: date, partner_id: str | None, app_id: str | None, user_id: str | None
) -> str:
    """md5 hex of "ANOMALY|entity_kind|D|partner_id|app_id|user_id", "" for nulls."""
    parts = (
        ANOMALY_RULE,
        entity_kind,
        day.isoformat(),
        partner_id or "",
        app_id or "",
        user_id or "",
    )
    return hashlib.md5("|".join(parts).encode("utf-8"), usedforsecurity=False).hexdigest()
