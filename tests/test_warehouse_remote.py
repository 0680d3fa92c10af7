"""The warehouse and landing zone on non-local fsspec file systems: memory:// and a real S3
server (SeaweedFS). Writes replace whole parts, staged pieces stay invisible until assembled,
DuckDB and Arrow read a work unit, and whole days run on S3 give the flags of a local run."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from pipeline import schema, steps
from pipeline.config import load_settings
from pipeline.readers.landing import Landing
from pipeline.warehouse import Shard, Warehouse
from tests.nightly_runs import SAMPLE_LOGS, TABLES, sample_days
from tests.s3 import ACCESS_KEY, SECRET_KEY, SeaweedFS, s3_env, seaweedfs  # noqa: F401

DAY = dt.date(2024, 3, 10)


def quarantine_rows(*reasons: str, users: tuple[str, ...] = ()) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "kind": "access",
                "reason": reason,
                "detail": users[i] if users else None,
                "record_id": None,
                "raw": "{}",
                "delivery_date": DAY,
                "source_file": "a.jsonl",
                "source_line": i,
            }
            for i, reason in enumerate(reasons)
        ],
        schema=schema.QUARANTINE,
    )


@pytest.fixture(params=["memory", "s3"])
def remote_root(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "memory":
        root = f"memory://wh-{uuid.uuid4().hex[:8]}"
        yield root
        warehouse = Warehouse(root)
        warehouse.fs.rm(warehouse.root, recursive=True)
    else:
        server = request.getfixturevalue("s3_env")
        yield f"{server.bucket()}/wh"


def test_remote_warehouse_replaces_parts_and_lists_days(remote_root: str):
    warehouse = Warehouse(remote_root)
    warehouse.write_table("quarantine", DAY, quarantine_rows("old-1", "old-2"))
    warehouse.write_table("quarantine", DAY, quarantine_rows("new"))
    assert warehouse.read_partition("quarantine", DAY)["reason"].to_pylist() == ["new"]
    assert warehouse.partition_days("quarantine") == [DAY]
    assert warehouse.row_count("quarantine", DAY) == 1
    with pytest.raises(RuntimeError), warehouse.write_partition("quarantine", DAY) as writer:
        writer.write(quarantine_rows("half"))
        writer.flush()
        raise RuntimeError("crash")
    assert warehouse.read_partition("quarantine", DAY)["reason"].to_pylist() == ["new"]
    folder = warehouse.fs.ls(f"{warehouse.root}/quarantine/date={DAY}", detail=False)
    assert [p.rsplit("/", 1)[-1] for p in folder] == ["part-0.parquet"]


def test_remote_warehouse_scan_gives_duckdb_a_work_unit(remote_root: str):
    warehouse = Warehouse(remote_root)
    users = tuple(f"u{i}" for i in range(40))
    warehouse.write_table("quarantine", DAY, quarantine_rows(*users, users=users))
    con = duckdb.connect()
    whole = warehouse.scan(con, "quarantine", [DAY], ["reason"]).fetchall()
    assert sorted(r[0] for r in whole) == sorted(users)
    empty = warehouse.scan(con, "flags", [DAY])
    assert empty.fetchall() == [] and empty.columns == schema.FLAGS.names
    assert warehouse.dataset("quarantine", [DAY]).count_rows() == 40


def test_remote_warehouse_staged_pieces_are_invisible_until_assembled(remote_root: str):
    warehouse = Warehouse(remote_root)
    warehouse.write_table("quarantine", DAY, quarantine_rows("old"))
    for k, reason in enumerate(("b", "a")):
        with warehouse.write_staged("quarantine", DAY, "run1", f"piece-{k}") as writer:
            writer.write(quarantine_rows(reason))
    assert warehouse.read_partition("quarantine", DAY)["reason"].to_pylist() == ["old"]
    assert warehouse.staged_pieces("quarantine", DAY, "run1") == ["piece-0", "piece-1"]
    con = duckdb.connect()
    pieces = warehouse.scan_staged(con, "quarantine", DAY, "run1", ["piece-0", "piece-1"])
    with warehouse.assemble("quarantine", DAY, "run1") as writer:
        writer.write(pieces.order("reason").to_arrow_table())
    assert warehouse.read_partition("quarantine", DAY)["reason"].to_pylist() == ["a", "b"]
    assert warehouse.staged_pieces("quarantine", DAY, "run1") == []
    # a later commit, after the store may still list the emptied staging folder
    with warehouse.write_staged("quarantine", DAY, "run2", "piece-0") as writer:
        writer.write(quarantine_rows("c"))
    with warehouse.assemble("quarantine", DAY, "run2") as writer:
        writer.write(
            warehouse.scan_staged(con, "quarantine", DAY, "run2", ["piece-0"]).to_arrow_table()
        )
    assert warehouse.read_partition("quarantine", DAY)["reason"].to_pylist() == ["c"]


def test_remote_warehouse_commits_a_lone_staged_piece_as_the_part(remote_root: str):
    warehouse = Warehouse(remote_root)
    warehouse.write_table("quarantine", DAY, quarantine_rows("old"))
    with warehouse.write_staged("quarantine", DAY, "run1", "piece-0") as writer:
        writer.write(quarantine_rows("new"))
    warehouse.write_staged_json("quarantine", DAY, "run1", "piece-0", {"rows": 1})
    assert warehouse.read_staged_json("quarantine", DAY, "run1", "piece-0") == {"rows": 1}
    assert warehouse.read_staged_json("quarantine", DAY, "run1", "piece-1") is None
    batches = list(warehouse.staged_batches("quarantine", DAY, "run1", "piece-0", 10))
    assert [b.column("reason").to_pylist() for b in batches] == [["new"]]
    assert warehouse.read_partition("quarantine", DAY)["reason"].to_pylist() == ["old"]
    warehouse.commit_staged("quarantine", DAY, "run1", "piece-0")
    assert warehouse.read_partition("quarantine", DAY)["reason"].to_pylist() == ["new"]
    assert warehouse.staged_pieces("quarantine", DAY, "run1") == []
    assert warehouse.read_staged_json("quarantine", DAY, "run1", "piece-0") is None


def test_shard_predicate_splits_users_into_disjoint_units():
    con = duckdb.connect()
    users = pa.table({"user_id": [f"user-{i}" for i in range(500)]})
    con.register("u", users)
    seen: list[str] = []
    for k in range(4):
        unit = con.sql(f"SELECT user_id FROM u WHERE {Shard(k, 4).predicate()}").fetchall()
        assert unit, f"shard {k} of 4 is empty"
        seen += [r[0] for r in unit]
    assert sorted(seen) == sorted(users["user_id"].to_pylist())
    with pytest.raises(ValueError, match="shard 4 of 4"):
        Shard(4, 4)


@pytest.mark.slow
def test_s3_days_run_on_s3_give_the_flags_of_a_local_run(
    s3_env: SeaweedFS,  # noqa: F811 (the fixture)
    tmp_path: Path,
):
    bucket = s3_env.bucket()
    fs = s3_env.filesystem()
    fs.put(str(SAMPLE_LOGS), f"{bucket.removeprefix('s3://')}/landing", recursive=True)
    days = sample_days()[1:3]  # not the first: the catch-up ingests day 1's consent on S3
    local = load_settings(
        env={},
        landing=str(SAMPLE_LOGS),
        warehouse=str(tmp_path / "local"),
        review_db=f"sqlite:///{tmp_path / 'local.db'}",
        models_dir=str(tmp_path / "no-models"),
    )
    remote = dataclasses.replace(
        local,
        landing=f"{bucket}/landing",
        warehouse=f"{bucket}/wh",
        review_db=f"sqlite:///{tmp_path / 'remote.db'}",
        s3_endpoint_url=s3_env.endpoint,
        detect_shards=3,
    )
    assert Landing(remote.landing, remote).days("access") == sample_days()
    for day in days:
        steps.run_day(day, local)
        steps.run_day(day, remote)
    here, there = Warehouse(local.warehouse), Warehouse(remote.warehouse, remote)
    for day in days:
        for table in TABLES:
            assert here.read_partition(table, day).equals(there.read_partition(table, day)), table
        assert there.read_partition("flags", day).num_rows > 0
        assert pc.sum(pc.equal(there.read_partition("flags", day)["rule"], "NO_SIGNIN")).as_py()
    summary = there.read_json("runs", days[-1], "detect.json")
    assert summary is not None and summary["shards"] == 3
    report = there.read_json("runs", days[-1], "manifest.json")
    assert report is not None and report["warehouse"] == remote.warehouse
    assert report["config"]["s3_endpoint_url"] == s3_env.endpoint
    manifest_text = json.dumps(report)
    assert ACCESS_KEY not in manifest_text and SECRET_KEY not in manifest_text  # never stored
    assert fs.exists(f"{bucket.removeprefix('s3://')}/wh/reports/date={days[-1]}/report.html")
