"""What reviewers do: decide items (with notes, guarded by versions), bulk actions on ticked
items, CSV export of the current filter; and the pages they read."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable

from fastapi.testclient import TestClient

from pipeline.review.store import ItemFilter, ReviewStore
from pipeline.review.web.export import safe_cell
from tests.review.web.conftest import csrf_of


def test_reviewer_marks_false_positive_with_a_note(
    app_client: Callable[..., TestClient], store: ReviewStore
) -> None:
    client = app_client(logged_in_as="rita")
    item = store.items(ItemFilter(status="new"), per_page=1).items[0]
    form = {
        "status": "false_positive",
        "version": str(item.version),
        "note": "partner's test account",
        "csrf_token": csrf_of(client),
    }
    response = client.post(f"/items/{item.item_id}/status", data=form)
    assert response.status_code == 200
    assert "Status set to false positive." in response.text
    assert 'class="badge st-false_positive"' in response.text
    entry = store.audit_trail(item.item_id)[0]
    assert (entry.actor, entry.action, entry.from_value, entry.to_value, entry.note) == (
        "rita",
        "status",
        "new",
        "false_positive",
        "partner's test account",
    )
    audit_page = client.get("/audit").text
    assert item.item_id[:10] in audit_page and "partner&#39;s test account" in audit_page


def test_a_decision_on_a_stale_page_is_refused(
    app_client: Callable[..., TestClient], store: ReviewStore
) -> None:
    client = app_client(logged_in_as="rita")
    item = store.items(ItemFilter(status="new"), per_page=1).items[0]
    store.set_status([item.item_id], "triaged", actor="someone")
    form = {"status": "confirmed", "version": str(item.version), "csrf_token": csrf_of(client)}
    response = client.post(f"/items/{item.item_id}/status", data=form)
    assert response.status_code == 409
    assert store.item(item.item_id).status == "triaged"


def test_an_invalid_transition_is_a_400_naming_it(
    app_client: Callable[..., TestClient], store: ReviewStore
) -> None:
    client = app_client(logged_in_as="rita")
    item = store.items(ItemFilter(status="new"), per_page=1).items[0]
    form = {"status": "new", "version": str(item.version), "csrf_token": csrf_of(client)}
    response = client.post(f"/items/{item.item_id}/status", data=form)
    assert response.status_code == 400
    assert f"status: item {item.item_id} cannot move from new to new" in response.text


def test_bulk_actions_change_the_ticked_items_and_return_to_the_filter(
    app_client: Callable[..., TestClient], store: ReviewStore
) -> None:
    client = app_client(logged_in_as="rita")
    ticked = [i.item_id for i in store.items(ItemFilter(rule="NO_SIGNIN"), per_page=3).items]

    def shown(item_ids: list[str]) -> list[str]:
        return [f"{i}:{store.item(i).version}" for i in item_ids]

    untouched = store.items(ItemFilter(rule="UNKNOWN_APP"), per_page=1).items[0]
    back = "rule=NO_SIGNIN&sort=-severity"
    token = csrf_of(client)
    response = client.post(
        "/bulk",
        data={
            "action": "assign",
            "assignee": "ana",
            "item_id": shown(ticked),
            "back": back,
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/queue?rule=NO_SIGNIN&sort=-severity"
    response = client.post(
        "/bulk",
        data={
            "action": "status",
            "status": "confirmed",
            "note": "bulk",
            "item_id": shown(ticked),
            "csrf_token": token,
        },
    )
    assert "3 of 3 item(s) set to confirmed." in response.text
    for item_id in ticked:
        assert (store.item(item_id).status, store.item(item_id).assignee) == ("confirmed", "ana")
    assert store.item(untouched.item_id).status == "new"
    page = client.get("/queue?assignee=ana").text
    assert re.search(r'id="result-count">1–3 of 3 items<', page)


def test_csv_export_holds_every_item_of_the_filter_in_order(
    app_client: Callable[..., TestClient], store: ReviewStore
) -> None:
    client = app_client(logged_in_as="vic")
    response = client.get("/export.csv?rule=SIGNIN_REVOKED&sort=event_time")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    expected = list(store.iter_items(ItemFilter(rule="SIGNIN_REVOKED"), sort="event_time"))
    assert [r["item_id"] for r in rows] == [i.item_id for i in expected]
    assert {r["rule"] for r in rows} == {"SIGNIN_REVOKED"}
    assert len(rows) > 50  # more than one queue page: the export is not paged


def test_csv_export_defuses_formulas(
    app_client: Callable[..., TestClient], store: ReviewStore
) -> None:
    item = store.items(ItemFilter(), per_page=1).items[0]
    store.assign([item.item_id], '=HYPERLINK("http://evil.example","x")', actor="rita")
    response = app_client(logged_in_as="vic").get("/export.csv")
    row = next(
        r for r in csv.DictReader(io.StringIO(response.text)) if r["item_id"] == item.item_id
    )
    assert row["assignee"] == '\'=HYPERLINK("http://evil.example","x")'
    assert [safe_cell(v) for v in ("+1", "-x", "@a", "\tb", "ok", None, 3)] == [
        "'+1",
        "'-x",
        "'@a",
        "'\tb",
        "ok",
        "",
        "3",
    ]


def test_queue_pages_through_the_filtered_items(
    app_client: Callable[..., TestClient], store: ReviewStore
) -> None:
    client = app_client(logged_in_as="vic")
    total = store.items(ItemFilter(rule="NO_SIGNIN"), per_page=1).total
    seen: list[str] = []
    page = 1
    while True:
        html = client.get(f"/queue?rule=NO_SIGNIN&per_page=25&sort=-severity&page={page}").text
        ids = re.findall(r'data-item-id="([0-9a-f]{32})"', html)
        if not ids:
            break
        seen += ids
        page += 1
    assert len(seen) == len(set(seen)) == total
    expected = [i.item_id for i in store.iter_items(ItemFilter(rule="NO_SIGNIN"), "-severity")]
    assert seen == expected


def test_partner_pages_show_counts_by_rule(
    app_client: Callable[..., TestClient], store: ReviewStore
) -> None:
    client = app_client(logged_in_as="vic")
    partners = store.partners()
    listing = client.get("/partners").text
    for partner_id, _open, _all in partners:
        assert f"/partners/{partner_id}" in listing
    partner_id = partners[0][0]
    page = client.get(f"/partners/{partner_id}").text
    assert '<svg id="partner-chart"' in page
    counts = store.partner_counts(partner_id)
    assert len(re.findall(r'<rect class="bar r\d" ', page)) == len(counts)
    for _day, rule, _n in counts:
        assert rule in page
    assert client.get("/partners/NO-SUCH-PARTNER").status_code == 404


def test_reviewer_adds_a_suppression(
    app_client: Callable[..., TestClient], store: ReviewStore
) -> None:
    client = app_client(logged_in_as="rita")
    form = {
        "app_id": "tunely-ios",
        "rule": "SCOPE_NOT_GRANTED",
        "until": "2026-12-31",
        "reason": "agreed migration",
        "csrf_token": csrf_of(client),
    }
    page = client.post("/suppressions", data=form).text
    assert "SCOPE_NOT_GRANTED suppressed for tunely-ios until 2026-12-31." in page
    (suppression,) = store.suppressions()
    assert (suppression.app_id, suppression.created_by) == ("tunely-ios", "rita")
