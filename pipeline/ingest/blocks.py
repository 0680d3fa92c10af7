"""Blocks of lines validated side by side on one-thread DuckDB cursors, read ahead and written
behind in background threads, and handed on in line order."""

from __future__ import annotations

import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.config import Settings

SCAN_CHUNK_ROWS = 32_768


class InOrder:
    """Runs calls one after another in a background thread (writing a block's rows while the
    next block is validated); the first error is raised by the next put or by close."""

    def __init__(self) -> None:
        self._calls: queue.Queue[tuple[Callable[..., object], tuple[Any, ...]] | None] = (
            queue.Queue(maxsize=2)
        )
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while (call := self._calls.get()) is not None:
            if self._error is None:
                try:
                    call[0](*call[1])
                except BaseException as exc:
                    self._error = exc

    def put(self, function: Callable[..., object], *args: Any) -> None:
        if self._error is not None:
            raise self._error
        self._calls.put((function, args))

    def close(self) -> None:
        self._calls.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error


def prefetched(batches: Iterator[pa.Table]) -> Iterator[pa.Table]:
    """Read and split the next block in a thread while DuckDB validates this one (both
    release the GIL for their heavy work)."""
    ahead: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)

    def produce() -> None:
        try:
            for batch in batches:
                ahead.put(("batch", batch))
            ahead.put(("end", None))
        except BaseException as exc:  # handed to the consumer, which raises it
            ahead.put(("error", exc))

    worker = threading.Thread(target=produce, daemon=True)
    worker.start()
    while True:
        kind, item = ahead.get()
        if kind == "end":
            break
        if kind == "error":
            raise item
        yield item
    worker.join()


def validated_blocks(
    con: duckdb.DuckDBPyConnection, sql: str, batches: Iterator[pa.Table], settings: Settings
) -> Iterator[tuple[pa.Table, pa.Table]]:
    """(block, its validation) in order, one block per core at a time, each on a cursor of its
    own: the query is a projection, and one thread per block wastes less than DuckDB's
    threads splitting every block."""
    workers = settings.duckdb_threads or os.cpu_count() or 1
    cursors: queue.SimpleQueue[duckdb.DuckDBPyConnection] = queue.SimpleQueue()
    for _ in range(workers):
        cursors.put(con.cursor())

    def validate(batch: pa.Table) -> pa.Table:
        cursor = cursors.get()
        try:
            return validate_block(cursor, sql, batch)
        finally:
            cursors.put(cursor)

    con.execute("SET threads = 1")
    pending: deque[tuple[pa.Table, Future[pa.Table]]] = deque()
    try:
        with ThreadPoolExecutor(workers) as pool:
            while True:
                try:
                    batch = next(batches)
                except StopIteration:
                    break
                except Exception:  # a damaged file: the blocks read before it still count
                    while pending:
                        done, future = pending.popleft()
                        yield done, future.result()
                    raise
                pending.append((batch, pool.submit(validate, batch)))
                if len(pending) == workers:
                    done, future = pending.popleft()
                    yield done, future.result()
            while pending:
                done, future = pending.popleft()
                yield done, future.result()
    finally:
        con.execute(f"SET threads = {workers}")
        while not cursors.empty():
            cursors.get().close()


def validate_block(con: duckdb.DuckDBPyConnection, sql: str, batch: pa.Table) -> pa.Table:
    """Validate one block. DuckDB scans its Arrow slices (in parallel where the connection has
    threads) and, as it is told to preserve insertion order, gives the rows back in line
    order; they are sorted here only if they somehow are not."""
    batch = pa.Table.from_batches(batch.to_batches(max_chunksize=SCAN_CHUNK_ROWS))
    con.register("batch", batch)
    try:
        result = con.sql(sql).to_arrow_table()
    finally:
        con.unregister("batch")
    lines = result["source_line"]
    if len(lines) > 1 and not pc.all(pc.less(lines[:-1], lines[1:])).as_py():
        result = result.take(pc.sort_indices(lines))
    return result
