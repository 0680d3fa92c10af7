"""Readers of the formats platforms really export (SPEC §2): one module per format describes its
records; `convert.py` is the one mechanism that turns any description into canonical lines."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from importlib import import_module
from typing import IO

import pyarrow as pa

from pipeline import duck
from pipeline.config import Settings, Source
from pipeline.readers.formats.convert import conversion_sql, converted_batches
from pipeline.readers.formats.describe import RecordFormat
from pipeline.readers.formats.mapping import Mapping, load_mapping
from pipeline.readers.jsonl import FileStats, read_line_batches
from pipeline.readers.landing import Landing, LandingFile

FORMAT_MODULES = (
    "google_workspace_token",
    "m365_mail_items_accessed",
    "graph_activity",
    "entra_audit",
    "okta_system_log",
    "gateway",
)


def describe(source: Source, mapping: Mapping) -> RecordFormat:
    """The description of a source's records, built for its settings and mapping."""
    if source.format not in FORMAT_MODULES:
        raise ValueError(f"no reader for format {source.format!r}")
    module = import_module(f"pipeline.readers.formats.{source.format}")
    describe_records: Callable[[Source, Mapping], RecordFormat] = module.describe
    return describe_records(source, mapping)


def primary_kind(source: Source, fmt: RecordFormat) -> str:
    """The kind whose ingest quarantines the records that give no event of either kind."""
    return fmt.primary_kind if source.kind == "both" else source.kind


def source_sql(source: Source, kind: str, mapping: Mapping) -> tuple[str, bool]:
    """The conversion query of a source's records of `kind`, and whether its records unnest."""
    fmt = describe(source, mapping)
    if kind not in fmt.kinds:
        raise ValueError(f"format {source.format} gives no {kind} records")
    return conversion_sql(fmt, kind, primary_kind(source, fmt), mapping), fmt.items is not None


def record_batches(
    raw_file: IO[bytes],
    file: LandingFile,
    kind: str,
    settings: Settings,
    landing: Landing,
    stats: FileStats,
) -> Iterator[pa.Table]:
    """Blocks of canonical lines (source_line, raw, encoding_ok[, format_reason, format_detail])
    of one delivered file, whatever its source's format."""
    lines = read_line_batches(raw_file, file.name, settings.read_block_bytes, stats)
    source: Source | None = getattr(file, "source", None)
    if source is None or source.format == "canonical":
        return lines
    sql, unnests = source_sql(source, kind, load_mapping(landing, source.mapping))
    return _converted(sql, unnests, lines, settings)


def _converted(
    sql: str, unnests: bool, lines: Iterator[pa.Table], settings: Settings
) -> Iterator[pa.Table]:
    con = duck.connect(settings)
    # one thread: the conversion runs beside validation's per-core workers, a block at a time
    con.execute("SET threads = 1")
    try:
        yield from converted_batches(con, sql, lines, unnests)
    finally:
        con.close()
