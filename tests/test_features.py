"""Behaviour features on tiny literal tables, with exact expected values."""

from __future__ import annotations

import statistics
from datetime import UTC, date, datetime

import pandas as pd
import pyarrow as pa
import pytest

from pipeline.behaviour.features import MODEL_FEATURES, daily_features, relative_features
from pipeline.config import Settings
from pipeline.schema import DAILY_FEATURES, REGISTRY

DAY = date(2026, 3, 10)
SETTINGS = Settings()


def at(hour: int, minute: int = 0, second: int = 0, day: int = 10) -> datetime:
    return datetime(2026, 3, day, hour, minute, second, tzinfo=UTC)


def registry() -> pa.Table:
    row = {
        "partner_id": "P1",
        "partner_name": "One",
        "app_id": "a1",
        "period_start": at(0, day=1),
        "period_end": None,
        "period_scopes": ["messages.read"],
        "grant_ttl_days": None,
        "registry_line": 2,
    }
    return pa.Table.from_pylist([row], schema=REGISTRY)


def access() -> pa.Table:
    rows = [  # request_id, time, app, user, resource, action, status, thread, ip
        ("r1", at(0, 30), "a1", "u1", "messages", "read", 200, "t1", "10.0.0.1"),
        ("r2", at(0, 30, 20), "a1", "u1", "messages", "read", 200, "t1", "10.0.0.1"),
        ("r3", at(10), "a1", "u1", "messages", "write", 201, "t2", "10.0.0.2"),
        ("r4", at(11), "a1", "u2", "messages", "read", 500, "t3", "10.0.0.2"),  # failed
        ("r5", at(12), "a1", "u2", "contacts", "read", 200, None, None),  # not messages
        ("r6", at(13), "x9", "u3", "messages", "delete", 200, "t9", "10.0.0.9"),  # no partner
    ]
    names = ["request_id", "event_time", "app_id", "user_id", "resource", "action", "status",
             "thread_id", "ip"]  # fmt: skip
    return pa.Table.from_pylist([dict(zip(names, r, strict=True)) for r in rows])


def consent() -> pa.Table:
    rows = [  # user, app, type, time, delivered
        ("u1", "a1", "grant", at(9, day=1), date(2026, 3, 1)),
        ("u2", "a1", "grant", at(9, day=1), date(2026, 3, 1)),
        ("u2", "a1", "revoke", at(15), DAY),  # before the day's end: not live
        ("u3", "a1", "grant", at(0, day=11), date(2026, 3, 11)),  # after the day's end
    ]
    names = ["user_id", "app_id", "event_type", "event_time", "delivery_date"]
    return pa.Table.from_pylist([dict(zip(names, r, strict=True)) for r in rows])


def flags() -> pa.Table:
    return pa.table({"request_id": ["r2", "r2"]})  # one event, two rules: counted once


def features() -> list[dict]:
    return daily_features(access(), flags(), consent(), registry(), DAY, SETTINGS).to_pylist()


def test_daily_features_counts_a_partner_day_exactly():
    partner = next(r for r in features() if r["entity_kind"] == "partner_day" and r["partner_id"])
    expected = {
        "day": DAY, "partner_id": "P1", "app_id": None, "user_id": None, "calls": 5,
        "message_reads": 2, "message_writes": 1, "message_deletes": 0, "message_accesses": 3,
        "distinct_users": 1, "distinct_threads": 2, "live_grants": 1,
        "accesses_per_live_grant": 3.0, "flagged_accesses": 1, "flagged_share": 1 / 3,
        "night_share": 2 / 3, "failed_rate": 0.2, "max_burst_per_minute": 2, "revokes": 1,
        "distinct_ips": 2, "ips": ["10.0.0.1", "10.0.0.2"],
    }  # fmt: skip
    assert {k: partner[k] for k in expected} == expected


def test_daily_features_keys_an_unregistered_app_as_its_own_partner():
    rows = [r for r in features() if r["app_id"] == "x9"]
    assert [(r["entity_kind"], r["partner_id"], r["user_id"]) for r in rows] == [
        ("app_user_day", None, "u3"),
        ("partner_day", None, None),
    ]
    partner = rows[1]
    assert (partner["message_deletes"], partner["live_grants"]) == (1, 0)
    assert partner["accesses_per_live_grant"] == 1.0  # no live grant counts as one


def test_daily_features_counts_app_user_days_exactly():
    users = {r["user_id"]: r for r in features() if r["entity_kind"] == "app_user_day"}
    assert sorted(users) == ["u1", "u2", "u3"]
    u1, u2 = users["u1"], users["u2"]
    assert (u1["message_accesses"], u1["live_grants"], u1["max_burst_per_minute"]) == (3, 1, 2)
    assert (u1["flagged_share"], u1["ips"]) == (1 / 3, None)
    assert (u2["calls"], u2["message_accesses"], u2["failed_rate"], u2["revokes"]) == (2, 0, 0.5, 1)
    assert (u2["live_grants"], u2["night_share"], u2["max_burst_per_minute"]) == (0, 0.0, 0)


def partner_row(day: int, reads: int, ips: list[str], night: float) -> dict:
    row = {f.name: 0 for f in DAILY_FEATURES if pa.types.is_integer(f.type)}
    row |= {f.name: 0.0 for f in DAILY_FEATURES if pa.types.is_floating(f.type)}
    row |= {"day": date(2026, 3, day), "entity_kind": "partner_day", "partner_id": "P1",
            "app_id": None, "user_id": None, "message_reads": reads, "ips": ips,
            "night_share": night, "distinct_ips": len(ips)}  # fmt: skip
    return row


def relative_row(history: list[dict], today: dict) -> pd.Series:
    frame = relative_features(
        pa.Table.from_pylist([today], schema=DAILY_FEATURES),
        pa.Table.from_pylist(history, schema=DAILY_FEATURES),
    )
    assert len(frame) == 1
    return frame.iloc[0]


def test_relative_features_shrink_a_short_history_toward_no_change():
    history = [partner_row(8, 1, ["ip1"], 0.1), partner_row(9, 3, ["ip1"], 0.3)]
    row = relative_row(history, partner_row(10, 8, ["ip1", "ip2"], 0.9))
    assert (row["history_days"], row["history_weight"]) == (2, 2 / 7)
    assert (row["message_reads_median"], row["message_reads_recent"]) == (2.0, 2.0)
    assert row["message_reads_baseline"] == 2.0
    assert row["message_reads_ratio"] == pytest.approx(((8 + 1) / (2 + 1)) ** (2 / 7))
    assert row["night_share_delta"] == pytest.approx((0.9 - 0.2) * 2 / 7)
    assert (row["new_ips"], row["new_ip_share"]) == (1, 0.5)
    assert row["new_ip_share_median"] == 0.0  # day 9 used no address day 8 had not
    assert row["new_ip_share_delta"] == pytest.approx((0.5 - 0.0) * 2 / 7)
    assert row["calls_ratio"] == 1.0


def level_shift_history() -> list[dict]:
    """Eight days: 10 reads on days 1-5, then 40 on days 6-8 (the last three)."""
    return [partner_row(day, 10 if day <= 5 else 40, ["ip1"], 0.0) for day in range(1, 9)]


@pytest.mark.parametrize(
    ("reads", "baseline"),
    [
        (40, 40.0),  # at the new level held on the last 3 days: no change
        (25, 25.0),  # between the long and the recent median: no change
        (100, 40.0),  # above both: measured against the nearer, recent one
        (5, 10.0),  # below both: against the nearer, long one
    ],
)
def test_relative_features_measure_against_the_nearer_of_long_and_recent_medians(reads, baseline):
    row = relative_row(level_shift_history(), partner_row(9, reads, ["ip1"], 0.0))
    assert (row["history_days"], row["history_weight"]) == (8, 1.0)
    assert (row["message_reads_median"], row["message_reads_recent"]) == (10.0, 40.0)
    assert row["message_reads_baseline"] == baseline
    assert row["message_reads_ratio"] == pytest.approx((reads + 1) / (baseline + 1))


def test_relative_features_sum_the_last_days_calls_each_at_most_today_s():
    # day 5 without calls; weekends (1, 7, 8) and weekdays at one median: no weekly season
    calls = {1: 100, 2: 100, 3: 100, 4: 100, 6: 50, 7: 900, 8: 100}
    history = [partner_row(day, 1, ["ip1"], 0.0) | {"calls": n} for day, n in calls.items()]
    row = relative_row(history, partner_row(9, 1, ["ip1"], 0.0) | {"calls": 200})
    # today and days 6-8 (the spike of day 7 counts as today's 200)
    assert (row["calls_sustained"], row["sustained_days"]) == (200 + 50 + 200 + 100, 4)
    assert row["calls_early_median"] == 100.0  # days 1-5 (the days before the last three)
    assert (row["calls_early_iqr"], row["early_days"]) == (0, 4)
    alone = relative_row([], partner_row(9, 1, ["ip1"], 0.0) | {"calls": 200})
    assert (alone["calls_sustained"], alone["sustained_days"]) == (200, 1)
    assert pd.isna(alone["calls_early_median"])


def test_relative_features_put_history_on_today_s_class_of_day():
    # three weeks from Monday 2 March: 100 calls on weekdays, 30 on Saturdays and Sundays
    weekend = {7, 8, 14, 15, 21, 22}
    history = [partner_row(d, 0, ["ip1"], 0.0) | {"calls": 30 if d in weekend else 100}
               for d in range(2, 23)]  # fmt: skip
    factor = (30 + 1) / (100 + 1)  # the weekend's median against the weekdays', smoothed by 1
    sunday = relative_row(history, partner_row(29, 0, ["ip1"], 0.0) | {"calls": 30})
    # every weekday seen as it would be on a weekend: the usual Sunday is 30, no change
    assert sunday["calls_median"] == pytest.approx(100 * factor)
    assert sunday["calls_ratio"] == pytest.approx(31 / (100 * factor + 1))
    monday = relative_row(history, partner_row(23, 0, ["ip1"], 0.0) | {"calls": 100})
    assert monday["calls_median"] == pytest.approx(100.0)  # weekends seen as weekdays
    # its early days (2-19) flat but for the smoothing: the weekly dip is no day-to-day spread
    early = [30 / factor if d in weekend else 100 for d in range(2, 20)]
    quartiles = statistics.quantiles(early, n=4, method="inclusive")
    assert monday["calls_early_iqr"] == pytest.approx(quartiles[2] - quartiles[0])
    # the history's raw sums are what the shares are weighed by (no class scaling there)
    assert monday["message_reads_hist"] == 0 and monday["message_reads_of_hist"] == 15 * 100 + 180
    # three weekends: their median, not the one nearest to 1 (days 14-15 busier than the others)
    odd = [row | {"calls": 60} if row["day"].day in (14, 15) else row for row in history]
    sunday = relative_row(odd, partner_row(29, 0, ["ip1"], 0.0) | {"calls": 30})
    assert sunday["calls_median"] == pytest.approx(100 * factor)
    # one weekend is no week: a dip over days 5-8 is not taken for the entity's weekends
    dip = [partner_row(d, 0, ["ip1"], 0.0) | {"calls": 40 if 5 <= d <= 8 else 100}
           for d in range(1, 14)]  # fmt: skip
    saturday = relative_row(dip, partner_row(14, 0, ["ip1"], 0.0) | {"calls": 100})
    assert saturday["calls_median"] == 100.0 and saturday["calls_ratio"] == 1.0
    # one weekend is the week of an entity seen on no other (a user): its two days' own factor
    once = [partner_row(d, 0, ["ip1"], 0.0) | {"calls": 30 if d in (7, 8) else 100}
            for d in range(2, 14)]  # fmt: skip
    sunday = relative_row(once, partner_row(15, 0, ["ip1"], 0.0) | {"calls": 30})
    assert sunday["calls_median"] == pytest.approx(100 * factor)


def test_relative_features_compare_new_ips_with_the_entity_s_usual_rate():
    steady = [partner_row(day, 1, ["a"] + (["x"] if day in (2, 3) else []), 0.0) for day in
              range(1, 9)]  # fmt: skip
    rotating = [partner_row(day, 1, ["a", f"b{day}"], 0.0) for day in range(1, 9)]
    row = relative_row(steady, partner_row(9, 1, ["a", "n1", "n2", "n3"], 0.0))
    # usual: days 2..8 share 1/2 (day 2's x), 0 (day 3 saw x on day 2), then 0: median 0
    assert (row["new_ips"], row["new_ip_share"], row["new_ip_share_median"]) == (3, 0.75, 0.0)
    assert row["new_ip_share_delta"] == 0.75
    row = relative_row(rotating, partner_row(9, 1, ["a", "b9"], 0.0))
    assert (row["new_ips"], row["new_ip_share"], row["new_ip_share_median"]) == (1, 0.5, 0.5)
    assert row["new_ip_share_delta"] == 0.0


def test_relative_features_are_neutral_without_history():
    today = daily_features(access(), flags(), consent(), registry(), DAY, SETTINGS)
    frame = relative_features(today, DAILY_FEATURES.empty_table())
    assert len(frame) == today.num_rows
    ratios = [f for f in MODEL_FEATURES if f.endswith("_ratio")]
    assert (frame[ratios] == 1.0).all().all()
    others = [f for f in MODEL_FEATURES if f not in ratios]
    assert (frame[others] == 0.0).all().all()
    assert (frame["history_days"] == 0).all()
    assert (frame["history_weight"] == 0.0).all()


def security_access() -> pa.Table:
    rows = [  # request_id, time, app, user, resource, action, status, thread, ip
        ("s1", at(10), "a1", "u1", "messages", "read", 200, "t1", "10.0.0.1"),
        ("s2", at(16), "a1", "u2", "messages", "read", 200, "t2", "10.0.0.1"),  # after revoke
        ("s3", at(12), "a1", "u4", "messages", "read", 200, "t3", "10.0.0.2"),  # idle since Feb
        ("s4", at(12, 5), "a1", "u4", "messages", "read", 200, "t3", "10.0.0.2"),
        ("s5", at(13), "a1", "u5", "messages", "read", 200, "t4", "10.0.0.1"),  # new today
        ("s6", at(14), "a1", "u1", "contacts", "read", 200, None, "192.168.7.9"),
        ("s7", at(2), "a1", "u1", "messages", "write", 503, "t1", "10.0.0.1"),  # failed, night
    ]
    names = ["request_id", "event_time", "app_id", "user_id", "resource", "action", "status",
             "thread_id", "ip"]  # fmt: skip
    return pa.Table.from_pylist([dict(zip(names, r, strict=True)) for r in rows])


def security_consent() -> pa.Table:
    rows = [
        ("u1", "a1", "grant", at(9, day=1), date(2026, 3, 1)),
        ("u2", "a1", "grant", at(9, day=1), date(2026, 3, 1)),
        ("u2", "a1", "revoke", at(15), DAY),
        ("u4", "a1", "grant", datetime(2026, 2, 1, tzinfo=UTC), date(2026, 2, 1)),
        ("u5", "a1", "grant", at(8), DAY),
    ]
    names = ["user_id", "app_id", "event_type", "event_time", "delivery_date"]
    return pa.Table.from_pylist([dict(zip(names, r, strict=True)) for r in rows])


def security_rows(recent: bool = True) -> dict[str | None, dict]:
    recent_users = pa.table({"app_id": ["a1", "a1"], "user_id": ["u1", "u2"]}) if recent else None
    table = daily_features(security_access(), pa.table({"request_id": pa.array([], pa.string())}),
                           security_consent(), registry(), DAY, SETTINGS, recent_users)  # fmt: skip
    return {r["user_id"]: r for r in table.to_pylist()}


def test_daily_features_count_what_a_security_team_asks_for():
    partner = security_rows()[None]
    expected = {
        "dormant_reads": 2, "dormant_users": 1,  # u4: granted in February, no call in a week
        "revoked_reads": 1, "revoked_users": 1,  # u2 read an hour after revoking
        "new_users": 1,  # u5 signed in for the first time on the day
        "night_accesses": 0, "failed_calls": 1,  # the night call failed: no message access
        "scopes": ["contacts.read", "messages.read", "messages.write"], "scope_calls": [1, 5, 1],
        "networks": ["10.0.0.0/24", "192.168.7.0/24"], "network_calls": [6, 1],
        "ips": ["10.0.0.1", "10.0.0.2", "192.168.7.9"], "ip_calls": [4, 2, 1],
    }  # fmt: skip
    assert {k: partner[k] for k in expected} == expected


def test_daily_features_count_security_figures_per_user():
    users = security_rows()
    assert (users["u4"]["dormant_reads"], users["u4"]["dormant_users"]) == (2, 1)
    assert (users["u2"]["revoked_reads"], users["u5"]["new_users"]) == (1, 1)
    assert (users["u1"]["dormant_reads"], users["u1"]["scopes"]) == (
        0, ["contacts.read", "messages.read", "messages.write"],
    )  # fmt: skip
    assert users["u1"]["networks"] is None  # addresses are kept per partner only


def test_dormancy_is_unknown_without_the_week_before():
    rows = security_rows(recent=False)
    assert {r["dormant_reads"] for r in rows.values()} == {None}
    assert rows[None]["revoked_reads"] == 1


def item_row(day: int, kind: str, user: str | None, scopes: list[str], nets: list[str]) -> dict:
    row = partner_row(day, 1, [], 0.0)
    row |= {"entity_kind": kind, "user_id": user, "calls": 10, "scopes": scopes,
            "scope_calls": [10] * len(scopes), "networks": nets or None,
            "network_calls": [10] * len(nets) or None, "ips": None}  # fmt: skip
    if kind == "app_user_day":
        row["app_id"] = "a1"
    return row


def test_relative_features_find_first_scopes_and_networks_against_the_history():
    history = [item_row(d, "partner_day", None, ["messages.read"], ["10.0.0.0/24"])
               for d in (7, 8, 9)]  # fmt: skip
    history.append(item_row(9, "app_user_day", "u7", ["messages.write"], []))
    today = [
        item_row(10, "partner_day", None, ["files.read", "messages.read"],
                 ["10.0.0.0/24", "10.9.9.0/24"]),
        # u7's first read is no news (its app reads); its files.read is the app's first
        item_row(10, "app_user_day", "u7", ["files.read", "messages.read"], []),
    ]  # fmt: skip
    frame = relative_features(
        pa.Table.from_pylist(today, schema=DAILY_FEATURES),
        pa.Table.from_pylist(history, schema=DAILY_FEATURES),
    ).set_index("entity_kind")
    partner, user = frame.loc["partner_day"], frame.loc["app_user_day"]
    assert (partner["new_scopes"], partner["new_scope_calls"]) == (1, 10)
    assert (partner["new_networks"], partner["new_network_calls"]) == (1, 10)
    assert partner["new_scope_calls_hist"] == 0  # days 8 and 9 used what day 7 did
    assert partner["new_scope_calls_of_hist"] == 20  # the calls of days 8 and 9
    assert (user["new_scopes"], user["new_scope_calls"]) == (1, 10)
    assert partner["calls_app_user_median"] != partner["calls_app_user_median"]  # NaN
    assert user["calls_app_user_median"] == 10
