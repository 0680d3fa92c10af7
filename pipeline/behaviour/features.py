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
- Weekly seasonality: each history day's level counts are put on today's class of day (weekend
  or weekday) by the entity's own weekend factor, so a Sunday is measured against Sundays.
- Credibility: with fewer than `MIN_HISTORY_DAYS` days of history an entity's changes are shrunk
  toward "no change" in proportion (a ratio r becomes r ** w, a delta d becomes d * w, with
  w = min(history_days, MIN_HISTORY_DAYS) / MIN_HISTORY_DAYS): a median of two days is noise.

What a security team asks for, per entity-day and against the entity's own history (issue 14):
reads of dormant users (no call of the app reached them for DORMANT_DAYS days, granted before
that) and their users; reads of users whose last consent event before the read was a revoke
(an as-of join on consent); users signing in to the app for the first time; addresses, /24
networks (IPv6: /48) and scopes (resource.action) with their calls, from which
relative_features counts the never-seen ones and the history's own rate of them. A user's
scope is new when its app never used it. The significance model (model.py) reads the counts,
their history sums and means (`<count>_hist`, `<count>_of_hist`, `<count>_hist_mean`) and the
app's typical user-day (`<count>_app_user_median`). A rise held over several days (a slow ramp)
is `calls_sustained`: today's calls and the last RECENT_DAYS days' (each at most today's), over
`sustained_days` days, against `calls_early_median`, the median of the window's days before
those (a windowed cumulative sum against the entity's own earlier level); `calls_early_iqr`
over `early_days` is the spread of those earlier days, the entity's own day-to-day wander. The
share of calls that are message reads (`reads`) sees a sweep that reads and does nothing else.
"""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd
import pyarrow as pa

from pipeline import duck
from pipeline.config import Settings
from pipeline.schema import DAILY_FEATURES, ENTITY_KEYS, LEVEL_COUNTS, RARE_OWN_COUNTS, RATIO_COUNTS

PARTNER_DAY = "partner_day"
APP_USER_DAY = "app_user_day"
ENTITY_KINDS = (PARTNER_DAY, APP_USER_DAY)
NIGHT_END_HOUR = 5  # night: [00:00, 05:00) UTC
RECENT_DAYS = 3  # the short baseline: a change held on 2 of the last 3 days is the new level
MIN_HISTORY_DAYS = 7  # an entity's changes count fully from a week of history
DORMANT_DAYS = 7  # a user no call of the app reached for this many days is dormant

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


def _prepare_sql(day: date, settings: Settings, dormancy: bool) -> str:
    """Views shared by both entity kinds: events with their partner and flags, live grants.

    With `dormancy`, a view `recent_users` (app_id, user_id) holds the pairs that made a call on
    the DORMANT_DAYS days before: a read of a user outside it whose first grant is older than
    those days is a dormant read. Without it dormancy is unknown (null)."""
    day_end = f"({_day_literal(day)} + INTERVAL 1 DAY)"
    if dormancy:
        dormant = (
            f"r.user_id IS NULL AND g.first_grant < {_day_literal(day)} "
            f"- INTERVAL {DORMANT_DAYS} DAY"
        )
        recent_join = (
            "\n        LEFT JOIN (SELECT DISTINCT app_id, user_id FROM recent_users) r "
            "USING (app_id, user_id)"
        )
    else:
        dormant, recent_join = "CAST(NULL AS BOOLEAN)", ""
    return f"""
    CREATE OR REPLACE TEMP VIEW apps AS
        SELECT app_id, min(partner_id) AS partner_id, max(grant_ttl_days) AS ttl_days
        FROM registry GROUP BY app_id;
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
    -- Each (user, app)'s first grant: new users signed in on the day; dormant ones long before.
    CREATE OR REPLACE TEMP VIEW first_grants AS
        SELECT user_id, app_id, min(event_time) AS first_grant FROM consent
        WHERE event_type = 'grant' AND event_time < {day_end} GROUP BY ALL;
    -- The consent state at each successful message read: the last consent event at or before it.
    CREATE OR REPLACE TEMP VIEW consent_at_read AS
        SELECT e.request_id, c.event_type AS state FROM
            (SELECT request_id, app_id, user_id, event_time FROM access
             WHERE action = 'read' AND status < 400
               AND resource IN {_in_list(settings.message_resources)}) e
        ASOF LEFT JOIN (SELECT app_id, user_id, event_time, event_type FROM consent) c
            ON e.app_id = c.app_id AND e.user_id = c.user_id AND e.event_time >= c.event_time;
    CREATE OR REPLACE TEMP VIEW events AS
        SELECT a.app_id, a.user_id, a.thread_id, a.ip, a.status, a.event_time, p.partner_id,
               a.resource IN {_in_list(settings.message_resources)}
                   AND a.status < 400 AS is_message,
               a.action,
               hour(a.event_time) < {NIGHT_END_HOUR} AS is_night,
               date_trunc('minute', a.event_time) AS minute,
               a.request_id IN (SELECT request_id FROM flags) AS is_flagged,
               a.status < 400 AS is_ok,
               a.resource || '.' || a.action AS scope,
               CASE WHEN a.ip LIKE '%:%'
                    THEN array_to_string(string_split(a.ip, ':')[1:3], ':') || '::/48'
                    ELSE regexp_replace(a.ip, '\\.[0-9]+$', '') || '.0/24' END AS network,
               g.first_grant >= {_day_literal(day)} AS is_new_user,
               {dormant} AS is_dormant,
               s.state = 'revoke' AS is_revoked_read
        FROM access a LEFT JOIN apps p USING (app_id)
        LEFT JOIN first_grants g USING (user_id, app_id)
        LEFT JOIN consent_at_read s USING (request_id){recent_join};
    """


# Per entity, the values of a column it used with the calls of each, as two aligned lists sorted
# by value: addresses and /24 networks (partner-days only: per user they would be most of the
# table) and scopes (both kinds).
_ITEMS = {"ip": ("ips", "ip_calls"), "network": ("networks", "network_calls"),
          "scope": ("scopes", "scope_calls")}  # fmt: skip


def _item_lists_sql(kind: str) -> str:
    """CTEs `<column>_items` and `items`: each entity's item lists (see _ITEMS)."""
    keys = "k_partner_id AS partner_id, k_app_id AS app_id, k_user_id AS user_id"
    parts, selects = [], []
    for column, (values, calls) in _ITEMS.items():
        if kind == APP_USER_DAY and column != "scope":
            selects.append(
                f"CAST(NULL AS VARCHAR[]) AS {values}, CAST(NULL AS BIGINT[]) AS {calls}"
            )
            continue
        parts.append(f"""{column}_items AS (
        SELECT partner_id, app_id, user_id, list(v ORDER BY v) AS {values},
               list(n ORDER BY v) AS {calls}
        FROM (SELECT {keys}, {column} AS v, count(*) AS n FROM keyed
              WHERE {column} IS NOT NULL GROUP BY ALL)
        GROUP BY ALL)""")
        selects.append(f"{column}_items.{values}, {column}_items.{calls}")
    joins = " ".join(
        f"LEFT JOIN {column}_items ON "
        + " AND ".join(f"c.{k} IS NOT DISTINCT FROM {column}_items.{k}" for k in _KEYS[kind])
        for column in _ITEMS
        if kind == PARTNER_DAY or column == "scope"
    )
    entities = f"SELECT DISTINCT {keys} FROM keyed"
    return (
        ",\n    ".join(parts)
        + f""",
    items AS (SELECT c.partner_id, c.app_id, c.user_id, {", ".join(selects)}
              FROM ({entities}) c {joins})"""
    )


def _entity_sql(kind: str, day: date) -> str:
    """One row per entity of `kind` that made at least one call on the day."""
    keys = _KEYS[kind]
    key_cols = ", ".join(f"{expr} AS {name}" for name, expr in keys.items())
    prefixed = ", ".join(f"{expr} AS k_{name}" for name, expr in keys.items())
    join_on = " AND ".join(f"e.{k} IS NOT DISTINCT FROM x.{k}" for k in keys)
    return f"""
    WITH keyed AS MATERIALIZED (SELECT *, {prefixed} FROM events),
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
               count(*) FILTER (WHERE is_message AND is_night) AS night_accesses,
               count(*) FILTER (WHERE is_message AND action = 'read' AND is_dormant)
                   AS dormant_reads,
               bool_or(is_dormant IS NOT NULL) AS dormancy_known,
               count(*) FILTER (WHERE is_revoked_read) AS revoked_reads,
               count(DISTINCT user_id) FILTER (WHERE is_message AND action = 'read'
                                               AND is_dormant) AS dormant_users,
               count(DISTINCT user_id) FILTER (WHERE is_revoked_read) AS revoked_users,
               count(DISTINCT user_id) FILTER (WHERE is_new_user) AS new_users
        FROM keyed GROUP BY ALL
    ),
    {_item_lists_sql(kind)},
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
           i.ips,
           e.night_accesses,
           e.failed_calls,
           CASE WHEN e.dormancy_known THEN e.dormant_reads END AS dormant_reads,
           e.revoked_reads,
           e.new_users,
           CASE WHEN e.dormancy_known THEN e.dormant_users END AS dormant_users,
           e.revoked_users,
           i.ip_calls, i.networks, i.network_calls, i.scopes, i.scope_calls
    FROM counts e
    LEFT JOIN items i ON {join_on.replace("x.", "i.")}
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
    recent_users: pa.Table | None = None,
) -> pa.Table:
    """The day's partner-day and app-user-day rows (schema DAILY_FEATURES), from in-memory tables.

    `access` and `flags` are the delivery day's; `consent` every consent event delivered on days
    <= `day`. A grant is live when it is the (user, app)'s last consent event up to the day's end
    and has not outlived the app's grant TTL. `recent_users` (app_id, user_id): the pairs that
    made a call on the DORMANT_DAYS days before; None when the history does not cover them
    (dormant_reads is then null).
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
        if recent_users is not None:
            con.register("recent_users", recent_users)
        return daily_features_in(con, day, settings, dormancy=recent_users is not None)
    finally:
        con.close()


def daily_features_in(
    con: duckdb.DuckDBPyConnection, day: date, settings: Settings, dormancy: bool = False
) -> pa.Table:
    """As daily_features, over views `access`, `flags`, `consent` and `registry` that `con`
    already has (Parquet-backed in the pipeline, so a large day is never held in memory), and
    `recent_users` when `dormancy`."""
    con.execute(_prepare_sql(day, settings, dormancy))
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


def _weekend(day: str) -> str:
    return f"(isodow({day}) >= 6)"


def _weekend_factor(count: str) -> str:
    """An entity's weekend level of a count against its weekdays': weekly seasonality, which a
    median of all days mistakes for a rise on every weekday or hides a rise on a weekend. Per
    weekend, the median of its days against the median of the weekdays; with three weekends or
    more, the median of theirs (one odd weekend does not move it; their nearest to 1 did, and a
    user's every Sunday was measured at half again its usual level); with two, the nearer to 1
    when they agree on the side, else none (a dip of a few days that takes in one weekend is not
    the entity's week); with one, its own from two days of it (a user seen on one weekend). Per
    count: fewer calls at the weekend need not be fewer users. From the days before the last
    RECENT_DAYS: a rise under way over a weekend is not the entity's week either. Over
    `season_weeks` x `season_days`."""
    ratio = f"least(greatest((w.{count} + 1.0) / (d.{count} + 1.0), 0.1), 10.0)"
    return f"""CASE WHEN any_value(d.weekdays) < 4 THEN 1.0
             WHEN count(*) = 1 THEN CASE WHEN sum(w.days) >= 2 THEN max({ratio}) ELSE 1.0 END
             WHEN count(*) >= 3 THEN median({ratio})
             WHEN max({ratio}) < 1.0 THEN max({ratio})
             WHEN min({ratio}) > 1.0 THEN min({ratio})
             ELSE 1.0 END AS {count}_weekend_factor"""


_EARLY = f"day < (SELECT max(day) FROM today) - {RECENT_DAYS}"  # before the last days


def _to_todays_class() -> str:
    """History's level counts as they would be on today's class of day (weekend or weekday):
    scaled by the entity's weekend factor where a history day's class is not today's."""
    today_weekend = f"(SELECT bool_or({_weekend('day')}) FROM today)"

    def scale(count: str) -> str:
        factor = f"coalesce(s.{count}_weekend_factor, 1.0)"
        return (f"CASE WHEN {_weekend('h.day')} = {today_weekend} THEN 1.0 "
                f"WHEN {today_weekend} THEN {factor} ELSE 1.0 / {factor} END")  # fmt: skip

    return ", ".join(f"h.{c} * {scale(c)} AS {c}" for c in LEVEL_COUNTS)


def _history_sql() -> str:
    """`hist`: the history rows, their level counts on today's class of day (weekend or not:
    `_to_todays_class`), each with its own new IP share (the share of its IPs the entity had
    not used on the history days before; null on the entity's first day). Today is one day."""
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
    season_days AS (
        SELECT {_KEY_LIST}, {", ".join(f"median({c}) AS {c}" for c in LEVEL_COUNTS)},
               count(*) AS weekdays
        FROM history WHERE {_EARLY} AND NOT {_weekend("day")} GROUP BY ALL
    ),
    season_weeks AS (
        SELECT {_KEY_LIST}, date_trunc('week', day) AS week, count(*) AS days,
               {", ".join(f"median({c}) AS {c}" for c in LEVEL_COUNTS)}
        FROM history WHERE {_EARLY} AND {_weekend("day")} GROUP BY ALL
    ),
    season AS (
        SELECT {", ".join(f"d.{k}" for k in ENTITY_KEYS)},
               {", ".join(_weekend_factor(c) for c in LEVEL_COUNTS)}
        FROM season_days d JOIN season_weeks w ON {_same_entity("d", "w")}
        GROUP BY ALL
    ),
    hist AS (
        SELECT h.* REPLACE ({_to_todays_class()}), n.new_ip_share FROM history h
        LEFT JOIN history_new_ips n ON {_same_entity("h", "n")} AND h.day = n.day
        LEFT JOIN season s ON {_same_entity("h", "s")}
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
        SELECT {", ".join(f"t.{k}" for k in ENTITY_KEYS)}, t.day, {recents},
               -- a sustained rise: the recent days' calls, each at most today's (a spike
               -- yesterday is yesterday's news, a ramp's days are all below today)
               sum(least(h.calls, t.calls)) AS calls_recent_clipped,
               count(DISTINCT h.day) AS recent_days
        FROM t JOIN hist h ON {_same_entity("t", "h")}
             AND h.day < t.day AND h.day >= t.day - {RECENT_DAYS}
        GROUP BY ALL
    ),
    early AS (
        SELECT {", ".join(f"t.{k}" for k in ENTITY_KEYS)}, t.day,
               median(h.calls) AS calls_early_median,
               -- the entity's own day-to-day spread (model.py): over the days before the last
               -- ones, so a rise under way does not widen it; by quartiles, so an anomaly
               -- among them does not either
               quantile_cont(h.calls, 0.75) - quantile_cont(h.calls, 0.25) AS calls_early_iqr,
               count(*) AS early_days
        FROM t JOIN hist h ON {_same_entity("t", "h")} AND h.day < t.day - {RECENT_DAYS}
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


# Shares the significance model weighs: (name, count, out of). Their history sums are
# `<count>_hist` and `<count>_of_hist` (the denominator over the days the count is known).
SHARES: tuple[tuple[str, str, str], ...] = (
    ("night", "night_accesses", "message_accesses"),
    # a sweep reads and does nothing else: the share of calls that are message reads
    ("reads", "message_reads", "calls"),
    ("deletes", "message_deletes", "message_accesses"),
    ("failed", "failed_calls", "calls"),
    # users, not reads: one busy user coming back is one user, however many reads it makes
    ("dormant", "dormant_users", "distinct_users"),
    ("revoked", "revoked_users", "distinct_users"),
    ("flagged", "flagged_accesses", "message_accesses"),
    ("new_ip", "new_ip_calls", "calls"),
    ("new_network", "new_network_calls", "calls"),
    ("new_scope", "new_scope_calls", "calls"),
)
# Counts weighed against their usual level (the nearer-edge baseline of RATIO_COUNTS) and rare
# counts weighed against their history mean (`<count>_hist_mean`).
RARE_COUNTS = ("new_users", "revokes", "revoked_reads", "new_ips", "new_networks", "new_scopes")
_RARE_OWN = RARE_OWN_COUNTS
# (item kind, list of values, aligned list of calls) for the never-seen counts
_NEW_ITEMS = (("ip", "ips", "ip_calls"), ("network", "networks", "network_calls"),
              ("scope", "scopes", "scope_calls"))  # fmt: skip
_EK = (
    "concat_ws(chr(1), {p}entity_kind, coalesce({p}partner_id, chr(2)), "
    "coalesce({p}app_id, chr(2)), coalesce({p}user_id, chr(2)))"
)


# An app-user-day's partner-day (a user's first use of a scope its app has used is no news: a
# scope is new when the app never used it)
_PK = (
    f"concat_ws(chr(1), '{PARTNER_DAY}', coalesce(partner_id, chr(2)), "
    "CASE WHEN partner_id IS NULL THEN coalesce(app_id, chr(2)) ELSE chr(2) END, chr(2))"
)


def _item_key(kind: str) -> str:
    """Whose history an item kind is new against: the app's for scopes, else the entity's."""
    return "tk.pk" if kind == "scope" else "tk.ek"


def _new_items_sql() -> str:
    """Per entity of today: its never-seen items (`new_<kind>s`, `new_<kind>_calls`) against the
    history's, and the history's own (each history day against the days before it, from the
    entity's second day: `hist_new_<kind>s`, `hist_new_<kind>_calls`)."""
    parts = [
        f"""hk AS (SELECT *, {_EK.format(p="")} AS ek,
                   min(day) OVER (PARTITION BY {_KEY_LIST}) AS entity_first FROM history),
    tk AS (SELECT *, {_EK.format(p="")} AS ek, CASE WHEN entity_kind = '{APP_USER_DAY}'
                   THEN {_PK} ELSE {_EK.format(p="")} END AS pk FROM today),
    hk_sums AS (SELECT ek, count(DISTINCT day) FILTER (WHERE day > entity_first) AS later_days,
                       sum(calls) FILTER (WHERE day > entity_first) AS later_calls
                FROM hk GROUP BY ek)"""
    ]
    for kind, values, calls in _NEW_ITEMS:
        key = _item_key(kind)
        parts.append(f"""{kind}_h AS (
        SELECT ek, day, entity_first, unnest({values}) AS item, unnest({calls}) AS n
        FROM hk WHERE {values} IS NOT NULL),
    {kind}_hf AS (SELECT *, min(day) OVER (PARTITION BY ek, item) AS first_day FROM {kind}_h),
    {kind}_hist AS (
        SELECT ek, count(*) FILTER (WHERE first_day = day AND day > entity_first)
                   AS hist_new_{kind}s,
               sum(n) FILTER (WHERE first_day = day AND day > entity_first)
                   AS hist_new_{kind}_calls
        FROM {kind}_hf GROUP BY ek),
    {kind}_t AS (SELECT ek, {key} AS hk_key, unnest({values}) AS item, unnest({calls}) AS n
                 FROM tk WHERE {values} IS NOT NULL AND {key} IN (SELECT ek FROM hk)),
    {kind}_new AS (
        SELECT x.ek, count(*) AS new_{kind}s, sum(x.n) AS new_{kind}_calls FROM {kind}_t x
        WHERE NOT EXISTS (SELECT 1 FROM {kind}_h s WHERE s.ek = x.hk_key AND s.item = x.item)
        GROUP BY x.ek)""")
    return ",\n    ".join(parts)


def _sums_sql() -> str:
    """`sums`: per entity the history sums of each share's count and denominator, and the mean
    of each rare count; `app_users`: per app the median user-day of each level count (the prior
    of a user with little history of its own)."""
    sums = []
    for _, count, total in SHARES:
        if count.startswith("new_"):
            continue  # from the new-items CTEs
        sums.append(f"sum({count}) AS {count}_hist")
        sums.append(f"sum({total}) FILTER (WHERE {count} IS NOT NULL) AS {count}_of_hist")
    means = [f"avg({c}) AS {c}_hist_mean" for c in _RARE_OWN]
    medians = ", ".join(f"median({c}) AS {c}_app_user_median" for c in LEVEL_COUNTS)
    return f"""sums AS (SELECT {_EK.format(p="")} AS ek, {", ".join(sums + means)}
                FROM history GROUP BY ALL),
    app_users AS (SELECT partner_id, app_id, {medians} FROM history
                  WHERE entity_kind = '{APP_USER_DAY}' GROUP BY ALL)"""


def _evidence_columns() -> str:
    """The select list the significance model reads beside today's counts."""
    columns = [f"s.{count}_hist, s.{count}_of_hist" for _, count, _ in SHARES
               if not count.startswith("new_")]  # fmt: skip
    columns += [f"s.{c}_hist_mean" for c in _RARE_OWN]
    columns += [f"a.{c}_app_user_median" for c in LEVEL_COUNTS]
    for kind, _, _ in _NEW_ITEMS:
        hs = "hp" if kind == "scope" else "hs"  # the app's history for scopes
        has = f"{_item_key(kind)} IN (SELECT ek FROM hk)"
        known = f"{kind}_hist.ek IS NOT NULL OR {hs}.later_days > 0"
        if kind != "ip":  # new_ips is already today's column (the share of addresses)
            columns.append(
                f"CASE WHEN {has} THEN "
                f"coalesce({kind}_new.new_{kind}s, 0) ELSE 0 END AS new_{kind}s"
            )
        columns.append(f"CASE WHEN {has} THEN "
                       f"coalesce({kind}_new.new_{kind}_calls, 0) ELSE 0 END "
                       f"AS new_{kind}_calls")  # fmt: skip
        columns.append(f"CASE WHEN {known} THEN coalesce({kind}_hist.hist_new_{kind}_calls, 0) "
                       f"END AS new_{kind}_calls_hist")  # fmt: skip
        columns.append(f"{hs}.later_calls AS new_{kind}_calls_of_hist")
        columns.append(f"CASE WHEN {hs}.later_days > 0 THEN "
                       f"coalesce({kind}_hist.hist_new_{kind}s, 0) / {hs}.later_days END "
                       f"AS new_{kind}s_hist_mean")  # fmt: skip
    return ",\n           ".join(columns)


def _evidence_sql() -> str:
    """`evidence`: per entity of today (by `ek`), what the significance model weighs."""
    joins = " ".join(
        f"LEFT JOIN {kind}_new ON {kind}_new.ek = tk.ek "
        f"LEFT JOIN {kind}_hist ON {kind}_hist.ek = {_item_key(kind)}"
        for kind, _, _ in _NEW_ITEMS
    )
    return f"""{_new_items_sql()},
    {_sums_sql()},
    evidence AS (
        SELECT tk.ek, {_evidence_columns()}
        FROM tk LEFT JOIN hk_sums hs ON hs.ek = tk.ek LEFT JOIN hk_sums hp ON hp.ek = tk.pk
        LEFT JOIN sums s ON s.ek = tk.ek
        LEFT JOIN app_users a ON tk.entity_kind = '{APP_USER_DAY}'
             AND a.partner_id IS NOT DISTINCT FROM tk.partner_id
             AND a.app_id IS NOT DISTINCT FROM tk.app_id
        {joins})"""


def _relative_sql() -> str:
    """Today's rows beside each entity's long and recent baselines, their changes, and what the
    significance model weighs."""
    return f"""
    WITH {_history_sql()}, {_baselines_sql()}, {_evidence_sql()}
    SELECT t.*, coalesce(l.history_days, 0) AS history_days, {_WEIGHT} AS history_weight,
           {", ".join(_change_sql(c) for c in _COMPARED)},
           t.calls + coalesce(r.calls_recent_clipped, 0) AS calls_sustained,
           1 + coalesce(r.recent_days, 0) AS sustained_days, e.calls_early_median,
           e.calls_early_iqr, coalesce(e.early_days, 0) AS early_days,
           ev.* EXCLUDE (ek)
    FROM t LEFT JOIN long l ON {_same_entity("t", "l")}
    LEFT JOIN recent r ON {_same_entity("t", "r")} AND t.day = r.day
    LEFT JOIN early e ON {_same_entity("t", "e")} AND t.day = e.day
    LEFT JOIN evidence ev ON ev.ek = {_EK.format(p="t.")}
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
