"""Review store on SQLite and PostgreSQL: upserts, decisions, concurrency, queue, suppressions."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import threading
from datetime import UTC, date

import pytest

from pipeline.errors import InvalidTransition, StaleItem, UnknownItem
from pipeline.review.store import SORTS, ItemFilter, ReviewStore
from tests.review.literals import D1, D2, NO_ANOMALIES, anomalies, anomaly, at, flag, flags


def status_chain(store: ReviewStore, item_id: str) -> list[tuple[str | None, str | None]]:
    entries = [e for e in reversed(store.audit_trail(item_id)) if e.action == "status"]
    return [(e.from_value, e.to_value) for e in entries]


def test_store_upsert_day_inserts_flags_and_alerting_anomalies(store: ReviewStore):
    counts = store.upsert_day(
        D1,
        flags(flag("f1", last_grant_time=at(D1, 9), last_grant_scopes=["messages.read"])),
        anomalies(anomaly(), anomaly(entity_kind="app_user_day", alert=False, app_id="a")),
    )
    assert counts == {"inserted": 2, "updated": 0, "suppressed": 0}
    item = store.item("f1")
    assert (item.kind, item.day, item.rule, item.severity, item.status) == (
        "flag",
        D1,
        "NO_SIGNIN",
        "high",
        "new",
    )
    assert item.event_time == at(D1) and item.event_time.tzinfo == UTC
    assert item.evidence["last_grant_time"] == "2026-03-10T09:00:00+00:00"
    assert item.evidence["last_grant_scopes"] == ["messages.read"]
    assert (item.status_code, item.version, item.assignee, item.score) == (200, 1, None, None)
    anomaly_id = hashlib.md5(b"ANOMALY|partner_day|2026-03-10|p-chat||").hexdigest()
    alert = store.item(anomaly_id)
    assert (alert.kind, alert.rule, alert.score, alert.event_time) == (
        "anomaly",
        "ANOMALY",
        0.9,
        None,
    )
    assert alert.evidence["top_features"] == ["message_reads", "night_share"]
    assert store.items(ItemFilter()).total == 2


def test_store_republish_keeps_decisions_and_duplicates_nothing(store: ReviewStore):
    day = flags(flag("f1"), flag("f2"), flag("f3"))
    store.upsert_day(D1, day, anomalies(anomaly()))
    store.set_status(["f1"], "triaged", "alice", note="looking")
    store.set_status(["f1"], "confirmed", "alice")
    store.assign(["f2"], "bob", "alice")
    store.add_note("f3", "same user as last week", "bob")
    decided = {i: store.item(i) for i in ("f1", "f2", "f3")}

    again = flags(flag("f1", severity="critical", explanation="new words"), flag("f2"), flag("f3"))
    counts = store.upsert_day(D1, again, anomalies(anomaly()))

    assert counts == {"inserted": 0, "updated": 4, "suppressed": 0}
    assert store.items(ItemFilter()).total == 4
    f1 = store.item("f1")
    assert (f1.status, f1.version, f1.severity, f1.explanation) == (
        "confirmed",
        decided["f1"].version,
        "critical",
        "new words",
    )
    assert store.item("f2").assignee == "bob"
    assert [e.note for e in store.audit_trail("f3") if e.action == "note"] == [
        "same user as last week"
    ]
    assert status_chain(store, "f1") == [("new", "triaged"), ("triaged", "confirmed")]
    ingests = [e for e in store.audit_trail() if e.action == "ingest"]
    assert [e.to_value for e in ingests] == ["2026-03-10", "2026-03-10"]
    assert ingests[0].note == "inserted 0, updated 4, suppressed 0, no longer produced 0"


def test_store_republish_keeps_items_no_longer_produced(store: ReviewStore):
    store.upsert_day(D1, flags(flag("f1"), flag("f2")), NO_ANOMALIES)
    store.set_status(["f2"], "false_positive", "alice")
    counts = store.upsert_day(D1, flags(flag("f1")), NO_ANOMALIES)
    assert counts == {"inserted": 0, "updated": 1, "suppressed": 0}
    assert store.item("f2").status == "false_positive"
    assert store.audit_trail(limit=1)[0].note.endswith("no longer produced 1")


def test_store_redelivered_flag_keeps_its_earliest_day(store: ReviewStore):
    store.upsert_day(D2, flags(flag("f1", day=D2)), NO_ANOMALIES)
    store.upsert_day(D1, flags(flag("f1", day=D1)), NO_ANOMALIES)
    store.upsert_day(D2, flags(flag("f1", day=D2)), NO_ANOMALIES)
    assert store.item("f1").day == D1
    assert store.items(ItemFilter()).total == 1


@pytest.mark.parametrize(
    ("path", "target"),
    [
        (["triaged"], "triaged"),
        ([], "new"),
        (["confirmed"], "resolved"),
        (["resolved"], "false_positive"),
        (["triaged", "confirmed"], "confirmed"),
    ],
)
def test_store_set_status_refuses_transitions_outside_the_lifecycle(
    store: ReviewStore, path: list[str], target: str
):
    store.upsert_day(D1, flags(flag("f1")), NO_ANOMALIES)
    for status in path:
        store.set_status(["f1"], status, "alice")
    with pytest.raises(InvalidTransition, match=f"to {target}"):
        store.set_status(["f1"], target, "alice")
    assert store.item("f1").version == 1 + len(path)


def test_store_set_status_follows_the_lifecycle_and_reopens(store: ReviewStore):
    store.upsert_day(D1, flags(flag("f1"), flag("f2")), NO_ANOMALIES)
    assert store.set_status(["f1", "f2"], "triaged", "alice") == 2
    assert store.set_status(["f1"], "resolved", "bob", note="partner fixed it") == 1
    assert store.set_status(["f1"], "triaged", "carol") == 1
    assert store.item("f1").version == 4
    trail = store.audit_trail("f1")
    assert [(e.actor, e.from_value, e.to_value, e.note) for e in reversed(trail)] == [
        ("alice", "new", "triaged", None),
        ("bob", "triaged", "resolved", "partner fixed it"),
        ("carol", "resolved", "triaged", None),
    ]
    with pytest.raises(InvalidTransition, match="unknown status"):
        store.set_status(["f1"], "closed", "alice")


def test_store_unknown_item(store: ReviewStore):
    with pytest.raises(UnknownItem, match="nope"):
        store.item("nope")
    with pytest.raises(UnknownItem):
        store.set_status(["nope"], "triaged", "alice")
    with pytest.raises(UnknownItem):
        store.add_note("bad\x00id", "text", "alice")


def test_store_expected_version_refuses_a_stale_change(store: ReviewStore):
    store.upsert_day(D1, flags(flag("f1")), NO_ANOMALIES)
    seen = store.item("f1").version
    store.assign(["f1"], "bob", "alice")
    with pytest.raises(StaleItem, match="reload"):
        store.set_status(["f1"], "triaged", "carol", expected_version=seen)
    assert store.item("f1").status == "new"
    store.set_status(["f1"], "triaged", "carol", expected_version=seen + 1)
    assert store.item("f1").status == "triaged"


def test_store_two_reviewers_with_the_same_version_one_wins(store_url: str):
    first, second = ReviewStore.open(store_url), ReviewStore.open(store_url)
    first.upsert_day(D1, flags(flag("f1")), NO_ANOMALIES)
    version = first.item("f1").version
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def review(store: ReviewStore, status: str) -> None:
        barrier.wait()
        try:
            store.set_status(["f1"], status, status, expected_version=version)
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
    assert len(status_chain(first, "f1")) == 1
    assert first.item("f1").version == version + 1
    first.dispose()
    second.dispose()


def test_store_concurrent_reviewers_lose_no_update(store_url: str):
    stores = [ReviewStore.open(store_url), ReviewStore.open(store_url)]
    stores[0].upsert_day(D1, flags(flag("f1")), NO_ANOMALIES)
    barrier = threading.Barrier(2)
    applied = [0, 0]

    def review(n: int) -> None:
        store = stores[n]
        closing = ("confirmed", "false_positive")[n]
        barrier.wait()
        for _ in range(15):
            current = store.item("f1").status
            target = (
                "triaged" if current in ("confirmed", "false_positive", "resolved") else closing
            )
            # InvalidTransition: the other reviewer moved it first and the check saw that
            with contextlib.suppress(InvalidTransition):
                applied[n] += store.set_status(["f1"], target, f"reviewer{n}")

    threads = [threading.Thread(target=review, args=(n,)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    chain = status_chain(stores[0], "f1")
    assert len(chain) == sum(applied) >= 15
    assert chain[0][0] == "new"
    assert all(prev[1] == nxt[0] for prev, nxt in itertools.pairwise(chain))
    final = stores[1].item("f1")
    assert (final.status, final.version) == (chain[-1][1], 1 + len(chain))
    for store in stores:
        store.dispose()


def test_store_assign_and_unassign(store: ReviewStore):
    store.upsert_day(D1, flags(flag("f1"), flag("f2")), NO_ANOMALIES)
    assert store.assign(["f1", "f2"], "bob", "alice") == 2
    assert store.assign(["f1"], "bob", "alice") == 0
    assert store.assign(["f1"], None, "alice") == 1
    assert store.item("f1").assignee is None
    trail = [(e.action, e.from_value, e.to_value) for e in reversed(store.audit_trail("f1"))]
    assert trail == [("assign", None, "bob"), ("assign", "bob", None)]
    assert store.items(ItemFilter(assignee="bob")).total == 1


def items_of(store: ReviewStore, filt: ItemFilter, sort: str = "-day") -> list[str]:
    return [item.item_id for item in store.items(filt, sort, per_page=500).items]


@pytest.fixture
def queue(store: ReviewStore) -> ReviewStore:
    store.upsert_day(
        D1,
        flags(
            flag("a1", severity="medium", event_time=at(D1, 8)),
            flag("a2", rule="SIGNIN_REVOKED", severity="critical", event_time=at(D1, 9)),
            flag("a3", app_id="app-x", partner_id=None, rule="UNKNOWN_APP", event_time=at(D1, 7)),
        ),
        anomalies(anomaly(score=0.7)),
    )
    store.upsert_day(
        D2,
        flags(flag("b1", day=D2, partner_id="p-video", app_id="app-video", severity="low")),
        anomalies(anomaly(day=D2, score=0.95, partner_id="p-video")),
    )
    store.set_status(["a1"], "triaged", "alice")
    store.assign(["a2"], "bob", "alice")
    return store


def test_store_items_filters(queue: ReviewStore):
    anomaly_d1 = hashlib.md5(b"ANOMALY|partner_day|2026-03-10|p-chat||").hexdigest()
    assert set(items_of(queue, ItemFilter(start=D1, end=D1))) == {"a1", "a2", "a3", anomaly_d1}
    assert (
        items_of(queue, ItemFilter(start=D2)) == sorted(items_of(queue, ItemFilter(start=D2)))[::-1]
    )
    assert set(items_of(queue, ItemFilter(partner_id="p-video", kind="flag"))) == {"b1"}
    assert items_of(queue, ItemFilter(app_id="app-x")) == ["a3"]
    assert items_of(queue, ItemFilter(rule="SIGNIN_REVOKED")) == ["a2"]
    assert items_of(queue, ItemFilter(severity="critical")) == ["a2"]
    assert items_of(queue, ItemFilter(status="triaged")) == ["a1"]
    assert items_of(queue, ItemFilter(assignee="bob")) == ["a2"]
    assert len(items_of(queue, ItemFilter(kind="anomaly"))) == 2
    assert items_of(queue, ItemFilter(app_id="' OR 1=1 --")) == []


@pytest.mark.parametrize("sort", SORTS)
def test_store_items_sorts_with_item_id_tie_break(queue: ReviewStore, sort: str):
    every = queue.items(ItemFilter(), sort, per_page=500).items
    keys = {
        "day": lambda i: (i.day.toordinal(),),
        "severity": lambda i: (["low", "medium", "high", "critical"].index(i.severity),),
        # nulls sort as the smallest values
        "event_time": lambda i: (i.event_time is not None, i.event_time or at(D1)),
        "partner_id": lambda i: (i.partner_id is not None, i.partner_id or ""),
        "score": lambda i: (i.score is not None, i.score or 0.0),
    }
    key = keys[sort.lstrip("-")]
    expected = sorted(every, key=lambda i: (*key(i), i.item_id), reverse=sort.startswith("-"))
    assert [i.item_id for i in every] == [i.item_id for i in expected]
    for per_page in (1, 2, 4, 5):  # back-half pages are read from the other end
        paged = [
            i.item_id
            for page in range(1, 7)
            for i in queue.items(ItemFilter(), sort, page=page, per_page=per_page).items
        ]
        assert paged == [i.item_id for i in expected], per_page


def test_store_items_pages_past_the_end_are_empty(queue: ReviewStore):
    page = queue.items(ItemFilter(), page=4, per_page=2)
    assert (page.items, page.total, page.page) == ([], 6, 4)
    assert queue.items(ItemFilter(), page=10**18, per_page=500).items == []


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.items(ItemFilter(), sort="-item_id; drop table x"), "unknown sort"),
        (lambda s: s.items(ItemFilter(), page=0), "page must be"),
        (lambda s: s.items(ItemFilter(), per_page=501), "per_page must be"),
        (lambda s: ItemFilter(status="open"), "unknown status 'open'"),
        (lambda s: ItemFilter(severity="HIGH"), "unknown severity"),
        (lambda s: ItemFilter(kind="flags"), "unknown kind"),
        (lambda s: ItemFilter(partner_id="p\x00"), "NUL"),
        (lambda s: ItemFilter(start="2026-03-10"), "not a date"),  # type: ignore[arg-type]
    ],
)
def test_store_items_refuse_hostile_values_clearly(store: ReviewStore, call, message: str):
    with pytest.raises(ValueError, match=message):
        call(store)


def test_store_iter_items_streams_every_match(queue: ReviewStore):
    streamed = [i.item_id for i in queue.iter_items(ItemFilter(kind="flag"), "event_time")]
    assert streamed == items_of(queue, ItemFilter(kind="flag"), "event_time")
    assert len(streamed) == 4


def test_store_suppress_hides_new_matching_items_now_and_later(store: ReviewStore):
    store.upsert_day(
        D1,
        flags(
            flag("old", app_id="app-x", rule="SIGNIN_EXPIRED"),
            flag("seen", app_id="app-x", rule="SIGNIN_EXPIRED"),
            flag("other", app_id="app-x", rule="NO_SIGNIN"),
        ),
        NO_ANOMALIES,
    )
    store.set_status(["seen"], "triaged", "alice")
    suppression = store.suppress("app-x", "SIGNIN_EXPIRED", D2, "known TTL bug", "alice")
    assert (suppression.app_id, suppression.until, suppression.created_by) == ("app-x", D2, "alice")
    assert store.item("old").suppressed_by == suppression.id
    assert store.item("seen").suppressed_by is None
    assert set(items_of(store, ItemFilter())) == {"seen", "other"}

    counts = store.upsert_day(
        D2, flags(flag("next", day=D2, app_id="app-x", rule="SIGNIN_EXPIRED")), NO_ANOMALIES
    )
    later = date(2026, 3, 12)
    store.upsert_day(
        later, flags(flag("after", day=later, app_id="app-x", rule="SIGNIN_EXPIRED")), NO_ANOMALIES
    )
    assert counts["suppressed"] == 1
    assert set(items_of(store, ItemFilter())) == {"seen", "other", "after"}
    assert set(items_of(store, ItemFilter(include_suppressed=True))) == {
        "old",
        "seen",
        "other",
        "next",
        "after",
    }
    trail = store.audit_trail("next")
    assert [(e.action, e.to_value, e.note) for e in trail] == [
        ("suppress", str(suppression.id), "known TTL bug")
    ]
    assert store.suppressions(active_on=D2) == [suppression]
    assert store.suppressions(active_on=later) == []
    with pytest.raises(ValueError, match="reason"):
        store.suppress("app-x", "NO_SIGNIN", D2, " ", "alice")


def test_store_overviews(queue: ReviewStore):
    assert queue.partner_counts("p-chat") == [
        (D1, "ANOMALY", 1),
        (D1, "NO_SIGNIN", 1),
        (D1, "SIGNIN_REVOKED", 1),
    ]
    assert queue.partner_counts("p-video", start=D2, end=D2) == [
        (D2, "ANOMALY", 1),
        (D2, "NO_SIGNIN", 1),
    ]
    assert queue.partners() == [("p-chat", 3, 3), ("p-video", 2, 2)]
    queue.set_status(["a2"], "confirmed", "bob")
    assert queue.partners()[0] == ("p-chat", 2, 3)
    facets = queue.facets()
    assert facets["severity"] == ["low", "medium", "high", "critical"]
    assert facets["status"] == ["new", "triaged", "confirmed"]
    assert facets["assignee"] == ["bob"]
    assert facets["partner_id"] == ["p-chat", "p-video"]
    assert facets["app_id"] == ["app-chat", "app-video", "app-x"]


def test_store_open_again_keeps_the_data(store_url: str, store: ReviewStore):
    store.upsert_day(D1, flags(flag("f1")), NO_ANOMALIES)
    reopened = ReviewStore.open(store_url)
    assert reopened.item("f1").item_id == "f1"
    reopened.dispose()


def test_store_set_status_of_a_batch_is_all_or_none(store: ReviewStore):
    store.upsert_day(D1, flags(flag("f1"), flag("f2"), flag("f3")), NO_ANOMALIES)
    store.set_status(["f2"], "confirmed", "alice")
    with pytest.raises(InvalidTransition, match="item f2 cannot move from confirmed to resolved"):
        store.set_status(["f1", "f2", "f3"], "resolved", "bob")
    with pytest.raises(UnknownItem):
        store.set_status(["f1", "zzz"], "triaged", "bob")
    assert [store.item(i).status for i in ("f1", "f2", "f3")] == ["new", "confirmed", "new"]


def test_store_keeps_identifiers_of_any_length(store: ReviewStore):
    """Partners' logs bound no identifier's length: a long one must not fail the day."""
    long = {name: name[0] * 5000 for name in ("user_id", "app_id", "request_id", "resource")}
    store.upsert_day(D1, flags(flag("f1", partner_id="p" * 5000, **long)), NO_ANOMALIES)
    item = store.item("f1")
    assert (item.partner_id, item.user_id, item.request_id) == (
        "p" * 5000,
        long["user_id"],
        long["request_id"],
    )
    store.assign(["f1"], "a" * 5000, "reviewer-" + "r" * 5000)
    assert store.item("f1").assignee == "a" * 5000


def test_store_per_item_versions_are_checked_all_or_none(store: ReviewStore):
    store.upsert_day(D1, flags(flag("f1"), flag("f2")), NO_ANOMALIES)
    store.set_status(["f2"], "triaged", "bob")  # f2 is now at version 2
    shown = {"f1": 1, "f2": 1}  # a queue page from before bob's change
    with pytest.raises(StaleItem, match="item f2 changed"):
        store.set_status(list(shown), "confirmed", "rita", expected_version=shown)
    assert [store.item(i).status for i in ("f1", "f2")] == ["new", "triaged"]
    current = {"f1": 1, "f2": 2}
    assert store.assign(list(current), "rita", "rita", expected_version=current) == 2
