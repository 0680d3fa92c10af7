"""Review store fixtures: a fresh store per test on SQLite and on PostgreSQL, and tiny tables."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipeline.review.store import ReviewStore

POSTGRES_URL = os.environ.get(
    "ACCESS_AUDIT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose connections live in a new schema of the test database (dropped after)."""
    schema = f"review_test_{uuid.uuid4().hex}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    quoted = admin.dialect.identifier_preparer.quote(schema)
    with admin.connect() as connection:
        connection.execute(sa.text(f"CREATE SCHEMA {quoted}"))
    url = sa.make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    yield url.render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(sa.text(f"DROP SCHEMA {quoted} CASCADE"))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'review.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(store_url: str) -> Iterator[ReviewStore]:
    opened = ReviewStore.open(store_url)
    yield opened
    opened.dispose()
