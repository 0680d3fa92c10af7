"""What reviewers do: decide alerts (with notes, guarded by versions), decide a whole series,
act on a ticked selection of alerts and series, export the queue and an alert's flags; and the
pages they read."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from urllib.parse import quote

from fastapi.testclient import TestClient

from pipeline.detect.alert_flags import alert_flag_count, alert_flags
from pipeline.review.store import AlertFilter, ReviewStore
from pipeline.review.web.export import safe_cell
from pipeline.review.web.params import FLAGS_PER_PAGE
from pipeline.warehouse import Warehouse
from tests.review.web.conftest import csrf_of


def new_alert(store: ReviewStore, **filters: str):
    return store.alerts(AlertFilter(status="new", kind="rule", **filters), per_page=1).alerts[0]


def biggest_series(store: ReviewStore):
    row = store.queue(AlertFilter(), sort="-flags", per_page=1).rows[0]
    assert row.series_id is not None and row.series_days > 1
    return store.series(row.series_id)


def test_reviewer_marks_an_alert_false_positive_with_a_note(
    app_client: Callable[..., TestClient], store: ReviewStore
) -> None:
    client = app_client(logged_in_as="rita")
    alert = new_alert(store)
    form = {
        "status": "false_positive",
        "version": str(alert.version),
        "note": "partner's test account",
        "csrf_token": csrf_of(client),
    }
    response = client.post(f"/alerts/{alert.alert_id}/status", data=form)
    assert response.status_code == 200
    assert "Status set to false positive." in response.text
    assert 'class="badge st-false_positive"' in response.text
    entry = store.audit_trail(alert.alert_id)[0]
    assert (entry.actor, entry.action, entry.from_value, entry.to_value, entry.note) == (
        "rita",
        "status",
        "new",
        "false_positive",
        "partner's test account",
    )
    audit_page = client.get("/audit").text
    assert alert.alert_id[:10] in audit_page and "partner&#39;s test account" in audit_page


def test_a_decision_on_a_stale_page_is_refused(
    app_client: Callable[..., TestClient], store: ReviewStore
) -> None:
    client = app_client(logged_in_as="rita")
    alert = new_alert(store)
    store.set_status([alert.alert_id], "triaged", actor="someone")
    form = {"status": "confirmed", "version": str(alert.version), "csrf_token": csrf_of(client)}
    response = client.post(f"/alerts/{alert.alert_id}/status", data=form)
    assert response.status_code == 409
    assert store.alert(alert.alert_id).status == "triaged"


def test_an_invalid_transition_is_a_400_naming_it(
    app_client: Callable[..., TestClient], store: ReviewStore
) -> None:
    client = app_client(logged_in_as="rita")
    alert = new_alert(store)
    store.set_status([alert.alert_id], "confirmed", actor="someone")
    form = {"status": "resolved", "version": "2", "csrf_token": csrf_of(client)}
    response = client.post(f"/alerts/{alert.alert_id}/status", data=form)
    assert response.status_code == 400
    assert f"status: alert {alert.alert_id} cannot move from confirmed to resolved" in response.text


def test_reviewer_decides_a_whole_series_and_its_trail_shows_it(
    app_client: Callable[..., TestClient], store: ReviewStore
) -> None:
    client = app_client(logged_in_as="rita")
    series = biggest_series(store)
    page = client.get(f"/series/{series.series_id}").text
    assert len(re.findall(r'data-alert-id="([0-9a-f]{32})"', page)) == len(series.alerts)
    assert f'name="version" value="{series.version}"' in page
    form = {
        "status": "confirmed",
        "version": str(series.version),
        "note": "partner kept calling",
        "csrf_token": csrf_of(client, f"/series/{series.series_id}"),
    }
    response = client.post(f"/series/{series.series_id}/status", data=form)
    assert response.status_code == 200
    assert f"{len(series.alerts)} day(s) of the series set to confirmed." in response.text
    assert {a.status for a in store.series(series.series_id).alerts} == {"confirmed"}
    for alert in series.alerts:
        (entry,) = [e for e in store.audit_trail(alert.alert_id) if e.action == "status"]
        assert (entry.note, entry.via) == ("partner kept calling", f"series {series.series_id}")
    assert response.text.count(f"series {series.series_id}</td>") == len(series.alerts)
    # the same form again is stale now: the series' version moved
    again = client.post(f"/series/{series.series_id}/assign", data={**form, "assignee": "ana"})
    assert again.status_code == 409
    assert "someone changed this series meanwhile" in again.text


def test_bulk_actions_change_the_ticked_alerts_and_series_and_return_to_the_filter(
    app_client: Callable[..., TestClient], store: ReviewStore
) -> None:
    client = app_client(logged_in_as="rita")
    series = biggest_series(store)
    lone = next(
        a for a in store.iter_alerts(AlertFilter(status="new")) if a.series_id != series.series_id
    )
    untouched = [
        a.alert_id
        for a in store.iter_alerts(AlertFilter())
        if a.series_id != series.series_id and a.alert_id != lone.alert_id
    ]

    def shown() -> list[str]:
        return [
            f"s:{series.series_id}:{store.series(series.series_id).version}",
            f"a:{lone.alert_id}:{store.alert(lone.alert_id).version}",
        ]

    back = "rule=NO_SIGNIN&sort=-severity"
    token = csrf_of(client)
    response = client.post(
        "/bulk",
        data={"action": "assign", "assignee": "ana", "alert_id": shown(), "back": back,
              "csrf_token": token},
        follow_redirects=False,
    )  # fmt: skip
    assert response.status_code == 303
    assert response.headers["location"] == "/queue?rule=NO_SIGNIN&sort=-severity"
    response = client.post(
        "/bulk",
        data={"action": "status", "status": "confirmed", "note": "bulk", "alert_id": shown(),
              "csrf_token": token},
    )  # fmt: skip
    days = len(series.alerts)
    assert f"{days + 1} alert(s) set to confirmed (ticked: 1 alert(s), 1 series)." in response.text
    decided = [*(a.alert_id for a in series.alerts), lone.alert_id]
    for alert_id in decided:
        assert (store.alert(alert_id).status, store.alert(alert_id).assignee) == (
            "confirmed",
            "ana",
        )
    assert {store.alert(a).status for a in untouched} == {"new"}
    vias = {e.via for a in decided for e in store.audit_trail(a) if e.action == "status"}
    assert vias == {f"series {series.series_id}", f"selection of {days + 1}"}
    page = client.get("/queue?assignee=ana").text
    assert re.search(r'id="result-count">1–2 of 2 rows<', page)


def test_csv_export_holds_every_alert_of_the_filter_in_order(
    app_client: Callable[..., TestClient], store: ReviewStore
) -> None:
    client = app_client(logged_in_as="vic")
    response = client.get("/export.csv?rule=NO_SIGNIN&sort=-flags")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    expected = list(store.iter_alerts(AlertFilter(rule="NO_SIGNIN"), sort="-flags"))
    assert [r["alert_id"] for r in rows] == [a.alert_id for a in expected]
    assert [int(r["flags"]) for r in rows] == [a.flags for a in expected]
    assert {r["rule"] for r in rows} == {"NO_SIGNIN"}


def test_csv_export_defuses_formulas(
    app_client: Callable[..., TestClient], store: ReviewStore
) -> None:
    alert = new_alert(store)
    store.assign([alert.alert_id], '=HYPERLINK("http://evil.example","x")', actor="rita")
    response = app_client(logged_in_as="vic").get("/export.csv")
    row = next(
        r for r in csv.DictReader(io.StringIO(response.text)) if r["alert_id"] == alert.alert_id
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


def test_an_alerts_flags_export_streams_every_flag_with_the_pages_filters(
    app_client: Callable[..., TestClient], store: ReviewStore, web_settings
) -> None:
    client = app_client(logged_in_as="vic")
    alert = max(store.iter_alerts(AlertFilter(kind="rule")), key=lambda a: a.flags)
    response = client.get(f"/alerts/{alert.alert_id}/flags.csv")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert f"alert-{alert.alert_id}-flags.csv" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == alert.flags
    assert {r["alert_id"] for r in rows} == {alert.alert_id}
    wanted = alert_flags(Warehouse(web_settings.warehouse), alert.day, alert.alert_id, limit=10_000)
    assert [r["flag_id"] for r in rows] == wanted["flag_id"].to_pylist()
    user = rows[0]["user_id"]
    mine = list(csv.DictReader(io.StringIO(client.get(
        f"/alerts/{alert.alert_id}/flags.csv?user={user}&action=read").text)))  # fmt: skip
    assert mine and {(r["user_id"], r["action"]) for r in mine} == {(user, "read")}


def test_the_alert_page_pages_its_flags_from_the_warehouse(
    app_client: Callable[..., TestClient], store: ReviewStore, web_settings
) -> None:
    client = app_client(logged_in_as="vic")
    alert = max(store.iter_alerts(AlertFilter(kind="rule")), key=lambda a: a.flags)
    seen: list[str] = []
    offset = 0
    while True:
        page = client.get(f"/alerts/{alert.alert_id}?offset={offset}").text
        table = page[page.index('id="flags-table"') :]
        requests = re.findall(r'<td class="mono">([^<]+)</td>', table[: table.index("</table>")])
        if not requests:
            break
        seen += requests
        offset += FLAGS_PER_PAGE
    assert (
        len(seen)
        == alert.flags
        == alert_flag_count(Warehouse(web_settings.warehouse), alert.day, alert.alert_id)
    )
    first = client.get(f"/alerts/{alert.alert_id}").text
    assert f"{alert.reads:,} reads" in first and '<svg id="hours-chart"' in first
    one = client.get(f"/alerts/{alert.alert_id}?request_id={seen[3]}").text
    assert re.search(r'id="flags-count">1–1 of 1 flags<', one)
    nobody = client.get(f"/alerts/{alert.alert_id}?user=%27%20OR%201%3D1%20--").text
    assert 'id="flags-count">0 flags<' in nobody


def test_the_alert_page_finds_users_and_draws_ones_timeline(
    app_client: Callable[..., TestClient], store: ReviewStore
) -> None:
    client = app_client(logged_in_as="vic")
    alert = max(store.iter_alerts(AlertFilter(kind="rule")), key=lambda a: a.users)
    page = client.get(f"/alerts/{alert.alert_id}").text
    users = page[page.index('id="users-table"') :]
    listed = re.findall(r'<td class="id">([^<]+)</td><td class="num">(\d+)</td>', users)
    assert listed and [int(n) for _u, n in listed] == sorted(
        (int(n) for _u, n in listed), reverse=True
    )
    user, flags = listed[-1]
    found = client.get(f"/alerts/{alert.alert_id}?users_q={user[2:]}").text
    assert f'<td class="id">{user}</td>' in found
    timeline = client.get(f"/alerts/{alert.alert_id}?timeline={user}").text
    assert '<svg id="timeline-chart"' in timeline
    assert len(re.findall(r'<circle class="tl-access"', timeline)) == int(flags)
    stranger = client.get(f"/alerts/{alert.alert_id}?timeline=nobody-at-all").text
    assert "User nobody-at-all has no flags in this alert." in stranger


def test_queue_pages_through_the_filtered_rows(
    app_client: Callable[..., TestClient], store: ReviewStore
) -> None:
    client = app_client(logged_in_as="vic")
    total = store.queue(AlertFilter(), per_page=1).total
    seen: list[str] = []
    page = 1
    while True:
        html = client.get(f"/queue?per_page=25&sort=-severity&page={page}").text
        keys = re.findall(r'data-row-key="([0-9a-f]{32})"', html)
        if not keys:
            break
        seen += keys
        page += 1
    assert len(seen) == len(set(seen)) == total
    expected = [r.key for r in store.queue(AlertFilter(), "-severity", per_page=500).rows]
    assert seen == expected


def test_partner_pages_show_flags_by_rule(
    app_client: Callable[..., TestClient], store: ReviewStore
) -> None:
    client = app_client(logged_in_as="vic")
    partners = store.partners()
    listing = client.get("/partners").text
    for partner_id, _open, _all in partners:  # linked as the template's urlencode quotes it
        assert f"/partners/{quote(partner_id)}" in listing
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
    assert store.alerts(AlertFilter(app_id="tunely-ios", rule="SCOPE_NOT_GRANTED")).total == 0
