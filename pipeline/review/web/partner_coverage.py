"""The partner page's coverage and measures section (templates/_coverage.html): the partner's
accesses judged and not judged per day and reason, and how long its calls outlived a revoke or
its partnership, the worst cases linked to their alerts. Read from the warehouse as the report
reads them (pipeline.report.coverage), for the days of the page's window."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any

from pipeline.config import Settings
from pipeline.links import alert_path
from pipeline.report.coverage import coverage_rows, coverage_summary, measure_figures
from pipeline.warehouse import Warehouse

log = logging.getLogger(__name__)
DEFAULT_DAYS = 30  # without a window, the newest days with flags
UNREADABLE = (OSError, ValueError, RuntimeError, KeyError)


def window_days(
    warehouse: Warehouse, start: date | None, end: date | None, default: int = DEFAULT_DAYS
) -> list[date]:
    """The detected days (those with a flags partition) in [start, end]; the newest `default`
    of them when the window is open at the start."""
    days = [
        d
        for d in warehouse.partition_days("flags")
        if (start is None or d >= start) and (end is None or d <= end)
    ]
    if start is None and days:
        days = [d for d in days if d > days[-1] - timedelta(default)]
    return days


def coverage_context(
    warehouse: Warehouse,
    settings: Settings,
    partner_id: str,
    start: date | None,
    end: date | None,
    base: str,
) -> dict[str, Any]:
    """`coverage` (per day and in total), `measures` (both, this partner's row only) and
    `coverage_note` (why they are missing: never an error page; the reason goes to the log)."""
    try:
        days = window_days(warehouse, start, end)
        coverage = coverage_summary(coverage_rows(warehouse, days, partner_id))
        measures = measure_figures(
            warehouse, days, settings, lambda a: f"{base}{alert_path(a)}", partner_id
        )
    except UNREADABLE:
        log.warning("coverage of partner %s unavailable", partner_id, exc_info=True)
        return {
            "coverage": None,
            "measures": None,
            "coverage_note": "Coverage unavailable: the warehouse could not be read "
            "(see the server log).",
        }
    return {"coverage": coverage, "measures": measures, "coverage_note": None}
