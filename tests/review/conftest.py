"""Review store fixtures: a fresh store per test on SQLite and on PostgreSQL, and tiny tables."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.review.store import ReviewStore
from tests.postgres import scratch_schema


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose connections live in a new schema of the test database (dropped after)."""
    with scratch_schema("review_test") as url:
        yield url


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
