"""A user's timeline on an alert's page: consent history and partnership periods from the
warehouse and registry, and the SVG that draws them with the user's flagged accesses, agree with
the evidence that decided each flag."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from pipeline.config import Settings
from pipeline.detect.alert_flags import alert_flags
from pipeline.review.store import AlertFilter, ReviewStore
from pipeline.review.timeline import Period, Timeline, grants_from_events, timeline_for
from pipeline.review.web.charts import rule_counts_chart, timeline_chart
from pipeline.warehouse import Warehouse


def at(hour: int, day: int = 1) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=UTC)


def test_grants_end_at_the_next_event_and_expire_by_ttl() -> None:
    events = [
        (at(12), "revoke", None),
        (at(9), "grant", ("messages.read",)),
        (at(12), "grant", None),  # same instant as the revoke: the grant comes first
        (at(10, day=3), "grant", ()),
    ]
    grants, revocations = grants_from_events(events, ttl_days=1)
    assert [g.start for g in grants] == [at(9), at(12), at(10, day=3)]
    assert [g.ended_at for g in grants] == [at(12), at(12), None]
    assert [g.scopes for g in grants] == [("messages.read",), None, ()]
    assert revocations == (at(12),)
    assert [g.expired_first for g in grants] == [False, False, True]
    assert grants[2].valid_until == at(10, day=4)


def test_grants_without_ttl_never_expire() -> None:
    grants, _ = grants_from_events([(at(9), "grant", None)], ttl_days=None)
    assert grants[0].expires_at is None and grants[0].valid_until is None


@pytest.mark.parametrize("ttl_days", [3_000_000.0, 1e12])
def test_grants_with_a_ttl_beyond_the_calendar_never_expire(ttl_days: float) -> None:
    grants, _ = grants_from_events([(at(8), "grant", None)], ttl_days=ttl_days)
    assert [g.expires_at for g in grants] == [None]


@pytest.mark.parametrize("rule", ["SIGNIN_REVOKED", "SIGNIN_EXPIRED", "NO_SIGNIN"])
def test_timeline_agrees_with_the_flag_evidence(
    rule: str, store: ReviewStore, web_settings: Settings
) -> None:
    alert = store.alerts(AlertFilter(rule=rule), per_page=1).alerts[0]
    assert alert.app_id
    flag = alert_flags(
        Warehouse(web_settings.warehouse), alert.day, alert.alert_id, limit=1
    ).to_pylist()[0]
    mine = alert_flags(
        Warehouse(web_settings.warehouse),
        alert.day,
        alert.alert_id,
        user=flag["user_id"],
        limit=1000,
    )["event_time"].to_pylist()
    timeline = timeline_for(web_settings, alert.day, flag["user_id"], alert.app_id, mine)
    access = flag["event_time"]
    assert access in timeline.access_times and len(timeline.access_times) == len(mine)
    before_access = [g for g in timeline.grants if g.start <= access]
    assert timeline.registered and timeline.periods
    if rule == "NO_SIGNIN":
        assert before_access == []
    elif rule == "SIGNIN_REVOKED":
        revoke = flag["last_revoke_time"]
        assert revoke in timeline.revocations and revoke <= access
    else:
        last = before_access[-1]
        assert last.start == flag["last_grant_time"]
        assert last.expired_first and last.expires_at is not None
        assert last.expires_at < access
        assert last.expires_at == flag["grant_expired_at"]
    chart = timeline_chart(timeline)
    classes = [shape.cls for shape in chart.shapes]
    assert classes.count("tl-access") == len(mine)
    assert classes.count("tl-grant") == len(timeline.grants)
    assert classes.count("tl-revoke") == len(timeline.revocations)
    assert classes.count("tl-expiry") == sum(g.expired_first for g in timeline.grants)
    assert classes.count("tl-period") >= 1


def test_timeline_chart_places_events_in_time_order() -> None:
    grants, revocations = grants_from_events(
        [(at(9), "grant", None), (at(15), "revoke", None)], ttl_days=None
    )
    timeline = Timeline(
        "u1",
        "app",
        (at(18),),
        grants,
        revocations,
        (Period(at(0) - timedelta(days=400), None, ("messages.read",)),),
        None,
        True,
    )
    shapes = {s.cls: s for s in timeline_chart(timeline).shapes}
    grant, access = shapes["tl-grant"], shapes["tl-access"]
    assert float(grant.attrs["x"]) < float(access.attrs["cx"])
    assert float(grant.attrs["x"]) + float(grant.attrs["width"]) < float(access.attrs["cx"])
    assert "Revoked 2026-03-01 15:00:00 UTC" in shapes["tl-revoke"].title
    period = shapes["tl-period"]
    assert float(period.attrs["x"]) == 120  # started long before: clipped to the axis start


def test_rule_counts_chart_stacks_each_days_counts() -> None:
    d1, d3 = at(0).date(), at(0, day=3).date()
    chart = rule_counts_chart([(d1, "NO_SIGNIN", 3), (d1, "UNKNOWN_APP", 1), (d3, "NO_SIGNIN", 4)])
    bars = [s for s in chart.shapes if s.cls.startswith("bar ")]
    assert len(bars) == 3 and chart.counts["days"] == 3
    heights = {s.title: float(s.attrs["height"]) for s in bars}
    assert heights[f"{d3}: 4 NO_SIGNIN"] == pytest.approx(4 * heights[f"{d1}: 1 UNKNOWN_APP"])
    assert [label for _, label in chart.legend] == ["UNKNOWN_APP", "NO_SIGNIN"]


def test_timeline_chart_marks_many_accesses_with_dots_alone() -> None:
    accesses = tuple(at(9) + timedelta(minutes=n) for n in range(50))
    timeline = Timeline("u1", "app", accesses, (), (), (), None, False)
    chart = timeline_chart(timeline)
    classes = [s.cls for s in chart.shapes]
    assert classes.count("tl-access") == 50 and "tl-access-line" not in classes
    assert "50 flagged access(es) from 2026-03-01 09:00:00 UTC" in chart.summary


def test_alert_page_shows_a_users_timeline_chart(
    store: ReviewStore, app_client: Callable[..., TestClient], web_settings: Settings
) -> None:
    alert = store.alerts(AlertFilter(rule="SIGNIN_REVOKED"), per_page=1).alerts[0]
    user = alert_flags(Warehouse(web_settings.warehouse), alert.day, alert.alert_id, limit=1)[
        "user_id"
    ][0]
    client = app_client(logged_in_as="vic")
    page = client.get(f"/alerts/{alert.alert_id}?timeline={user.as_py()}").text
    assert '<svg id="timeline-chart"' in page
    assert 'class="tl-revoke"' in page and 'class="tl-access"' in page
    assert alert.explanation in page
    plain = client.get(f"/alerts/{alert.alert_id}").text
    assert '<svg id="timeline-chart"' not in plain and "Pick a user" in plain
