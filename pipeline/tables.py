"""Small Arrow helpers shared by the steps."""

from __future__ import annotations

import pyarrow as pa


def value_counts(column: pa.Array | pa.ChunkedArray) -> dict[str, int]:
    """How often each non-null value occurs."""
    counts = column.drop_null().value_counts()
    values, numbers = counts.field("values").to_pylist(), counts.field("counts").to_pylist()
    return dict(zip(values, numbers, strict=True))
