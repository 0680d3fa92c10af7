"""Review items, their append-only audit trail and suppressions.

Revision ID: 0001
Revises:
Create Date: 2026-03-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)
# Queue sorts on nullable columns put nulls first ascending (SQLite's order); PostgreSQL needs
# its indexes built that way to walk them in that order. Sort indexes hold only unsuppressed
# items, which is all the queue asks for: a deep page walks the index alone, in order.
UNSUPPRESSED = sa.text("suppressed_by IS NULL")
NULLABLE_SORT_COLUMNS = ("event_time", "partner_id", "score")
SORT_COLUMNS = ("day", "severity_rank", *NULLABLE_SORT_COLUMNS)
FILTER_COLUMNS = ("status", "partner_id", "rule", "assignee", "severity", "kind")


def upgrade() -> None:
    op.create_table(
        "review_suppressions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("app_id", sa.Text, nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("until", sa.Date, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
    )
    op.create_index("ix_review_suppressions_app_rule", "review_suppressions", ["app_id", "rule"])
    op.create_table(
        "review_items",
        sa.Column("item_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("event_time", UTC_TIME),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("severity_rank", sa.SmallInteger, nullable=False),
        # identifiers come from partners' logs, which bound no length: text, never VARCHAR(n)
        sa.Column("partner_id", sa.Text),
        sa.Column("app_id", sa.Text),
        sa.Column("user_id", sa.Text),
        sa.Column("request_id", sa.Text),
        sa.Column("resource", sa.Text),
        sa.Column("action", sa.String(32)),
        sa.Column("status_code", sa.Integer),
        sa.Column("explanation", sa.Text, nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.Column("score", sa.Float),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("assignee", sa.Text),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("suppressed_by", sa.Integer, sa.ForeignKey("review_suppressions.id")),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    for column in SORT_COLUMNS:
        first: sa.ColumnElement | str = column
        if postgres and column in NULLABLE_SORT_COLUMNS:
            first = sa.nulls_first(sa.column(column))
        op.create_index(
            f"ix_review_items_sort_{column}",
            "review_items",
            [first, "item_id"],
            postgresql_where=UNSUPPRESSED,
            sqlite_where=UNSUPPRESSED,
        )
    for column in FILTER_COLUMNS:
        op.create_index(f"ix_review_items_{column}_day", "review_items", [column, "day"])
    op.create_index("ix_review_items_app_rule_day", "review_items", ["app_id", "rule", "day"])
    op.create_table(
        "review_audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("item_id", sa.String(64)),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("at", UTC_TIME, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("from_value", sa.Text),
        sa.Column("to_value", sa.Text),
        sa.Column("note", sa.Text),
    )
    op.create_index("ix_review_audit_item", "review_audit", ["item_id", "id"])


def downgrade() -> None:
    op.drop_table("review_audit")
    op.drop_table("review_items")
    op.drop_table("review_suppressions")
