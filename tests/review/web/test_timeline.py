"""The item's timeline: consent history and partnership periods from the warehouse and registry,
and the SVG that draws them, agree with the evidence that decided each flag."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from pipeline.config import Settings
from pipeline.review.store import ItemFilter, ReviewStore
from pipeline.review.timeline import Period, Timeline, grants_from_events, timeline_for
from pipeline.review.web.charts import rule_counts_chart, timeline_chart


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
    item = store.items(ItemFilter(rule=rule), per_page=1).items[0]
    assert item.user_id and item.app_id and item.event_time
    timeline = timeline_for(web_settings, item.day, item.user_id, item.app_id, item.event_time)
    before_access = [g for g in timeline.grants if g.start <= item.event_time]
    assert timeline.registered and timeline.periods
    if rule == "NO_SIGNIN":
        assert before_access == []
    elif rule == "SIGNIN_REVOKED":
        revoke = datetime.fromisoformat(item.evidence["last_revoke_time"])
        assert revoke in timeline.revocations and revoke <= item.event_time
    else:
        last = before_access[-1]
        assert last.start == datetime.fromisoformat(item.evidence["last_grant_time"])
        assert last.expired_first and last.expires_at is not None
        assert last.expires_at < item.event_time
        assert last.expires_at == datetime.fromisoformat(item.evidence["grant_expired_at"])
    chart = timeline_chart(timeline)
    classes = [shape.cls for shape in chart.shapes]
    assert classes.count("tl-access") == 1
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
        at(18),
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


def test_item_page_shows_the_timeline_chart(
    store: ReviewStore, app_client: Callable[..., TestClient]
) -> None:
    item = store.items(ItemFilter(rule="SIGNIN_REVOKED"), per_page=1).items[0]
    page = app_client(logged_in_as="vic").get(f"/items/{item.item_id}").text
    assert '<svg id="timeline-chart"' in page
    assert 'class="tl-revoke"' in page and 'class="tl-access"' in page
    assert item.explanation in page
