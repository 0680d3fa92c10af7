"""Readers of the formats platforms really export (SPEC §2): one module per format describes its
records; `convert.py` is the one mechanism that turns any description into canonical lines."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import import_module
from typing import IO

import pyarrow as pa

from pipeline import duck
from pipeline.config import Settings, Source
from pipeline.readers.formats.convert import conversion_sql, converted_batches, field_types
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


@dataclass(frozen=True)
class Conversion:
    """How a source's records of one kind become canonical ones: the query, whether records
    unnest, and the DuckDB type of each canonical field's typed column (validation's `typed`)."""

    sql: str
    unnests: bool
    types: dict[str, str]


def source_conversion(
    source: Source, kind: str, mapping: Mapping, settings: Settings
) -> Conversion:
    """The conversion of a source's records of `kind`."""
    fmt = describe(source, mapping)
    if kind not in fmt.kinds:
        raise ValueError(f"format {source.format} gives no {kind} records")
    sql = conversion_sql(fmt, kind, primary_kind(source, fmt), mapping)
    con = duck.connect(settings)
    try:
        types = field_types(con, sql)
    finally:
        con.close()
    return Conversion(sql, fmt.items is not None, types)


def file_conversion(
    file: LandingFile, kind: str, settings: Settings, landing: Landing
) -> Conversion | None:
    """The conversion of a delivered file's records; None for a file of canonical lines."""
    source: Source | None = getattr(file, "source", None)
    if source is None or source.format == "canonical":
        return None
    return source_conversion(source, kind, load_mapping(landing, source.mapping), settings)


def record_batches(
    raw_file: IO[bytes],
    file: LandingFile,
    settings: Settings,
    stats: FileStats,
    conversion: Conversion | None,
) -> Iterator[pa.Table]:
    """Blocks of one delivered file as validation takes them: canonical lines (source_line, raw,
    encoding_ok), or with `conversion` its typed records (see convert.conversion_sql)."""
    lines = read_line_batches(raw_file, file.name, settings.read_block_bytes, stats)
    if conversion is None:
        return lines
    return _converted(conversion.sql, conversion.unnests, lines, settings)


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
