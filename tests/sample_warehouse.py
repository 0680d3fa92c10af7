"""A warehouse built by the real steps from the first sample_logs days, for report and alert
tests: optionally with a behaviour model trained on all but the last day, so it has anomalies."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

from pipeline import steps
from pipeline.config import PROJECT_ROOT, Settings, load_settings

FIRST = date(2026, 3, 1)


def build_sample_warehouse(
    root: Path, days: int, with_model: bool, **overrides: object
) -> Settings:
    """Run FIRST .. FIRST + days - 1 into root/warehouse; the last day scored if with_model."""
    shutil.copytree(PROJECT_ROOT / "sample_logs", root / "landing")
    settings = load_settings(
        env={},
        landing=str(root / "landing"),
        warehouse=str(root / "warehouse"),
        # not the checkout's: `make demo` may have trained a model and filled a review store
        models_dir=str(root / "models"),
        review_db=f"sqlite:///{root / 'review.db'}",
        **overrides,
    )
    last = FIRST + timedelta(days - 1)
    for n in range(days - 1):
        steps.run_day(FIRST + timedelta(n), settings)
    if with_model:
        steps.train(last - timedelta(1), days - 1, settings)
    steps.run_day(last, settings)
    return settings
