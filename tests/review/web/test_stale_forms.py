"""Every changing form carries the versions it showed: a stale queue, alert or series page changes
nothing and says which alert or series changed meanwhile."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from pipeline.review.store import AlertFilter, ReviewStore
from tests.review.web.conftest import csrf_of


def ticked(store: ReviewStore, count: int) -> list[str]:
    """Checkbox values of the first queue rows of new alerts, as the queue shows them:
    `s:<series_id>:<version of the whole series>` or `a:<alert_id>:<version>`."""
    rows = store.queue(AlertFilter(status="new"), per_page=count).rows
    return [
        f"s:{r.series_id}:{r.series_version}"
        if r.series_days > 1
        else f"a:{r.first.alert_id}:{r.first.version}"
        for r in rows
    ]


def alerts_of(store: ReviewStore, value: str) -> list[str]:
    kind, target, _version = value.split(":")
    if kind == "a":
        return [target]
    return [a.alert_id for a in store.series(target).alerts]


def test_queue_checkboxes_carry_each_rows_version(
    app_client: Callable[..., TestClient], store: ReviewStore
) -> None:
    page = app_client(logged_in_as="rita").get("/queue?status=new&per_page=25").text
    values = re.findall(r'name="alert_id" value="([^"]+)"', page)
    assert values == ticked(store, 25)


def test_bulk_status_from_a_stale_queue_page_changes_nothing(
    app_client: Callable[..., TestClient], store: ReviewStore
) -> None:
    client = app_client(logged_in_as="rita")
    values = ticked(store, 3)
    stale_id = alerts_of(store, values[1])[-1]  # one day of the second series
    store.set_status([stale_id], "confirmed", actor="bob")
    every = [a for v in values for a in alerts_of(store, v)]
    before = [store.alert(a) for a in every]
    form = {"action": "status", "status": "triaged", "alert_id": values}
    response = client.post("/bulk", data={**form, "csrf_token": csrf_of(client)})
    assert response.status_code == 409
    assert values[1].split(":")[1] in response.text  # the series that changed
    assert [store.alert(a) for a in every] == before
    assert store.alert(stale_id).status == "confirmed"


def test_bulk_assign_from_a_stale_queue_page_changes_nothing(
    app_client: Callable[..., TestClient], store: ReviewStore
) -> None:
    client = app_client(logged_in_as="rita")
    values = ticked(store, 2)
    stale_id = alerts_of(store, values[0])[0]
    store.assign([stale_id], "bob", actor="bob")
    form = {"action": "assign", "assignee": "rita", "alert_id": values}
    response = client.post("/bulk", data={**form, "csrf_token": csrf_of(client)})
    assert response.status_code == 409
    assert values[0].split(":")[1] in response.text
    assignees = {store.alert(a).assignee for v in values for a in alerts_of(store, v)}
    assert assignees == {"bob", None}


def test_bulk_applies_alerts_of_different_versions(
    app_client: Callable[..., TestClient], store: ReviewStore
) -> None:
    client = app_client(logged_in_as="rita")
    first, second = (alerts_of(store, v)[0] for v in ticked(store, 2))
    store.assign([first], "ana", actor="bob")  # first is now one version ahead of second
    values = [f"a:{a.alert_id}:{a.version}" for a in (store.alert(first), store.alert(second))]
    form = {"action": "status", "status": "triaged", "alert_id": values}
    response = client.post("/bulk", data={**form, "csrf_token": csrf_of(client)})
    assert "2 alert(s) set to triaged (ticked: 2 alert(s))." in response.text
    assert {store.alert(first).status, store.alert(second).status} == {"triaged"}


@pytest.mark.parametrize(
    "value",
    [
        "{id}",
        "a:{id}",
        "a:{id}:",
        "a:{id}:x",
        "a:{id}:-1",
        "a:{id}:1:2",
        "a:{id}: 1",
        "a::1",
        "x:{id}:1",
        "a:{id}:1e3",
        "a:{id}:9999999999",
        "{id}:1",
    ],
)
def test_bulk_refuses_malformed_checkbox_values(
    app_client: Callable[..., TestClient], store: ReviewStore, value: str
) -> None:
    client = app_client(logged_in_as="rita")
    alert = store.alerts(AlertFilter(status="new"), per_page=1).alerts[0]
    form = {"action": "status", "status": "triaged", "alert_id": value.format(id=alert.alert_id)}
    response = client.post("/bulk", data={**form, "csrf_token": csrf_of(client)})
    assert response.status_code in (400, 404)
    assert store.alert(alert.alert_id) == alert


def test_assign_from_a_stale_alert_page_changes_nothing(
    app_client: Callable[..., TestClient], store: ReviewStore
) -> None:
    client = app_client(logged_in_as="rita")
    alert = store.alerts(AlertFilter(status="new"), per_page=1).alerts[0]
    page = client.get(f"/alerts/{alert.alert_id}").text
    assign_form = page[page.index("/assign") :]
    assert f'name="version" value="{alert.version}"' in assign_form[: assign_form.index("</form>")]
    store.assign([alert.alert_id], "bob", actor="bob")
    form = {"assignee": "rita", "version": str(alert.version), "csrf_token": csrf_of(client)}
    response = client.post(f"/alerts/{alert.alert_id}/assign", data=form)
    assert response.status_code == 409
    assert store.alert(alert.alert_id).assignee == "bob"
    fresh = {**form, "version": str(store.alert(alert.alert_id).version)}
    assert client.post(f"/alerts/{alert.alert_id}/assign", data=fresh).status_code == 200
    assert store.alert(alert.alert_id).assignee == "rita"


def test_a_series_decision_from_a_stale_series_page_changes_nothing(
    app_client: Callable[..., TestClient], store: ReviewStore
) -> None:
    client = app_client(logged_in_as="rita")
    row = next(r for r in store.queue(AlertFilter(), per_page=50).rows if r.series_days > 1)
    assert row.series_id is not None
    page = client.get(f"/series/{row.series_id}").text
    assert f'name="version" value="{row.series_version}"' in page
    store.set_status([row.last.alert_id], "triaged", actor="bob")  # one day changes
    form = {
        "status": "confirmed",
        "version": str(row.series_version),
        "csrf_token": csrf_of(client),
    }
    response = client.post(f"/series/{row.series_id}/status", data=form)
    assert response.status_code == 409
    statuses = {a.alert_id: a.status for a in store.series(row.series_id).alerts}
    assert statuses[row.last.alert_id] == "triaged"
    assert set(statuses.values()) == {"new", "triaged"}
