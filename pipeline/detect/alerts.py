"""The day's alerts (SPEC §5) from its flags and its anomalies: one pure function, `build_alerts`.

A rule alert groups the flags of one delivery day, app and rule. DuckDB aggregates the flags (a
flags partition can hold millions of rows; none of them becomes a Python object) into one row per
alert; only those few rows are turned into evidence JSON and a sentence here. A behaviour alert
is one anomalies row the model alerted on.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.config import SEVERITIES
from pipeline.detect.alert_ids import (
    BEHAVIOUR_ALERT,
    COVERAGE_ALERT,
    RULE_ALERT,
    behaviour_alert_id,
    rule_alert_id,
)
from pipeline.detect.rules import MICROS_PER_DAY
from pipeline.schema import ALERTS

KIND_ORDER = (RULE_ALERT, BEHAVIOUR_ALERT, COVERAGE_ALERT)
SAMPLES = 5  # sample request ids per alert: the earliest flags (then by request id)
# A whole partner behaving oddly weighs more than one app-user pair doing so.
BEHAVIOUR_SEVERITY = {"partner_day": "high", "app_user_day": "medium"}
# A flagged user's consent for the app at their last flagged access of the alert, in the order
# the rules ask about it.
CONSENT_STATES = ("never_granted", "revoked", "expired", "granted_without_scope", "granted")

_SEVERITIES_SQL = "[" + ", ".join(f"'{s}'" for s in SEVERITIES) + "]"
_CONSENT_STATE_SQL = f"""
CASE WHEN last_grant_time IS NULL THEN 'never_granted'
     WHEN last_revoke_time IS NOT NULL AND last_revoke_time >= last_grant_time THEN 'revoked'
     WHEN grant_ttl_days IS NOT NULL AND epoch_us(event_time) - epoch_us(last_grant_time)
          > CAST(round(grant_ttl_days * {MICROS_PER_DAY}) AS BIGINT) THEN 'expired'
     WHEN last_grant_scopes IS NOT NULL AND NOT list_contains(last_grant_scopes, scope)
          THEN 'granted_without_scope'
     ELSE 'granted' END"""
_EXPIRES_SQL = (
    f"last_grant_time + to_microseconds(CAST(round(grant_ttl_days * {MICROS_PER_DAY}) AS BIGINT))"
)


def _aggregate_sql(view: str) -> str:
    """One row per (day, app_id, rule) of the flags in `view`: everything an alert states."""
    # the hour in UTC whatever the session's time zone
    hour = "date_part('hour', event_time AT TIME ZONE 'UTC')"
    by_hour = ", ".join(f"count(*) FILTER (WHERE {hour} = {h})" for h in range(24))
    by_severity = ", ".join(f"count(*) FILTER (WHERE severity = '{s}')" for s in SEVERITIES)
    states = ", ".join(
        f"count(*) FILTER (WHERE state = '{s}') AS users_{s}" for s in CONSENT_STATES
    )
    return f"""
WITH f AS (
    SELECT delivery_date AS day, app_id, rule, partner_id, partner_name, severity, user_id,
           event_time, request_id, action, scope, grant_ttl_days, last_revoke_time,
           partnership_start, partnership_end, partnership_scopes,
           {_CONSENT_STATE_SQL} AS consent_state,
           {_EXPIRES_SQL} AS expires_at
    FROM {view}
), per_user AS (
    SELECT day, app_id, rule, user_id,
           arg_max(consent_state, (event_time, request_id)) AS state
    FROM f GROUP BY day, app_id, rule, user_id
), users AS (
    SELECT day, app_id, rule, count(*) AS users, {states}
    FROM per_user GROUP BY day, app_id, rule
), groups AS (
    SELECT day, app_id, rule,
           min(partner_id) AS partner_id, min(partner_name) AS partner_name,
           {_SEVERITIES_SQL}[max(list_position({_SEVERITIES_SQL}, severity))] AS severity,
           count(*) AS flags,
           min(event_time) AS first_event_time, max(event_time) AS last_event_time,
           count(*) FILTER (WHERE action = 'read') AS reads,
           count(*) FILTER (WHERE action = 'write') AS writes,
           count(*) FILTER (WHERE action = 'delete') AS deletes,
           [{by_hour}] AS flags_by_hour,
           [{by_severity}] AS flags_by_severity,
           list(DISTINCT {{'start': partnership_start, 'end': partnership_end,
                           'scopes': partnership_scopes}})
               FILTER (WHERE partnership_start IS NOT NULL OR partnership_end IS NOT NULL)
               AS partnerships,
           max(grant_ttl_days) AS grant_ttl_days,
           histogram(scope) AS scopes_used,
           min(last_revoke_time) FILTER (WHERE consent_state = 'revoked') AS first_revoke,
           max(last_revoke_time) FILTER (WHERE consent_state = 'revoked') AS last_revoke,
           min(expires_at) FILTER (WHERE consent_state = 'expired') AS first_expiry,
           max(expires_at) FILTER (WHERE consent_state = 'expired') AS last_expiry,
           min_by(request_id, (event_time, request_id), {SAMPLES}) AS sample_request_ids
    FROM f GROUP BY day, app_id, rule
)
SELECT * FROM groups JOIN users USING (day, app_id, rule)
"""


def _grouped(relation: duckdb.DuckDBPyRelation) -> list[dict[str, Any]]:
    """The aggregate of a relation over flags: a few rows, one per alert."""
    result = relation.query("alert_flags", _aggregate_sql("alert_flags"))
    assert result is not None  # a SELECT always gives a relation
    return result.to_arrow_table().to_pylist()


def _aggregate(flags: pa.Table | duckdb.DuckDBPyRelation) -> list[dict[str, Any]]:
    if isinstance(flags, duckdb.DuckDBPyRelation):
        return _grouped(flags)
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        return _grouped(con.from_arrow(flags))
    finally:
        con.close()


# ---------------------------------------------------------------- words


def _utc(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def _when(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _count(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


def _who(partner_name: str | None, partner_id: str | None, app_id: str) -> str:
    if partner_name:
        return f"{partner_name} (app {app_id})"
    if partner_id:
        return f"Partner {partner_id} (app {app_id})"
    return f"App {app_id}"


def _between(values: list[datetime], one: str, several: str) -> str:
    """`one` with the single time, or `several` with the first and last."""
    if not values:
        return ""
    if len(values) == 1:
        return one.format(_when(values[0]))
    return several.format(_when(min(values)), _when(max(values)))


def _reason(group: dict[str, Any], evidence: dict[str, Any]) -> str:
    """The rule's part of the sentence: what the flags have in common."""
    rule, users = group["rule"], group["users"]
    the_users = "the user" if users == 1 else "the users"
    periods = evidence["partnerships"]
    ends = sorted({datetime.fromisoformat(p["end"]) for p in periods if p["end"]})
    starts = sorted({datetime.fromisoformat(p["start"]) for p in periods if p["start"]})
    used = ", ".join(sorted(evidence["scopes_used"])) or "none"
    if rule == "UNKNOWN_APP":
        return ", but the app is not in the partnership registry"
    if rule == "AFTER_PARTNERSHIP_END":
        return (
            _between(
                ends,
                ", all after its partnership ended on {}",
                ", all after one of its partnerships had ended (the first on {}, the last on {})",
            )
            or ", after its partnership had ended"
        )
    if rule == "BEFORE_PARTNERSHIP_START":
        return (
            _between(
                starts,
                ", all before its partnership started on {}",
                ", all before one of its partnerships started (the first on {}, the last on {})",
            )
            or ", before its partnership had started"
        )
    if rule == "SCOPE_NOT_IN_PARTNERSHIP":
        allowed = sorted({s for p in periods for s in (p["scopes"] or [])})
        return (
            f", using scopes its partnership does not allow ({used}; allowed: "
            f"{', '.join(allowed) or 'nothing'})"
        )
    if rule == "NO_SIGNIN":
        return " who had never signed in through the app"
    if rule == "SIGNIN_REVOKED":
        return f", all after {the_users} had revoked the sign-in"
    if rule == "SIGNIN_EXPIRED":
        whose = "the user's sign-in had" if users == 1 else "the users' sign-ins had"
        ttl = evidence["grant_ttl_days"]
        lasts = f" (sign-ins last {ttl:g} days)" if ttl is not None else ""
        return f", all after {whose} expired{lasts}"
    if rule == "SCOPE_NOT_GRANTED":
        return f", using scopes {the_users} had not granted ({used})"
    return f", breaking rule {rule}"


def _explanation(group: dict[str, Any], evidence: dict[str, Any]) -> str:
    actions = [
        _count(group[column], one, many)
        for column, one, many in (
            ("reads", "read", "reads"),
            ("writes", "write", "writes"),
            ("deletes", "delete", "deletes"),
        )
        if group[column]
    ]
    did = _count(group["flags"], "message access", "message accesses")
    return (
        f"{_who(group['partner_name'], group['partner_id'], group['app_id'])} made {did}"
        f"{' (' + ', '.join(actions) + ')' if actions else ''} for "
        f"{_count(group['users'], 'user', 'users')} on {group['day'].isoformat()}"
        f"{_reason(group, evidence)}."
    )


def _span(first: datetime | None, last: datetime | None) -> dict[str, str | None] | None:
    return None if first is None else {"first": _utc(first), "last": _utc(last)}


def _evidence(group: dict[str, Any]) -> dict[str, Any]:
    periods = [
        {"start": _utc(p["start"]), "end": _utc(p["end"]), "scopes": sorted(p["scopes"] or [])}
        for p in group["partnerships"] or []
    ]
    periods.sort(key=lambda p: (p["start"] or "", p["end"] or "", p["scopes"]))
    return {
        "partnerships": periods,
        "grant_ttl_days": group["grant_ttl_days"],
        "users_by_consent_state": {s: group[f"users_{s}"] for s in CONSENT_STATES},
        "scopes_used": dict(sorted(dict(group["scopes_used"] or {}).items())),
        "revoked": _span(group["first_revoke"], group["last_revoke"]),
        "expired": _span(group["first_expiry"], group["last_expiry"]),
    }


def _rule_alert(group: dict[str, Any]) -> dict[str, Any]:
    evidence = _evidence(group)
    return {
        "alert_id": rule_alert_id(group["day"], group["app_id"], group["rule"]),
        "kind": RULE_ALERT,
        "user_id": None,
        "evidence": json.dumps(evidence, sort_keys=True, ensure_ascii=False),
        "score": None,
        "model_version": None,
        "explanation": _explanation(group, evidence),
        **{name: group[name] for name in ALERTS.names if name in group},
    }


def _behaviour_alerts(anomalies: pa.Table | None, names: dict[str, str]) -> list[dict[str, Any]]:
    """One alert per anomalies row with alert = true (a few a day: the model's alert budget)."""
    if anomalies is None or anomalies.num_rows == 0:
        return []
    alerted = anomalies.filter(pc.equal(anomalies["alert"], True))
    rows = []
    for row in alerted.to_pylist():
        kind = row["entity_kind"]
        evidence = {key: row[key] for key in ("entity_kind", "model_name", "model_version", "rank")}
        evidence["score"] = row["score"]
        evidence["top_features"] = list(row["top_features"])
        rows.append(
            {
                "alert_id": behaviour_alert_id(
                    kind, row["day"], row["partner_id"], row["app_id"], row["user_id"]
                ),
                "kind": BEHAVIOUR_ALERT,
                "day": row["day"],
                "partner_id": row["partner_id"],
                "partner_name": names.get(row["partner_id"] or ""),
                "app_id": row["app_id"],
                "user_id": row["user_id"],
                "rule": kind,
                "severity": BEHAVIOUR_SEVERITY.get(kind, "medium"),
                "flags": 0,
                "users": 1 if row["user_id"] else 0,
                "reads": 0,
                "writes": 0,
                "deletes": 0,
                "evidence": json.dumps(evidence, sort_keys=True, ensure_ascii=False),
                "sample_request_ids": [],
                "score": row["score"],
                "model_version": row["model_version"],
                "explanation": row["explanation"],
            }
        )
    return rows


def _order(row: dict[str, Any]) -> tuple[Any, ...]:
    """Rule alerts first, then behaviour, then coverage; then by day, most severe, most flags
    (or highest score), keys."""
    return (
        KIND_ORDER.index(row["kind"]),
        row["day"],
        -SEVERITIES.index(row["severity"]),
        -row["flags"],
        -(row["score"] or 0.0),
        row["partner_id"] or "",
        row["app_id"] or "",
        row["user_id"] or "",
        row["rule"],
        row["alert_id"],
    )


def build_alerts(
    flags: pa.Table | duckdb.DuckDBPyRelation,
    anomalies: pa.Table | None = None,
    coverage: pa.Table | None = None,
) -> pa.Table:
    """The alerts (schema ALERTS) of the flags (schema FLAGS: an Arrow table, or a DuckDB relation
    over flags Parquet files), of the anomalies (schema ANOMALIES; None: no model has scored
    the day) and the day's coverage alerts (schema ALERTS, from detect.coverage_alerts; None:
    none). A rule alert per (delivery day, app, rule) of the flags; a behaviour alert per
    anomalies row with alert = true; coverage alerts as given (they carry no flags). The same
    inputs give the same rows in the same order."""
    groups = _aggregate(flags)
    names = {g["partner_id"]: g["partner_name"] for g in groups if g["partner_id"]}
    rows = [_rule_alert(g) for g in groups] + _behaviour_alerts(anomalies, names)
    if coverage is not None:  # a few rows a day: one per partner above the share
        rows += coverage.select(ALERTS.names).cast(ALERTS).to_pylist()
    rows.sort(key=_order)
    return pa.Table.from_pylist(rows, schema=ALERTS)
