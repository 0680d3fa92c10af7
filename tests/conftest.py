"""Shared fixtures: settings pointed at a temporary landing zone, warehouse and review store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.config import Settings, load_settings


@pytest.fixture(autouse=True, scope="session")
def review_db_outside_checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Settings read from the environment (CLI, DAGs) publish to a temporary review store."""
    url = f"sqlite:///{tmp_path_factory.mktemp('review') / 'review.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ACCESS_AUDIT_REVIEW_DB", url)
        yield


@pytest.fixture
def landing_root(tmp_path: Path) -> Path:
    root = tmp_path / "landing"
    root.mkdir()
    return root


@pytest.fixture
def settings(tmp_path: Path, landing_root: Path) -> Settings:
    return load_settings(
        env={},
        landing=str(landing_root),
        warehouse=str(tmp_path / "warehouse"),
        review_db=f"sqlite:///{tmp_path / 'review.db'}",
    )
