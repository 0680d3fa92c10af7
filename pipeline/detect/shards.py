"""Runs the rules over a day in the warehouse, in shards of users so memory stays bounded.

The rules only ever compare an access with its own (user, app) history, so splitting the day by
a hash of the user changes nothing but the work's size. With several shards, one scan first
stages the columns the rules read of the accesses they judge, split by shard, so each shard reads
only its own rows. Each shard stages its flags' evidence; one pass then joins them with the day's
access columns and orders them. (The same split is what would spread a day over several workers.)
"""

from __future__ import annotations

import glob
import math
import os
from collections import Counter
from datetime import date

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import duck
from pipeline.config import Settings
from pipeline.detect.rules import decorated_flags_sql, evidence_sql, judged_access_sql
from pipeline.tables import value_counts
from pipeline.warehouse import Warehouse


def shard_count(access_rows: int, settings: Settings) -> int:
    return max(1, math.ceil(access_rows / settings.detect_shard_rows))


def _access_by_shard(
    con: duckdb.DuckDBPyConnection,
    access_files: list[str],
    shards: int,
    settings: Settings,
    scratch: str,
) -> list[list[str]]:
    """Per shard, the staged Parquet files of the accesses that the rules judge (none for a
    shard without any), written in one scan of the day's access partition."""
    folder = os.path.join(scratch, "access-by-shard")
    con.read_parquet(access_files).create_view("day_access")
    judged = judged_access_sql(settings, "day_access")
    # each thread buffers this many rows per shard before writing them: the default
    # (524,288) held about 0.5 GB more at 10M accesses, for no speed
    con.execute("SET partitioned_write_flush_threshold = 131072")
    con.sql(
        f"COPY (SELECT *, hash(user_id) % {shards} AS shard FROM ({judged})) "
        f"TO '{folder}' (FORMAT parquet, PARTITION_BY (shard), COMPRESSION uncompressed)"
    )
    return [
        sorted(glob.glob(os.path.join(folder, f"shard={k}", "*.parquet"))) for k in range(shards)
    ]


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
        con = duck.connect(settings, spill_dir=scratch)
        try:
            con.register("registry", registry)
            shard_files = (
                _access_by_shard(con, access_files, shards, settings, scratch)
                if shards > 1
                else [access_files]
            )
            evidence = []
            for shard, files in enumerate(shard_files):
                in_shard = f"hash(user_id) % {shards} = {shard}"
                # (a shard without a staged file reads the day's partition: it has no flags)
                con.read_parquet(files or access_files).filter(in_shard).create_view("access")
                con.read_parquet(consent_files).filter(in_shard).create_view("consent")
                evidence.append(os.path.join(scratch, f"evidence-{shard}.parquet"))
                con.sql(evidence_sql(day, settings)).write_parquet(evidence[-1])
            # the access columns of the flagged rows, joined once for all shards
            con.read_parquet(access_files).create_view("access")
            flags = con.sql(decorated_flags_sql(f"read_parquet({evidence!r})", day))
            with warehouse.write_partition("flags", day) as writer:
                for batch in flags.to_arrow_reader(1 << 17):
                    writer.write(batch)
                    by_rule.update(value_counts(batch.column("rule")))
        finally:
            con.close()
    return by_rule
