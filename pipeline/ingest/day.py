"""Ingest one delivery day of one record kind: validate, deduplicate, redact, quarantine.

Lines stream through in blocks: each block is validated by one DuckDB query and its rows go to a
local staging file, so memory does not grow with the day. Duplicates are resolved over the whole
day at the end, then the warehouse partitions are replaced.
"""

from __future__ import annotations

import gzip
import logging
import os
import time
import zlib
from collections import Counter
from collections.abc import Callable
from datetime import date

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline import duck
from pipeline.config import Settings
from pipeline.ingest.blocks import InOrder, prefetched, validated_blocks
from pipeline.ingest.counts import FileCounts, IngestResult
from pipeline.ingest.dedupe import conflict_raw_lines, resolve_duplicates
from pipeline.ingest.reading import Readings
from pipeline.ingest.row_keys import file_index_of, row_keys, unreadable_row, with_lineage
from pipeline.ingest.staging import Staging
from pipeline.ingest.validation import ACCESS_KIND, CONSENT_KIND
from pipeline.readers.formats.convert import with_format_reasons
from pipeline.readers.jsonl import FileStats
from pipeline.readers.landing import Landing, LandingFile
from pipeline.sources import day_files
from pipeline.tables import value_counts
from pipeline.warehouse import Warehouse

log = logging.getLogger(__name__)


KINDS = {"access": ACCESS_KIND, "consent": CONSENT_KIND}


def _validate_file(
    con: duckdb.DuckDBPyConnection,
    readings: Readings,
    landing: Landing,
    source: LandingFile,
    file_index: int,
    staging: Staging,
    writes: InOrder,
    settings: Settings,
    on_lines: Callable[[int], None],
) -> FileCounts:
    counts = FileCounts(file=source.name, size=source.size, version=source.version)
    stats = FileStats()
    reasons: Counter[str] = Counter()
    try:
        with landing.open(source.path) as fh:
            lines = readings.blocks(fh, source, stats)
            sql = readings.sql(source)
            for batch, validated in validated_blocks(con, sql, prefetched(lines), settings):
                result = with_format_reasons(validated, batch)  # no-op for canonical files
                reasons.update(value_counts(result["reason"]))
                writes.put(staging.add, result, file_index, source.name)
                counts.read += batch.num_rows
                on_lines(batch.num_rows)
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        # An unreadable (e.g. truncated) file keeps what was read and is reported, not fatal.
        counts.error = f"{type(exc).__name__}: {exc}"
        log.warning("%s: unreadable after line %d: %s", source.path, stats.lines, counts.error)
        unreadable = unreadable_row(file_index, stats.lines + 1, counts.error)
        writes.put(staging.add_rejected, unreadable)
        reasons["unreadable_file"] += 1
        counts.read += 1
    counts.sha256, counts.lines, counts.blank_lines = stats.sha256, stats.lines, stats.blank_lines
    counts.quarantined = dict(reasons)
    return counts


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
    files: list[LandingFile] = list(day_files(landing, settings, kind_name, day))
    readings = Readings(kind, settings, landing)
    with warehouse.scratch_dir() as scratch:
        con = duck.connect(settings, spill_dir=scratch)
        records_path = os.path.join(scratch, "records.parquet")
        with warehouse.local_part_writer(kind_name, records_path) as records:
            staging = Staging(scratch, kind, day, records)
            writes = InOrder()
            try:
                counts = [
                    _validate_file(
                        con, readings, landing, f, i, staging, writes, settings, on_lines
                    )
                    for i, f in enumerate(files)
                ]
            finally:
                writes.close()
                staging.close_keys()
        names = [f.name for f in files]
        identical, conflicting = resolve_duplicates(con, staging, kind, records_path, names)
        if conflicting.num_rows:
            staging.add_rejected(
                conflict_raw_lines(con, landing, files, conflicting, kind, readings)
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
            key = row_keys(file_index, batch["source_line"])
            writer.write(batch.filter(pc.invert(pc.is_in(key, value_set=dropped))))


def _read_optional(path: str) -> pa.Table:
    return pq.read_table(path) if os.path.exists(path) else pa.table({})


def _tally_duplicates(counts: list[FileCounts], keys: pa.Table, what: str) -> None:
    if not keys.num_rows:
        return
    per_file = Counter(file_index_of(int(k)) for k in keys["row_key"].to_numpy())
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
            rejected = with_lineage(rejected.sort_by("row_key"), day, names)
            rejected = rejected.append_column(
                "kind", pa.repeat(pa.scalar(kind_name), rejected.num_rows)
            ).rename_columns({"raw_redacted": "raw"})
            writer.write(rejected)
