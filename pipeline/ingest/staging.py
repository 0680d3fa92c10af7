"""Scratch files of one ingest: the valid rows, their identities for the dedupe, the rejections."""

from __future__ import annotations

import os
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.ingest.row_keys import row_keys
from pipeline.ingest.validation import RecordKind
from pipeline.warehouse import PartitionWriter


class Staging:
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
        result = result.append_column("row_key", row_keys(file_index, result["source_line"]))
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
