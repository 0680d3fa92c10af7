"""Behaviour features per partner-day and app-user-day, for the anomaly model. Pure: Arrow tables
in, tables out; vectorised DuckDB SQL, no file I/O, no clock.

`daily_features` counts what an entity did on one delivery day; `relative_features` puts each
figure beside the entity's own history, because the question is whether a partner's behaviour
*changed*, not whether it differs from other partners (a night-time crawler is normal for
itself). Three choices make "changed" mean what a reviewer means:

- Two baselines: the trailing median of the whole history window and the median of the last
  `RECENT_DAYS` days. Today is compared with the nearer edge of the range they span (inside it:
  no change). A new level is a change on its first days; once it has held on most of the recent
  days it is the entity's level and stops firing (a partnership that ended keeps its flags from
  the rules, not a daily anomaly).
- New IP addresses as a share of the day's, beside the entity's own usual share (each history
  day's IPs against the days before it): partners that rotate addresses are not always new.
- Credibility: with fewer than `MIN_HISTORY_DAYS` days of history an entity's changes are shrunk
  toward "no change" in proportion (a ratio r becomes r ** w, a delta d becomes d * w, with
  w = min(history_days, MIN_HISTORY_DAYS) / MIN_HISTORY_DAYS): a median of two days is noise.
"""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd
import pyarrow as pa

from pipeline import duck
from pipeline.config import Settings
from pipeline.schema import DAILY_FEATURES, ENTITY_KEYS, RATIO_COUNTS

PARTNER_DAY = "partner_day"
APP_USER_DAY = "app_user_day"
ENTITY_KINDS = (PARTNER_DAY, APP_USER_DAY)
NIGHT_END_HOUR = 5  # night: [00:00, 05:00) UTC
RECENT_DAYS = 3  # the short baseline: a change held on 2 of the last 3 days is the new level
MIN_HISTORY_DAYS = 7  # an entity's changes count fully from a week of history

# Compared as today - baseline (shares are already on one scale). new_ip_share is computed by
# relative_features: the share of the day's IPs the entity had not used before.
DELTA_SHARES = ("flagged_share", "night_share", "failed_rate", "new_ip_share")

MODEL_FEATURES: tuple[str, ...] = (
    *(f"{c}_ratio" for c in RATIO_COUNTS),
    *(f"{s}_delta" for s in DELTA_SHARES),
)

# Group keys of each entity kind over the `events` view. A partner_day of an app that is not in
# the registry is keyed by the app instead (partner_id null, app_id set): it is its own partner.
_KEYS = {
    PARTNER_DAY: {
        "partner_id": "partner_id",
        "app_id": "CASE WHEN partner_id IS NULL THEN app_id END",
        "user_id": "CAST(NULL AS VARCHAR)",
    },
    APP_USER_DAY: {"partner_id": "partner_id", "app_id": "app_id", "user_id": "user_id"},
}


def _in_list(values: tuple[str, ...]) -> str:
    return "(" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + ")"


def _day_literal(day: date) -> str:
    return f"TIMESTAMPTZ '{day.isoformat()} 00:00:00+00'"


def _prepare_sql(day: date, settings: Settings) -> str:
    """Views shared by both entity kinds: events with their partner and flags, live grants."""
    day_end = f"({_day_literal(day)} + INTERVAL 1 DAY)"
    return f"""
    CREATE OR REPLACE TEMP VIEW apps AS
        SELECT app_id, min(partner_id) AS partner_id, max(grant_ttl_days) AS ttl_days
        FROM registry GROUP BY app_id;
    CREATE OR REPLACE TEMP VIEW events AS
        SELECT a.app_id, a.user_id, a.thread_id, a.ip, a.status, a.event_time, p.partner_id,
               a.resource IN {_in_list(settings.message_resources)}
                   AND a.status < 400 AS is_message,
               a.action,
               hour(a.event_time) < {NIGHT_END_HOUR} AS is_night,
               date_trunc('minute', a.event_time) AS minute,
               a.request_id IN (SELECT request_id FROM flags) AS is_flagged
        FROM access a LEFT JOIN apps p USING (app_id);
    -- Live at the day's end: the last consent event (a revoke wins a tie) is an unexpired grant.
    CREATE OR REPLACE TEMP VIEW live_grants AS
        SELECT c.user_id, c.app_id, p.partner_id FROM (
            SELECT user_id, app_id, event_type, event_time, row_number() OVER (
                PARTITION BY user_id, app_id
                ORDER BY event_time DESC, event_type = 'revoke' DESC) AS newest
            FROM consent WHERE event_time < {day_end}
        ) c LEFT JOIN apps p USING (app_id)
        WHERE c.newest = 1 AND c.event_type = 'grant'
          AND (p.ttl_days IS NULL
               OR c.event_time + to_microseconds(CAST(p.ttl_days * 86400e6 AS BIGINT))
                  >= {day_end});
    CREATE OR REPLACE TEMP VIEW revokes AS
        SELECT c.user_id, c.app_id, p.partner_id FROM consent c LEFT JOIN apps p USING (app_id)
        WHERE c.event_type = 'revoke' AND c.delivery_date = DATE '{day.isoformat()}';
    """


def _entity_sql(kind: str, day: date) -> str:
    """One row per entity of `kind` that made at least one call on the day."""
    keys = _KEYS[kind]
    key_cols = ", ".join(f"{expr} AS {name}" for name, expr in keys.items())
    prefixed = ", ".join(f"{expr} AS k_{name}" for name, expr in keys.items())
    join_on = " AND ".join(f"e.{k} IS NOT DISTINCT FROM x.{k}" for k in keys)
    ips = "list_sort(list(DISTINCT ip) FILTER (WHERE ip IS NOT NULL))"
    return f"""
    WITH keyed AS (SELECT *, {prefixed} FROM events),
    counts AS (
        SELECT k_partner_id AS partner_id, k_app_id AS app_id, k_user_id AS user_id,
               count(*) AS calls,
               count(*) FILTER (WHERE is_message AND action = 'read') AS message_reads,
               count(*) FILTER (WHERE is_message AND action = 'write') AS message_writes,
               count(*) FILTER (WHERE is_message AND action = 'delete') AS message_deletes,
               count(*) FILTER (WHERE is_message) AS message_accesses,
               count(DISTINCT user_id) FILTER (WHERE is_message) AS distinct_users,
               count(DISTINCT thread_id) FILTER (WHERE is_message) AS distinct_threads,
               count(*) FILTER (WHERE is_message AND is_flagged) AS flagged_accesses,
               count(*) FILTER (WHERE is_message AND is_night) AS night_accesses,
               count(*) FILTER (WHERE status >= 400) AS failed_calls,
               count(DISTINCT ip) AS distinct_ips,
               {ips if kind == PARTNER_DAY else "CAST(NULL AS VARCHAR[])"} AS ips
        FROM keyed GROUP BY ALL
    ),
    bursts AS (
        SELECT partner_id, app_id, user_id, max(n) AS max_burst_per_minute FROM (
            SELECT k_partner_id AS partner_id, k_app_id AS app_id, k_user_id AS user_id,
                   count(*) AS n
            FROM keyed WHERE is_message GROUP BY k_partner_id, k_app_id, k_user_id, user_id, minute
        ) GROUP BY ALL
    ),
    grants AS (SELECT {key_cols}, count(*) AS live_grants FROM live_grants GROUP BY ALL),
    revoked AS (SELECT {key_cols}, count(*) AS revokes FROM revokes GROUP BY ALL)
    SELECT DATE '{day.isoformat()}' AS day, '{kind}' AS entity_kind,
           e.partner_id, e.app_id, e.user_id, e.calls,
           e.message_reads, e.message_writes, e.message_deletes, e.message_accesses,
           e.distinct_users, e.distinct_threads,
           coalesce(g.live_grants, 0) AS live_grants,
           -- no live grant counts as one, so the figure stays finite and grows with accesses
           e.message_accesses / greatest(coalesce(g.live_grants, 0), 1) AS accesses_per_live_grant,
           e.flagged_accesses,
           coalesce(e.flagged_accesses / nullif(e.message_accesses, 0), 0.0) AS flagged_share,
           coalesce(e.night_accesses / nullif(e.message_accesses, 0), 0.0) AS night_share,
           e.failed_calls / e.calls AS failed_rate,
           coalesce(b.max_burst_per_minute, 0) AS max_burst_per_minute,
           coalesce(r.revokes, 0) AS revokes,
           e.distinct_ips,
           e.ips
    FROM counts e
    LEFT JOIN bursts b ON {join_on.replace("x.", "b.")}
    LEFT JOIN grants g ON {join_on.replace("x.", "g.")}
    LEFT JOIN revoked r ON {join_on.replace("x.", "r.")}
    """


def daily_features(
    access: pa.Table,
    flags: pa.Table,
    consent: pa.Table,
    registry: pa.Table,
    day: date,
    settings: Settings,
) -> pa.Table:
    """The day's partner-day and app-user-day rows (schema DAILY_FEATURES), from in-memory tables.

    `access` and `flags` are the delivery day's; `consent` every consent event delivered on days
    <= `day`. A grant is live when it is the (user, app)'s last consent event up to the day's end
    and has not outlived the app's grant TTL.
    """
    con = duck.connect(settings)
    try:
        for name, table in (
            ("access", access),
            ("flags", flags),
            ("consent", consent),
            ("registry", registry),
        ):
            con.register(name, table)
        return daily_features_in(con, day, settings)
    finally:
        con.close()


def daily_features_in(con: duckdb.DuckDBPyConnection, day: date, settings: Settings) -> pa.Table:
    """As daily_features, over views `access`, `flags`, `consent` and `registry` that `con`
    already has (Parquet-backed in the pipeline, so a large day is never held in memory)."""
    con.execute(_prepare_sql(day, settings))
    union = " UNION ALL ".join(f"({_entity_sql(kind, day)})" for kind in ENTITY_KINDS)
    ordered = f"SELECT * FROM ({union}) ORDER BY entity_kind, partner_id, app_id, user_id"
    result = con.sql(ordered).to_arrow_table()
    return result.select(DAILY_FEATURES.names).cast(DAILY_FEATURES)


def _same_entity(left: str, right: str) -> str:
    return " AND ".join(f"{left}.{k} IS NOT DISTINCT FROM {right}.{k}" for k in ENTITY_KEYS)


_KEY_LIST = ", ".join(ENTITY_KEYS)
_COMPARED = (*RATIO_COUNTS, *DELTA_SHARES)
# credibility of an entity's history (module docstring), over the joined `long` row `l`
_WEIGHT = f"least(coalesce(l.history_days, 0), {MIN_HISTORY_DAYS}) / {MIN_HISTORY_DAYS}"


def _history_sql() -> str:
    """`hist`: the history rows, each with its own new IP share (the share of its IPs the entity
    had not used on the history days before; null on the entity's first day)."""
    return f"""
    ip_days AS (SELECT {_KEY_LIST}, day, unnest(ips) AS ip FROM history WHERE ips IS NOT NULL),
    ip_firsts AS (
        SELECT {_KEY_LIST}, day, min(day) OVER (PARTITION BY {_KEY_LIST}, ip) AS ip_first_day,
               min(day) OVER (PARTITION BY {_KEY_LIST}) AS entity_first_day
        FROM ip_days
    ),
    history_new_ips AS (
        SELECT {_KEY_LIST}, day, avg(CAST(ip_first_day = day AS DOUBLE)) AS new_ip_share
        FROM ip_firsts WHERE day > entity_first_day GROUP BY ALL
    ),
    hist AS (
        SELECT h.*, n.new_ip_share FROM history h
        LEFT JOIN history_new_ips n ON {_same_entity("h", "n")} AND h.day = n.day
    )"""


def _baselines_sql() -> str:
    """`long`: history length, medians and IPs seen per entity; `t`: today's rows with their new
    IPs; `recent`: the medians of the last RECENT_DAYS days before each of today's rows."""
    medians = ", ".join(f"median({c}) AS {c}_median" for c in _COMPARED)
    recents = ", ".join(f"median(h.{c}) AS {c}_recent" for c in _COMPARED)
    new_ips = (
        "CASE WHEN l.seen_ips IS NULL OR d.ips IS NULL THEN 0 "
        "ELSE len(list_filter(d.ips, lambda ip: NOT list_contains(l.seen_ips, ip))) END"
    )
    return f"""
    long AS (
        SELECT {_KEY_LIST}, count(DISTINCT day) AS history_days, {medians},
               list_distinct(flatten(list(coalesce(ips, [])))) AS seen_ips
        FROM hist GROUP BY ALL
    ),
    t AS (
        SELECT d.*, {new_ips} AS new_ips,
               coalesce({new_ips} / nullif(d.distinct_ips, 0), 0.0) AS new_ip_share
        FROM today d LEFT JOIN long l ON {_same_entity("d", "l")}
    ),
    recent AS (
        SELECT {", ".join(f"t.{k}" for k in ENTITY_KEYS)}, t.day, {recents}
        FROM t JOIN hist h ON {_same_entity("t", "h")}
             AND h.day < t.day AND h.day >= t.day - {RECENT_DAYS}
        GROUP BY ALL
    )"""


def _change_sql(column: str) -> str:
    """The baseline of one figure and its change, shrunk by the history's credibility."""
    long, recent = f"l.{column}_median", f"r.{column}_recent"
    nearer_edge = (
        f"least(greatest(t.{column}, least({long}, {recent})), greatest({long}, {recent}))"
    )
    baseline = f"CASE WHEN {recent} IS NULL THEN {long} ELSE {nearer_edge} END"
    if column in RATIO_COUNTS:
        change = f"coalesce(pow((t.{column} + 1.0) / ({baseline} + 1.0), {_WEIGHT}), 1.0)"
        name = f"{column}_ratio"
    else:
        change = f"coalesce((t.{column} - ({baseline})) * {_WEIGHT}, 0.0)"
        name = f"{column}_delta"
    return f"{long}, {recent}, {baseline} AS {column}_baseline, {change} AS {name}"


def _relative_sql() -> str:
    """Today's rows beside each entity's long and recent baselines, and their changes."""
    return f"""
    WITH {_history_sql()}, {_baselines_sql()}
    SELECT t.*, coalesce(l.history_days, 0) AS history_days, {_WEIGHT} AS history_weight,
           {", ".join(_change_sql(c) for c in _COMPARED)}
    FROM t LEFT JOIN long l ON {_same_entity("t", "l")}
    LEFT JOIN recent r ON {_same_entity("t", "r")} AND t.day = r.day
    ORDER BY t.entity_kind, t.partner_id, t.app_id, t.user_id
    """


def relative_features(today: pa.Table, history: pa.Table) -> pd.DataFrame:
    """Today's rows with each entity's changes against its own history (module docstring).

    `history` holds the DAILY_FEATURES rows of the trailing days (the caller picks the window);
    an entity's medians are over the days it appears in. Per compared figure the frame has its
    `_median` (whole history), `_recent` (last RECENT_DAYS days), `_baseline` (the one today is
    measured against) and the model feature (`_ratio` or `_delta`). An entity with no history
    gets the neutral values: ratios 1, deltas 0.
    """
    con = duckdb.connect()
    try:
        con.register("today", today.select(DAILY_FEATURES.names).cast(DAILY_FEATURES))
        con.register("history", history.select(DAILY_FEATURES.names).cast(DAILY_FEATURES))
        frame = con.sql(_relative_sql()).df()
    finally:
        con.close()
    frame["new_ips"] = frame["new_ips"].astype("int64")
    frame["history_days"] = frame["history_days"].astype("int64")
    return frame
