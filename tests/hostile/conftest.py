"""The hostile corpus run once through the pipeline for every test of this folder: its steps'
results, and its alerts published to a review store on SQLite and one on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from pipeline import steps
from pipeline.config import Settings, load_settings
from pipeline.review.publish import publish_day
from tests.hostile import corpus
from tests.postgres import scratch_schema

# The pipeline in order, on one warehouse; each is (name, function of (day, settings)).
STEPS: list[tuple[str, Callable[[date, Settings], Any]]] = [
    ("ingest_access", steps.ingest_access),
    ("ingest_consent", steps.ingest_consent),
    ("detect", steps.detect),
    ("alerts", steps.alerts),  # the report reads alerts, never the flags (SPEC §5)
    ("publish", steps.publish),  # reconciles the counts, then the SQLite store
    ("report", steps.report),
]


@dataclass
class Run:
    root: Path
    settings: Settings
    postgres_url: str
    results: dict[str, Any]

    def store_urls(self) -> dict[str, str]:
        return {"sqlite": self.settings.review_db, "postgresql": self.postgres_url}


@pytest.fixture(scope="session")
def hostile_postgres_url() -> Iterator[str]:
    with scratch_schema("hostile") as url:
        yield url


@pytest.fixture(scope="session")
def run(tmp_path_factory: pytest.TempPathFactory, hostile_postgres_url: str) -> Run:
    root = tmp_path_factory.mktemp("hostile")
    corpus.build(root / "landing")
    settings = load_settings(
        env={},
        landing=str(root / "landing"),
        warehouse=str(root / "warehouse"),
        review_db=f"sqlite:///{root / 'review.db'}",
        read_block_bytes=1 << 20,  # several blocks per file, and lines longer than one
    )
    results = {name: step(corpus.DAY, settings) for name, step in STEPS}
    results["publish_postgresql"] = publish_day(
        corpus.DAY, replace(settings, review_db=hostile_postgres_url)
    )
    return Run(root, settings, hostile_postgres_url, results)
