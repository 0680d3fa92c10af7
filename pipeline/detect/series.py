"""Series (SPEC §5): the alerts of one (app_id, rule) on consecutive delivery days.

A pure function over alert keys, so that whoever groups alerts (the review store, a report) groups
them the same way. A series is named by its app, rule and first day: when a backfill adds the day
before a series, the series grows backwards and takes a new id; decisions belong to alerts, so no
decision is lost by that.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from pipeline.schema import SERIES


def series_id_sql(app_column: str, rule_column: str, start_column: str) -> str:
    """md5 hex of "series|app_id|rule|first day" as a DuckDB expression."""
    return (
        f"md5(concat_ws('|', 'series', {app_column}, {rule_column}, "
        f"strftime({start_column}, '%Y-%m-%d')))"
    )


def series_of(keys: pa.Table) -> pa.Table:
    """Each distinct (app_id, rule, day) of `keys` with its series: id, first and last day, days.

    Days of one (app_id, rule) that follow each other without a gap form one series.
    """
    con = duckdb.connect()
    try:
        con.register("keys", keys.select(["app_id", "rule", "day"]))
        result = con.sql(
            f"""
            WITH days AS (SELECT DISTINCT app_id, rule, day FROM keys
                          WHERE app_id IS NOT NULL AND rule IS NOT NULL AND day IS NOT NULL),
            islands AS (
                -- consecutive days share day - (its rank within the app and rule)
                SELECT *, day - CAST(row_number() OVER (PARTITION BY app_id, rule ORDER BY day)
                                     AS INTEGER) AS island
                FROM days
            ), spans AS (
                SELECT *, min(day) OVER w AS series_start, max(day) OVER w AS series_end,
                       count(*) OVER w AS series_days
                FROM islands WINDOW w AS (PARTITION BY app_id, rule, island)
            )
            SELECT app_id, rule, day, {series_id_sql("app_id", "rule", "series_start")}
                       AS series_id, series_start, series_end, series_days
            FROM spans ORDER BY app_id, rule, day
            """
        ).to_arrow_table()
    finally:
        con.close()
    return result.cast(SERIES)
