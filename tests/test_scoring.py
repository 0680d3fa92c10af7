"""Features, training and scoring against a warehouse built from the sample logs."""

from __future__ import annotations

import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest

from pipeline.behaviour.scoring import score_day, train_model, write_daily_features
from pipeline.config import PROJECT_ROOT, Settings, load_settings
from pipeline.steps import run_day
from pipeline.warehouse import Warehouse

FIRST, DAYS = date(2026, 3, 1), 6


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Settings, Warehouse]:
    root = tmp_path_factory.mktemp("scoring")
    shutil.copytree(PROJECT_ROOT / "sample_logs", root / "landing")
    settings = load_settings(
        env={},
        landing=str(root / "landing"),
        warehouse=str(root / "warehouse"),
        models_dir=str(root / "models"),  # not the checkout's: `make demo` may have trained one
        review_db=f"sqlite:///{root / 'review.db'}",
    )
    for n in range(DAYS):
        run_day(FIRST + timedelta(n), settings)
    return settings, Warehouse(settings.warehouse)


def test_write_daily_features_writes_the_day_s_partition(built):
    settings, warehouse = built
    rows = write_daily_features(FIRST, warehouse, settings)
    table = warehouse.read_partition("features", FIRST)
    assert table.num_rows == rows > 100
    assert set(table["entity_kind"].to_pylist()) == {"partner_day", "app_user_day"}


def test_score_day_without_a_model_is_skipped(built, tmp_path: Path, caplog):
    settings, warehouse = built
    day = FIRST + timedelta(5)
    with caplog.at_level("INFO"):
        summary = score_day(day, warehouse, settings, tmp_path / "models")
    reason = f"no model in {tmp_path / 'models' / 'partner_behaviour'}"
    assert summary == {"day": day.isoformat(), "skipped": reason}
    assert "skipped" in caplog.text
    assert not warehouse.has_partition("anomalies", day)


def test_score_day_with_a_refused_model_is_skipped(built, tmp_path: Path, caplog):
    settings, warehouse = built
    models = tmp_path / "models"
    folder = Path(train_model(FIRST + timedelta(4), 5, warehouse, settings, models)["model"])
    metadata = json.loads((folder / "metadata.json").read_text())
    (folder / "metadata.json").write_text(json.dumps({**metadata, "sklearn_version": "0.0.1"}))
    day = FIRST + timedelta(3)  # a day no other test scores
    with caplog.at_level("WARNING"):
        summary = score_day(day, warehouse, settings, models)
    assert "trained with scikit-learn 0.0.1" in summary["skipped"]
    assert "skipped" in caplog.text
    assert not warehouse.has_partition("anomalies", day)


def test_train_then_score_day_writes_ranked_anomalies(built, tmp_path: Path):
    settings, warehouse = built
    models = tmp_path / "models"
    trained = train_model(FIRST + timedelta(4), 5, warehouse, settings, models)
    assert (trained["days"], trained["detector"]) == (5, "significance")
    day = FIRST + timedelta(5)
    summary = score_day(day, warehouse, settings, models)
    assert summary["version"] == trained["version"]
    anomalies = warehouse.read_partition("anomalies", day).to_pandas()
    assert len(anomalies) == summary["scored"] == warehouse.read_partition("features", day).num_rows
    for _, group in anomalies.groupby("entity_kind"):
        assert sorted(group["rank"]) == list(range(1, len(group) + 1))
        assert group.sort_values("rank")["score"].is_monotonic_decreasing
    assert (anomalies["explanation"].str.len() > 0).all()
    again = score_day(day, warehouse, settings, models)
    assert again["scored"] == summary["scored"]
    assert warehouse.read_partition("anomalies", day).to_pandas().equals(anomalies)
