"""Coverage (SPEC §2): how many of a partner's accesses of a day the audit could judge, and how
many it could not, by reason. `coverage_sql` is pure: the day's access, the consent of days <= D
and the registry go in as DuckDB relations, one row per partner comes out; `day_coverage` hands it
the warehouse's partitions, and the detect step records the result in runs/date=D/.

The accesses counted are those the rules look at (message content whose call succeeded) plus the
folder syncs that stand for message reads. Each unjudged access is counted under its first reason:
- `unknown_app`: the app is not in the registry (a client id that maps to no partner app): only
  UNKNOWN_APP can be said of it, not whether consent or partnership covered it;
- `folder_sync`: a mailbox sync names a folder, not the messages read (M365 Sync);
- `throttled`: the record says the platform throttled its auditing (M365 IsThrottled), so the
  messages it lists may be fewer than were read;
- `aggregated_window`: the record aggregates reads of up to two minutes (M365 Bind) and a consent
  event or a partnership start or end of the app falls inside that window, so the verdict at the
  window's start may not hold for every read in it;
- `user_not_in_consent_sources`: no consent source mentions the user at all (nor is there an
  admin consent for the app, which stands for every user), so a missing grant may be a gap of
  the sources rather than a missing sign-in.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import duckdb
import pyarrow as pa

from pipeline import duck
from pipeline.config import Settings
from pipeline.detect.rules import ALL_USERS
from pipeline.readers.formats.m365_mail_items_accessed import FOLDER_RESOURCE
from pipeline.schema import UNKNOWN_PARTNER
from pipeline.warehouse import Warehouse

REASONS = (
    "unknown_app",
    "folder_sync",
    "throttled",
    "aggregated_window",
    "user_not_in_consent_sources",
)
AGGREGATION_SECONDS = 120  # MailItemsAccessed aggregates Bind reads of up to two minutes
COVERAGE = pa.schema(
    [
        pa.field("partner_id", pa.string(), nullable=False),  # UNKNOWN_PARTNER for unknown apps
        pa.field("partner_name", pa.string()),
        pa.field("accesses", pa.int64(), nullable=False),
        pa.field("judged", pa.int64(), nullable=False),
        pa.field("not_judged", pa.int64(), nullable=False),
        *[pa.field(reason, pa.int64(), nullable=False) for reason in REASONS],
        pa.field("not_judged_share", pa.float64(), nullable=False),
    ]
)


def _sql_list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]::VARCHAR[]"


def coverage_sql(settings: Settings, access: str, consent: str, registry: str) -> str:
    """One row per partner: accesses, judged, not judged and the count of each reason."""
    window = f"INTERVAL {AGGREGATION_SECONDS} SECOND"
    reason = f"""CASE
        WHEN a.partner_id IS NULL THEN 'unknown_app'
        WHEN a.resource = '{FOLDER_RESOURCE}' THEN 'folder_sync'
        WHEN a.method LIKE '% throttled' THEN 'throttled'
        WHEN a.method LIKE 'Bind%' AND (
            EXISTS (SELECT 1 FROM {consent} c WHERE c.user_id IN (a.user_id, '{ALL_USERS}')
                    AND c.app_id = a.app_id
                    AND c.event_time > a.event_time AND c.event_time <= a.event_time + {window})
            OR EXISTS (SELECT 1 FROM {registry} r WHERE r.app_id = a.app_id AND (
                (r.period_start > a.event_time AND r.period_start <= a.event_time + {window})
                OR (r.period_end > a.event_time AND r.period_end <= a.event_time + {window}))))
            THEN 'aggregated_window'
        WHEN a.user_id NOT IN (SELECT user_id FROM {consent}) AND a.app_id NOT IN (
            SELECT app_id FROM {consent} WHERE user_id = '{ALL_USERS}')
            THEN 'user_not_in_consent_sources'
    END"""
    counts = ", ".join(f"count(*) FILTER (WHERE reason = '{r}')::BIGINT AS {r}" for r in REASONS)
    return f"""
WITH partners AS (SELECT DISTINCT app_id, partner_id, partner_name FROM {registry}),
counted AS (
    SELECT a.*, p.partner_id, p.partner_name FROM {access} a LEFT JOIN partners p USING (app_id)
    WHERE a.status < 400 AND (list_contains({_sql_list(settings.message_resources)}, a.resource)
                              OR a.resource = '{FOLDER_RESOURCE}')
),
reasoned AS (SELECT a.*, {reason} AS reason FROM counted a)
SELECT coalesce(partner_id, '{UNKNOWN_PARTNER}') AS partner_id,
       any_value(partner_name) AS partner_name,
       count(*)::BIGINT AS accesses,
       count(*) FILTER (WHERE reason IS NULL)::BIGINT AS judged,
       count(reason)::BIGINT AS not_judged,
       {counts},
       count(reason) / count(*) AS not_judged_share
FROM reasoned GROUP BY ALL ORDER BY partner_id
"""


def coverage_table(
    con: duckdb.DuckDBPyConnection, settings: Settings, access: str, consent: str, registry: str
) -> pa.Table:
    """The coverage of the relations named (see coverage_sql), as a COVERAGE table."""
    return (
        con.sql(coverage_sql(settings, access, consent, registry)).to_arrow_table().cast(COVERAGE)
    )


COVERAGE_FILE = "coverage.json"  # runs/date=D/: the day's coverage, one entry per partner


def day_coverage(
    day: date,
    warehouse: Warehouse,
    registry: pa.Table,
    consent_days: list[date],
    settings: Settings,
) -> pa.Table:
    """The coverage of the day's access partition (consent of `consent_days`, the registry)."""
    con = duck.connect(settings)
    try:
        # an absent partition is an empty relation of its schema (e.g. no consent delivered yet)
        warehouse.scan(con, "access", [day]).create_view("cov_access")
        warehouse.scan(con, "consent", consent_days).create_view("cov_consent")
        con.register("cov_registry", registry)
        return coverage_table(con, settings, "cov_access", "cov_consent", "cov_registry")
    finally:
        con.close()


def write_day_coverage(warehouse: Warehouse, day: date, coverage: pa.Table) -> dict[str, Any]:
    """Record the day's coverage in its run folder (the manifest takes it from there)."""
    document = {"day": day.isoformat(), "reasons": list(REASONS), "partners": coverage.to_pylist()}
    warehouse.write_json("runs", day, COVERAGE_FILE, document)
    return document


def read_day_coverage(warehouse: Warehouse, day: date) -> pa.Table:
    """The day's coverage as the detect step recorded it (what the report and UI show); empty
    when the day has not been detected."""
    document = warehouse.read_json("runs", day, COVERAGE_FILE)
    if document is None:
        return COVERAGE.empty_table()
    return pa.Table.from_pylist(document["partners"], schema=COVERAGE)
