"""The day-wide dedupe (SPEC §2): the same id twice with identical content counts once; with
different content the first is kept and the others are quarantined as conflicting."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.ingest.blocks import validate_block
from pipeline.ingest.reading import Readings
from pipeline.ingest.row_keys import file_and_line, file_index_of, line_of, row_keys
from pipeline.ingest.staging import Staging
from pipeline.ingest.validation import RecordKind
from pipeline.readers.jsonl import FileStats
from pipeline.readers.landing import Landing, LandingFile


def resolve_duplicates(
    con: duckdb.DuckDBPyConnection,
    staging: Staging,
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
    source_file, source_line = file_and_line(candidates["row_key"], file_names)
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


def conflict_raw_lines(
    con: duckdb.DuckDBPyConnection,
    landing: Landing,
    files: list[LandingFile],
    conflicting: pa.Table,
    kind: RecordKind,
    readings: Readings,
) -> pa.Table:
    """Re-read the few lines that conflict, to quarantine their (redacted) raw text."""
    keys = conflicting["row_key"].to_numpy()
    pieces = []
    for file_index in sorted({file_index_of(int(k)) for k in keys}):
        wanted = pa.array(
            [line_of(int(k)) for k in keys if file_index_of(int(k)) == file_index],
            pa.int64(),
        )
        source = files[file_index]
        sql = readings.sql(source, redact_all=True)
        with landing.open(source.path) as fh:
            for lines in readings.blocks(fh, source, FileStats()):
                wanted_lines = lines.filter(pc.is_in(lines["source_line"], value_set=wanted))
                if wanted_lines.num_rows:
                    result = validate_block(con, sql, wanted_lines)
                    pieces.append(
                        pa.table(
                            {
                                "row_key": row_keys(file_index, result["source_line"]),
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
