"""Shared fixtures: settings pointed at a temporary landing zone, warehouse and review store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from pipeline.config import PROJECT_ROOT, Settings, load_settings

CHECKOUT_STATE = ("review.db", "review.db-wal", "models")

# No per-example wall-clock deadline (Hypothesis' default is 200 ms): on a machine busy with
# parallel test workers an example that takes 90 ms alone took 330 ms and failed the run
# (test_series). Property tests already said deadline=None one by one; a test that hangs is
# still stopped by pytest-timeout (pyproject.toml).
hypothesis_settings.register_profile("access-audit", deadline=None)
hypothesis_settings.load_profile("access-audit")


def _checkout_state() -> dict[str, int | None]:
    """When each piece of a user's own state in the checkout last changed (None: absent)."""
    paths = {name: PROJECT_ROOT / name for name in CHECKOUT_STATE}
    return {
        name: max((p.stat().st_mtime_ns for p in [path, *path.rglob("*")]), default=None)
        if path.exists()
        else None
        for name, path in paths.items()
    }


@pytest.fixture(autouse=True, scope="session")
def review_db_outside_checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Settings read from the environment (CLI, DAGs) publish to a temporary review store and
    models folder; and no test may write the checkout's own review store or models."""
    before = _checkout_state()
    url = f"sqlite:///{tmp_path_factory.mktemp('review') / 'review.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ACCESS_AUDIT_REVIEW_DB", url)
        patch.setenv("ACCESS_AUDIT_MODELS_DIR", str(tmp_path_factory.mktemp("models")))
        yield
    assert _checkout_state() == before, "a test wrote the checkout's review.db or models/"


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
