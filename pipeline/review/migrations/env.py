"""Alembic environment of the review store: run by ReviewStore.open on its own connection."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from pipeline.review.tables import metadata

# Any fixed number: concurrent openers of one PostgreSQL database migrate one at a time.
MIGRATION_LOCK_KEY = 7_305_911

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    if connection.dialect.name == "postgresql":
        connection.execute(
            sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
        )
    context.run_migrations()
