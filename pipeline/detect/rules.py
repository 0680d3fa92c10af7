"""The rules of SPEC §3 as one vectorised DuckDB query: as-of joins for consent, a join with the
registry for partnership periods. Pure: tables in, flags out; no I/O, no clock."""

from __future__ import annotations

from datetime import date

import duckdb
import pyarrow as pa

from pipeline.config import Settings
from pipeline.detect.alert_ids import rule_alert_id_sql
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
# The user of an admin (tenant-wide) consent: a consent event of every user of its app.
ALL_USERS = "*"
MICROS_PER_DAY = 86_400_000_000
FLAG_ORDER = "event_time, request_id, rule"  # the order of a day's flags, whoever writes them


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
    # one concat (not a chain of ||, each of which would build a string)
    did = f"{who}, ' ', {verb}, ' ', resource, ' of user ', user_id, ' at ', {WHEN}"
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
    return f"concat({did}, CASE rule {cases} END, '.')"


def judged_access_sql(settings: Settings, source: str = "access") -> str:
    """The accesses the rules judge (message content, call succeeded), with the columns they
    read: a query over `source`."""
    return f"""
SELECT request_id, event_time, app_id, user_id, resource, action, status FROM {source}
WHERE list_contains({_sql_list(settings.message_resources)}, resource) AND status < 400
"""


def _partnership_sql() -> str:
    """SPEC §3.2 per app and segment of time. An app's period starts and ends cut time into
    segments in which every period comparison comes out the same; so each segment is judged
    once, at its start, and an access takes its segment's answer and evidence."""
    within = (
        "r.period_start <= s.seg_start AND (r.period_end IS NULL OR s.seg_start < r.period_end)"
    )
    ended = "r.period_end <= s.seg_start"
    upcoming = "r.period_start > s.seg_start"
    return f"""
    SELECT s.app_id, s.seg_start, s.seg_end,
           bool_or({within}) AS covered,
           flatten(list(r.period_scopes) FILTER (WHERE {within})) AS allowed_scopes,
           bool_or({ended}) AS ended_before,
           max(r.period_end) FILTER (WHERE {ended}) AS ended_at,
           arg_max(r.period_start, r.period_end) FILTER (WHERE {ended}) AS ended_start,
           arg_max(r.period_scopes, r.period_end) FILTER (WHERE {ended}) AS ended_scopes,
           min(r.period_start) FILTER (WHERE {upcoming}) AS next_start,
           arg_min(r.period_end, r.period_start) FILTER (WHERE {upcoming}) AS next_end,
           arg_min(r.period_scopes, r.period_start) FILTER (WHERE {upcoming}) AS next_scopes,
           max(r.period_start) FILTER (WHERE {within}) AS covering_start,
           arg_max(r.period_end, r.period_start) FILTER (WHERE {within}) AS covering_end,
           arg_max(r.period_scopes, r.period_start) FILTER (WHERE {within}) AS covering_scopes
    FROM (
        SELECT app_id, b AS seg_start,
               coalesce(lead(b) OVER (PARTITION BY app_id ORDER BY b),
                        'infinity'::TIMESTAMPTZ) AS seg_end
        FROM (SELECT DISTINCT app_id, unnest(['-infinity'::TIMESTAMPTZ, period_start,
                                             period_end]) AS b FROM registry)
        WHERE b IS NOT NULL
    ) s JOIN registry r USING (app_id)
    GROUP BY s.app_id, s.seg_start, s.seg_end"""


def evidence_sql(day: date, settings: Settings) -> str:
    """Per flag, its rule and evidence (no access columns but request_id), over views `access`
    (the day's), `consent` (any days) and `registry`."""
    skew_us = round(settings.clock_skew_seconds * 1_000_000)
    return f"""
WITH acc AS (
    -- only what the rules read; the flagged rows' other columns are joined back at the end
    SELECT request_id, event_time, app_id, user_id, resource || '.' || action AS scope
    FROM ({judged_access_sql(settings)})
), apps AS (
    SELECT app_id, any_value(partner_id) AS partner_id, any_value(partner_name) AS partner_name,
           any_value(grant_ttl_days) AS grant_ttl_days
    FROM registry GROUP BY app_id
), partnership AS ({_partnership_sql()}
), pairs AS (
    SELECT DISTINCT user_id, app_id FROM acc
), delivered AS (
    -- consent delivered on days <= D, for the (user, app) pairs that matter today; an admin
    -- consent (user '{ALL_USERS}') is one of each user of its app, as if they had given it
    SELECT * FROM consent SEMI JOIN pairs USING (user_id, app_id)
    WHERE delivery_date <= DATE '{day.isoformat()}'
    UNION ALL
    SELECT c.* REPLACE (p.user_id AS user_id) FROM consent c JOIN pairs p USING (app_id)
    WHERE c.user_id = '{ALL_USERS}' AND p.user_id <> '{ALL_USERS}'
        AND c.delivery_date <= DATE '{day.isoformat()}'
), grants AS MATERIALIZED (  -- materialized: grant_id must be the same for both readers
    -- of two grants at one instant, the one ingested last wins
    SELECT *, row_number() OVER () AS grant_id FROM delivered WHERE event_type = 'grant'
    QUALIFY row_number() OVER (PARTITION BY user_id, app_id, event_time
                               ORDER BY delivery_date DESC, source_file DESC,
                                        source_line DESC) = 1
), history AS (
    -- One ordered stream per (user, app): its consent events, then the accesses. A grant
    -- sorts at its time minus the allowed skew, so it precedes the accesses it may cover; at
    -- equal keys grants come before revokes (the revoke wins) and both before accesses.
    SELECT user_id, app_id, event_time - INTERVAL ({skew_us}) MICROSECOND AS sort_time,
           0 AS rank, event_time AS grant_time, grant_id, NULL::TIMESTAMPTZ AS revoke_time,
           NULL::VARCHAR AS request_id, NULL::VARCHAR AS scope
    FROM grants
    UNION ALL
    SELECT user_id, app_id, event_time, 1, NULL, NULL, event_time, NULL, NULL
    FROM delivered WHERE event_type = 'revoke'
    UNION ALL
    SELECT user_id, app_id, event_time, 2, NULL, NULL, NULL, request_id, scope FROM acc
), as_of AS (
    -- each access with the last eligible grant and the last eligible revoke before it
    SELECT request_id, app_id, sort_time AS event_time, scope,
           last_value(grant_time IGNORE NULLS) OVER w AS grant_time,
           last_value(grant_id IGNORE NULLS) OVER w AS grant_id,
           last_value(revoke_time IGNORE NULLS) OVER w AS revoke_time
    FROM history
    WINDOW w AS (PARTITION BY user_id, app_id
                 ORDER BY sort_time, rank ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
    QUALIFY rank = 2
), judged AS (
    SELECT c.*, ap.partner_id, ap.partner_name, ap.grant_ttl_days, p.* EXCLUDE (app_id),
           g.scopes AS grant_scopes,
           -- at equal times a grant comes before a revoke: the revoke wins
           c.revoke_time IS NOT NULL
               AND (c.grant_time IS NULL OR c.revoke_time >= c.grant_time) AS last_is_revoke
    FROM as_of c
    LEFT JOIN apps ap ON ap.app_id = c.app_id
    LEFT JOIN partnership p
        ON p.app_id = c.app_id AND p.seg_start <= c.event_time AND c.event_time < p.seg_end
    LEFT JOIN grants g ON g.grant_id = c.grant_id
), ruled AS (
    SELECT * FROM (
        SELECT *,
            CASE
                WHEN partner_id IS NULL THEN 'UNKNOWN_APP'
                WHEN NOT covered AND ended_before THEN 'AFTER_PARTNERSHIP_END'
                WHEN NOT covered THEN 'BEFORE_PARTNERSHIP_START'
                WHEN NOT list_contains(allowed_scopes, scope) THEN 'SCOPE_NOT_IN_PARTNERSHIP'
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
    )
    WHERE partnership_rule IS NOT NULL OR consent_rule IS NOT NULL
), flagged AS (
    SELECT *, unnest(list_filter([partnership_rule, consent_rule],
                                 lambda r: r IS NOT NULL)) AS rule
    FROM ruled
)
SELECT rule, request_id, scope, partner_id, partner_name, grant_ttl_days,
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
    CASE WHEN rule = 'SIGNIN_EXPIRED' THEN grant_time + to_microseconds(
        CAST(round(grant_ttl_days * {MICROS_PER_DAY}) AS BIGINT)) END AS grant_expired_at
FROM flagged
"""


def decorated_flags_sql(evidence: str, day: date) -> str:
    """Flag rows from `evidence` (what evidence_sql gives) joined with the day's `access` rows:
    one pass over the access columns, however many shards made the evidence. The rows are put
    in order before the id, severity and sentence are added: the sort then moves less."""
    return f"""
SELECT md5(concat_ws(chr(31), rule, app_id, request_id)) AS flag_id,
       {rule_alert_id_sql(day)} AS alert_id,
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
FROM (SELECT * FROM {evidence} JOIN access USING (request_id) ORDER BY {FLAG_ORDER})
"""


def flags_sql(day: date, settings: Settings) -> str:
    """Flags for the day over views `access` (the day's), `consent` (any days) and `registry`."""
    return decorated_flags_sql(f"({evidence_sql(day, settings)})", day)


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
