"""Ingest one delivery day of one record kind: validate, deduplicate, redact, quarantine.

Lines stream through in blocks: each block is validated by one DuckDB query and its rows go to a
local staging file, so memory does not grow with the day. Duplicates are resolved over the whole
day at the end, then the warehouse partitions are replaced.
"""

from __future__ import annotations

import gzip
import logging
import os
import queue
import threading
import time
import zlib
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline import duck
from pipeline.config import Settings
from pipeline.readers.jsonl import FileStats, read_line_batches
from pipeline.readers.landing import Landing, LandingFile
from pipeline.tables import value_counts
from pipeline.validation import ACCESS_KIND, CONSENT_KIND, RecordKind, validation_sql
from pipeline.warehouse import PartitionWriter, Warehouse

log = logging.getLogger(__name__)

KINDS = {"access": ACCESS_KIND, "consent": CONSENT_KIND}
SCAN_CHUNK_ROWS = 32_768
# Row key of a staged record: file index in the high bits, line number in the low ones.
LINE_BITS = 40


@dataclass
class FileCounts:
    """One input file's reconciliation: read = valid + quarantined + duplicates_dropped."""

    file: str
    size: int
    version: str = ""
    sha256: str = ""
    lines: int = 0
    blank_lines: int = 0
    read: int = 0
    valid: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    duplicates_dropped: int = 0
    error: str | None = None


@dataclass
class IngestResult:
    kind: str
    day: str
    files: list[FileCounts]
    seconds: float = 0.0

    def totals(self) -> dict[str, int]:
        quarantined = sum(sum(f.quarantined.values()) for f in self.files)
        return {
            "files": len(self.files),
            "read": sum(f.read for f in self.files),
            "valid": sum(f.valid for f in self.files),
            "quarantined": quarantined,
            "duplicates_dropped": sum(f.duplicates_dropped for f in self.files),
        }

    def reasons(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for f in self.files:
            total.update(f.quarantined)
        return dict(sorted(total.items()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "day": self.day,
            "seconds": round(self.seconds, 3),
            "totals": self.totals(),
            "quarantine_reasons": self.reasons(),
            "files": [asdict(f) for f in self.files],
        }


class _Staging:
    """Scratch files of one ingest: the valid rows (already in the table's final form), their
    identities for the day-wide dedupe, and the rejected rows."""

    def __init__(self, folder: str, kind: RecordKind, day: date, records: PartitionWriter) -> None:
        self.keys_path = os.path.join(folder, "keys.parquet")
        self.rejected_path = os.path.join(folder, "rejected.parquet")
        self.records = records
        self.keys: pq.ParquetWriter | None = None
        self.rejected: pq.ParquetWriter | None = None
        self.kind, self.day = kind, day

    def add(self, result: pa.Table, file_index: int, file_name: str) -> None:
        key = pc.add(pa.scalar(file_index << LINE_BITS, pa.int64()), result["source_line"])
        result = result.append_column("row_key", key.cast(pa.int64()))
        bad = pc.is_valid(result["reason"])
        rejected = result.filter(bad).select(
            ["row_key", "source_line", "reason", "detail", "record_id", "raw_redacted"]
        )
        valid = result.filter(pc.invert(bad)) if rejected.num_rows else result  # no copy
        if valid.num_rows:
            keys = valid.select(["row_key", "id_hash", "content_hash"])
            # read once, by the dedupe: not worth compressing or dictionary-encoding
            self.keys = self.keys or pq.ParquetWriter(
                self.keys_path, keys.schema, compression="none", use_dictionary=False
            )
            self.keys.write_table(keys)
            n = valid.num_rows
            self.records.write(
                valid.append_column(
                    "delivery_date", pa.repeat(pa.scalar(self.day, pa.date32()), n)
                ).append_column("source_file", pa.repeat(pa.scalar(file_name), n))
            )
        if rejected.num_rows:
            self.add_rejected(rejected)

    def add_rejected(self, rejected: pa.Table) -> None:
        self.rejected = self.rejected or pq.ParquetWriter(
            self.rejected_path, rejected.schema, compression="none"
        )
        self.rejected.write_table(rejected.cast(self.rejected.schema))

    def close_keys(self) -> None:
        if self.keys is not None:
            self.keys.close()

    def close_rejected(self) -> None:
        if self.rejected is not None:
            self.rejected.close()


def _validate_file(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    landing: Landing,
    source: LandingFile,
    file_index: int,
    staging: _Staging,
    writes: _InOrder,
    settings: Settings,
    on_lines: Callable[[int], None],
) -> FileCounts:
    counts = FileCounts(file=source.name, size=source.size, version=source.version)
    stats = FileStats()
    reasons: Counter[str] = Counter()
    try:
        with landing.open(source.path) as fh:
            lines = read_line_batches(fh, source.name, settings.read_block_bytes, stats)
            for batch, result in _validated(con, sql, _prefetched(lines), settings):
                reasons.update(value_counts(result["reason"]))
                writes.put(staging.add, result, file_index, source.name)
                counts.read += batch.num_rows
                on_lines(batch.num_rows)
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        # An unreadable (e.g. truncated) file keeps what was read and is reported, not fatal.
        counts.error = f"{type(exc).__name__}: {exc}"
        log.warning("%s: unreadable after line %d: %s", source.path, stats.lines, counts.error)
        unreadable = _unreadable_row(file_index, stats.lines + 1, counts.error)
        writes.put(staging.add_rejected, unreadable)
        reasons["unreadable_file"] += 1
        counts.read += 1
    counts.sha256, counts.lines, counts.blank_lines = stats.sha256, stats.lines, stats.blank_lines
    counts.quarantined = dict(reasons)
    return counts


class _InOrder:
    """Runs calls one after another in a background thread (writing a block's rows while the
    next block is validated); the first error is raised by the next put or by close."""

    def __init__(self) -> None:
        self._calls: queue.Queue[tuple[Callable[..., object], tuple[Any, ...]] | None] = (
            queue.Queue(maxsize=2)
        )
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while (call := self._calls.get()) is not None:
            if self._error is None:
                try:
                    call[0](*call[1])
                except BaseException as exc:
                    self._error = exc

    def put(self, function: Callable[..., object], *args: Any) -> None:
        if self._error is not None:
            raise self._error
        self._calls.put((function, args))

    def close(self) -> None:
        self._calls.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error


def _prefetched(batches: Iterator[pa.Table]) -> Iterator[pa.Table]:
    """Read and split the next block in a thread while DuckDB validates this one (both
    release the GIL for their heavy work)."""
    ahead: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)

    def produce() -> None:
        try:
            for batch in batches:
                ahead.put(("batch", batch))
            ahead.put(("end", None))
        except BaseException as exc:  # handed to the consumer, which raises it
            ahead.put(("error", exc))

    worker = threading.Thread(target=produce, daemon=True)
    worker.start()
    while True:
        kind, item = ahead.get()
        if kind == "end":
            break
        if kind == "error":
            raise item
        yield item
    worker.join()


def _validated(
    con: duckdb.DuckDBPyConnection, sql: str, batches: Iterator[pa.Table], settings: Settings
) -> Iterator[tuple[pa.Table, pa.Table]]:
    """(block, its validation) in order, one block per core at a time, each on a cursor of its
    own: the query is a projection, and one thread per block wastes less than DuckDB's
    threads splitting every block."""
    workers = settings.duckdb_threads or os.cpu_count() or 1
    cursors: queue.SimpleQueue[duckdb.DuckDBPyConnection] = queue.SimpleQueue()
    for _ in range(workers):
        cursors.put(con.cursor())

    def validate(batch: pa.Table) -> pa.Table:
        cursor = cursors.get()
        try:
            return _run(cursor, sql, batch)
        finally:
            cursors.put(cursor)

    con.execute("SET threads = 1")
    pending: deque[tuple[pa.Table, Future[pa.Table]]] = deque()
    try:
        with ThreadPoolExecutor(workers) as pool:
            while True:
                try:
                    batch = next(batches)
                except StopIteration:
                    break
                except Exception:  # a damaged file: the blocks read before it still count
                    while pending:
                        done, future = pending.popleft()
                        yield done, future.result()
                    raise
                pending.append((batch, pool.submit(validate, batch)))
                if len(pending) == workers:
                    done, future = pending.popleft()
                    yield done, future.result()
            while pending:
                done, future = pending.popleft()
                yield done, future.result()
    finally:
        con.execute(f"SET threads = {workers}")
        while not cursors.empty():
            cursors.get().close()


def _run(con: duckdb.DuckDBPyConnection, sql: str, batch: pa.Table) -> pa.Table:
    """Validate one block. DuckDB scans its Arrow slices (in parallel where the connection has
    threads) and, as it is told to preserve insertion order, gives the rows back in line
    order; they are sorted here only if they somehow are not."""
    batch = pa.Table.from_batches(batch.to_batches(max_chunksize=SCAN_CHUNK_ROWS))
    con.register("batch", batch)
    try:
        result = con.sql(sql).to_arrow_table()
    finally:
        con.unregister("batch")
    lines = result["source_line"]
    if len(lines) > 1 and not pc.all(pc.less(lines[:-1], lines[1:])).as_py():
        result = result.take(pc.sort_indices(lines))
    return result


def _unreadable_row(file_index: int, line: int, error: str) -> pa.Table:
    return pa.table(
        {
            "row_key": pa.array([(file_index << LINE_BITS) + line], pa.int64()),
            "source_line": pa.array([line], pa.int64()),
            "reason": ["unreadable_file"],
            "detail": [error[:300]],
            "record_id": pa.array([None], pa.string()),
            "raw_redacted": [""],
        }
    )


def _resolve_duplicates(
    con: duckdb.DuckDBPyConnection,
    staging: _Staging,
    kind: RecordKind,
    records_path: str,
    file_names: list[str],
) -> tuple[pa.Table, pa.Table]:
    """Row keys of identical duplicates and of conflicting ones (first copy kept, in read order)."""
    empty = pa.table({"row_key": pa.array([], pa.int64())})
    if staging.keys is None:
        return empty, empty
    # Repeated ids are found by a 64-bit hash of the id, so the day-wide pass reads integers
    # only; the ids themselves are read back just for the rows whose hash repeats (a hash
    # collision brings a few more rows to the exact test by the id itself).
    candidates = con.sql(
        f"""
        SELECT row_key, content_hash FROM read_parquet('{staging.keys_path}')
        WHERE id_hash IN (SELECT id_hash FROM read_parquet('{staging.keys_path}')
                          GROUP BY id_hash HAVING count(*) > 1)
        """
    ).to_arrow_table()
    if not candidates.num_rows:
        return empty, empty
    source_file, source_line = _file_and_line(candidates["row_key"], file_names)
    candidates = candidates.append_column("source_file", source_file)
    con.register("candidates", candidates.append_column("source_line", source_line))
    judged = con.sql(
        f"""
        WITH copies AS (
            SELECT c.row_key, row_number() OVER w AS copy_no,
                   c.content_hash = first_value(c.content_hash) OVER w AS identical
            FROM read_parquet('{records_path}') r
            JOIN candidates c USING (source_file, source_line)
            WINDOW w AS (PARTITION BY r.{kind.id_field} ORDER BY c.row_key)
        )
        SELECT row_key, identical FROM copies WHERE copy_no > 1
        """
    ).to_arrow_table()
    con.unregister("candidates")
    identical = judged.filter(judged["identical"]).select(["row_key"])
    conflicting = judged.filter(pc.invert(judged["identical"])).select(["row_key"])
    return identical, conflicting


def _file_and_line(
    row_keys: pa.ChunkedArray, file_names: list[str]
) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    """The source file's name and the line number that a row key stands for."""
    file_index = pc.shift_right(row_keys, LINE_BITS).cast(pa.int32())
    line = pc.bit_wise_and(row_keys, pa.scalar((1 << LINE_BITS) - 1, pa.int64()))
    return pc.take(pa.array(file_names, pa.string()), file_index), line


def _lineage(table: pa.Table, day: date, file_names: list[str]) -> pa.Table:
    names, _ = _file_and_line(table["row_key"], file_names)
    delivery = pa.repeat(pa.scalar(day, pa.date32()), table.num_rows)
    return table.append_column("delivery_date", delivery).append_column("source_file", names)


def _conflict_raw_lines(
    con: duckdb.DuckDBPyConnection,
    landing: Landing,
    files: list[LandingFile],
    conflicting: pa.Table,
    kind: RecordKind,
    settings: Settings,
) -> pa.Table:
    """Re-read the few lines that conflict, to quarantine their (redacted) raw text."""
    keys = conflicting["row_key"].to_numpy()
    sql = validation_sql(kind, settings, redact_all=True)
    pieces = []
    for file_index in sorted({int(k) >> LINE_BITS for k in keys}):
        wanted = pa.array(
            [int(k) & ((1 << LINE_BITS) - 1) for k in keys if int(k) >> LINE_BITS == file_index],
            pa.int64(),
        )
        source = files[file_index]
        with landing.open(source.path) as fh:
            for lines in read_line_batches(fh, source.name, settings.read_block_bytes, FileStats()):
                wanted_lines = lines.filter(pc.is_in(lines["source_line"], value_set=wanted))
                if wanted_lines.num_rows:
                    result = _run(con, sql, wanted_lines)
                    key = pc.add(
                        pa.scalar(file_index << LINE_BITS, pa.int64()), result["source_line"]
                    )
                    pieces.append(
                        pa.table(
                            {
                                "row_key": key.cast(pa.int64()),
                                "source_line": result["source_line"],
                                "reason": pa.repeat(
                                    pa.scalar("conflicting_duplicate"), len(result)
                                ),
                                "detail": pa.repeat(
                                    pa.scalar(
                                        f"same {kind.id_field} as an earlier record of this day, "
                                        "different content; the first is kept"
                                    ),
                                    len(result),
                                ),
                                "record_id": result["record_id"],
                                "raw_redacted": result["raw_redacted"],
                            }
                        )
                    )
    return pa.concat_tables(pieces)


def ingest_day(
    kind_name: str,
    day: date,
    landing: Landing,
    warehouse: Warehouse,
    settings: Settings,
    on_lines: Callable[[int], None] = lambda n: None,
) -> IngestResult:
    """Landing <kind>/<day>/ → warehouse <kind>/date=<day> and its share of quarantine."""
    started = time.perf_counter()
    kind = KINDS[kind_name]
    files = landing.files(kind_name, day)
    sql = validation_sql(kind, settings)
    with warehouse.scratch_dir() as scratch:
        con = duck.connect(settings, spill_dir=scratch)
        records_path = os.path.join(scratch, "records.parquet")
        with warehouse.local_part_writer(kind_name, records_path) as records:
            staging = _Staging(scratch, kind, day, records)
            writes = _InOrder()
            try:
                counts = [
                    _validate_file(con, sql, landing, f, i, staging, writes, settings, on_lines)
                    for i, f in enumerate(files)
                ]
            finally:
                writes.close()
                staging.close_keys()
        names = [f.name for f in files]
        identical, conflicting = _resolve_duplicates(con, staging, kind, records_path, names)
        if conflicting.num_rows:
            staging.add_rejected(
                _conflict_raw_lines(con, landing, files, conflicting, kind, settings)
            )
        staging.close_rejected()
        con.close()
        _tally_duplicates(counts, identical, "duplicates")
        _tally_duplicates(counts, conflicting, "conflicting")
        dropped = pa.concat_tables([identical, conflicting])["row_key"]
        if len(dropped):
            _commit_without(warehouse, kind_name, day, records_path, dropped, names)
        else:  # the common case: the staged file is the partition, committed by a rename
            warehouse.commit_file(kind_name, day, records_path)
        _write_quarantine(warehouse, kind_name, day, staging.rejected_path, names)
    result = IngestResult(kind_name, day.isoformat(), counts, time.perf_counter() - started)
    for f in counts:
        f.valid = f.read - sum(f.quarantined.values()) - f.duplicates_dropped
    log.info("ingest %s %s: %s in %.1fs", kind_name, day, result.totals(), result.seconds)
    return result


def _commit_without(
    warehouse: Warehouse,
    kind_name: str,
    day: date,
    records_path: str,
    dropped: pa.ChunkedArray,
    names: list[str],
) -> None:
    """Commit the staged rows less the later copies of duplicated records."""
    with warehouse.write_partition(kind_name, day) as writer:
        for batch in pq.ParquetFile(records_path).iter_batches(1 << 18):
            file_index = pc.index_in(batch["source_file"], value_set=pa.array(names))
            key = pc.add(
                pc.shift_left(file_index.cast(pa.int64()), LINE_BITS), batch["source_line"]
            )
            writer.write(batch.filter(pc.invert(pc.is_in(key, value_set=dropped))))


def _read_optional(path: str) -> pa.Table:
    return pq.read_table(path) if os.path.exists(path) else pa.table({})


def _tally_duplicates(counts: list[FileCounts], keys: pa.Table, what: str) -> None:
    if not keys.num_rows:
        return
    per_file = Counter(int(k) >> LINE_BITS for k in keys["row_key"].to_numpy())
    for file_index, n in per_file.items():
        if what == "duplicates":
            counts[file_index].duplicates_dropped += n
        else:
            q = counts[file_index].quarantined
            q["conflicting_duplicate"] = q.get("conflicting_duplicate", 0) + n


def _write_quarantine(
    warehouse: Warehouse, kind_name: str, day: date, rejected_path: str, names: list[str]
) -> None:
    """This kind's part of the day's quarantine, in read order."""
    rejected = _read_optional(rejected_path)
    with warehouse.write_partition("quarantine", day, part=kind_name) as writer:
        if rejected.num_rows:
            rejected = _lineage(rejected.sort_by("row_key"), day, names)
            rejected = rejected.append_column(
                "kind", pa.repeat(pa.scalar(kind_name), rejected.num_rows)
            ).rename_columns({"raw_redacted": "raw"})
            writer.write(rejected)
