"""Shared fixtures: settings pointed at a temporary landing zone and warehouse."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import Settings, load_settings


@pytest.fixture
def landing_root(tmp_path: Path) -> Path:
    root = tmp_path / "landing"
    root.mkdir()
    return root


@pytest.fixture
def settings(tmp_path: Path, landing_root: Path) -> Settings:
    return load_settings(env={}, landing=str(landing_root), warehouse=str(tmp_path / "warehouse"))
