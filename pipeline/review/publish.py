"""Publish step's review part: a day's alerts (`<warehouse>/alerts/date=D/`) into the review store.

Only alerts are read, never flags: a day of millions of flags is a few hundred alerts here.
"""

from __future__ import annotations

from datetime import date

from pipeline.config import Settings


def publish_day(day: date, settings: Settings) -> dict[str, int]:
    """Upsert the day's alerts (facts refreshed, decisions kept); returns inserted, updated and
    suppressed counts. A day without an alerts partition publishes no alert."""
    from pipeline.review.store import ReviewStore
    from pipeline.warehouse import Warehouse

    alerts = Warehouse(settings.warehouse, settings).read_partition("alerts", day)
    store = ReviewStore.open(settings.review_db)
    try:
        return store.upsert_day(day, alerts)
    finally:
        store.dispose()
