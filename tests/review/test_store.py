"""Review store on SQLite and PostgreSQL: alert upserts, series, decisions (on an alert, a series
or a selection), concurrency, the queue, suppressions."""

from __future__ import annotations

import contextlib
import itertools
import threading
from datetime import UTC, date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.detect.alert_ids import behaviour_alert_id, rule_alert_id
from pipeline.detect.series import series_of
from pipeline.errors import InvalidTransition, StaleItem, UnknownItem
from pipeline.review.store import SORTS, AlertFilter, ReviewStore
from pipeline.schema import UNKNOWN_PARTNER
from tests.review.literals import D1, D2, NO_ALERTS, alert, alerts, at, behaviour_alert

D3 = D2 + timedelta(days=1)
D5 = D2 + timedelta(days=3)
A1 = rule_alert_id(D1, "app-chat", "NO_SIGNIN")


def status_chain(store: ReviewStore, alert_id: str) -> list[tuple[str | None, str | None]]:
    entries = [e for e in reversed(store.audit_trail(alert_id)) if e.action == "status"]
    return [(e.from_value, e.to_value) for e in entries]


def test_store_upsert_day_inserts_rule_and_behaviour_alerts(store: ReviewStore):
    counts = store.upsert_day(D1, alerts(alert(flags=120_344, users=35_120), behaviour_alert()))
    assert counts == {"inserted": 2, "updated": 0, "suppressed": 0}
    rule = store.alert(A1)
    assert (rule.kind, rule.day, rule.rule, rule.severity, rule.status, rule.version) == (
        "rule",
        D1,
        "NO_SIGNIN",
        "high",
        "new",
        1,
    )
    assert (rule.flags, rule.users, rule.reads, rule.assignee) == (120_344, 35_120, 120_344, None)
    assert rule.first_event_time == at(D1, 8) and rule.first_event_time.tzinfo == UTC
    assert rule.evidence == {"partnership_end": None, "users_by_consent": {"none": 2}}
    assert rule.sample_request_ids == ["req-1", "req-2"]
    assert rule.flags_by_hour is not None and sum(rule.flags_by_hour) == 120_344
    assert rule.series_id == series_of(alerts(alert()))["series_id"][0].as_py()
    behaviour = store.alert(behaviour_alert_id("partner_day", D1, "p-chat", None, None))
    assert (behaviour.kind, behaviour.rule, behaviour.score, behaviour.series_id) == (
        "behaviour",
        "partner_day",
        0.9,
        None,
    )
    assert store.alerts(AlertFilter()).total == 2


def test_store_republish_refreshes_facts_and_keeps_decisions(store: ReviewStore):
    other = rule_alert_id(D1, "app-chat", "SIGNIN_REVOKED")
    day = alerts(alert(), alert(rule="SIGNIN_REVOKED"), behaviour_alert())
    store.upsert_day(D1, day)
    store.set_status([A1], "triaged", "alice", note="looking")
    store.set_status([A1], "confirmed", "alice")
    store.assign([other], "bob", "alice")
    store.add_note([other], "same partner as last week", "bob")
    version = store.alert(A1).version

    again = alerts(
        alert(severity="critical", flags=9, explanation="new words"),
        alert(rule="SIGNIN_REVOKED"),
        behaviour_alert(),
    )
    counts = store.upsert_day(D1, again)

    assert counts == {"inserted": 0, "updated": 3, "suppressed": 0}
    assert store.alerts(AlertFilter()).total == 3
    refreshed = store.alert(A1)
    assert (refreshed.status, refreshed.version, refreshed.severity, refreshed.flags) == (
        "confirmed",
        version,
        "critical",
        9,
    )
    assert refreshed.explanation == "new words"
    assert store.alert(other).assignee == "bob"
    assert [e.note for e in store.audit_trail(other) if e.action == "note"] == [
        "same partner as last week"
    ]
    assert status_chain(store, A1) == [("new", "triaged"), ("triaged", "confirmed")]
    ingests = [e for e in store.audit_trail() if e.action == "ingest"]
    assert [e.to_value for e in ingests] == ["2026-03-10", "2026-03-10"]
    assert ingests[0].note == "inserted 0, updated 3, suppressed 0, no longer produced 0"


def test_store_republish_keeps_alerts_no_longer_produced(store: ReviewStore):
    store.upsert_day(D1, alerts(alert(), alert(rule="SIGNIN_REVOKED")))
    gone = rule_alert_id(D1, "app-chat", "SIGNIN_REVOKED")
    store.set_status([gone], "false_positive", "alice")
    counts = store.upsert_day(D1, alerts(alert()))
    assert counts == {"inserted": 0, "updated": 1, "suppressed": 0}
    assert store.alert(gone).status == "false_positive"
    assert store.audit_trail(limit=1)[0].note.endswith("no longer produced 1")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (alert(day=D2), "is of 2026-03-11, not 2026-03-10"),
        (alert(kind="flag"), "unknown kind 'flag'"),
        (alert(severity="HIGH"), "unknown severity 'HIGH'"),
    ],
)
def test_store_upsert_refuses_rows_that_are_not_the_days_alerts(store, row, message):
    with pytest.raises(ValueError, match=message):
        store.upsert_day(D1, alerts(row))
    assert store.alerts(AlertFilter(include_suppressed=True)).total == 0


def test_store_evidence_that_is_not_a_json_object_is_kept_as_text(store: ReviewStore):
    store.upsert_day(D1, alerts(alert(evidence="not json {")))
    assert store.alert(A1).evidence == {"text": "not json {"}


@pytest.mark.parametrize(
    ("path", "target"),
    [
        (["confirmed"], "resolved"),
        (["resolved"], "false_positive"),
        (["triaged", "confirmed"], "new"),
    ],
)
def test_store_set_status_refuses_transitions_outside_the_lifecycle(
    store: ReviewStore, path: list[str], target: str
):
    store.upsert_day(D1, alerts(alert()))
    for status in path:
        store.set_status([A1], status, "alice")
    with pytest.raises(InvalidTransition, match=f"to {target}"):
        store.set_status([A1], target, "alice")
    assert store.alert(A1).version == 1 + len(path)


def test_store_set_status_follows_the_lifecycle_and_reopens(store: ReviewStore):
    other = rule_alert_id(D1, "app-chat", "SIGNIN_REVOKED")
    store.upsert_day(D1, alerts(alert(), alert(rule="SIGNIN_REVOKED")))
    assert store.set_status([A1, other], "triaged", "alice") == 2
    assert store.set_status([A1], "triaged", "alice") == 0  # already there: nothing to record
    assert store.set_status([A1], "resolved", "bob", note="partner fixed it") == 1
    assert store.set_status([A1], "triaged", "carol") == 1
    assert store.alert(A1).version == 4
    trail = store.audit_trail(A1)
    assert [(e.actor, e.from_value, e.to_value, e.note, e.via) for e in reversed(trail)] == [
        ("alice", "new", "triaged", None, "selection of 2"),
        ("bob", "triaged", "resolved", "partner fixed it", None),
        ("carol", "resolved", "triaged", None, None),
    ]
    with pytest.raises(InvalidTransition, match="unknown status"):
        store.set_status([A1], "closed", "alice")


def test_store_unknown_alert_or_series(store: ReviewStore):
    with pytest.raises(UnknownItem, match="nope"):
        store.alert("nope")
    with pytest.raises(UnknownItem):
        store.set_status(["nope"], "triaged", "alice")
    with pytest.raises(UnknownItem):
        store.add_note(["bad\x00id"], "text", "alice")
    with pytest.raises(UnknownItem):
        store.series("nope")
    with pytest.raises(UnknownItem):
        store.set_status([], "triaged", "alice", series_ids=["nope"])
    with pytest.raises(TypeError):
        store.set_status(A1, "triaged", "alice")  # type: ignore[arg-type]


def test_store_expected_version_refuses_a_stale_change(store: ReviewStore):
    store.upsert_day(D1, alerts(alert()))
    seen = store.alert(A1).version
    store.assign([A1], "bob", "alice")
    with pytest.raises(StaleItem, match="reload"):
        store.set_status([A1], "triaged", "carol", expected_version=seen)
    assert store.alert(A1).status == "new"
    store.set_status([A1], "triaged", "carol", expected_version=seen + 1)
    assert store.alert(A1).status == "triaged"


def test_store_two_reviewers_with_the_same_version_one_wins(store_url: str):
    first, second = ReviewStore.open(store_url), ReviewStore.open(store_url)
    first.upsert_day(D1, alerts(alert()))
    version = first.alert(A1).version
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def review(store: ReviewStore, status: str) -> None:
        barrier.wait()
        try:
            store.set_status([A1], status, status, expected_version=version)
            outcomes.append("ok")
        except StaleItem:
            outcomes.append("stale")

    threads = [
        threading.Thread(target=review, args=(first, "confirmed")),
        threading.Thread(target=review, args=(second, "false_positive")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ok", "stale"]
    assert len(status_chain(first, A1)) == 1
    assert first.alert(A1).version == version + 1
    first.dispose()
    second.dispose()


def test_store_concurrent_reviewers_of_a_series_lose_no_update(store_url: str):
    stores = [ReviewStore.open(store_url), ReviewStore.open(store_url)]
    for day in (D1, D2):
        stores[0].upsert_day(day, alerts(alert(day)))
    series_id = stores[0].alert(A1).series_id
    assert series_id is not None
    barrier = threading.Barrier(2)
    applied = [0, 0]

    def review(n: int) -> None:
        store = stores[n]
        closing = ("confirmed", "false_positive")[n]
        barrier.wait()
        for _ in range(12):
            current = store.alert(A1).status
            target = (
                "triaged" if current in ("confirmed", "false_positive", "resolved") else closing
            )
            # InvalidTransition: the other reviewer moved it first and the check saw that
            with contextlib.suppress(InvalidTransition):
                applied[n] += store.set_status([], target, f"r{n}", series_ids=[series_id])

    threads = [threading.Thread(target=review, args=(n,)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for alert_id in (A1, rule_alert_id(D2, "app-chat", "NO_SIGNIN")):
        chain = status_chain(stores[0], alert_id)
        assert chain[0][0] == "new"
        assert all(prev[1] == nxt[0] for prev, nxt in itertools.pairwise(chain))
        final = stores[1].alert(alert_id)
        assert (final.status, final.version) == (chain[-1][1], 1 + len(chain))
    # both days moved together every time: the series was decided whole
    assert sum(applied) == 2 * len(status_chain(stores[0], A1)) >= 24
    for store in stores:
        store.dispose()


def test_store_assign_and_unassign(store: ReviewStore):
    other = rule_alert_id(D1, "app-chat", "SIGNIN_REVOKED")
    store.upsert_day(D1, alerts(alert(), alert(rule="SIGNIN_REVOKED")))
    assert store.assign([A1, other], "bob", "alice") == 2
    assert store.assign([A1], "bob", "alice") == 0
    assert store.assign([A1], None, "alice") == 1
    assert store.alert(A1).assignee is None
    trail = [(e.action, e.from_value, e.to_value) for e in reversed(store.audit_trail(A1))]
    assert trail == [("assign", None, "bob"), ("assign", "bob", None)]
    assert store.alerts(AlertFilter(assignee="bob")).total == 1


@pytest.fixture
def serial(store: ReviewStore) -> ReviewStore:
    """app-chat NO_SIGNIN on D1, D2, D3 and again on D5 (a gap: a second series)."""
    for day in (D1, D2, D3, D5):
        store.upsert_day(day, alerts(alert(day), alert(day, app_id="app-video", rule="NO_SIGNIN")))
    return store


def series_ids(store: ReviewStore, app_id: str = "app-chat") -> list[str | None]:
    listed = store.alerts(AlertFilter(app_id=app_id), sort="day", per_page=500).alerts
    return [a.series_id for a in listed]


def test_store_series_group_consecutive_days_of_one_app_and_rule(serial: ReviewStore):
    ids = series_ids(serial)
    assert ids[0] == ids[1] == ids[2] != ids[3]
    series = serial.series(ids[0])  # type: ignore[arg-type]
    assert ([a.day for a in series.alerts], series.start, series.end) == ([D1, D2, D3], D1, D3)
    assert (series.app_id, series.rule, series.version, series.flags) == (
        "app-chat",
        "NO_SIGNIN",
        3,
        9,
    )
    assert set(series_ids(serial, "app-video")).isdisjoint(ids)
    # filling the gap joins the two series; the later days take the earlier series' id
    serial.upsert_day(D5 - timedelta(days=1), alerts(alert(D5 - timedelta(days=1))))
    assert set(series_ids(serial)) == {ids[0]}


def test_store_a_backfilled_earlier_day_renames_the_series_and_keeps_decisions(
    serial: ReviewStore,
):
    first = series_ids(serial)[0]
    assert first is not None
    serial.set_status([], "confirmed", "alice", series_ids=[first])
    serial.upsert_day(D1 - timedelta(days=1), alerts(alert(D1 - timedelta(days=1))))
    renamed = series_ids(serial)
    assert renamed[0] == renamed[3] != first
    assert [
        serial.alert(rule_alert_id(d, "app-chat", "NO_SIGNIN")).status for d in (D1, D2, D3)
    ] == ["confirmed"] * 3


def test_store_series_decisions_apply_to_every_day_and_check_the_series_version(
    serial: ReviewStore,
):
    sid = series_ids(serial)[0]
    assert sid is not None
    seen = serial.series(sid).version
    serial.assign([A1], "bob", "bob")  # one day changes: the series' version moves
    with pytest.raises(StaleItem, match=f"series {sid} changed"):
        serial.set_status([], "triaged", "alice", expected_version={sid: seen}, series_ids=[sid])
    assert (
        serial.set_status(
            [], "triaged", "alice", expected_version={sid: seen + 1}, series_ids=[sid]
        )
        == 3
    )
    assert {a.status for a in serial.series(sid).alerts} == {"triaged"}
    assert serial.add_note([], "partner says it is a test app", "alice", series_ids=[sid]) == 3
    trail = serial.audit_trail(series_id=sid)
    assert {(e.action, e.via) for e in trail} == {
        ("status", f"series {sid}"),
        ("note", f"series {sid}"),
        ("assign", None),
        ("ingest", None),
    } - {("ingest", None)}
    assert serial.assign([], "carol", "alice", series_ids=[sid]) == 3
    # the other series and app were not touched
    assert serial.alerts(AlertFilter(status="new")).total == 5


def test_store_a_selection_of_alerts_and_series_is_decided_all_or_none(serial: ReviewStore):
    sid = series_ids(serial)[0]
    assert sid is not None
    lone = rule_alert_id(D5, "app-chat", "NO_SIGNIN")
    video = rule_alert_id(D1, "app-video", "NO_SIGNIN")
    serial.set_status([video], "confirmed", "bob")
    with pytest.raises(InvalidTransition, match=f"alert {video} cannot move from confirmed"):
        serial.set_status([lone, video], "resolved", "alice", series_ids=[sid])
    assert serial.alerts(AlertFilter(status="resolved")).total == 0
    assert serial.set_status([lone, A1], "false_positive", "alice", series_ids=[sid]) == 4
    assert {e.via for e in serial.audit_trail(lone) if e.action == "status"} == {"selection of 4"}
    assert {e.via for e in serial.audit_trail(A1) if e.action == "status"} == {f"series {sid}"}


def test_store_queue_shows_a_series_as_one_row(serial: ReviewStore):
    serial.upsert_day(D1, alerts(alert(), alert(app_id="app-video"), behaviour_alert()))
    page = serial.queue(AlertFilter(), sort="-day")
    assert page.total == 5  # app-chat D1-D3, app-chat D5, app-video D1-D3, app-video D5, behaviour
    keys = [(row.first.app_id, row.first.day, row.last.day, len(row.alerts)) for row in page.rows]
    assert keys[:2] == [("app-chat", D5, D5, 1), ("app-video", D5, D5, 1)] or keys[:2] == [
        ("app-video", D5, D5, 1),
        ("app-chat", D5, D5, 1),
    ]
    assert sorted(keys[2:4]) == [("app-chat", D1, D3, 3), ("app-video", D1, D3, 3)]
    assert keys[4] == (None, D1, D1, 1)
    chat = next(r for r in page.rows if r.first.app_id == "app-chat" and len(r.alerts) == 3)
    summary = (chat.flags, chat.users, chat.severity, chat.statuses, chat.series_days)
    assert summary == (9, 2, "high", ["new"], 3)
    assert chat.series_version == serial.series(chat.key).version == 3
    # a filter keeps the days it matches; the row stays one row of the series, which it names
    # whole (a decision on the row covers every day of the series)
    serial.set_status([A1], "triaged", "alice")
    triaged = serial.queue(AlertFilter(status="new", app_id="app-chat"))
    assert [(len(r.alerts), r.series_days, r.series_version) for r in triaged.rows] == [
        (1, 1, 1),
        (2, 3, 4),
    ]
    assert [r.series_id for r in serial.queue(AlertFilter(kind="behaviour")).rows] == [None]
    paged = [r.key for n in (1, 2, 3) for r in serial.queue(AlertFilter(), "-day", n, 2).rows]
    assert paged == [r.key for r in page.rows]


@pytest.fixture
def queue(store: ReviewStore) -> ReviewStore:
    store.upsert_day(
        D1,
        alerts(
            alert(severity="medium", flags=5, users=5),
            alert(rule="SIGNIN_REVOKED", severity="critical", flags=1, users=1),
            alert(app_id="app-x", partner_id=None, partner_name=None, rule="UNKNOWN_APP"),
            behaviour_alert(score=0.7),
        ),
    )
    store.upsert_day(
        D2,
        alerts(
            alert(D2, app_id="app-video", partner_id="p-video", severity="low", flags=40),
            behaviour_alert(D2, partner_id="p-video", score=0.95),
        ),
    )
    store.set_status([A1], "triaged", "alice")
    store.assign([rule_alert_id(D1, "app-chat", "SIGNIN_REVOKED")], "bob", "alice")
    return store


def listed(store: ReviewStore, filt: AlertFilter, sort: str = "-day") -> list[str]:
    return [a.alert_id for a in store.alerts(filt, sort, per_page=500).alerts]


def test_store_alerts_filters(queue: ReviewStore):
    revoked = rule_alert_id(D1, "app-chat", "SIGNIN_REVOKED")
    assert len(listed(queue, AlertFilter(start=D1, end=D1))) == 4
    assert listed(queue, AlertFilter(partner_id="p-video", kind="rule")) == [
        rule_alert_id(D2, "app-video", "NO_SIGNIN")
    ]
    assert listed(queue, AlertFilter(app_id="app-x")) == [rule_alert_id(D1, "app-x", "UNKNOWN_APP")]
    assert listed(queue, AlertFilter(rule="SIGNIN_REVOKED")) == [revoked]
    assert listed(queue, AlertFilter(severity="critical")) == [revoked]
    assert listed(queue, AlertFilter(status="triaged")) == [A1]
    assert listed(queue, AlertFilter(assignee="bob")) == [revoked]
    assert len(listed(queue, AlertFilter(kind="behaviour"))) == 2
    assert len(listed(queue, AlertFilter(rule="partner_day"))) == 2
    assert listed(queue, AlertFilter(app_id="' OR 1=1 --")) == []
    sid = queue.alert(A1).series_id
    assert listed(queue, AlertFilter(series_id=sid)) == [A1]


@pytest.mark.parametrize("sort", SORTS)
def test_store_alerts_and_queue_sort_with_an_id_tie_break(queue: ReviewStore, sort: str):
    every = queue.alerts(AlertFilter(), sort, per_page=500).alerts
    keys = {
        "day": lambda a: (a.day.toordinal(),),
        "severity": lambda a: (["low", "medium", "high", "critical"].index(a.severity),),
        "flags": lambda a: (a.flags,),
        "users": lambda a: (a.users,),
        # nulls sort as the smallest values
        "partner_id": lambda a: (a.partner_id is not None, a.partner_id or ""),
        "score": lambda a: (a.score is not None, a.score or 0.0),
    }
    key = keys[sort.lstrip("-")]
    expected = sorted(every, key=lambda a: (*key(a), a.alert_id), reverse=sort.startswith("-"))
    assert [a.alert_id for a in every] == [a.alert_id for a in expected]
    # no series of two days here: a queue row is one alert, its ties broken by the row's key
    rows = sorted(
        every,
        key=lambda a: (*key(a), a.series_id or a.alert_id),
        reverse=sort.startswith("-"),
    )
    for per_page in (1, 2, 4, 5):
        paged = [
            row.first.alert_id
            for page in range(1, 8)
            for row in queue.queue(AlertFilter(), sort, page=page, per_page=per_page).rows
        ]
        assert paged == [a.alert_id for a in rows], per_page


def test_store_pages_past_the_end_are_empty(queue: ReviewStore):
    page = queue.alerts(AlertFilter(), page=4, per_page=2)
    assert (page.alerts, page.total, page.page) == ([], 6, 4)
    assert queue.queue(AlertFilter(), page=10**9, per_page=500).rows == []


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.alerts(AlertFilter(), sort="-alert_id; drop table x"), "unknown sort"),
        (lambda s: s.queue(AlertFilter(), sort="-event_time"), "unknown sort"),
        (lambda s: s.alerts(AlertFilter(), page=0), "page must be"),
        (lambda s: s.queue(AlertFilter(), per_page=501), "per_page must be"),
        (lambda s: AlertFilter(status="open"), "unknown status 'open'"),
        (lambda s: AlertFilter(severity="HIGH"), "unknown severity"),
        (lambda s: AlertFilter(kind="flag"), "unknown kind"),
        (lambda s: AlertFilter(partner_id="p\x00"), "NUL"),
        (lambda s: AlertFilter(start="2026-03-10"), "not a date"),  # type: ignore[arg-type]
    ],
)
def test_store_refuses_hostile_values_clearly(store: ReviewStore, call, message: str):
    with pytest.raises(ValueError, match=message):
        call(store)


def test_store_iter_alerts_streams_every_match(queue: ReviewStore):
    streamed = [a.alert_id for a in queue.iter_alerts(AlertFilter(kind="rule"), "flags")]
    assert streamed == listed(queue, AlertFilter(kind="rule"), "flags")
    assert len(streamed) == 4


def test_store_suppress_hides_new_matching_alerts_now_and_later(store: ReviewStore):
    old, seen = (
        rule_alert_id(D1, "app-x", "SIGNIN_EXPIRED"),
        rule_alert_id(D2, "app-x", "SIGNIN_EXPIRED"),
    )
    other = rule_alert_id(D1, "app-x", "NO_SIGNIN")
    store.upsert_day(
        D1, alerts(alert(app_id="app-x", rule="SIGNIN_EXPIRED"), alert(app_id="app-x"))
    )
    store.upsert_day(D2, alerts(alert(D2, app_id="app-x", rule="SIGNIN_EXPIRED")))
    store.set_status([seen], "triaged", "alice")
    suppression = store.suppress("app-x", "SIGNIN_EXPIRED", D3, "known TTL bug", "alice")
    assert (suppression.app_id, suppression.until, suppression.created_by) == ("app-x", D3, "alice")
    assert store.alert(old).suppressed_by == suppression.id
    assert store.alert(seen).suppressed_by is None
    assert set(listed(store, AlertFilter())) == {seen, other}

    counts = store.upsert_day(D3, alerts(alert(D3, app_id="app-x", rule="SIGNIN_EXPIRED")))
    later = D3 + timedelta(days=1)
    store.upsert_day(later, alerts(alert(later, app_id="app-x", rule="SIGNIN_EXPIRED")))
    assert counts["suppressed"] == 1
    nxt, after = (rule_alert_id(d, "app-x", "SIGNIN_EXPIRED") for d in (D3, later))
    assert set(listed(store, AlertFilter())) == {seen, other, after}
    assert set(listed(store, AlertFilter(include_suppressed=True))) == {
        old,
        seen,
        other,
        nxt,
        after,
    }
    trail = store.audit_trail(nxt)
    assert [(e.action, e.to_value, e.note) for e in trail] == [
        ("suppress", str(suppression.id), "known TTL bug")
    ]
    store_wide = [e for e in store.audit_trail() if e.action == "suppress" and not e.alert_id]
    assert [e.note for e in store_wide] == ["known TTL bug (1 alerts hidden)"]
    assert store.suppressions(active_on=D3) == [suppression]
    assert store.suppressions(active_on=later) == []
    with pytest.raises(ValueError, match="reason"):
        store.suppress("app-x", "NO_SIGNIN", D2, " ", "alice")


def test_store_overviews(queue: ReviewStore):
    assert queue.partner_counts("p-chat") == [
        (D1, "NO_SIGNIN", 5),
        (D1, "SIGNIN_REVOKED", 1),
        (D1, "partner_day", 1),
    ]
    assert queue.partner_counts("p-video", start=D2, end=D2) == [
        (D2, "NO_SIGNIN", 40),
        (D2, "partner_day", 1),
    ]
    # the fixture's unknown-app alert counts under UNKNOWN_PARTNER, as in the report
    assert queue.partners() == [("p-chat", 3, 3), ("p-video", 2, 2), (UNKNOWN_PARTNER, 1, 1)]
    queue.set_status([rule_alert_id(D1, "app-chat", "SIGNIN_REVOKED")], "confirmed", "bob")
    assert queue.partners()[0] == ("p-chat", 2, 3)


def test_store_open_again_keeps_the_data(store_url: str, store: ReviewStore):
    store.upsert_day(D1, alerts(alert()))
    reopened = ReviewStore.open(store_url)
    assert reopened.alert(A1).alert_id == A1
    reopened.dispose()


def test_store_set_status_of_a_batch_is_all_or_none(store: ReviewStore):
    ids = [rule_alert_id(D1, "app-chat", r) for r in ("NO_SIGNIN", "SIGNIN_REVOKED", "UNKNOWN_APP")]
    store.upsert_day(
        D1, alerts(*(alert(rule=r) for r in ("NO_SIGNIN", "SIGNIN_REVOKED", "UNKNOWN_APP")))
    )
    store.set_status([ids[1]], "confirmed", "alice")
    with pytest.raises(InvalidTransition, match=f"alert {ids[1]} cannot move from confirmed"):
        store.set_status(ids, "resolved", "bob")
    with pytest.raises(UnknownItem):
        store.set_status([ids[0], "zzz"], "triaged", "bob")
    assert [store.alert(i).status for i in ids] == ["new", "confirmed", "new"]


def test_store_keeps_identifiers_of_any_length(store: ReviewStore):
    """Partners' logs bound no identifier's length: a long one must not fail the day."""
    long_app = "a" * 5000
    store.upsert_day(D1, alerts(alert(app_id=long_app, partner_id="p" * 5000)))
    stored = store.alert(rule_alert_id(D1, long_app, "NO_SIGNIN"))
    assert (stored.partner_id, stored.app_id) == ("p" * 5000, long_app)
    store.assign([stored.alert_id], "a" * 5000, "reviewer-" + "r" * 5000)
    assert store.alert(stored.alert_id).assignee == "a" * 5000


def test_store_per_alert_versions_are_checked_all_or_none(store: ReviewStore):
    other = rule_alert_id(D1, "app-chat", "SIGNIN_REVOKED")
    store.upsert_day(D1, alerts(alert(), alert(rule="SIGNIN_REVOKED")))
    store.set_status([other], "triaged", "bob")  # now at version 2
    shown = {A1: 1, other: 1}  # a queue page from before bob's change
    with pytest.raises(StaleItem, match=f"alert {other} changed"):
        store.set_status(list(shown), "confirmed", "rita", expected_version=shown)
    assert [store.alert(i).status for i in (A1, other)] == ["new", "triaged"]
    current = {A1: 1, other: 2}
    assert store.assign(list(current), "rita", "rita", expected_version=current) == 2


def test_store_empty_day_publishes_nothing(store: ReviewStore):
    assert store.upsert_day(D1, NO_ALERTS) == {"inserted": 0, "updated": 0, "suppressed": 0}
    assert store.queue(AlertFilter()).total == 0


def test_store_growth_per_day_is_small_on_sqlite(tmp_path):
    """Thirty days of 400 alerts each (40 apps x 8 rules + 80 behaviour alerts, a busy platform)
    add well under 5 MB a day: the store holds alerts, not flags."""
    path = tmp_path / "growth.db"
    store = ReviewStore.open(f"sqlite:///{path}")
    rules = ("NO_SIGNIN", "SIGNIN_REVOKED", "SIGNIN_EXPIRED", "SCOPE_NOT_GRANTED",
             "UNKNOWN_APP", "AFTER_PARTNERSHIP_END", "BEFORE_PARTNERSHIP_START",
             "SCOPE_NOT_IN_PARTNERSHIP")  # fmt: skip
    start = path.stat().st_size
    for n in range(30):
        day = date(2026, 3, 1) + timedelta(days=n)
        rows = [alert(day, app_id=f"app-{a}", rule=r) for a in range(40) for r in rules]
        rows += [behaviour_alert(day, partner_id=f"p-{p}") for p in range(80)]
        store.upsert_day(day, alerts(*rows))
    store.dispose()
    wal = path.with_name(path.name + "-wal")
    size = path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    assert (size - start) / 30 < 5 * 1024 * 1024


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(["NO_SIGNIN", "UNKNOWN_APP"]),
                  st.integers(0, 9)),
        min_size=1,
        max_size=25,
    )
)  # fmt: skip
def test_store_series_after_any_publish_order_are_detect_series(tmp_path_factory, publishes):
    """Days published in any order (backfills, re-runs, gaps filled) leave every rule alert with
    the series pipeline.detect.series gives over all the store's days."""
    path = tmp_path_factory.mktemp("series") / "review.db"
    store = ReviewStore.open(f"sqlite:///{path}")
    held: dict[date, set[tuple[str, str]]] = {}
    for app, rule, offset in publishes:
        day = D1 + timedelta(days=offset)
        held.setdefault(day, set()).add((app, rule))
        store.upsert_day(day, alerts(*(alert(day, app_id=a, rule=r) for a, r in held[day])))
    stored = {
        (a.app_id, a.rule, a.day): a.series_id
        for a in store.iter_alerts(AlertFilter(include_suppressed=True))
    }
    expected = series_of(alerts(*(alert(d, app_id=a, rule=r) for (a, r, d) in stored)))
    assert stored == {
        (row["app_id"], row["rule"], row["day"]): row["series_id"] for row in expected.to_pylist()
    }
    store.dispose()


def test_store_counts_unknown_apps_under_the_unknown_partner_as_the_report_does(store: ReviewStore):
    store.upsert_day(
        D1,
        alerts(
            alert(
                app_id="app-stray", rule="UNKNOWN_APP", partner_id=None, partner_name=None, flags=7
            ),
            alert(flags=3),
        ),
    )
    assert store.partners() == [(UNKNOWN_PARTNER, 1, 1), ("p-chat", 1, 1)]
    assert store.partner_counts(UNKNOWN_PARTNER) == [(D1, "UNKNOWN_APP", 7)]
    page = store.alerts(AlertFilter(partner_id=UNKNOWN_PARTNER), per_page=10)
    assert [a.app_id for a in page.alerts] == ["app-stray"]
