"""The review UI on each database it runs on: a store seeded with the sample days' alerts on
SQLite and on PostgreSQL, and browser-like clients of apps on it (several apps on one store stand
for several workers)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from pipeline.config import Settings
from pipeline.review.sessions import engine_of
from pipeline.review.store import Alert, AlertFilter, ReviewStore
from pipeline.review.web.app import create_app
from pipeline.warehouse import Warehouse
from tests.review.web.conftest import SAMPLE_DAYS, SampleRun, settings_for


@dataclass
class Backend:
    """One seeded store and the settings of apps on it."""

    url: str
    settings: Settings
    store: ReviewStore

    def app(self, **changes: Any) -> FastAPI:
        """A new app (a new worker) on the same store; `changes` alter its settings."""
        return create_app(replace(self.settings, **changes), self.store)

    def client(self, app: FastAPI | None = None) -> TestClient:
        """A browser-like client: it sends its own origin with every request."""
        client = TestClient(app or self.app(), raise_server_exceptions=False)
        client.headers["origin"] = str(client.base_url).rstrip("/")
        return client

    def sql(self, statement: str, **values: Any) -> list[Any]:
        """Run SQL on the store's database directly (as someone with database access would)."""
        with engine_of(self.store).begin() as connection:
            result = connection.execute(sa.text(statement), values)
            return list(result) if result.returns_rows else []


@pytest.fixture(name="backend", params=["sqlite", "postgresql"])
def backend_fixture(
    request: pytest.FixtureRequest, sample_run: SampleRun, tmp_path: Path
) -> Iterator[Backend]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'review.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    store = ReviewStore.open(url)
    warehouse = Warehouse(str(sample_run.warehouse))
    for day in SAMPLE_DAYS:
        store.upsert_day(day, warehouse.read_partition("alerts", day))
    yield Backend(url, settings_for(sample_run, url), store)
    store.dispose()


def first_new_alert(backend: Backend) -> Alert:
    """A rule alert nobody has decided yet."""
    return backend.store.alerts(AlertFilter(kind="rule", status="new"), per_page=1).alerts[0]
