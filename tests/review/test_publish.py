"""Publishing a day upserts its alerts (alerts/date=D/, never flags) into the review store: re-runs
keep decisions, suppressions apply."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import Settings, load_settings
from pipeline.detect.alert_ids import rule_alert_id
from pipeline.review.publish import publish_day
from pipeline.review.store import AlertFilter, ReviewStore
from pipeline.warehouse import Warehouse
from tests.review.literals import D1, alert, alerts, behaviour_alert, flag, flags


@pytest.fixture
def settings(tmp_path: Path, store_url: str) -> Settings:
    return load_settings(env={}, warehouse=str(tmp_path / "warehouse"), review_db=store_url)


def test_publish_upserts_the_days_alerts_and_a_rerun_keeps_decisions(settings: Settings):
    warehouse = Warehouse(settings.warehouse)
    warehouse.write_table(
        "alerts", D1, alerts(alert(), alert(rule="SIGNIN_REVOKED"), behaviour_alert())
    )
    assert publish_day(D1, settings) == {"inserted": 3, "updated": 0, "suppressed": 0}
    store = ReviewStore.open(settings.review_db)
    first = rule_alert_id(D1, "app-chat", "NO_SIGNIN")
    store.set_status([first], "confirmed", "alice")
    warehouse.write_table(
        "alerts", D1, alerts(alert(flags=7), alert(rule="SIGNIN_REVOKED"), behaviour_alert())
    )

    assert publish_day(D1, settings) == {"inserted": 0, "updated": 3, "suppressed": 0}
    assert (store.alert(first).status, store.alert(first).flags) == ("confirmed", 7)
    assert store.alerts(AlertFilter()).total == 3
    store.dispose()


def test_publish_reads_alerts_never_flags(settings: Settings):
    """A day's flags alone publish nothing: the review store takes alerts only."""
    Warehouse(settings.warehouse).write_table("flags", D1, flags(flag("f1"), flag("f2")))
    assert publish_day(D1, settings) == {"inserted": 0, "updated": 0, "suppressed": 0}


def test_publish_applies_suppressions_to_the_day(settings: Settings):
    store = ReviewStore.open(settings.review_db)
    store.suppress("app-chat", "SIGNIN_REVOKED", D1, "p-chat scope being renewed", "alice")
    Warehouse(settings.warehouse).write_table(
        "alerts", D1, alerts(alert(), alert(rule="SIGNIN_REVOKED"))
    )
    assert publish_day(D1, settings)["suppressed"] == 1
    assert store.alerts(AlertFilter()).total == 1
    assert store.alerts(AlertFilter(include_suppressed=True)).total == 2
    store.dispose()
