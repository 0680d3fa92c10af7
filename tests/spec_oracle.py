"""A deliberately naive, loop-based reading of SPEC §3 ("Rules"), used as a test oracle.

No pandas, pyarrow or duckdb: rows are plain dicts (as `pa.Table.to_pylist()` gives them), every
rule is a Python loop written straight from the spec's sentences, so that the vectorised
`pipeline.detect.rules.flags_for_day` can be checked against it.

Points the spec leaves open, decided here the way the lead engineer's implementation does:
- consent events at equal times: a grant comes before a revoke (spec); between two grants at the
  same time, the one ingested later — greater (delivery_date, source_file, source_line) — is later;
- `t - g.time > TTL` is strict, TTL = grant_ttl_days * 86400 seconds (to the microsecond);
- "some row ended at or before t" means period_end is not null and period_end <= t;
- "at most one of" is read as precedence in the order the spec lists the rules;
- an admin (tenant-wide) consent is stored with user_id `*` (formats.md, Part 3 §4: it "covers
  all users"): it is a consent event of every user of its app, ordered with the user's own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

Row = Mapping[str, Any]
Evidence = dict[str, Any]
FlagKey = tuple[str, str]  # (request_id, rule)

PARTNERSHIP_RULES = frozenset(
    {"AFTER_PARTNERSHIP_END", "BEFORE_PARTNERSHIP_START", "SCOPE_NOT_IN_PARTNERSHIP"}
)
CONSENT_RULES = frozenset({"NO_SIGNIN", "SIGNIN_REVOKED", "SIGNIN_EXPIRED", "SCOPE_NOT_GRANTED"})
ALL_USERS = "*"  # the user of an admin consent


def _covers(period: Row, t: dt.datetime) -> bool:
    # §2: "the period is [start, end)", "An empty `end` means ongoing".
    if period["period_start"] > t:
        return False
    return period["period_end"] is None or t < period["period_end"]


def _ended_at_or_before(period: Row, t: dt.datetime) -> bool:
    # "some row ended at or before `t`": an ongoing row (null end) has not ended.
    return period["period_end"] is not None and period["period_end"] <= t


def _consent_order(event: Row) -> tuple[Any, ...]:
    # "Order them by time; at equal times a grant comes before a revoke (the revoke wins)."
    # Between grants at the same time, the one ingested later (lineage) comes later.
    return (
        event["event_time"],
        0 if event["event_type"] == "grant" else 1,
        event["delivery_date"],
        event["source_file"],
        event["source_line"],
    )


def _app_ttl_days(app_rows: list[Row]) -> float | None:
    # "`grant_ttl_days` ... It must be the same on every row of one app."
    ttls: set[float | None] = {row["grant_ttl_days"] for row in app_rows}
    if len(ttls) != 1:
        raise ValueError(
            f"registry invalid: app has several grant_ttl_days {sorted(map(str, ttls))}"
        )
    return ttls.pop()


def consent_evidence(
    access_row: Row,
    consent: Iterable[Row],
    day: dt.date,
    clock_skew_seconds: float,
) -> tuple[list[Row], Evidence]:
    """The ordered consent events that count for one access event, and the evidence they give."""
    t: dt.datetime = access_row["event_time"]
    skew = dt.timedelta(seconds=clock_skew_seconds)
    eligible: list[Row] = []
    for event in consent:
        # "Take the consent events of the same `user_id` and `app_id`" (an admin consent's user
        # `*` is every user)
        if event["user_id"] not in (access_row["user_id"], ALL_USERS):
            continue
        if event["app_id"] != access_row["app_id"]:
            continue
        # "delivered on days `<= D`"
        if event["delivery_date"] > day:
            continue
        # "whose time is `<= t`"
        at_or_before_t = event["event_time"] <= t
        # "(grants up to `clock_skew_seconds` after `t` also count; default 0)" — grants only.
        grant_within_skew = event["event_type"] == "grant" and event["event_time"] <= t + skew
        if at_or_before_t or grant_within_skew:
            eligible.append(event)
    eligible.sort(key=_consent_order)

    grants = [event for event in eligible if event["event_type"] == "grant"]
    revokes = [event for event in eligible if event["event_type"] == "revoke"]
    last_grant = grants[-1] if grants else None
    evidence: Evidence = {
        "last_grant_time": last_grant["event_time"] if last_grant is not None else None,
        # None means "every scope" when there is a grant (§2: "Absent or null: ... every scope").
        "last_grant_scopes": list(last_grant["scopes"])
        if last_grant is not None and last_grant["scopes"] is not None
        else None,
        "has_grant": last_grant is not None,
        "last_revoke_time": revokes[-1]["event_time"] if revokes else None,
    }
    return eligible, evidence


def oracle_flags(
    access: Iterable[Row],
    consent: Iterable[Row],
    registry: Iterable[Row],
    day: dt.date,
    *,
    message_resources: Iterable[str] = ("messages",),
    clock_skew_seconds: float = 0.0,
) -> dict[FlagKey, Evidence]:
    """{(request_id, rule): evidence} for the access events of delivery day `day`, per SPEC §3."""
    consent_rows = list(consent)
    registry_rows = list(registry)
    resources = set(message_resources)
    flags: dict[FlagKey, Evidence] = {}

    for row in access:
        # "Rules apply to every valid access event of delivery day `D`"
        if row["delivery_date"] != day:
            continue
        # "whose `resource` is message content"
        if row["resource"] not in resources:
            continue
        # "and whose `status` is below 400 (the call succeeded)"
        if row["status"] >= 400:
            continue
        request_id: str = row["request_id"]
        # "Let `t` be its time, `s` its scope, `R` the registry rows of its app."
        t: dt.datetime = row["event_time"]
        # §2: "The scope of an access is `<resource>.<action>`"
        s = f"{row['resource']}.{row['action']}"
        app_rows = [period for period in registry_rows if period["app_id"] == row["app_id"]]

        # 1. "`UNKNOWN_APP` — `R` is empty. No other rule is checked for this event."
        if not app_rows:
            flags[(request_id, "UNKNOWN_APP")] = {}
            continue

        # 2. Partnership (at most one of):
        covering = [period for period in app_rows if _covers(period, t)]
        if not covering:
            ended = [period for period in app_rows if _ended_at_or_before(period, t)]
            if ended:
                # "`AFTER_PARTNERSHIP_END` — no row of `R` covers `t`, and some row ended at or
                # before `t`."
                flags[(request_id, "AFTER_PARTNERSHIP_END")] = {
                    "partnership_end": max(period["period_end"] for period in ended)
                }
            else:
                # "`BEFORE_PARTNERSHIP_START` — no row of `R` covers `t`, and none ended at or
                # before `t`."
                flags[(request_id, "BEFORE_PARTNERSHIP_START")] = {
                    "partnership_start": min(period["period_start"] for period in app_rows)
                }
        elif not any(s in period["period_scopes"] for period in covering):
            # "`SCOPE_NOT_IN_PARTNERSHIP` — rows cover `t`, but none of them allows `s`."
            flags[(request_id, "SCOPE_NOT_IN_PARTNERSHIP")] = {
                "partnership_scopes": sorted({x for p in covering for x in p["period_scopes"]})
            }

        # 3. Consent (at most one of).
        eligible, evidence = consent_evidence(row, consent_rows, day, clock_skew_seconds)
        if not evidence["has_grant"]:
            # "`NO_SIGNIN` — there is no grant among them."
            flags[(request_id, "NO_SIGNIN")] = evidence
            continue
        last = eligible[-1]
        if last["event_type"] == "revoke":
            # "`SIGNIN_REVOKED` — the last of them is a revoke."
            flags[(request_id, "SIGNIN_REVOKED")] = evidence
            continue
        # The last is a grant `g` (and, by the ordering, it is the last grant).
        ttl_days = _app_ttl_days(app_rows)
        # TTL = grant_ttl_days days, kept to the microsecond like every time (§2): timedelta
        # rounds 0.7 days to exactly 16:48:00, where the float 0.7 * 86400e6 falls just short.
        if ttl_days is not None and t - last["event_time"] > dt.timedelta(days=ttl_days):
            # "`SIGNIN_EXPIRED` — the last is a grant `g`, the app has a TTL, and
            # `t - g.time > TTL`."
            flags[(request_id, "SIGNIN_EXPIRED")] = {
                **evidence,
                "grant_ttl_days": ttl_days,
                "grant_expired_at": last["event_time"] + dt.timedelta(days=ttl_days),
            }
        elif last["scopes"] is not None and s not in last["scopes"]:
            # "`SCOPE_NOT_GRANTED` — the last is a grant `g` whose scopes are not null and lack
            # `s`." ([] covers none: §2 "`[]`: it covers none".)
            flags[(request_id, "SCOPE_NOT_GRANTED")] = evidence
    return flags
