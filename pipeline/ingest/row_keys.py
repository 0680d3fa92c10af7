"""Row keys of staged records: which file and line a record came from, as one integer."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pyarrow.compute as pc

# Row key of a staged record: file index in the high bits, line number in the low ones.
LINE_BITS = 40


def row_keys(
    file_index: int | pa.Array | pa.ChunkedArray, lines: pa.Array | pa.ChunkedArray
) -> pa.Array:
    """The row keys of lines of one file (an index) or of each row's file (an array of indexes)."""
    if isinstance(file_index, int):
        high: pa.Scalar | pa.Array = pa.scalar(file_index << LINE_BITS, pa.int64())
    else:
        high = pc.shift_left(file_index.cast(pa.int64()), LINE_BITS)
    return pc.add(high, lines).cast(pa.int64())


def file_index_of(key: int) -> int:
    """The index of the file a row key names."""
    return key >> LINE_BITS


def line_of(key: int) -> int:
    """The line number a row key names."""
    return key & ((1 << LINE_BITS) - 1)


def file_and_line(
    row_keys: pa.ChunkedArray, file_names: list[str]
) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    """The source file's name and the line number that a row key stands for."""
    file_index = pc.shift_right(row_keys, LINE_BITS).cast(pa.int32())
    line = pc.bit_wise_and(row_keys, pa.scalar((1 << LINE_BITS) - 1, pa.int64()))
    return pc.take(pa.array(file_names, pa.string()), file_index), line


def with_lineage(table: pa.Table, day: date, file_names: list[str]) -> pa.Table:
    names, _ = file_and_line(table["row_key"], file_names)
    delivery = pa.repeat(pa.scalar(day, pa.date32()), table.num_rows)
    return table.append_column("delivery_date", delivery).append_column("source_file", names)


def unreadable_row(file_index: int, line: int, error: str) -> pa.Table:
    return pa.table(
        {
            "row_key": row_keys(file_index, pa.array([line], pa.int64())),
            "source_line": pa.array([line], pa.int64()),
            "reason": ["unreadable_file"],
            "detail": [error[:300]],
            "record_id": pa.array([None], pa.string()),
            "raw_redacted": [""],
        }
    )
