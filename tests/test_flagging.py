"""Detection split into user shards (units of `detect_shards`, and sub-shards of
`detect_shard_rows` within a unit) gives exactly the flags of one pass."""

from __future__ import annotations

import dataclasses
import shutil
from datetime import date
from pathlib import Path

import pyarrow.compute as pc
import pytest

from pipeline.config import PROJECT_ROOT, load_settings
from pipeline.steps import catch_up_consent, detect, ingest_access, ingest_consent
from pipeline.warehouse import Warehouse

DAY = date(2026, 3, 9)  # Streamflix's partnership ended the day before: every rule fires


@pytest.mark.parametrize("units", [1, 3])
def test_flagging_shards_give_the_same_flags_as_one_pass(tmp_path: Path, units: int):
    landing = tmp_path / "landing"
    shutil.copytree(PROJECT_ROOT / "sample_logs", landing)
    whole = load_settings(env={}, landing=str(landing), warehouse=str(tmp_path / "one"))
    sharded = dataclasses.replace(
        whole, warehouse=str(tmp_path / "many"), detect_shard_rows=200, detect_shards=units
    )
    for settings in (whole, sharded):
        ingest_access(DAY, settings)
        ingest_consent(DAY, settings)
        catch_up_consent(DAY, settings)
        detect(DAY, settings)
    rows = Warehouse(whole.warehouse).read_partition("access", DAY).num_rows
    assert rows / units > 5 * sharded.detect_shard_rows  # several sub-shards in each unit
    one = Warehouse(whole.warehouse).read_partition("flags", DAY)
    many = Warehouse(sharded.warehouse).read_partition("flags", DAY)
    assert one.num_rows > 100
    assert len(set(pc.unique(one["rule"]).to_pylist())) >= 6
    assert many.equals(one)
    in_order = one.sort_by(
        [("event_time", "ascending"), ("request_id", "ascending"), ("rule", "ascending")]
    )
    assert one.equals(in_order)  # rules.FLAG_ORDER
