"""pipeline.warehouse: atomic partition replacement, missing partitions, re-runs (SPEC §4)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest

from pipeline import schema
from pipeline.config import Settings
from pipeline.ingest.day import ingest_day
from pipeline.readers.landing import Landing
from pipeline.warehouse import Warehouse
from tests.landing import access, consent, write_day

DAY = dt.date(2024, 3, 10)
UTC = dt.UTC


def quarantine_rows(*reasons: str, kind: str = "access") -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "kind": kind,
                "reason": reason,
                "detail": None,
                "record_id": None,
                "raw": "{}",
                "delivery_date": DAY,
                "source_file": "a.jsonl",
                "source_line": i,
            }
            for i, reason in enumerate(reasons, 1)
        ],
        schema=schema.QUARANTINE,
    )


def everything_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_warehouse_write_table_then_read_back(tmp_path: Path):
    warehouse = Warehouse(str(tmp_path / "wh"))
    assert warehouse.write_table("quarantine", DAY, quarantine_rows("a", "b")) == 2
    assert warehouse.read_partition("quarantine", DAY).equals(quarantine_rows("a", "b"))
    assert warehouse.part_files("quarantine", DAY) == [
        f"{tmp_path}/wh/quarantine/date=2024-03-10/part-0.parquet"
    ]
    assert everything_in(tmp_path / "wh" / "quarantine" / "date=2024-03-10") == ["part-0.parquet"]


def test_warehouse_write_partition_replaces_the_old_part(tmp_path: Path):
    warehouse = Warehouse(str(tmp_path / "wh"))
    warehouse.write_table("quarantine", DAY, quarantine_rows("old-1", "old-2", "old-3"))
    warehouse.write_table("quarantine", DAY, quarantine_rows("new"))
    assert warehouse.read_partition("quarantine", DAY)["reason"].to_pylist() == ["new"]
    assert everything_in(tmp_path / "wh" / "quarantine" / "date=2024-03-10") == ["part-0.parquet"]


def test_warehouse_exception_inside_block_leaves_old_part_whole(tmp_path: Path):
    warehouse = Warehouse(str(tmp_path / "wh"))
    warehouse.write_table("quarantine", DAY, quarantine_rows("old-1", "old-2"))
    with (
        pytest.raises(RuntimeError, match="crash"),
        warehouse.write_partition("quarantine", DAY) as writer,
    ):
        writer.write(quarantine_rows("new-1"))
        writer.flush()
        raise RuntimeError("crash")
    assert warehouse.read_partition("quarantine", DAY).equals(quarantine_rows("old-1", "old-2"))
    assert warehouse.part_files("quarantine", DAY) == [
        f"{tmp_path}/wh/quarantine/date=2024-03-10/part-0.parquet"
    ]
    assert everything_in(tmp_path / "wh" / "quarantine" / "date=2024-03-10") == ["part-0.parquet"]


def test_warehouse_temporary_is_invisible_while_writing(tmp_path: Path):
    warehouse = Warehouse(str(tmp_path / "wh"))
    warehouse.write_table("quarantine", DAY, quarantine_rows("old"))
    folder = tmp_path / "wh" / "quarantine" / "date=2024-03-10"
    with warehouse.write_partition("quarantine", DAY) as writer:
        writer.write(quarantine_rows("new"))
        writer.flush()
        assert len(everything_in(folder)) == 2  # the old part and a hidden temporary
        assert warehouse.part_files("quarantine", DAY) == [str(folder / "part-0.parquet")]
        assert warehouse.read_partition("quarantine", DAY)["reason"].to_pylist() == ["old"]
    assert warehouse.read_partition("quarantine", DAY)["reason"].to_pylist() == ["new"]
    assert everything_in(folder) == ["part-0.parquet"]


def test_warehouse_stale_temporary_of_a_killed_writer_is_removed(tmp_path: Path):
    warehouse = Warehouse(str(tmp_path / "wh"))
    folder = tmp_path / "wh" / "quarantine" / "date=2024-03-10"
    folder.mkdir(parents=True)
    (folder / ".part-0.parquet.0123abcd.tmp").write_bytes(b"half a file")
    (folder / ".access.parquet.0123abcd.tmp").write_bytes(b"another part's writer")
    assert warehouse.part_files("quarantine", DAY) == []
    warehouse.write_table("quarantine", DAY, quarantine_rows("x"))
    assert everything_in(folder) == [".access.parquet.0123abcd.tmp", "part-0.parquet"]


def test_warehouse_named_parts_are_read_together_in_name_order(tmp_path: Path):
    warehouse = Warehouse(str(tmp_path / "wh"))
    warehouse.write_table("quarantine", DAY, quarantine_rows("c1", kind="consent"), part="consent")
    warehouse.write_table("quarantine", DAY, quarantine_rows("a1", "a2"), part="access")
    assert warehouse.read_partition("quarantine", DAY)["reason"].to_pylist() == ["a1", "a2", "c1"]
    warehouse.write_table("quarantine", DAY, quarantine_rows(), part="access")
    assert warehouse.read_partition("quarantine", DAY)["reason"].to_pylist() == ["c1"]


@pytest.mark.parametrize("table", sorted(schema.TABLES))
def test_warehouse_missing_partition_reads_as_empty_table_with_schema(tmp_path: Path, table: str):
    warehouse = Warehouse(str(tmp_path / "wh"))
    data = warehouse.read_partition(table, DAY)
    assert data.num_rows == 0
    assert data.schema == schema.TABLES[table]
    assert not warehouse.has_partition(table, DAY)
    assert warehouse.partition_days(table) == []


def test_warehouse_partition_days_lists_committed_days_only(tmp_path: Path):
    warehouse = Warehouse(str(tmp_path / "wh"))
    warehouse.write_table("quarantine", DAY, quarantine_rows("x"))
    (tmp_path / "wh" / "quarantine" / "date=2024-03-09").mkdir()  # nothing committed
    (tmp_path / "wh" / "quarantine" / "date=garbage").mkdir()
    assert warehouse.partition_days("quarantine") == [DAY]


def test_warehouse_write_casts_to_schema_and_rejects_missing_columns(tmp_path: Path):
    warehouse = Warehouse(str(tmp_path / "wh"))
    with pytest.raises(KeyError):
        warehouse.write_table("quarantine", DAY, pa.table({"kind": ["access"]}))
    assert not warehouse.has_partition("quarantine", DAY)


def test_warehouse_json_document_round_trip_and_replace(tmp_path: Path):
    warehouse = Warehouse(str(tmp_path / "wh"))
    warehouse.write_json("runs", DAY, "doc.json", {"a": 1, "when": DAY})
    warehouse.write_json("runs", DAY, "doc.json", {"a": 2})
    assert warehouse.read_json("runs", DAY, "doc.json") == {"a": 2}
    assert warehouse.read_json("runs", DAY, "absent.json") is None
    assert everything_in(tmp_path / "wh" / "runs" / "date=2024-03-10") == ["doc.json"]


def test_warehouse_rerunning_ingest_gives_identical_rows(landing_root: Path, settings: Settings):
    write_day(
        landing_root,
        "access",
        DAY,
        {
            "a.jsonl": [
                access("r1", "2024-03-10T12:00:00Z", path="/m?token=x"),
                "broken",
                access("r1", "2024-03-10T12:00:00Z", user="other"),
            ],
            "b.jsonl.gz": [access("r2", 1710072000123)],
        },
    )
    write_day(landing_root, "consent", DAY, {"a.jsonl": [consent("e1", "2024-03-10T11:00:00Z")]})
    landing, warehouse = Landing(settings.landing), Warehouse(settings.warehouse)

    def snapshot() -> dict[str, pa.Table]:
        ingest_day("access", DAY, landing, warehouse, settings)
        ingest_day("consent", DAY, landing, warehouse, settings)
        return {t: warehouse.read_partition(t, DAY) for t in ("access", "consent", "quarantine")}

    first, second = snapshot(), snapshot()
    for table in first:
        assert first[table].equals(second[table]), table
    assert [first[t].num_rows for t in ("access", "consent", "quarantine")] == [2, 1, 2]


def test_warehouse_counts_rows_and_reads_chosen_columns_across_parts(tmp_path: Path):
    warehouse = Warehouse(str(tmp_path / "wh"))
    assert warehouse.row_count("quarantine", DAY) == 0
    assert warehouse.read_partition("quarantine", DAY, columns=["kind"]).column_names == ["kind"]
    warehouse.write_table("quarantine", DAY, quarantine_rows("c1", kind="consent"), part="consent")
    warehouse.write_table("quarantine", DAY, quarantine_rows("a1", "a2"), part="access")
    assert warehouse.row_count("quarantine", DAY) == 3
    kinds = warehouse.read_partition("quarantine", DAY, columns=["kind"])
    assert kinds.column_names == ["kind"]
    assert kinds["kind"].to_pylist() == ["access", "access", "consent"]
