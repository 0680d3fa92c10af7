"""The I/O side of behaviour scoring: features partitions, training from the warehouse into the
models store, and the nightly `anomalies` partition. Reads and writes go through Warehouse."""

from __future__ import annotations

import logging
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from pipeline import duck
from pipeline.config import MODEL_NAME, Settings
from pipeline.schema import ACCESS_COLUMNS, CONSENT_COLUMNS, DAILY_FEATURES
from pipeline.warehouse import Warehouse

log = logging.getLogger(__name__)


def write_daily_features(day: date, warehouse: Warehouse, settings: Settings) -> int:
    """The day's access + flags + consent of days <= day + registry → warehouse `features`."""
    from pipeline.behaviour.features import DORMANT_DAYS, daily_features_in
    from pipeline.detect.registry import load_registry
    from pipeline.errors import MissingInput
    from pipeline.readers.landing import Landing

    for table in ("access", "flags"):
        if not warehouse.has_partition(table, day):
            raise MissingInput(f"features of {day}: no {table} partition yet (run the day first)")
    consent_days = [d for d in warehouse.partition_days("consent") if d <= day]
    # dormancy needs the access of the DORMANT_DAYS days before; known once the history has them
    access_days = warehouse.partition_days("access")
    recent_days = [d for d in access_days if day - timedelta(DORMANT_DAYS) <= d < day]
    dormancy = bool(access_days) and min(access_days) <= day - timedelta(DORMANT_DAYS)
    registry, _ = load_registry(Landing(settings.landing, settings))
    with warehouse.scratch_dir() as scratch:
        con = duck.connect(settings, spill_dir=scratch)
        try:
            con.register("registry", registry)
            for name, days, columns in (
                ("access", [day], ACCESS_COLUMNS),
                ("flags", [day], ("request_id",)),
                ("consent", consent_days, CONSENT_COLUMNS),
            ):
                # scanned where they lie: a large day is never held in memory
                warehouse.scan(con, name, days, columns).create_view(name)
            if dormancy:
                recent = warehouse.scan(con, "access", recent_days, ("app_id", "user_id"))
                recent.distinct().create_view("recent_users")
            table = daily_features_in(con, day, settings, dormancy=dormancy)
        finally:
            con.close()
    return warehouse.write_table("features", day, table)


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(n) for n in range((end - start).days + 1)]


def ensure_features(days: list[date], warehouse: Warehouse, settings: Settings) -> list[date]:
    """Compute the features of the days that have flags but no features yet; returns those."""
    have = set(warehouse.partition_days("features"))
    flagged = set(warehouse.partition_days("flags"))
    missing = [d for d in days if d not in have and d in flagged]
    for day in missing:
        write_daily_features(day, warehouse, settings)
    return missing


def relative_for_day(day: date, warehouse: Warehouse, settings: Settings) -> pd.DataFrame:
    """The day's features beside each entity's trailing `anomaly_window_days` medians."""
    from pipeline.behaviour.features import relative_features

    history_days = _days(day - timedelta(settings.anomaly_window_days), day - timedelta(1))
    history = [warehouse.read_partition("features", d) for d in history_days]
    history_table = pa.concat_tables(history) if history else DAILY_FEATURES.empty_table()
    return relative_features(warehouse.read_partition("features", day), history_table)


def train_model(
    end: date,
    window_days: int,
    warehouse: Warehouse,
    settings: Settings,
    models_dir: Path,
    name: str = MODEL_NAME,
    random_state: int = 0,
) -> dict[str, Any]:
    """Fit the behaviour model on the window's days ending at `end` and store it."""
    from pipeline.behaviour.model import BehaviourModel
    from pipeline.behaviour.store import save_model
    from pipeline.errors import MissingInput

    if window_days < 1:
        raise ValueError(f"window_days must be at least 1, not {window_days}")
    started = time.perf_counter()
    window = _days(end - timedelta(window_days - 1), end)
    # each training day's medians need its own trailing history
    ensure_features(
        _days(window[0] - timedelta(settings.anomaly_window_days), end), warehouse, settings
    )
    days = [d for d in window if warehouse.has_partition("features", d)]
    if not days:
        raise MissingInput(f"no features in the window {window[0]} .. {end}: run those days first")
    frames = [relative_for_day(d, warehouse, settings) for d in days]
    features = pd.concat(frames, ignore_index=True)
    model = BehaviourModel(
        random_state=random_state, alerts_per_day=settings.anomaly_alerts_per_day
    ).fit(features)
    extra = {
        "requested_window": {"start": window[0].isoformat(), "end": end.isoformat()},
        "days_with_features": len(days),
    }
    folder = save_model(model, models_dir, name, extra)
    summary = {
        "model": str(folder),
        "version": model.model_version_,
        "detector": "significance",
        "days": len(days),
        "rows": len(features),
        "seconds": round(time.perf_counter() - started, 3),
    }
    log.info(
        "train %s: %s on %d days, %d rows in %.1fs",
        name,
        folder,
        len(days),
        len(features),
        summary["seconds"],
    )
    return summary


def compare_detectors_on(
    train_days: list[date],
    test_days: list[date],
    truth: pd.DataFrame,
    warehouse: Warehouse,
    settings: Settings,
) -> dict[str, Any]:
    """The model and the baselines trained on `train_days` and judged on `test_days` against
    `truth` (day, partner_id, kind): behaviour.evaluation's table on the warehouse's days."""
    from pipeline.behaviour.evaluation import judge_days

    train = pd.concat([relative_for_day(d, warehouse, settings) for d in train_days])
    tests = {d: relative_for_day(d, warehouse, settings) for d in test_days}
    return judge_days(train, tests, truth)


def score_day(
    day: date, warehouse: Warehouse, settings: Settings, models_dir: Path, name: str = MODEL_NAME
) -> dict[str, Any]:
    """Score the day's entities with the newest model → warehouse `anomalies`. Without a usable
    model (none yet, or one this code refuses) the step is skipped with one log line: the day's
    flags never wait for a retraining."""
    from pipeline.behaviour.model import score
    from pipeline.behaviour.store import load_model
    from pipeline.errors import ModelMismatch, NoModel

    started = time.perf_counter()
    try:
        model, _ = load_model(models_dir, name)
    except NoModel:
        reason = f"no model in {Path(models_dir) / name}"
        log.info("score %s: skipped, %s (run `access-audit train` first)", day, reason)
        return {"day": day.isoformat(), "skipped": reason}
    except ModelMismatch as refused:
        log.warning("score %s: skipped, %s", day, refused)
        return {"day": day.isoformat(), "skipped": str(refused)}
    history = _days(day - timedelta(settings.anomaly_window_days), day - timedelta(1))
    ensure_features(history, warehouse, settings)
    # the day's own features always anew: a re-run of the day may have new flags
    write_daily_features(day, warehouse, settings)
    scored = score(model, relative_for_day(day, warehouse, settings))
    rows = warehouse.write_table("anomalies", day, scored)
    summary = {
        "day": day.isoformat(),
        "model": name,
        "version": model.model_version_,
        "scored": rows,
        "seconds": round(time.perf_counter() - started, 3),
    }
    log.info(
        "score %s: %d entities with %s %s in %.1fs",
        day,
        rows,
        name,
        model.model_version_,
        summary["seconds"],
    )
    return summary
