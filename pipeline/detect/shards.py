"""A day's detection as independent work units by user shard, and their assembly.

The rules only ever compare an access with its own (user, app) history, so splitting the day by
a stable hash of the user changes nothing but the work's size. A unit (`Shard` k of K: the
setting `detect_shards`) reads only its users' accesses and consent, and stages its flags as one
piece of the day's flags partition, in FLAG_ORDER, with its counts (by rule, and its users'
coverage) beside it; `assemble_flags` then commits the pieces as the day's flags, merged into
the one order every writer uses, so the flags are the same for any K, and sums the counts.
Units share nothing but the warehouse: they may run in one process, or as mapped Airflow tasks
on several workers.

Within a unit, memory stays bounded by splitting it again into sub-shards of at most
`detect_shard_rows` accesses (sub-shard j of unit k is global shard k + K*j of K*m, which lies
inside unit k): one scan stages the judged accesses split by sub-shard, each sub-shard stages its
flags' evidence, and one pass joins the evidence with the unit's access columns.
"""

from __future__ import annotations

import glob
import math
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import duckdb
import pyarrow as pa

from pipeline import duck
from pipeline.config import Settings
from pipeline.detect.coverage import COVERAGE, coverage_table
from pipeline.detect.merge import merge_sorted
from pipeline.detect.rules import (
    ALL_USERS,
    FLAG_ORDER,
    decorated_flags_sql,
    evidence_sql,
    judged_access_sql,
)
from pipeline.errors import MissingInput
from pipeline.tables import value_counts
from pipeline.warehouse import Shard, Warehouse

BATCH_ROWS = 1 << 17


def shards_of(settings: Settings) -> list[Shard]:
    """The day's work units."""
    return [Shard(k, settings.detect_shards) for k in range(settings.detect_shards)]


def _sub_shards(unit_rows: int, settings: Settings) -> int:
    return max(1, math.ceil(unit_rows / settings.detect_shard_rows))


def _access_by_sub_shard(
    con: duckdb.DuckDBPyConnection,
    modulus: int,
    globals_: list[int],
    settings: Settings,
    scratch: str,
) -> list[list[str]]:
    """Per sub-shard, the staged Parquet files of the unit's accesses that the rules judge
    (none for a sub-shard without any), written in one scan of view `unit_access`."""
    folder = os.path.join(scratch, "access-by-shard")
    # each thread buffers this many rows per shard before writing them: the default
    # (524,288) held about 0.5 GB more at 10M accesses, for no speed
    con.execute("SET partitioned_write_flush_threshold = 131072")
    con.sql(
        f"COPY (SELECT *, hash(user_id) % {modulus} AS shard "
        f"FROM ({judged_access_sql(settings, 'unit_access')})) "
        f"TO '{folder}' (FORMAT parquet, PARTITION_BY (shard), COMPRESSION uncompressed)"
    )
    return [sorted(glob.glob(os.path.join(folder, f"shard={g}", "*.parquet"))) for g in globals_]


@dataclass(frozen=True)
class Assembled:
    """What the assembly of a day's units counted: flags by rule, and the day's coverage."""

    by_rule: Counter[str]
    coverage: pa.Table


def write_shard_flags(
    day: date,
    warehouse: Warehouse,
    registry: pa.Table,
    consent_days: list[date],
    shard: Shard,
    run: str,
    settings: Settings,
) -> Counter[str]:
    """Flags of one unit's users → a staged piece of the day's flags partition, and beside it
    the unit's counts by rule and its coverage (committed by `assemble_flags`); returns its
    counts by rule."""
    by_rule: Counter[str] = Counter()
    with warehouse.scratch_dir() as scratch:
        con = duck.connect(settings, spill_dir=scratch)
        try:
            con.register("registry", registry)
            unit_access = warehouse.scan(con, "access", [day], shard=shard)
            unit_access.create_view("unit_access")
            # the unit's users' consent, and admin consent (every user's)
            admin = f"user_id = '{ALL_USERS}'"
            unit_consent = warehouse.scan(con, "consent", consent_days).filter(
                f"{shard.predicate()} OR {admin}"
            )
            unit_consent.create_view("unit_consent")
            # coverage is a sum over users, so each unit counts its own (the assembly adds them)
            coverage = coverage_table(con, settings, "unit_access", "unit_consent", "registry")
            day_rows = warehouse.row_count("access", day)
            subs = _sub_shards(math.ceil(day_rows / shard.count), settings)
            modulus = shard.count * subs
            globals_ = [shard.index + shard.count * j for j in range(subs)]
            staged = (
                _access_by_sub_shard(con, modulus, globals_, settings, scratch)
                if subs > 1
                else [[]]
            )
            evidence = []
            for g, files in zip(globals_, staged, strict=True):
                in_sub = f"hash(user_id) % {modulus} = {g}"
                # (a sub-shard without a staged file reads the unit's accesses: it has no flags)
                source = con.read_parquet(files) if files else unit_access
                source.filter(in_sub).create_view("access")
                unit_consent.filter(f"{in_sub} OR {admin}").create_view("consent")
                evidence.append(os.path.join(scratch, f"evidence-{g}.parquet"))
                con.sql(evidence_sql(day, settings)).write_parquet(evidence[-1])
            # the access columns of the flagged rows, joined once for the unit
            unit_access.create_view("access", replace=True)
            flags = con.sql(decorated_flags_sql(f"read_parquet({evidence!r})", day))
            with warehouse.write_staged("flags", day, run, shard.label) as writer:
                for batch in flags.to_arrow_reader(BATCH_ROWS):
                    writer.write(batch)
                    by_rule.update(value_counts(batch.column("rule")))
        finally:
            con.close()
    # written after the piece: a unit whose counts are there has written its piece whole
    counts = {"by_rule": dict(by_rule), "coverage": coverage.to_pylist()}
    warehouse.write_staged_json("flags", day, run, shard.label, counts)
    return by_rule


def _total_coverage(settings: Settings, units: list[pa.Table]) -> pa.Table:
    """The units' coverage rows summed per partner: the day's coverage, as one pass gives it."""
    counted = [f.name for f in COVERAGE if f.type == pa.int64()]
    sums = ", ".join(f"sum({c})::BIGINT AS {c}" for c in counted)
    con = duck.connect(settings)
    try:
        con.register("units", pa.concat_tables(units) if units else COVERAGE.empty_table())
        sql = (
            f"SELECT partner_id, any_value(partner_name) AS partner_name, {sums}, "
            "sum(not_judged)::BIGINT / sum(accesses)::BIGINT AS not_judged_share "
            "FROM units GROUP BY partner_id ORDER BY partner_id"
        )
        return con.sql(sql).to_arrow_table().cast(COVERAGE)
    finally:
        con.close()


def _merged_pieces(
    warehouse: Warehouse, day: date, run: str, pieces: list[str]
) -> Iterator[pa.Table]:
    """The units' pieces (each in FLAG_ORDER) merged into FLAG_ORDER, a batch per piece held."""
    batch_rows = max(1024, BATCH_ROWS // len(pieces))
    streams = [warehouse.staged_batches("flags", day, run, p, batch_rows) for p in pieces]
    return merge_sorted(streams, [key.strip() for key in FLAG_ORDER.split(",")])


def assemble_flags(
    day: date, warehouse: Warehouse, run: str, shards: int, settings: Settings
) -> Assembled:
    """The units' staged pieces of `run` → the day's flags partition, in FLAG_ORDER, replacing
    the old one atomically; fails naming the units that have not written their piece. A lone
    piece is already the day's flags in order and is moved, not rewritten; several are merged
    (each is in order), which holds a batch of each in memory, not the day."""
    expected = [s.label for s in (Shard(k, shards) for k in range(shards))]
    counts = {p: warehouse.read_staged_json("flags", day, run, p) for p in expected}
    missing = [p for p, c in counts.items() if c is None]
    if missing:
        raise MissingInput(
            f"flags of {day}: detection unit(s) {', '.join(missing)} of run {run} "
            "have not written their flags yet"
        )
    units = [c for c in counts.values() if c is not None]
    by_rule: Counter[str] = Counter()
    for unit in units:
        by_rule.update(unit["by_rule"])
    coverage = [pa.Table.from_pylist(u["coverage"], schema=COVERAGE) for u in units]
    total = _total_coverage(settings, coverage)
    if shards == 1:
        warehouse.commit_staged("flags", day, run, expected[0])
    else:
        with warehouse.assemble("flags", day, run) as writer:
            for chunk in _merged_pieces(warehouse, day, run, expected):
                writer.write(chunk)
    return Assembled(by_rule, total)
