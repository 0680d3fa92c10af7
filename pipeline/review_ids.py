"""Review item ids that the report links to and the review store keys its items by."""

from __future__ import annotations

import hashlib
from datetime import date

ANOMALY_RULE = "ANOMALY"  # the rule an anomaly item shows beside the flags' rules


def anomaly_item_id(
    entity_kind: str, day: date, partner_id: str | None, app_id: str | None, user_id: str | None
) -> str:
    """md5 hex of "ANOMALY|entity_kind|day|partner_id|app_id|user_id", "" for nulls."""
    parts = (
        ANOMALY_RULE,
        entity_kind,
        day.isoformat(),
        partner_id or "",
        app_id or "",
        user_id or "",
    )
    return hashlib.md5("|".join(parts).encode("utf-8"), usedforsecurity=False).hexdigest()
