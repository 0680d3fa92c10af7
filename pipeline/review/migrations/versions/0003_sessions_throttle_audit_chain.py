"""Server-side UI sessions, failed-login throttling, and the audit trail as a hash chain
(with where each entry came from).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "review_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("user_name", sa.Text),
        sa.Column("password_tag", sa.String(32)),
        sa.Column("address", sa.Text),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("seen_at", UTC_TIME, nullable=False),
        sa.Column("ended_at", UTC_TIME),
        sa.Column("end_reason", sa.String(32)),
        sa.Column("data", sa.JSON, nullable=False),
    )
    op.create_index("ix_review_sessions_user", "review_sessions", ["user_name"])
    op.create_table(
        "review_login_throttle",
        sa.Column("key", sa.String(80), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_failure_at", UTC_TIME, nullable=False),
        sa.Column("blocked_until", UTC_TIME),
    )
    op.add_column("review_audit", sa.Column("origin", sa.Text))
    op.add_column("review_audit", sa.Column("chain_seq", sa.Integer))
    op.add_column("review_audit", sa.Column("chain_hash", sa.String(64)))
    op.create_index("ix_review_audit_chain", "review_audit", ["chain_seq"], unique=True)
    # rows still to chain: found at every commit without reading the whole trail
    op.create_index(
        "ix_review_audit_unchained",
        "review_audit",
        ["id"],
        postgresql_where=sa.text("chain_seq IS NULL"),
        sqlite_where=sa.text("chain_seq IS NULL"),
    )
    from pipeline.review.audit_chain import seal

    seal(op.get_bind())  # the trail so far, in id order


def downgrade() -> None:
    op.drop_index("ix_review_audit_unchained", "review_audit")
    op.drop_index("ix_review_audit_chain", "review_audit")
    with op.batch_alter_table("review_audit") as batch:
        batch.drop_column("chain_hash")
        batch.drop_column("chain_seq")
        batch.drop_column("origin")
    op.drop_table("review_login_throttle")
    op.drop_table("review_sessions")
