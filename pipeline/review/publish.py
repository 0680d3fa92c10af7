"""Publish step's review part: a day's flags and anomaly alerts into the review store."""

from __future__ import annotations

from datetime import date

from pipeline.config import Settings


def publish_day(day: date, settings: Settings) -> dict[str, int]:
    """Upsert the day's flags and alerts (no anomalies partition yet: flags alone)."""
    from pipeline.review.store import ReviewStore
    from pipeline.warehouse import Warehouse

    warehouse = Warehouse(settings.warehouse, settings)
    flags = warehouse.read_partition("flags", day)
    anomalies = warehouse.read_partition("anomalies", day)
    store = ReviewStore.open(settings.review_db)
    try:
        return store.upsert_day(day, flags, anomalies)
    finally:
        store.dispose()
