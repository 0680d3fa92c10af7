"""SQLAlchemy table definitions of the review store (the migrations create them)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

metadata = sa.MetaData()


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes in and out; SQLite keeps them as naive UTC text."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value} given to the review store (UTC needed)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


review_suppressions = sa.Table(
    "review_suppressions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("app_id", sa.Text, nullable=False),
    sa.Column("rule", sa.String(64), nullable=False),
    sa.Column("until", sa.Date, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

# One row per alert (SPEC §5): its facts (refreshed by every publish of its day) and its review
# decision (status, assignee, version: never touched by a publish).
review_alerts = sa.Table(
    "review_alerts",
    metadata,
    sa.Column("alert_id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    # identifiers come from partners' logs, which bound no length: text, never VARCHAR(n)
    sa.Column("partner_id", sa.Text),
    sa.Column("partner_name", sa.Text),
    sa.Column("app_id", sa.Text),
    sa.Column("user_id", sa.Text),
    sa.Column("rule", sa.String(64), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("severity_rank", sa.SmallInteger, nullable=False),
    sa.Column("flags", sa.BigInteger, nullable=False),
    sa.Column("users", sa.BigInteger, nullable=False),
    sa.Column("first_event_time", UTCDateTime),
    sa.Column("last_event_time", UTCDateTime),
    sa.Column("reads", sa.BigInteger, nullable=False),
    sa.Column("writes", sa.BigInteger, nullable=False),
    sa.Column("deletes", sa.BigInteger, nullable=False),
    sa.Column("flags_by_hour", sa.JSON),
    sa.Column("evidence", sa.JSON, nullable=False),
    sa.Column("sample_request_ids", sa.JSON, nullable=False),
    sa.Column("score", sa.Float),
    sa.Column("model_version", sa.Text),
    sa.Column("explanation", sa.Text, nullable=False),
    # pipeline.detect.series of (app_id, rule, day) over the store's rule alerts; null otherwise
    sa.Column("series_id", sa.String(64)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("assignee", sa.Text),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("suppressed_by", sa.Integer, sa.ForeignKey("review_suppressions.id")),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# Append-only: the store inserts rows here and never updates or deletes them (the one exception:
# migration 0002 named each per-flag item's entries after the alert that took the item in).
review_audit = sa.Table(
    "review_audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("item_id", sa.String(64)),  # the per-flag item of an entry made before alerts
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("from_value", sa.Text),
    sa.Column("to_value", sa.Text),
    sa.Column("note", sa.Text),
    sa.Column("alert_id", sa.String(64)),  # null: a store-wide entry (a day's ingest)
    sa.Column("via", sa.Text),  # how the change was asked for: a series, a selection; null: alone
)
