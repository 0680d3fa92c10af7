"""Detection split into user shards gives exactly the flags of one pass."""

from __future__ import annotations

import dataclasses
import shutil
from datetime import date
from pathlib import Path

import pyarrow.compute as pc

from pipeline.config import PROJECT_ROOT, load_settings
from pipeline.detect.shards import shard_count
from pipeline.steps import detect, ingest_access, ingest_consent
from pipeline.warehouse import Warehouse

DAY = date(2026, 3, 9)  # Streamflix's partnership ended the day before: every rule fires


def test_flagging_shards_give_the_same_flags_as_one_pass(tmp_path: Path):
    landing = tmp_path / "landing"
    shutil.copytree(PROJECT_ROOT / "sample_logs", landing)
    whole = load_settings(env={}, landing=str(landing), warehouse=str(tmp_path / "one"))
    sharded = dataclasses.replace(whole, warehouse=str(tmp_path / "many"), detect_shard_rows=500)
    for settings in (whole, sharded):
        ingest_access(DAY, settings)
        ingest_consent(DAY, settings)
        detect(DAY, settings)
    rows = Warehouse(whole.warehouse).read_partition("access", DAY).num_rows
    assert shard_count(rows, sharded) > 5
    assert shard_count(rows, whole) == 1
    one = Warehouse(whole.warehouse).read_partition("flags", DAY)
    many = Warehouse(sharded.warehouse).read_partition("flags", DAY)
    assert one.num_rows > 100
    assert len(set(pc.unique(one["rule"]).to_pylist())) >= 6
    assert many.equals(one)
    in_order = one.sort_by(
        [("event_time", "ascending"), ("request_id", "ascending"), ("rule", "ascending")]
    )
    assert one.equals(in_order)  # rules.FLAG_ORDER
