"""Coverage and the two measures as the report, digest and review UI show them (JSON-able).

Coverage comes from each day's runs/date=D/coverage.json (what the detect step counted: a row per
partner), the measures from the flags of the days (detect/measures.py), so neither costs more
than a few rows per partner here. Shared by the report and the review UI's partner page: one
reading of the same figures.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from pipeline.config import Settings
from pipeline.detect.coverage import REASONS, read_day_coverage
from pipeline.detect.measures import partner_measures
from pipeline.warehouse import Warehouse

COUNTS = ("accesses", "judged", "not_judged", *REASONS)
MEASURES = ("post_revocation", "post_termination")


def duration_text(seconds: float | None) -> str:
    """A lag in words a reader takes in at a glance: '45 s', '12 min 05 s', '3 h 20 min',
    '2 d 4 h'."""
    if seconds is None:
        return ""
    s = max(float(seconds), 0.0)
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    if s < 86400:
        return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"
    return f"{int(s // 86400)} d {int(s % 86400 // 3600)} h"


def _share(not_judged: int, accesses: int) -> float:
    return not_judged / accesses if accesses else 0.0


def coverage_rows(
    warehouse: Warehouse, days: list[date], partner_id: str | None = None
) -> list[dict[str, Any]]:
    """A row per day and partner (only `partner_id`'s when given), oldest day first; days the
    detect step has not counted are left out."""
    rows = []
    for day in days:
        for row in read_day_coverage(warehouse, day).to_pylist():  # a row per partner
            if partner_id is None or row["partner_id"] == partner_id:
                rows.append({"day": day.isoformat(), **row})
    return rows


def coverage_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The period's coverage: per partner (most unjudged share first) and in total, from the
    rows of coverage_rows."""
    partners: dict[str, dict[str, Any]] = {}
    for row in rows:
        into = partners.setdefault(
            row["partner_id"],
            {"partner_id": row["partner_id"], "partner_name": row["partner_name"], "days": 0}
            | dict.fromkeys(COUNTS, 0),
        )
        into["days"] += 1
        for key in COUNTS:
            into[key] += row[key]
    totals = {key: sum(p[key] for p in partners.values()) for key in COUNTS}
    for entry in (*partners.values(), totals):
        entry["not_judged_share"] = _share(entry["not_judged"], entry["accesses"])
    return {
        "reasons": list(REASONS),
        "days_counted": len({row["day"] for row in rows}),
        "totals": totals,
        "by_partner": sorted(
            partners.values(), key=lambda p: (-p["not_judged_share"], p["partner_id"])
        ),
        "by_day": rows,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _measure_row(row: dict[str, Any], alert_link: Callable[[str], str]) -> dict[str, Any]:
    worst = [
        {
            "app_id": case["app_id"],
            "user_id": case["user_id"],
            "since": _iso(case["since"]),
            "last_call": _iso(case["last_call"]),
            "seconds": case["seconds"],
            "lag": duration_text(case["seconds"]),
            "calls": case["calls"],
            "alert_id": case["alert_id"],
            "link": alert_link(case["alert_id"]),
        }
        for case in row["worst"]
    ]
    return {
        "partner_id": row["partner_id"],
        "partner_name": row["partner_name"],
        "cases": row["cases"],
        "calls": row["calls"],
        "median_seconds": row["median_seconds"],
        "max_seconds": row["max_seconds"],
        "median": duration_text(row["median_seconds"]),
        "longest": duration_text(row["max_seconds"]),
        "worst": worst,
    }


def measure_figures(
    warehouse: Warehouse,
    days: list[date],
    settings: Settings,
    alert_link: Callable[[str], str],
    partner_id: str | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Post-revocation and post-termination use per partner over the flags of `days`, longest
    first, each worst case with the link to its alert (`alert_link(alert_id)`)."""
    tables = partner_measures(warehouse, days, settings, partner_id)
    return {
        name: sorted(
            (_measure_row(row, alert_link) for row in tables[name].to_pylist()),
            key=lambda r: (-(r["max_seconds"] or 0.0), r["partner_id"]),
        )
        for name in MEASURES
    }
