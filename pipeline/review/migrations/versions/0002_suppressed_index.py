"""Index suppressed_by: the queue's default filter (not suppressed) and counts read it alone.

Revision ID: 0002
Revises: 0001
Create Date: 2026-03-20
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_review_items_suppressed_by", "review_items", ["suppressed_by", "day"])


def downgrade() -> None:
    op.drop_index("ix_review_items_suppressed_by", "review_items")
