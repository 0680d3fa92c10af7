"""Runs the rules over a day in the warehouse, in shards of users so memory stays bounded.

The rules only ever compare an access with its own (user, app) history, so splitting the day by
a hash of the user changes nothing but the work's size; the shards' flags are put back in one
order at the end. (The same split is what would spread a day over several workers.)
"""

from __future__ import annotations

import math
import os
from collections import Counter
from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import duck
from pipeline.config import Settings
from pipeline.rules import FLAG_ORDER, flags_sql
from pipeline.tables import value_counts
from pipeline.warehouse import Warehouse


def shard_count(access_rows: int, settings: Settings) -> int:
    return max(1, math.ceil(access_rows / settings.detect_shard_rows))


def write_flags(
    day: date,
    warehouse: Warehouse,
    registry: pa.Table,
    consent_days: list[date],
    settings: Settings,
) -> Counter[str]:
    """Flags of the day's access partition → the day's flags partition; returns counts by rule."""
    access_files = warehouse.files_for_days("access", [day])
    consent_files = warehouse.files_for_days("consent", consent_days)
    rows = sum(pq.ParquetFile(warehouse.fs.open(f, "rb")).metadata.num_rows for f in access_files)
    shards = shard_count(rows, settings)
    by_rule: Counter[str] = Counter()
    with warehouse.scratch_dir() as scratch:
        staged = os.path.join(scratch, "flags.parquet")
        con = duck.connect(settings, spill_dir=scratch)
        try:
            con.register("registry", registry)
            with warehouse.local_part_writer("flags", staged) as writer:
                for shard in range(shards):
                    in_shard = f"hash(user_id) % {shards} = {shard}"
                    con.read_parquet(access_files).filter(in_shard).create_view("access")
                    con.read_parquet(consent_files).filter(in_shard).create_view("consent")
                    for batch in con.sql(flags_sql(day, settings)).to_arrow_reader(1 << 17):
                        writer.write(batch)
                        by_rule.update(value_counts(batch.column("rule")))
            if shards == 1:  # already in order
                warehouse.commit_file("flags", day, staged)
            else:
                ordered = con.sql(f"SELECT * FROM read_parquet('{staged}') ORDER BY {FLAG_ORDER}")
                with warehouse.write_partition("flags", day) as final:
                    for batch in ordered.to_arrow_reader(1 << 17):
                        final.write(batch)
        finally:
            con.close()
    return by_rule
