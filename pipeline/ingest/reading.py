"""How each delivered file of one record kind is read and validated: its blocks as validation
takes them (canonical lines, or a real format's typed records) and the validation query for
them, built once per source."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

import pyarrow as pa

from pipeline.config import Settings
from pipeline.ingest.validation import RecordKind, validation_sql
from pipeline.readers.formats import Conversion, file_conversion, record_batches
from pipeline.readers.jsonl import FileStats
from pipeline.readers.landing import Landing, LandingFile


class Readings:
    """The reading of the files of one kind of one day (conversions and queries cached by
    source: a day's files of one source share them)."""

    def __init__(self, kind: RecordKind, settings: Settings, landing: Landing) -> None:
        self.kind, self.settings, self.landing = kind, settings, landing
        self._conversions: dict[object, Conversion | None] = {}
        self._queries: dict[tuple[object, bool], str] = {}

    def _conversion(self, file: LandingFile) -> Conversion | None:
        key = getattr(file, "source", None)
        if key not in self._conversions:
            self._conversions[key] = file_conversion(
                file, self.kind.name, self.settings, self.landing
            )
        return self._conversions[key]

    def sql(self, file: LandingFile, redact_all: bool = False) -> str:
        """The validation query of the file's blocks."""
        key = (getattr(file, "source", None), redact_all)
        if key not in self._queries:
            conversion = self._conversion(file)
            typed = conversion.types if conversion is not None else None
            self._queries[key] = validation_sql(
                self.kind, self.settings, redact_all=redact_all, typed=typed
            )
        return self._queries[key]

    def blocks(self, fh: IO[bytes], file: LandingFile, stats: FileStats) -> Iterator[pa.Table]:
        """The file's blocks as its validation query takes them."""
        return record_batches(fh, file, self.settings, stats, self._conversion(file))
