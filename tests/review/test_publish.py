"""Publishing a day upserts its flags into the review store: re-runs keep decisions."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import Settings, load_settings
from pipeline.review.store import ItemFilter, ReviewStore
from pipeline.steps import run_day
from pipeline.warehouse import MANIFEST, Warehouse
from tests.test_steps import FLAGS_ON_D, D, build_landing


@pytest.fixture
def settings(tmp_path: Path, store_url: str) -> Settings:
    build_landing(tmp_path / "landing")
    return load_settings(
        env={},
        landing=str(tmp_path / "landing"),
        warehouse=str(tmp_path / "warehouse"),
        review_db=store_url,
    )


def test_publish_upserts_the_day_and_a_rerun_keeps_decisions(settings: Settings):
    first = run_day(D, settings)
    assert first["review"] == {"inserted": len(FLAGS_ON_D), "updated": 0, "suppressed": 0}
    store = ReviewStore.open(settings.review_db)
    flag_ids = Warehouse(settings.warehouse).read_partition("flags", D)["flag_id"].to_pylist()
    queued = [i.item_id for i in store.iter_items(ItemFilter())]
    assert sorted(queued) == sorted(flag_ids)
    store.set_status(flag_ids[:1], "confirmed", "alice")

    again = run_day(D, settings)

    assert again["review"] == {"inserted": 0, "updated": len(FLAGS_ON_D), "suppressed": 0}
    assert store.item(flag_ids[0]).status == "confirmed"
    assert store.items(ItemFilter()).total == len(FLAGS_ON_D)
    manifest = Warehouse(settings.warehouse).read_json("runs", D, MANIFEST)
    assert manifest is not None and manifest["review"] == again["review"]
    store.dispose()


def test_publish_applies_suppressions_to_the_day(settings: Settings):
    store = ReviewStore.open(settings.review_db)
    store.suppress("app3", "SCOPE_NOT_IN_PARTNERSHIP", D, "p2 scope being renewed", "alice")
    assert run_day(D, settings)["review"]["suppressed"] == 1
    assert store.items(ItemFilter()).total == len(FLAGS_ON_D) - 1
    assert store.items(ItemFilter(include_suppressed=True)).total == len(FLAGS_ON_D)
    store.dispose()
