"""A k-way merge of Arrow streams that are each sorted by the same keys (ascending, no nulls):
the sorted union in bounded memory, one batch per stream at a time, instead of a sort of it all.

Each round takes the least of the streams' buffered last rows as a bound: no row still to come
from any stream is below it, so every buffered row up to it can go out, sorted, and at least one
stream's buffer empties. Keys are expected to be unique across the streams (a day's flags: one
per request and rule); equal keys would come out in no particular order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pyarrow as pa
import pyarrow.compute as pc


def _at_most(left: pa.Table, keys: list[str], right: pa.Table | dict[str, pa.Scalar]) -> pa.Array:
    """Per row, whether `left`'s key is <= `right`'s (a table of as many rows, or one key)."""
    result = pc.less_equal(left[keys[-1]], right[keys[-1]])
    for key in reversed(keys[:-1]):
        below = pc.less(left[key], right[key])
        result = pc.or_(below, pc.and_(pc.equal(left[key], right[key]), result))
    return result


def _in_order(table: pa.Table, keys: list[str]) -> bool:
    if table.num_rows < 2:
        return True
    before, after = table.slice(0, table.num_rows - 1), table.slice(1)
    return bool(pc.all(_at_most(before, keys, after)).as_py())


class _Stream:
    """One sorted input: its buffered rows, refilled a batch at a time when they run out."""

    def __init__(self, batches: Iterable[pa.RecordBatch], keys: list[str]) -> None:
        self._batches, self._keys = iter(batches), keys
        self._last: pa.Table | None = None  # the previous batch's last row, to check order
        self.rows: pa.Table | None = None
        self.refill()

    def refill(self) -> None:
        self.rows = None
        for batch in self._batches:
            if batch.num_rows:
                rows = pa.Table.from_batches([batch])
                checked = rows if self._last is None else pa.concat_tables([self._last, rows])
                if not _in_order(checked, self._keys):  # a caller's bug, not bad input
                    raise ValueError(f"merge input is not sorted by {', '.join(self._keys)}")
                self.rows, self._last = rows, rows.slice(rows.num_rows - 1)
                return

    def take_up_to(self, bound: dict[str, pa.Scalar]) -> pa.Table:
        """The buffered rows with keys <= bound (a prefix: the rows are sorted)."""
        assert self.rows is not None
        count = pc.sum(_at_most(self.rows, self._keys, bound)).as_py() or 0
        head, rest = self.rows.slice(0, count), self.rows.slice(count)
        if rest.num_rows:
            self.rows = rest
        else:
            self.refill()
        return head


def merge_sorted(
    streams: Iterable[Iterable[pa.RecordBatch]], keys: list[str]
) -> Iterator[pa.Table]:
    """The rows of `streams` (each sorted by `keys`, all of one schema) in `keys` order."""
    live = [s for s in (_Stream(batches, keys) for batches in streams) if s.rows is not None]
    order = [(key, "ascending") for key in keys]
    while live:
        lasts = [s.rows.slice(s.rows.num_rows - 1) for s in live if s.rows is not None]
        least = min(lasts, key=lambda row: tuple(row[k][0].as_py() for k in keys))
        bound = {k: least[k][0] for k in keys}
        chunk = pa.concat_tables([s.take_up_to(bound) for s in live])
        live = [s for s in live if s.rows is not None]
        yield chunk.take(pc.sort_indices(chunk, sort_keys=order))
