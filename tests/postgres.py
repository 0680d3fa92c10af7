"""A throwaway schema in the PostgreSQL test database, for review-store tests and benchmarks that
must not see each other's tables."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

POSTGRES_URL = os.environ.get(
    "ACCESS_AUDIT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")  # gw0, gw1, … under pytest -n


@contextmanager
def scratch_schema(prefix: str) -> Iterator[str]:
    """A URL whose connections live in a new schema (dropped afterwards, with its tables). The
    name is unique per call, so parallel test workers share the database safely; it names the
    worker, so a schema a killed run left behind says whose it was."""
    import sqlalchemy as sa

    schema = f"{prefix}_{WORKER}_{uuid.uuid4().hex}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    quoted = admin.dialect.identifier_preparer.quote(schema)
    with admin.connect() as connection:
        connection.execute(sa.text(f"CREATE SCHEMA {quoted}"))
    url = sa.make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f"DROP SCHEMA {quoted} CASCADE"))
        admin.dispose()
