""" "Incomplete coverage" alerts: a partner whose share of unjudged accesses on a day is above
`coverage_alert_share` gets one schema.ALERTS row of kind `coverage`, so analysts see that the
audit says less about it than the flags suggest. Pure: the day's coverage table in, rows out."""

from __future__ import annotations

import hashlib
import json
from datetime import date

import pyarrow as pa

from pipeline.config import Settings
from pipeline.detect.alert_ids import COVERAGE_ALERT
from pipeline.detect.coverage import REASONS
from pipeline.schema import ALERTS, UNKNOWN_PARTNER

COVERAGE_RULE = "INCOMPLETE_COVERAGE"
SEVERITY = "medium"
REASON_WORDS = {
    "unknown_app": "by apps the registry lacks",
    "folder_sync": "folder syncs",
    "throttled": "throttled records",
    "aggregated_window": "aggregated reads spanning a consent or partnership change",
    "user_not_in_consent_sources": "for users no consent source mentions",
}


def coverage_alert_id(day: date, partner_id: str) -> str:
    """md5 hex of "coverage|D|partner_id": stable across re-runs and backfills."""
    text = "|".join((COVERAGE_ALERT, day.isoformat(), partner_id))
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def _explanation(row: dict, day: date) -> str:
    who = (
        f"{row['partner_name']} ({row['partner_id']})" if row["partner_name"] else row["partner_id"]
    )
    parts = [f"{row[r]:,} {REASON_WORDS[r]}" for r in REASONS if row[r]]
    return (
        f"{who}: {row['not_judged']:,} of its {row['accesses']:,} message accesses on "
        f"{day.isoformat()} ({row['not_judged_share']:.0%}) could not be judged: "
        f"{', '.join(parts)}."
    )


def coverage_alerts(day: date, coverage: pa.Table, settings: Settings) -> pa.Table:
    """The day's coverage alerts (schema.ALERTS), one per partner above the share."""
    rows = []
    for row in coverage.to_pylist():  # one row per partner: small
        if row["partner_id"] == UNKNOWN_PARTNER:  # UNKNOWN_APP rule alerts say it already
            continue
        if not row["not_judged"] or row["not_judged_share"] <= settings.coverage_alert_share:
            continue
        evidence = {k: row[k] for k in ("accesses", "judged", "not_judged", *REASONS)}
        rows.append(
            {
                "alert_id": coverage_alert_id(day, row["partner_id"]),
                "kind": COVERAGE_ALERT,
                "day": day,
                "partner_id": row["partner_id"],
                "partner_name": row["partner_name"],
                "rule": COVERAGE_RULE,
                "severity": SEVERITY,
                "flags": 0,
                "users": 0,
                "reads": 0,
                "writes": 0,
                "deletes": 0,
                "evidence": json.dumps(evidence, sort_keys=True),
                "sample_request_ids": [],
                "explanation": _explanation(row, day),
            }
        )
    return pa.Table.from_pylist(rows, schema=ALERTS)
