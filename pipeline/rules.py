"""The rules of SPEC §3 as one vectorised DuckDB query: as-of joins for consent, a join with the
registry for partnership periods. Pure: tables in, flags out; no I/O, no clock."""

from __future__ import annotations

from datetime import date

import duckdb
import pyarrow as pa

from pipeline.config import Settings
from pipeline.schema import FLAGS

# Severity by rule; writing or deleting someone's messages raises it one level.
BASE_SEVERITY = {
    "UNKNOWN_APP": "high",
    "AFTER_PARTNERSHIP_END": "high",
    "BEFORE_PARTNERSHIP_START": "medium",
    "SCOPE_NOT_IN_PARTNERSHIP": "high",
    "NO_SIGNIN": "high",
    "SIGNIN_REVOKED": "high",
    "SIGNIN_EXPIRED": "medium",
    "SCOPE_NOT_GRANTED": "medium",
}
RAISED = {"low": "medium", "medium": "high", "high": "critical", "critical": "critical"}
MICROS_PER_DAY = 86_400_000_000


def _sql_list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]::VARCHAR[]"


def _severity_sql() -> str:
    cases = " ".join(
        f"WHEN '{rule}' THEN CASE WHEN action IN ('write', 'delete') "
        f"THEN '{RAISED[level]}' ELSE '{level}' END"
        for rule, level in BASE_SEVERITY.items()
    )
    return f"CASE rule {cases} END"


WHEN = "strftime(event_time, '%Y-%m-%d %H:%M:%S UTC')"


def _ago(later: str, earlier: str) -> str:
    """'3 days', '5 hours' or '12 minutes' between two timestamps, for explanations."""
    micros = f"(epoch_us({later}) - epoch_us({earlier}))"
    return (
        f"CASE WHEN {micros} >= 2 * {MICROS_PER_DAY} "
        f"THEN CAST({micros} // {MICROS_PER_DAY} AS VARCHAR) || ' days' "
        f"WHEN {micros} >= 3600000000 THEN CAST({micros} // 3600000000 AS VARCHAR) || ' hours' "
        f"ELSE CAST({micros} // 60000000 AS VARCHAR) || ' minutes' END"
    )


def _explanation_sql() -> str:
    """One plain sentence per flag: who did what to whose messages, and why it was not covered."""
    verb = "CASE action WHEN 'read' THEN 'read' WHEN 'write' THEN 'wrote' ELSE 'deleted' END"
    who = "coalesce(partner_name || ' (app ' || app_id || ')', 'App ' || app_id)"
    did = f"{who} || ' ' || {verb} || ' ' || resource || ' of user ' || user_id || ' at ' || {WHEN}"
    scopes = "coalesce(nullif(array_to_string({}, ' '), ''), 'nothing')"
    ts = "strftime({}, '%Y-%m-%d %H:%M UTC')"
    reasons = {
        "UNKNOWN_APP": "' but the app is not in the partnership registry'",
        "AFTER_PARTNERSHIP_END": f"', ' || {_ago('event_time', 'partnership_end')} || ' after its "
        f"partnership ended on ' || {ts.format('partnership_end')}",
        "BEFORE_PARTNERSHIP_START": f"', before its partnership started on ' || "
        f"{ts.format('partnership_start')}",
        "SCOPE_NOT_IN_PARTNERSHIP": f"' (' || scope || '), which its partnership does not allow "
        f"(allowed: ' || {scopes.format('partnership_scopes')} || ')'",
        "NO_SIGNIN": "' but the user never signed in through this app'",
        "SIGNIN_REVOKED": f"', ' || {_ago('event_time', 'last_revoke_time')} || ' after the user "
        f"revoked the sign-in (' || {ts.format('last_revoke_time')} || ')'",
        "SIGNIN_EXPIRED": f"' but the user''s last sign-in (' || {ts.format('last_grant_time')} || "
        f"') expired on ' || {ts.format('grant_expired_at')} || ' after ' || "
        f"CAST(grant_ttl_days AS VARCHAR) || ' days'",
        "SCOPE_NOT_GRANTED": f"' (' || scope || ') but the user granted only ' || "
        f"{scopes.format('last_grant_scopes')}",
    }
    cases = " ".join(f"WHEN '{rule}' THEN {reason}" for rule, reason in reasons.items())
    return f"{did} || CASE rule {cases} END || '.'"


def flags_sql(day: date, settings: Settings) -> str:
    """Flags for the day over views `access` (the day's), `consent` (any days) and `registry`."""
    skew_us = round(settings.clock_skew_seconds * 1_000_000)
    return f"""
WITH acc AS (
    SELECT *, resource || '.' || action AS scope,
           event_time + INTERVAL ({skew_us}) MICROSECOND AS grant_horizon
    FROM access
    WHERE list_contains({_sql_list(settings.message_resources)}, resource) AND status < 400
), apps AS (
    SELECT app_id, any_value(partner_id) AS partner_id, any_value(partner_name) AS partner_name,
           any_value(grant_ttl_days) AS grant_ttl_days
    FROM registry GROUP BY app_id
), periods AS (
    -- SPEC §3.2, per access over its app's registry rows
    SELECT a.request_id,
           bool_or(r.period_start <= a.event_time
                   AND (r.period_end IS NULL OR a.event_time < r.period_end)) AS covered,
           bool_or(r.period_start <= a.event_time
                   AND (r.period_end IS NULL OR a.event_time < r.period_end)
                   AND list_contains(r.period_scopes, a.scope)) AS allowed,
           max(r.period_end) FILTER (WHERE r.period_end <= a.event_time) AS ended_at,
           min(r.period_start) FILTER (WHERE r.period_start > a.event_time) AS next_start,
           arg_max(r.period_start, r.period_end) FILTER (WHERE r.period_end <= a.event_time)
               AS ended_start,
           arg_max(r.period_scopes, r.period_start) FILTER (
               WHERE r.period_start <= a.event_time
                 AND (r.period_end IS NULL OR a.event_time < r.period_end)) AS covering_scopes,
           arg_max(r.period_start, r.period_start) FILTER (
               WHERE r.period_start <= a.event_time
                 AND (r.period_end IS NULL OR a.event_time < r.period_end)) AS covering_start,
           arg_max(r.period_end, r.period_start) FILTER (
               WHERE r.period_start <= a.event_time
                 AND (r.period_end IS NULL OR a.event_time < r.period_end)) AS covering_end,
           arg_min(r.period_end, r.period_start) FILTER (WHERE r.period_start > a.event_time)
               AS next_end,
           arg_min(r.period_scopes, r.period_start) FILTER (WHERE r.period_start > a.event_time)
               AS next_scopes,
           arg_max(r.period_scopes, r.period_end) FILTER (WHERE r.period_end <= a.event_time)
               AS ended_scopes
    FROM acc a JOIN registry r USING (app_id)
    GROUP BY a.request_id
), pairs AS (
    SELECT DISTINCT user_id, app_id FROM acc
), delivered AS (
    -- consent delivered on days <= D, for the (user, app) pairs that matter today
    SELECT c.* FROM consent c SEMI JOIN pairs USING (user_id, app_id)
    WHERE c.delivery_date <= DATE '{day.isoformat()}'
), grants AS (
    -- of two grants at one instant, the one ingested last wins
    SELECT user_id, app_id, event_time AS grant_time, scopes AS grant_scopes
    FROM delivered WHERE event_type = 'grant'
    QUALIFY row_number() OVER (PARTITION BY user_id, app_id, event_time
                               ORDER BY delivery_date DESC, source_file DESC,
                                        source_line DESC) = 1
), revokes AS (
    SELECT DISTINCT user_id, app_id, event_time AS revoke_time
    FROM delivered WHERE event_type = 'revoke'
), judged AS (
    SELECT a.*, p.*, ap.partner_id, ap.partner_name, ap.grant_ttl_days,
           g.grant_time, g.grant_scopes, v.revoke_time,
           -- at equal times a grant comes before a revoke: the revoke wins
           v.revoke_time IS NOT NULL
               AND (g.grant_time IS NULL OR v.revoke_time >= g.grant_time) AS last_is_revoke,
           g.grant_time + to_microseconds(
               CAST(round(ap.grant_ttl_days * {MICROS_PER_DAY}) AS BIGINT)) AS expires_at
    FROM acc a
    LEFT JOIN apps ap USING (app_id)
    LEFT JOIN periods p USING (request_id)
    ASOF LEFT JOIN grants g
        ON a.user_id = g.user_id AND a.app_id = g.app_id AND a.grant_horizon >= g.grant_time
    ASOF LEFT JOIN revokes v
        ON a.user_id = v.user_id AND a.app_id = v.app_id AND a.event_time >= v.revoke_time
), ruled AS (
    SELECT *,
        CASE
            WHEN partner_id IS NULL THEN 'UNKNOWN_APP'
            WHEN NOT covered AND ended_at IS NOT NULL THEN 'AFTER_PARTNERSHIP_END'
            WHEN NOT covered THEN 'BEFORE_PARTNERSHIP_START'
            WHEN NOT allowed THEN 'SCOPE_NOT_IN_PARTNERSHIP'
        END AS partnership_rule,
        CASE
            WHEN partner_id IS NULL THEN NULL
            WHEN grant_time IS NULL THEN 'NO_SIGNIN'
            WHEN last_is_revoke THEN 'SIGNIN_REVOKED'
            WHEN grant_ttl_days IS NOT NULL
                 AND epoch_us(event_time) - epoch_us(grant_time)
                     > CAST(round(grant_ttl_days * {MICROS_PER_DAY}) AS BIGINT)
                THEN 'SIGNIN_EXPIRED'
            WHEN grant_scopes IS NOT NULL AND NOT list_contains(grant_scopes, scope)
                THEN 'SCOPE_NOT_GRANTED'
        END AS consent_rule
    FROM judged
), flagged AS (
    SELECT * EXCLUDE (rules), unnest(rules) AS rule
    FROM (SELECT *, list_filter([partnership_rule, consent_rule], lambda r: r IS NOT NULL) AS rules
          FROM ruled)
), evidenced AS (
    SELECT *,
        CASE rule WHEN 'AFTER_PARTNERSHIP_END' THEN ended_start
                  WHEN 'BEFORE_PARTNERSHIP_START' THEN next_start
                  ELSE covering_start END AS partnership_start,
        CASE rule WHEN 'AFTER_PARTNERSHIP_END' THEN ended_at
                  WHEN 'BEFORE_PARTNERSHIP_START' THEN next_end
                  ELSE covering_end END AS partnership_end,
        CASE rule WHEN 'AFTER_PARTNERSHIP_END' THEN ended_scopes
                  WHEN 'BEFORE_PARTNERSHIP_START' THEN next_scopes
                  ELSE covering_scopes END AS partnership_scopes,
        grant_time AS last_grant_time,
        grant_scopes AS last_grant_scopes,
        revoke_time AS last_revoke_time,
        CASE WHEN rule = 'SIGNIN_EXPIRED' THEN expires_at END AS grant_expired_at
    FROM flagged
)
SELECT md5(concat_ws(chr(31), rule, app_id, request_id)) AS flag_id,
       rule, {_severity_sql()} AS severity,
       request_id, event_time, app_id, partner_id, partner_name, user_id, resource, action,
       scope, status, method, path, ip,
       last_grant_time, last_grant_scopes,
       CASE WHEN last_grant_time IS NOT NULL THEN last_grant_scopes IS NULL END
           AS last_grant_all_scopes,
       last_revoke_time, grant_expired_at, grant_ttl_days,
       partnership_start, partnership_end, partnership_scopes,
       {_explanation_sql()} AS explanation,
       delivery_date, source_file, source_line
FROM evidenced
ORDER BY event_time, request_id, rule
"""


def flags_for_day(
    access: pa.Table, consent: pa.Table, registry: pa.Table, day: date, settings: Settings
) -> pa.Table:
    """Flags (schema FLAGS) for the day's access events, from in-memory tables."""
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        for name, table in (("access", access), ("consent", consent), ("registry", registry)):
            con.register(name, table)
        result = con.sql(flags_sql(day, settings)).to_arrow_table()
    finally:
        con.close()
    return result.select(FLAGS.names).cast(FLAGS)
