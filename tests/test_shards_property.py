"""Property: a day's flags are the same rows, in the same order, whatever the number of detection
units (`detect_shards`) and sub-shards (`detect_shard_rows`): the units run through the warehouse
(memory://) and are assembled, and the result equals the one-pass `flags_for_day`; the units'
coverage, summed, equals the whole day's. And the merge of sorted pieces the assembly uses gives
the sort of their union, whatever the batches."""

from __future__ import annotations

import dataclasses
import uuid

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, note
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from pipeline.config import Settings
from pipeline.detect.coverage import coverage_table
from pipeline.detect.merge import merge_sorted
from pipeline.detect.rules import flags_for_day
from pipeline.detect.shards import assemble_flags, shards_of, write_shard_flags
from pipeline.warehouse import Warehouse
from tests.strategies import AuditCase, audit_cases

MANY_USERS = tuple(f"user-{i}" for i in range(12))


@st.composite
def spread_cases(draw: st.DrawFn) -> AuditCase:
    """An audit case whose users are renamed onto a larger pool, so shards get several users."""
    case = draw(audit_cases())
    names = sorted(
        set(case.access["user_id"].to_pylist()) | set(case.consent["user_id"].to_pylist())
    )
    renamed = dict(zip(names, draw(st.permutations(MANY_USERS)), strict=False))
    renamed["*"] = "*"  # an admin consent's user stays every user

    def rename(table: pa.Table) -> pa.Table:
        users = pa.array([renamed[u] for u in table["user_id"].to_pylist()], pa.string())
        return table.set_column(table.schema.get_field_index("user_id"), "user_id", users)

    return dataclasses.replace(case, access=rename(case.access), consent=rename(case.consent))


@hsettings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    case=spread_cases(),
    units=st.integers(min_value=1, max_value=5),
    shard_rows=st.sampled_from((1, 2, 1000)),
)
def test_flags_are_identical_for_any_number_of_shards(
    case: AuditCase, units: int, shard_rows: int
) -> None:
    note(repr(case))
    settings = Settings(
        message_resources=case.message_resources,
        clock_skew_seconds=case.clock_skew_seconds,
        detect_shards=units,
        detect_shard_rows=shard_rows,
        duckdb_threads=1,
    )
    expected = flags_for_day(case.access, case.consent, case.registry, case.day, settings)
    warehouse = Warehouse(f"memory://shards-{uuid.uuid4().hex}")
    try:
        warehouse.write_table("access", case.day, case.access)
        consent_days = sorted(set(case.consent["delivery_date"].to_pylist()))
        for day in consent_days:
            delivered = case.consent.filter(pc.equal(case.consent["delivery_date"], day))
            warehouse.write_table("consent", day, delivered)
        for shard in shards_of(settings):
            write_shard_flags(
                case.day, warehouse, case.registry, consent_days, shard, "prop", settings
            )
        assembled = assemble_flags(case.day, warehouse, "prop", units, settings)
        flags = warehouse.read_partition("flags", case.day)
        left = warehouse.fs.find(warehouse.partition_dir("flags", case.day))
    finally:
        warehouse.fs.rm(warehouse.root, recursive=True)
    assert flags.equals(expected)
    assert [p.rsplit("/", 1)[-1] for p in left] == ["part-0.parquet"]  # no staging left
    assert sum(assembled.by_rule.values()) == expected.num_rows
    assert assembled.coverage.equals(_whole_day_coverage(case, settings))


def _whole_day_coverage(case: AuditCase, settings: Settings) -> pa.Table:
    con = duckdb.connect()
    try:
        for name, table in (("a", case.access), ("c", case.consent), ("r", case.registry)):
            con.register(name, table)
        return coverage_table(con, settings, "a", "c", "r")
    finally:
        con.close()


KEYED = pa.schema([("t", pa.int64()), ("s", pa.string()), ("v", pa.int64())])


@hsettings(max_examples=200, deadline=None)
@given(
    keys=st.lists(
        st.tuples(st.integers(0, 5), st.sampled_from(("", "a", "ab", "b", "é"))),
        unique=True,
        max_size=40,
    ),
    streams=st.integers(1, 5),
    batch_rows=st.integers(1, 7),
    data=st.data(),
)
def test_merge_of_sorted_streams_is_the_sort_of_their_union(
    keys: list[tuple[int, str]], streams: int, batch_rows: int, data: st.DataObject
) -> None:
    owners = data.draw(
        st.lists(st.integers(0, streams - 1), min_size=len(keys), max_size=len(keys))
    )
    rows = pa.table(
        {"t": [k[0] for k in keys], "s": [k[1] for k in keys], "v": list(range(len(keys)))},
        schema=KEYED,
    )
    order = [("t", "ascending"), ("s", "ascending")]
    pieces = []
    for i in range(streams):
        piece = rows.filter(pa.array([o == i for o in owners], pa.bool_()))
        pieces.append(piece.take(pc.sort_indices(piece, sort_keys=order)).to_batches(batch_rows))
    merged = list(merge_sorted(pieces, ["t", "s"]))
    result = pa.concat_tables(merged) if merged else KEYED.empty_table()
    assert result.equals(rows.take(pc.sort_indices(rows, sort_keys=order)))


def test_merge_refuses_a_stream_out_of_order() -> None:
    piece = pa.table({"t": [2, 1], "s": ["a", "a"], "v": [0, 1]}, schema=KEYED)
    with pytest.raises(ValueError, match="not sorted"):
        list(merge_sorted([piece.to_batches(1)], ["t", "s"]))
