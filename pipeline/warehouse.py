"""The warehouse: partition layout, atomic partition replacement, manifests, and reads.

The only module that touches warehouse storage, local or on any fsspec file system (s3://,
memory://): no other module builds a warehouse path. A table's day partition is a folder of
named Parquet parts, `<table>/date=<D>/<part>.parquet` (one part, `part-0`, for most tables;
quarantine has one per record kind so the two ingest tasks can run at once). Each part is written
beside its final name and renamed over it: a local rename is atomic, and on an object store the
move is one whole-object copy, so readers see the old part or the new one and a crash leaves the
old one whole. Work split over several writers (a day's detection in user shards) stages its
pieces in a hidden folder of the partition and commits them as the one part (`assemble`, or
`commit_staged` for a lone piece, which is moved, not rewritten).

Reads hand DuckDB a relation (`scan`) or Arrow a dataset (`dataset`) of a table for a work unit
(days, optionally one user shard), with the file system registered on the connection.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.schema import FEW_VALUES, TABLES, UNFILTERED
from pipeline.storage import filesystem

if TYPE_CHECKING:
    import duckdb
    import pyarrow.dataset as ds

    from pipeline.config import Settings

DEFAULT_PART = "part-0"
MANIFEST = "manifest.json"  # runs/date=D/: the day's run manifest
ALERTS_SENT = "alerts-sent.json"  # runs/date=D/: subjects of the day's alerts already delivered
ROW_GROUP_ROWS = 128 * 1024
PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd", "compression_level": 1}


SCRATCH = ".scratch"
STAGED = ".staged-"  # <table>/date=D/.staged-<run>/: pieces of a part not yet committed
ABANDONED_AFTER_SECONDS = 24 * 3600  # a killed step's scratch; no step runs for a day


def _remove_abandoned(parent: str) -> None:
    """Housekeeping only (the clock decides no result): drop scratch left by killed steps."""
    cutoff = time.time() - ABANDONED_AFTER_SECONDS
    for entry in os.scandir(parent):
        if entry.is_dir() and entry.stat().st_mtime < cutoff:
            shutil.rmtree(entry.path, ignore_errors=True)


def report_label(start: date, end: date) -> str:
    """A report's folder under reports/: date=D for one day, range=D1_D2 for a range."""
    if start == end:
        return f"date={start.isoformat()}"
    return f"range={start.isoformat()}_{end.isoformat()}"


class PartitionWriter:
    """Buffers batches into large row groups and casts them to the table's schema."""

    def __init__(self, writer: pq.ParquetWriter, schema: pa.Schema) -> None:
        self._writer, self.schema = writer, schema
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self.rows = 0

    def write(self, data: pa.Table | pa.RecordBatch) -> None:
        table = data if isinstance(data, pa.Table) else pa.Table.from_batches([data])
        table = table.select(self.schema.names).cast(self.schema)
        self._pending.extend(table.to_batches())
        self._pending_rows += table.num_rows
        self.rows += table.num_rows
        if self._pending_rows >= ROW_GROUP_ROWS:
            self.flush()

    def flush(self) -> None:
        if self._pending_rows:
            self._writer.write_table(pa.Table.from_batches(self._pending, self.schema))
        self._pending, self._pending_rows = [], 0


@contextmanager
def _part_writer(sink: Any, table: str) -> Iterator[PartitionWriter]:
    """Parquet with the warehouse's settings and the table's schema; closed even on error."""
    schema = TABLES[table]
    parquet = pq.ParquetWriter(
        sink,
        schema,
        use_dictionary=[name for name in schema.names if name in FEW_VALUES],
        write_statistics=[name for name in schema.names if name not in UNFILTERED],
        **PARQUET_OPTIONS,
    )
    try:
        writer = PartitionWriter(parquet, schema)
        yield writer
        writer.flush()
    finally:
        parquet.close()


@dataclass(frozen=True)
class Shard:
    """A work unit's users: those whose stable hash of `user_id` falls in shard `index` of
    `count`. DuckDB's `hash` is the same in every process and on every machine running the
    locked DuckDB; a new version may move users between shards, which changes no flag."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index} of {self.count} does not exist")

    @property
    def label(self) -> str:
        return f"shard-{self.index}-of-{self.count}"

    def predicate(self) -> str:
        """DuckDB SQL true for the shard's rows."""
        return "TRUE" if self.count == 1 else f"hash(user_id) % {self.count} = {self.index}"


WHOLE_DAY = Shard()


class Warehouse:
    """A warehouse at a local path or an fsspec URL; `settings` give an S3 endpoint."""

    def __init__(self, root: str, settings: Settings | None = None) -> None:
        self.fs, self.root = filesystem(root, settings)
        self.url = root
        self._local = "file" in self.fs.protocol

    def partition_dir(self, table: str, day: date) -> str:
        return posixpath.join(self.root, table, f"date={day.isoformat()}")

    def part_file(self, table: str, day: date, part: str = DEFAULT_PART) -> str:
        return posixpath.join(self.partition_dir(table, day), f"{part}.parquet")

    def part_files(self, table: str, day: date) -> list[str]:
        """The partition's committed parts in name order (temporaries are hidden files)."""
        return self._parquet_in(self.partition_dir(table, day))

    def _listing(self, folder: str) -> list[str]:
        """The entries of `folder`; none when it does not exist (an object store has no empty
        folders: a prefix exists only while something is under it)."""
        try:
            return list(self.fs.ls(folder, detail=False))
        except FileNotFoundError:
            return []

    def _parquet_in(self, folder: str) -> list[str]:
        if not self.fs.isdir(folder):
            return []
        names = self._listing(folder)
        return sorted(
            n for n in names if n.endswith(".parquet") and not posixpath.basename(n).startswith(".")
        )

    def has_partition(self, table: str, day: date) -> bool:
        return bool(self.part_files(table, day))

    def partition_days(self, table: str) -> list[date]:
        folder = posixpath.join(self.root, table)
        if not self.fs.isdir(folder):
            return []
        days = []
        for entry in self._listing(folder):
            name = posixpath.basename(entry.rstrip("/"))
            if name.startswith("date="):
                try:
                    days.append(date.fromisoformat(name.removeprefix("date=")))
                except ValueError:
                    continue
        return sorted(d for d in days if self.has_partition(table, d))

    @contextmanager
    def scratch_dir(self) -> Iterator[str]:
        """A local folder for a step's staging files, removed afterwards. Inside a local
        warehouse (same file system, so a staged part is committed by a rename)."""
        parent = None
        if self._local:
            parent = posixpath.join(self.root, SCRATCH)
            self.fs.makedirs(parent, exist_ok=True)
            _remove_abandoned(parent)
        with tempfile.TemporaryDirectory(dir=parent) as folder:
            yield folder

    @contextmanager
    def local_part_writer(self, table: str, path: str) -> Iterator[PartitionWriter]:
        """A writer of a table's part to a local staging file, with the warehouse's settings."""
        with open(path, "wb") as sink, _part_writer(sink, table) as writer:
            yield writer

    def commit_file(self, table: str, day: date, local_path: str, part: str = DEFAULT_PART) -> None:
        """Make a staged local part file the day's part, replacing the old one atomically."""
        final, temporary = self._prepare_part(table, day, part)
        if self._local:
            os.replace(local_path, final)
            return
        self.fs.put_file(local_path, temporary)
        self._replace(temporary, final)

    @contextmanager
    def write_partition(
        self, table: str, day: date, part: str = DEFAULT_PART
    ) -> Iterator[PartitionWriter]:
        """Write one part of a day's partition; it replaces the old part only if the block ends."""
        with self._write_file(self.partition_dir(table, day), part, table) as writer:
            yield writer

    @contextmanager
    def _write_file(self, folder: str, part: str, table: str) -> Iterator[PartitionWriter]:
        final, temporary = self._prepare_file(folder, part)
        try:
            with self.fs.open(temporary, "wb") as sink, _part_writer(sink, table) as writer:
                yield writer
            self._replace(temporary, final)
        except BaseException:
            if self.fs.exists(temporary):
                self.fs.rm(temporary)
            raise

    def _prepare_part(self, table: str, day: date, part: str) -> tuple[str, str]:
        return self._prepare_file(self.partition_dir(table, day), part)

    def _prepare_file(self, folder: str, part: str) -> tuple[str, str]:
        """The part's final path in `folder` and a fresh hidden temporary beside it."""
        self.fs.makedirs(folder, exist_ok=True)
        self._remove_stale_temporaries(folder, part)
        temporary = posixpath.join(folder, f".{part}.parquet.{uuid.uuid4().hex}.tmp")
        return posixpath.join(folder, f"{part}.parquet"), temporary

    def write_table(self, table: str, day: date, data: pa.Table, part: str = DEFAULT_PART) -> int:
        with self.write_partition(table, day, part) as writer:
            writer.write(data)
        return writer.rows

    def read_partition(self, table: str, day: date, columns: list[str] | None = None) -> pa.Table:
        """The day's rows (all parts; only `columns` if given), or an empty table of the
        schema when there are none."""
        schema = TABLES[table]
        if columns is not None:
            schema = pa.schema([schema.field(c) for c in columns])
        parts = []
        for path in self.part_files(table, day):
            with self.fs.open(path, "rb") as fh:
                parts.append(pq.read_table(fh, columns=columns, schema=TABLES[table]))
        return pa.concat_tables(parts) if parts else schema.empty_table()

    def row_count(self, table: str, day: date) -> int:
        """Rows in the day's partition, from the Parquet footers alone."""
        total = 0
        for path in self.part_files(table, day):
            with self.fs.open(path, "rb") as fh:
                total += pq.ParquetFile(fh).metadata.num_rows
        return total

    def files_for_days(self, table: str, days: list[date]) -> list[str]:
        """Every committed part of the given days, for DuckDB to scan."""
        return [path for d in days for path in self.part_files(table, d)]

    def _duckdb_path(self, path: str) -> str:
        return path if self._local else self.fs.unstrip_protocol(path)

    def attach(self, con: duckdb.DuckDBPyConnection) -> None:
        """Let DuckDB read this warehouse's files (registers a non-local file system once)."""
        if self._local:
            return
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        if not set(protocols) & set(con.list_filesystems()):
            con.register_filesystem(self.fs)

    def duckdb_files(
        self, con: duckdb.DuckDBPyConnection, table: str, days: list[date]
    ) -> list[str]:
        """The committed parts of `days` as paths DuckDB opens on `con` (for SQL that takes a
        list of files, `read_parquet(?)`)."""
        self.attach(con)
        return [self._duckdb_path(f) for f in self.files_for_days(table, days)]

    def _relation(
        self,
        con: duckdb.DuckDBPyConnection,
        table: str,
        files: list[str],
        columns: list[str] | tuple[str, ...] | None,
        shard: Shard,
    ) -> duckdb.DuckDBPyRelation:
        if files:
            self.attach(con)
            relation = con.read_parquet([self._duckdb_path(f) for f in files])
        else:  # no committed part: an empty relation of the table's schema
            relation = con.from_arrow(TABLES[table].empty_table())
        if shard.count > 1:
            relation = relation.filter(shard.predicate())
        return relation.select(*columns) if columns else relation

    def scan(
        self,
        con: duckdb.DuckDBPyConnection,
        table: str,
        days: list[date],
        columns: list[str] | tuple[str, ...] | None = None,
        shard: Shard = WHOLE_DAY,
    ) -> duckdb.DuckDBPyRelation:
        """A DuckDB relation over a work unit of a table: the committed parts of `days`, only
        `shard`'s users, only `columns` if given. Scanned where the files lie: a large day is
        never loaded whole. An empty relation of the schema when there are no parts."""
        return self._relation(con, table, self.files_for_days(table, days), columns, shard)

    def dataset(self, table: str, days: list[date]) -> ds.Dataset:
        """A pyarrow dataset of the table's committed parts of `days` (for filtered Arrow reads)."""
        import pyarrow.dataset as ds

        return ds.dataset(
            self.files_for_days(table, days),
            schema=TABLES[table],
            format="parquet",
            filesystem=self.fs,
        )

    def _staged_dir(self, table: str, day: date, run: str) -> str:
        if not run.replace("-", "").isalnum():
            raise ValueError(f"run token {run!r}: letters, digits and '-' only")
        return posixpath.join(self.partition_dir(table, day), f"{STAGED}{run}")

    @contextmanager
    def write_staged(
        self, table: str, day: date, run: str, piece: str
    ) -> Iterator[PartitionWriter]:
        """Write one piece of a part that `assemble` commits later (a shard's flags). Invisible
        to readers; a piece is replaced whole, so a retried writer leaves no half piece."""
        folder = self._staged_dir(table, day, run)
        with self._write_file(folder, piece, table) as writer:
            yield writer

    def staged_pieces(self, table: str, day: date, run: str) -> list[str]:
        """The names of the pieces staged for `run`, in name order."""
        return [
            posixpath.basename(f).removesuffix(".parquet")
            for f in self._parquet_in(self._staged_dir(table, day, run))
        ]

    def scan_staged(
        self, con: duckdb.DuckDBPyConnection, table: str, day: date, run: str, pieces: list[str]
    ) -> duckdb.DuckDBPyRelation:
        folder = self._staged_dir(table, day, run)
        files = [posixpath.join(folder, f"{piece}.parquet") for piece in pieces]
        return self._relation(con, table, files, None, WHOLE_DAY)

    def staged_batches(
        self, table: str, day: date, run: str, piece: str, batch_rows: int
    ) -> Iterator[pa.RecordBatch]:
        """A staged piece's rows, a batch at a time, in the order it was written."""
        path = posixpath.join(self._staged_dir(table, day, run), f"{piece}.parquet")
        with self.fs.open(path, "rb") as fh:
            yield from pq.ParquetFile(fh).iter_batches(batch_size=batch_rows)

    def write_staged_json(
        self, table: str, day: date, run: str, piece: str, document: dict[str, Any]
    ) -> None:
        """A piece's small record beside it (what its writer counted), replaced whole."""
        text = json.dumps(document, sort_keys=True, default=str)
        self._write_text_file(self._staged_dir(table, day, run), f"{piece}.json", text)

    def read_staged_json(
        self, table: str, day: date, run: str, piece: str
    ) -> dict[str, Any] | None:
        return self._read_json_file(
            posixpath.join(self._staged_dir(table, day, run), f"{piece}.json")
        )

    def commit_staged(
        self, table: str, day: date, run: str, piece: str, part: str = DEFAULT_PART
    ) -> None:
        """Make one staged piece the day's part as it is (no rewrite), replacing the old part
        atomically, then drop the partition's staging folders (as `assemble`)."""
        final, _ = self._prepare_part(table, day, part)
        self._replace(posixpath.join(self._staged_dir(table, day, run), f"{piece}.parquet"), final)
        self.drop_staged(table, day)

    @contextmanager
    def assemble(
        self, table: str, day: date, run: str, part: str = DEFAULT_PART
    ) -> Iterator[PartitionWriter]:
        """Commit the day's part from what the block writes (the staged pieces, read with
        `scan_staged`): it replaces the old part only if the block ends, then every staging
        folder of the partition is removed (a killed run's too: one writer per partition)."""
        with self.write_partition(table, day, part) as writer:
            yield writer
        self.drop_staged(table, day)

    def drop_staged(self, table: str, day: date) -> None:
        folder = self.partition_dir(table, day)
        if not self.fs.isdir(folder):
            return
        for entry in self._listing(folder):
            if posixpath.basename(entry.rstrip("/")).startswith(STAGED):
                # (an object store may list an emptied prefix once more: nothing to remove)
                with contextlib.suppress(FileNotFoundError):
                    self.fs.rm(entry, recursive=True)

    def write_json(self, table: str, day: date, name: str, document: dict[str, Any]) -> str:
        text = json.dumps(document, indent=2, sort_keys=True, default=str)
        return self._write_text_file(self.partition_dir(table, day), name, text)

    def report_dir(self, label: str) -> str:
        """Where a report's files go: reports/date=D (a day) or reports/range=D1_D2."""
        return posixpath.join(self.root, "reports", label)

    def report_file(self, label: str, name: str) -> str:
        return posixpath.join(self.report_dir(label), name)

    def write_report_file(self, label: str, name: str, text: str) -> str:
        """Write (atomically replace) one file of a report; returns its path."""
        return self._write_text_file(self.report_dir(label), name, text)

    def _write_text_file(self, folder: str, name: str, text: str) -> str:
        self.fs.makedirs(folder, exist_ok=True)
        final = posixpath.join(folder, name)
        temporary = posixpath.join(folder, f".{name}.{uuid.uuid4().hex}.tmp")
        with self.fs.open(temporary, "w", encoding="utf-8") as fh:
            fh.write(text)
        self._replace(temporary, final)
        return final

    def read_json(self, table: str, day: date, name: str) -> dict[str, Any] | None:
        return self._read_json_file(posixpath.join(self.partition_dir(table, day), name))

    def _read_json_file(self, path: str) -> dict[str, Any] | None:
        if not self.fs.exists(path):
            return None
        with self.fs.open(path, "r") as fh:
            document: dict[str, Any] = json.load(fh)
        return document

    def _replace(self, temporary: str, final: str) -> None:
        if self._local:
            os.replace(temporary, final)  # atomic on POSIX
        else:  # object stores: a whole-object write; readers see the old or the new object
            self.fs.mv(temporary, final)

    def _remove_stale_temporaries(self, folder: str, part: str) -> None:
        """Left by a killed writer of this part; no other writer of it runs at the same time."""
        for entry in self._listing(folder):
            name = posixpath.basename(entry)
            if name.startswith(f".{part}.parquet.") and name.endswith(".tmp"):
                self.fs.rm(entry)
