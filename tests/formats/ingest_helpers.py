"""Run the real ingest on a landing zone holding one source's files, and read what it stored."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipeline import steps
from pipeline.config import Settings, Source
from pipeline.warehouse import Warehouse

DAY = date(2026, 3, 1)
SAMPLES = Path(__file__).parent / "samples"


def write_source_day(root: Path, folder: str, files: dict[str, str], day: date = DAY) -> None:
    path = root / folder / day.isoformat()
    path.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (path / name).write_text(text)
    (path / "_SUCCESS").touch()


def ingest(
    tmp_path: Path, source: Source, files: dict[str, str], mapping: str = "", day: date = DAY
) -> tuple[dict[str, Any], Settings]:
    """Ingest one day of `source` (kinds it gives); returns the summaries by kind."""
    landing = tmp_path / "landing"
    write_source_day(landing, source.folder, files, day)
    if mapping:
        (landing / source.mapping).write_text(mapping)
    settings = Settings(
        landing=str(landing), warehouse=str(tmp_path / "wh"), sources=(source,), duckdb_threads=1
    )
    kinds = ("access", "consent") if source.kind == "both" else (source.kind,)
    return {k: steps._ingest(k, day, settings, None) for k in kinds}, settings


def stored(settings: Settings, table: str, day: date = DAY) -> pa.Table:
    return Warehouse(settings.warehouse).read_partition(table, day)


def rows(settings: Settings, table: str, columns: list[str], day: date = DAY) -> list[dict]:
    return stored(settings, table, day).select(columns).to_pylist()


def reconciles(summary: dict[str, Any]) -> bool:
    totals = summary["totals"]
    return totals["read"] == totals["valid"] + totals["quarantined"] + totals["duplicates_dropped"]


def canonical_lines(
    tmp_path: Path, source: Source, kind: str, text: str, mapping: str = ""
) -> list[dict]:
    """What the source's reader hands validation for one file: each line's number and its
    canonical record (JSON), or the format's reason for refusing it."""
    import json

    from pipeline.ingest.validation import typed_column
    from pipeline.readers.formats import file_conversion, record_batches
    from pipeline.readers.jsonl import FileStats
    from pipeline.readers.landing import Landing, LandingFile
    from pipeline.sources import SourceFile

    path = tmp_path / "one-file"
    path.write_text(text)
    if source.mapping:
        (tmp_path / source.mapping).write_text(mapping)
    landing = Landing(str(tmp_path))
    file = SourceFile("f.jsonl", str(path), path.stat().st_size, "", source)
    assert isinstance(file, LandingFile)
    conversion = file_conversion(file, kind, Settings(), landing)
    assert conversion is not None
    columns = {name: typed_column(name) for name in conversion.types}
    out = []
    with open(path, "rb") as fh:
        for batch in record_batches(fh, file, Settings(), FileStats(), conversion):
            for row in batch.to_pylist():
                if row.get("format_reason"):
                    out.append({"line": row["source_line"], "refused": row["format_reason"]})
                elif row["converted"]:  # the record's fields, as a canonical line holds them
                    record = {
                        name: json.loads(row[c])
                        if conversion.types[name] == "JSON" and row[c] is not None
                        else row[c]
                        for name, c in columns.items()
                    }
                    out.append({"line": row["source_line"], **record})
                elif row["encoding_ok"]:
                    out.append({"line": row["source_line"], "raw": row["raw"]})
    return out
