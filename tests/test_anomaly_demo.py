"""The behaviour model on the demo data: trained on the first nine days, it ranks every injected
anomaly of the last five (sample_logs/anomalies.csv) in its day's top ten partner-days."""

from __future__ import annotations

import dataclasses
import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest

from pipeline.config import PROJECT_ROOT, load_settings
from pipeline.steps import evaluate, run_day, train
from pipeline.warehouse import Warehouse

pytestmark = pytest.mark.slow
FIRST, LAST_TRAINING, LAST = date(2026, 3, 1), date(2026, 3, 9), date(2026, 3, 14)


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(n) for n in range((end - start).days + 1)]


def test_anomaly_demo_ranks_every_injected_anomaly_in_its_days_top_ten(tmp_path: Path):
    landing = tmp_path / "landing"
    shutil.copytree(PROJECT_ROOT / "sample_logs", landing)
    settings = dataclasses.replace(
        load_settings(env={}, landing=str(landing), warehouse=str(tmp_path / "warehouse")),
        models_dir=str(tmp_path / "models"),
        review_db=f"sqlite:///{tmp_path / 'review.db'}",
    )
    for day in _days(FIRST, LAST_TRAINING):
        assert run_day(day, settings)["anomalies"]["skipped"].startswith("no model")
    trained = train(LAST_TRAINING, 9, settings)
    metadata = json.loads((Path(trained["model"]) / "metadata.json").read_text())
    assert metadata["window"] == {"start": "2026-03-01", "end": "2026-03-09"}
    for day in _days(LAST_TRAINING + timedelta(1), LAST):
        assert run_day(day, settings)["anomalies"]["version"] == trained["version"]

    result = evaluate(_days(date(2026, 3, 10), LAST), str(landing / "anomalies.csv"), settings)
    assert result["injected"] >= 5
    assert result["recall_at_10"] == 1.0
    scored = Warehouse(settings.warehouse).read_partition("anomalies", date(2026, 3, 12))
    top = scored.filter(scored["rank"].to_numpy() == 1).to_pylist()
    assert {row["entity_kind"] for row in top} == {"partner_day", "app_user_day"}
    assert all(row["explanation"] for row in top)
