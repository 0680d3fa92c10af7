"""An alert's flags, read from the warehouse when someone asks for them (SPEC §5): a page for the
alert's page, a stream for a CSV export of any size, the users it touched.

DuckDB scans the day's flags Parquet (the Warehouse lists its files) for one `alert_id`; filter
values are bound as parameters, never pasted into the query.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import duckdb
import pyarrow as pa

from pipeline.schema import FLAGS
from pipeline.warehouse import Warehouse

BATCH_ROWS = 65_536
MAX_LIMIT = 10_000
ORDER = "event_time, flag_id"  # flag_id is unique: a stable order, so pages never overlap


@contextmanager
def _flags_of_day(warehouse: Warehouse, day: date) -> Iterator[duckdb.DuckDBPyConnection | None]:
    """A DuckDB connection with the view `flags` over the day's flag parts (None: no parts)."""
    files = warehouse.part_files("flags", day)
    if not files:
        yield None
        return
    con = duckdb.connect()
    try:  # the Warehouse hands DuckDB the day's parts on any file system
        warehouse.scan(con, "flags", [day]).create_view("flags")
        yield con
    finally:
        con.close()


def _where(
    alert_id: str, user: str | None, request_id: str | None, action: str | None
) -> tuple[str, list[Any]]:
    conditions, values = ["alert_id = ?"], [alert_id]
    for column, value in (("user_id", user), ("request_id", request_id), ("action", action)):
        if value is not None:
            conditions.append(f"{column} = ?")
            values.append(value)
    return " AND ".join(conditions), values


def _check(offset: int, limit: int) -> None:
    if not isinstance(offset, int) or offset < 0:
        raise ValueError(f"offset must be a whole number from 0, not {offset!r}")
    if not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be from 1 to {MAX_LIMIT}, not {limit!r}")


def alert_flags(
    warehouse: Warehouse,
    day: date,
    alert_id: str,
    *,
    user: str | None = None,
    request_id: str | None = None,
    action: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> pa.Table:
    """One page of the alert's flags (schema.FLAGS), oldest event first, filtered by user,
    request id and action when given; empty when the day has no flags."""
    _check(offset, limit)
    where, values = _where(alert_id, user, request_id, action)
    with _flags_of_day(warehouse, day) as con:
        if con is None:
            return FLAGS.empty_table()
        table = con.sql(
            f"SELECT {', '.join(FLAGS.names)} FROM flags WHERE {where} "
            f"ORDER BY {ORDER} LIMIT {limit} OFFSET {offset}",
            params=values,
        ).to_arrow_table()
    return table.cast(FLAGS)


def alert_flag_count(
    warehouse: Warehouse,
    day: date,
    alert_id: str,
    *,
    user: str | None = None,
    request_id: str | None = None,
    action: str | None = None,
) -> int:
    """How many of the alert's flags match the filters (for paging)."""
    where, values = _where(alert_id, user, request_id, action)
    with _flags_of_day(warehouse, day) as con:
        if con is None:
            return 0
        row = con.execute(f"SELECT count(*) FROM flags WHERE {where}", values).fetchone()
    return int(row[0]) if row else 0


def iter_alert_flag_batches(
    warehouse: Warehouse,
    day: date,
    alert_id: str,
    *,
    user: str | None = None,
    request_id: str | None = None,
    action: str | None = None,
    batch_rows: int = BATCH_ROWS,
) -> Iterator[pa.RecordBatch]:
    """Every flag of the alert matching the filters, in the page order, as record batches: memory
    stays at one batch whatever the alert's size."""
    where, values = _where(alert_id, user, request_id, action)
    with _flags_of_day(warehouse, day) as con:
        if con is None:
            return
        reader = con.sql(
            f"SELECT {', '.join(FLAGS.names)} FROM flags WHERE {where} ORDER BY {ORDER}",
            params=values,
        ).to_arrow_reader(batch_rows)
        for batch in reader:
            yield pa.Table.from_batches([batch]).cast(FLAGS).combine_chunks().to_batches()[0]


def alert_users(
    warehouse: Warehouse,
    day: date,
    alert_id: str,
    *,
    search: str | None = None,
    limit: int = 20,
) -> pa.Table:
    """The users the alert's flags touched, most flags first (user_id, flags, first and last
    event time); `search` keeps the user ids that contain it (case-insensitive)."""
    _check(0, limit)
    where, values = _where(alert_id, None, None, None)
    if search:
        where += " AND contains(lower(user_id), lower(?))"
        values.append(search)
    schema = pa.schema(
        [
            pa.field("user_id", pa.string()),
            pa.field("flags", pa.int64()),
            pa.field("first_event_time", FLAGS.field("event_time").type),
            pa.field("last_event_time", FLAGS.field("event_time").type),
        ]
    )
    with _flags_of_day(warehouse, day) as con:
        if con is None:
            return schema.empty_table()
        table = con.sql(
            "SELECT user_id, count(*) AS flags, min(event_time) AS first_event_time, "
            f"max(event_time) AS last_event_time FROM flags WHERE {where} "
            f"GROUP BY user_id ORDER BY flags DESC, user_id LIMIT {limit}",
            params=values,
        ).to_arrow_table()
    return table.cast(schema)
