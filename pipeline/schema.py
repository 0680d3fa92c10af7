"""Arrow schemas of every table: the one source of truth for column names and types."""

from __future__ import annotations

import pyarrow as pa

from pipeline.config import SEVERITIES  # noqa: F401  (kept in the light module)

UTC_MICROS = pa.timestamp("us", tz="UTC")
# An RFC 3339 date-time with an offset (both Python re and RE2). Day-of-month validity is
# checked by parsing; hours 24 and offsets past 23:59 are refused here.
RFC3339 = (
    r"^\d{4}-\d{2}-\d{2}[Tt ](?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d+)?"
    r"(?:[Zz]|[+-](?:[01]\d|2[0-3]):[0-5]\d)$"
)
SCOPES = pa.list_(pa.string())

# Parquet encoding by column name, in every table. Columns of few distinct values are
# dictionary-encoded (smaller and faster to write); for columns of mostly unique values (ids,
# paths, times) a dictionary would only be built and then dropped, so they are written plain.
FEW_VALUES = frozenset(
    {
        "app_id", "partner_id", "partner_name", "resource", "action", "method", "status",
        "user_agent", "event_type", "rule", "severity", "scope", "kind", "reason",
        "delivery_date", "source_file", "entity_kind", "model_name", "model_version", "day",
    }
)  # fmt: skip
# Long text no query filters by: no min/max statistics, which cost much to keep on such values.
UNFILTERED = frozenset({"path", "user_agent", "raw", "detail", "explanation", "evidence"})

# Lineage columns shared by every table that holds input records.
LINEAGE = [
    pa.field("delivery_date", pa.date32(), nullable=False),
    pa.field("source_file", pa.string(), nullable=False),
    pa.field("source_line", pa.int64(), nullable=False),
]

ACCESS = pa.schema(
    [
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("event_time", UTC_MICROS, nullable=False),
        pa.field("app_id", pa.string(), nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("resource", pa.string(), nullable=False),
        pa.field("action", pa.string(), nullable=False),
        pa.field("method", pa.string()),
        pa.field("path", pa.string()),  # query-string secrets already redacted
        pa.field("status", pa.int32(), nullable=False),
        pa.field("thread_id", pa.string()),
        pa.field("ip", pa.string()),
        pa.field("user_agent", pa.string()),
        *LINEAGE,
    ]
)

CONSENT = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("event_time", UTC_MICROS, nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("app_id", pa.string(), nullable=False),
        pa.field("event_type", pa.string(), nullable=False),  # grant | revoke
        pa.field("scopes", SCOPES),  # null: every scope; []: none; always null on a revoke
        *LINEAGE,
    ]
)

QUARANTINE = pa.schema(
    [
        pa.field("kind", pa.string(), nullable=False),  # access | consent
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string()),
        pa.field("record_id", pa.string()),  # request_id / event_id when one could be read
        pa.field("raw", pa.string(), nullable=False),  # redacted, truncated
        *LINEAGE,
    ]
)

REGISTRY = pa.schema(
    [
        pa.field("partner_id", pa.string(), nullable=False),
        pa.field("partner_name", pa.string(), nullable=False),
        pa.field("app_id", pa.string(), nullable=False),
        pa.field("period_start", UTC_MICROS, nullable=False),
        pa.field("period_end", UTC_MICROS),  # exclusive; null while ongoing
        pa.field("period_scopes", SCOPES, nullable=False),
        pa.field("grant_ttl_days", pa.float64()),  # null: grants never expire
        pa.field("registry_line", pa.int64(), nullable=False),
    ]
)
# the registry columns that are identifiers (SPEC §2: no control characters in them)
REGISTRY_IDENTIFIERS = ("partner_id", "app_id")

FLAGS = pa.schema(
    [
        pa.field("flag_id", pa.string(), nullable=False),
        pa.field("alert_id", pa.string(), nullable=False),  # its rule alert (SPEC §5)
        pa.field("rule", pa.string(), nullable=False),
        pa.field("severity", pa.string(), nullable=False),
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("event_time", UTC_MICROS, nullable=False),
        pa.field("app_id", pa.string(), nullable=False),
        pa.field("partner_id", pa.string()),
        pa.field("partner_name", pa.string()),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("resource", pa.string(), nullable=False),
        pa.field("action", pa.string(), nullable=False),
        pa.field("scope", pa.string(), nullable=False),
        pa.field("status", pa.int32(), nullable=False),
        pa.field("method", pa.string()),
        pa.field("path", pa.string()),
        pa.field("ip", pa.string()),
        # evidence
        pa.field("last_grant_time", UTC_MICROS),
        pa.field("last_grant_scopes", SCOPES),
        pa.field("last_grant_all_scopes", pa.bool_()),  # the last grant had null scopes
        pa.field("last_revoke_time", UTC_MICROS),
        pa.field("grant_expired_at", UTC_MICROS),
        pa.field("grant_ttl_days", pa.float64()),
        pa.field("partnership_start", UTC_MICROS),
        pa.field("partnership_end", UTC_MICROS),
        pa.field("partnership_scopes", SCOPES),
        pa.field("explanation", pa.string(), nullable=False),
        *LINEAGE,
    ]
)

TABLES: dict[str, pa.Schema] = {
    "access": ACCESS,
    "consent": CONSENT,
    "quarantine": QUARANTINE,
    "flags": FLAGS,
}

# One row per scored entity and delivery day (pipeline.behaviour.features.daily_features).
# Counts are of message content (SPEC §1) that succeeded (status < 400) unless the name says calls.
DAILY_FEATURES = pa.schema(
    [
        pa.field("day", pa.date32(), nullable=False),
        pa.field("entity_kind", pa.string(), nullable=False),  # partner_day | app_user_day
        pa.field("partner_id", pa.string()),  # null: an app not in the registry
        pa.field("app_id", pa.string()),  # null on a partner_day of a registered partner
        pa.field("user_id", pa.string()),  # app_user_day only
        pa.field("calls", pa.int64(), nullable=False),  # every call, any resource or status
        pa.field("message_reads", pa.int64(), nullable=False),
        pa.field("message_writes", pa.int64(), nullable=False),
        pa.field("message_deletes", pa.int64(), nullable=False),
        pa.field("message_accesses", pa.int64(), nullable=False),
        pa.field("distinct_users", pa.int64(), nullable=False),
        pa.field("distinct_threads", pa.int64(), nullable=False),
        pa.field("live_grants", pa.int64(), nullable=False),
        pa.field("accesses_per_live_grant", pa.float64(), nullable=False),
        pa.field("flagged_accesses", pa.int64(), nullable=False),
        pa.field("flagged_share", pa.float64(), nullable=False),
        pa.field("night_share", pa.float64(), nullable=False),
        pa.field("failed_rate", pa.float64(), nullable=False),
        pa.field("max_burst_per_minute", pa.int64(), nullable=False),
        pa.field("revokes", pa.int64(), nullable=False),
        pa.field("distinct_ips", pa.int64(), nullable=False),
        pa.field("ips", pa.list_(pa.string())),  # partner_day only, sorted
        # added for the significance model (issue 14): counts beside their shares, and what each
        # entity did that its own history may not have seen
        pa.field("night_accesses", pa.int64()),  # message accesses 00:00-05:00 UTC
        pa.field("failed_calls", pa.int64()),  # calls with status >= 400
        pa.field("dormant_reads", pa.int64()),  # of users the app had not called for 7 days
        pa.field("revoked_reads", pa.int64()),  # of users whose last consent was a revoke
        pa.field("new_users", pa.int64()),  # users whose first grant of the app was that day
        pa.field("ip_calls", pa.list_(pa.int64())),  # calls per address, aligned with ips
        pa.field("networks", pa.list_(pa.string())),  # partner_day only: /24 (IPv6 /48), sorted
        pa.field("network_calls", pa.list_(pa.int64())),
        pa.field("scopes", pa.list_(pa.string())),  # resource.action of every call, sorted
        pa.field("scope_calls", pa.list_(pa.int64())),
        pa.field("dormant_users", pa.int64()),  # users of the dormant reads
        pa.field("revoked_users", pa.int64()),  # users of the revoked reads
    ]
)

# One row per scored entity: the behaviour model's verdict (pipeline.behaviour.model.score).
ANOMALIES = pa.schema(
    [
        pa.field("entity_kind", pa.string(), nullable=False),
        pa.field("day", pa.date32(), nullable=False),
        pa.field("partner_id", pa.string()),
        pa.field("app_id", pa.string()),
        pa.field("user_id", pa.string()),
        pa.field("score", pa.float64(), nullable=False),  # higher: more anomalous
        pa.field("rank", pa.int32(), nullable=False),  # 1: most anomalous of its day and kind
        pa.field("alert", pa.bool_(), nullable=False),  # above the model's alert threshold
        pa.field("model_name", pa.string(), nullable=False),
        pa.field("model_version", pa.string(), nullable=False),
        pa.field("top_features", pa.list_(pa.string()), nullable=False),
        pa.field("explanation", pa.string(), nullable=False),
    ]
)

# One row per alert (SPEC §5): a rule alert groups the flags of one delivery day, app and rule; a
# behaviour alert is one entity-day the behaviour model alerted on.
ALERTS = pa.schema(
    [
        pa.field("alert_id", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),  # rule | behaviour
        pa.field("day", pa.date32(), nullable=False),  # the delivery day
        pa.field("partner_id", pa.string()),  # null: an app the registry does not know
        pa.field("partner_name", pa.string()),
        pa.field("app_id", pa.string()),  # null: a partner-day behaviour alert of a partner
        pa.field("user_id", pa.string()),  # app-user-day behaviour alerts only
        pa.field("rule", pa.string(), nullable=False),  # a rule, or the entity kind (behaviour)
        pa.field("severity", pa.string(), nullable=False),  # the highest of its flags
        pa.field("flags", pa.int64(), nullable=False),  # 0 for behaviour alerts
        pa.field("users", pa.int64(), nullable=False),
        pa.field("first_event_time", UTC_MICROS),
        pa.field("last_event_time", UTC_MICROS),
        pa.field("reads", pa.int64(), nullable=False),
        pa.field("writes", pa.int64(), nullable=False),
        pa.field("deletes", pa.int64(), nullable=False),
        pa.field("flags_by_hour", pa.list_(pa.int64())),  # 24 counts, hour of event_time (UTC)
        pa.field("evidence", pa.string(), nullable=False),  # JSON object: what its flags share
        pa.field("sample_request_ids", pa.list_(pa.string()), nullable=False),
        pa.field("score", pa.float64()),  # behaviour alerts: the model's score
        pa.field("model_version", pa.string()),  # behaviour alerts
        pa.field("explanation", pa.string(), nullable=False),
        # added after the first columns: flags by severity, lowest first (SEVERITIES order)
        pa.field("flags_by_severity", pa.list_(pa.int64())),
    ]
)

# The series of each alert key (pipeline.detect.series): not a warehouse table.
SERIES = pa.schema(
    [
        pa.field("app_id", pa.string(), nullable=False),
        pa.field("rule", pa.string(), nullable=False),
        pa.field("day", pa.date32(), nullable=False),
        pa.field("series_id", pa.string(), nullable=False),
        pa.field("series_start", pa.date32(), nullable=False),
        pa.field("series_end", pa.date32(), nullable=False),
        pa.field("series_days", pa.int64(), nullable=False),
    ]
)

TABLES["features"] = DAILY_FEATURES
TABLES["anomalies"] = ANOMALIES
TABLES["alerts"] = ALERTS

# How flags of an app the registry does not know (no partner_id) are counted and shown.
UNKNOWN_PARTNER = "(unknown app)"

RULES = (
    "UNKNOWN_APP",
    "AFTER_PARTNERSHIP_END",
    "BEFORE_PARTNERSHIP_START",
    "SCOPE_NOT_IN_PARTNERSHIP",
    "NO_SIGNIN",
    "SIGNIN_REVOKED",
    "SIGNIN_EXPIRED",
    "SCOPE_NOT_GRANTED",
)
ACTIONS = ("read", "write", "delete")
CONSENT_EVENT_TYPES = ("grant", "revoke")


# Column lists other modules read by (defined here, the one home of column names)
# used by behaviour/features.py
# Compared as (today + 1) / (median + 1): 1 when both are equal, finite when the median is 0.
RATIO_COUNTS = (
    "message_reads",
    "message_writes",
    "message_deletes",
    "distinct_users",
    "calls",
    "revokes",
    "accesses_per_live_grant",
    "max_burst_per_minute",
)

# used by behaviour/features.py
ENTITY_KEYS = ("entity_kind", "partner_id", "app_id", "user_id")

# used by behaviour/scoring.py
CONSENT_COLUMNS = ("event_time", "user_id", "app_id", "event_type", "delivery_date")

# used by behaviour/scoring.py
ACCESS_COLUMNS = (
    "request_id",
    "event_time",
    "app_id",
    "user_id",
    "resource",
    "action",
    "status",
    "thread_id",
    "ip",
)

# used by behaviour/features.py; the counts of one message action (behaviour/model.py: a day's
# volume and the action's share at once)
ACTION_COUNTS = ("message_reads", "message_writes", "message_deletes")
LEVEL_COUNTS = ("calls", *ACTION_COUNTS, "distinct_users")

# used by behaviour/features.py
RARE_OWN_COUNTS = (
    "new_users",
    "revokes",
    "revoked_reads",
)  # the others come from the new-items CTEs

# used by report/figures.py
REPORT_ALERT_COLUMNS = (
    "alert_id", "kind", "day", "rule", "severity", "partner_id", "partner_name", "app_id",
    "user_id", "flags", "users", "flags_by_severity", "first_event_time", "last_event_time",
    "evidence", "score", "explanation",
)  # fmt: skip

# used by review/store.py
NULLABLE_SORTS = ("partner_id", "score")

# used by review/web/export.py
EXPORT_FLAG_COLUMNS = (
    "flag_id",
    "alert_id",
    "rule",
    "severity",
    "request_id",
    "event_time",
    "app_id",
    "partner_id",
    "user_id",
    "resource",
    "action",
    "scope",
    "status",
    "method",
    "path",
    "last_grant_time",
    "last_revoke_time",
    "partnership_end",
    "explanation",
)

# used by detect/measures.py
MEASURE_COLUMNS = ["rule", "event_time", "app_id", "partner_id", "partner_name", "user_id"]
MEASURE_COLUMNS += ["alert_id", "last_revoke_time", "partnership_end"]
