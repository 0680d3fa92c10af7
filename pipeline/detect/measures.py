"""The two measures per partner the story asks about, as pure DuckDB over flag rows (schema.FLAGS,
any days): the flags already carry the evidence each needs (the revoke time, the partnership end)
and the alert they belong to.

- post-revocation token use: for each revoke of a user's grant that the app's calls outlived
  (SIGNIN_REVOKED flags of that user, app and revoke time), how long after the revoke the last
  such call came, and how many calls there were;
- post-termination use: for each ended partnership period its app kept calling
  (AFTER_PARTNERSHIP_END flags of that app and end), how long after the end the last call came.

"Stopped" is the last call seen in the days handed in: when calls go on past them, the figure is a
lower bound (`last_call` is then the last day's).
"""

from __future__ import annotations

from datetime import date

import duckdb
import pyarrow as pa

from pipeline import duck
from pipeline.config import Settings
from pipeline.schema import MEASURE_COLUMNS
from pipeline.warehouse import Warehouse

WORST = 3  # worst cases kept per partner, linked to their alerts


def _per_case_sql(flags: str, rule: str, since: str) -> str:
    """One row per (app, user or not, start of the unauthorised time): calls, last call, lag."""
    user = "user_id" if rule == "SIGNIN_REVOKED" else "NULL::VARCHAR AS user_id"
    group_user = ", user_id" if rule == "SIGNIN_REVOKED" else ""
    return f"""
    SELECT coalesce(partner_id, app_id) AS partner_id, any_value(partner_name) AS partner_name,
           app_id, {user}, {since} AS since, count(*)::BIGINT AS calls,
           count(DISTINCT user_id)::BIGINT AS users,
           min(event_time) AS first_call, max(event_time) AS last_call,
           epoch(max(event_time) - {since}) AS seconds,
           arg_max(alert_id, event_time) AS alert_id
    FROM {flags} WHERE rule = '{rule}' AND {since} IS NOT NULL
    GROUP BY coalesce(partner_id, app_id), app_id{group_user}, {since}
    """


def _per_partner_sql(cases: str) -> str:
    worst = (
        "list({'app_id': app_id, 'user_id': user_id, 'since': since, 'last_call': last_call, "
        "'seconds': seconds, 'calls': calls, 'alert_id': alert_id} "
        f"ORDER BY seconds DESC, app_id, user_id)[1:{WORST}]"
    )
    return f"""
    SELECT partner_id, any_value(partner_name) AS partner_name, count(*)::BIGINT AS cases,
           sum(calls)::BIGINT AS calls, median(seconds) AS median_seconds,
           max(seconds) AS max_seconds, {worst} AS worst
    FROM ({cases}) GROUP BY partner_id ORDER BY partner_id
    """


def post_revocation_use(con: duckdb.DuckDBPyConnection, flags: str) -> pa.Table:
    """Per partner: revokes its calls outlived (`cases`), calls after them, median and longest
    time from a revoke to the last call for that user, and the worst cases with their alerts."""
    cases = _per_case_sql(flags, "SIGNIN_REVOKED", "last_revoke_time")
    return con.sql(_per_partner_sql(cases)).to_arrow_table()


def post_termination_use(con: duckdb.DuckDBPyConnection, flags: str) -> pa.Table:
    """Per partner: ended periods its apps kept calling (`cases`), calls after the end, and the
    longest time from an end to the last call, with the worst cases and their alerts."""
    cases = _per_case_sql(flags, "AFTER_PARTNERSHIP_END", "partnership_end")
    return con.sql(_per_partner_sql(cases)).to_arrow_table()


def partner_measures(
    warehouse: Warehouse, days: list[date], settings: Settings, partner_id: str | None = None
) -> dict[str, pa.Table]:
    """Both measures over the flags of `days` (what the report and UI show), read where the
    flags lie: `post_revocation` and `post_termination`, one row per partner each (only
    `partner_id`'s when given: the partner page)."""
    con = duck.connect(settings)
    try:
        flags = warehouse.scan(con, "flags", days, MEASURE_COLUMNS)
        if partner_id is not None:  # both rules need a registry row: partner_id is never null
            wanted = duckdb.ColumnExpression("partner_id") == duckdb.ConstantExpression(partner_id)
            flags = flags.filter(wanted)
        flags.create_view("measured_flags")
        return {
            "post_revocation": post_revocation_use(con, "measured_flags"),
            "post_termination": post_termination_use(con, "measured_flags"),
        }
    finally:
        con.close()
