"""Every changing form carries the versions it showed: a stale queue page or item page changes
nothing and says which item changed meanwhile."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from pipeline.review.store import ItemFilter, ReviewStore
from tests.review.web.conftest import csrf_of


def ticked(store: ReviewStore, count: int) -> list[str]:
    """Checkbox values `<item_id>:<version>` of the first new items, as the queue shows them."""
    items = store.items(ItemFilter(status="new"), per_page=count).items
    return [f"{i.item_id}:{i.version}" for i in items]


def test_queue_checkboxes_carry_each_items_version(
    app_client: Callable[..., TestClient], store: ReviewStore
) -> None:
    page = app_client(logged_in_as="rita").get("/queue?status=new&per_page=25").text
    values = re.findall(r'name="item_id" value="([^"]+)"', page)
    assert values == ticked(store, 25)


def test_bulk_status_from_a_stale_queue_page_changes_nothing(
    app_client: Callable[..., TestClient], store: ReviewStore
) -> None:
    client = app_client(logged_in_as="rita")
    values = ticked(store, 3)
    stale_id = values[1].split(":")[0]
    store.set_status([stale_id], "confirmed", actor="bob")
    before = [store.item(v.split(":")[0]) for v in values]
    form = {"action": "status", "status": "triaged", "item_id": values}
    response = client.post("/bulk", data={**form, "csrf_token": csrf_of(client)})
    assert response.status_code == 409
    assert stale_id in response.text
    assert [store.item(v.split(":")[0]) for v in values] == before
    assert store.item(stale_id).status == "confirmed"


def test_bulk_assign_from_a_stale_queue_page_changes_nothing(
    app_client: Callable[..., TestClient], store: ReviewStore
) -> None:
    client = app_client(logged_in_as="rita")
    values = ticked(store, 2)
    stale_id = values[0].split(":")[0]
    store.assign([stale_id], "bob", actor="bob")
    form = {"action": "assign", "assignee": "rita", "item_id": values}
    response = client.post("/bulk", data={**form, "csrf_token": csrf_of(client)})
    assert response.status_code == 409
    assert stale_id in response.text
    assert [store.item(v.split(":")[0]).assignee for v in values] == ["bob", None]


def test_bulk_applies_items_of_different_versions(
    app_client: Callable[..., TestClient], store: ReviewStore
) -> None:
    client = app_client(logged_in_as="rita")
    first, second = (v.split(":")[0] for v in ticked(store, 2))
    store.assign([first], "ana", actor="bob")  # first is now one version ahead of second
    values = [f"{i.item_id}:{i.version}" for i in (store.item(first), store.item(second))]
    form = {"action": "status", "status": "triaged", "item_id": values}
    response = client.post("/bulk", data={**form, "csrf_token": csrf_of(client)})
    assert "2 of 2 item(s) set to triaged." in response.text
    assert {store.item(first).status, store.item(second).status} == {"triaged"}


@pytest.mark.parametrize(
    "value",
    [
        "{id}",
        "{id}:",
        "{id}:x",
        "{id}:-1",
        "{id}:1:2",
        "{id}: 1",
        ":1",
        "{id}:1e3",
        "{id}:99999999",
    ],
)
def test_bulk_refuses_malformed_checkbox_values(
    app_client: Callable[..., TestClient], store: ReviewStore, value: str
) -> None:
    client = app_client(logged_in_as="rita")
    item = store.items(ItemFilter(status="new"), per_page=1).items[0]
    form = {"action": "status", "status": "triaged", "item_id": value.format(id=item.item_id)}
    response = client.post("/bulk", data={**form, "csrf_token": csrf_of(client)})
    assert response.status_code in (400, 404)
    assert store.item(item.item_id) == item


def test_assign_from_a_stale_item_page_changes_nothing(
    app_client: Callable[..., TestClient], store: ReviewStore
) -> None:
    client = app_client(logged_in_as="rita")
    item = store.items(ItemFilter(status="new"), per_page=1).items[0]
    page = client.get(f"/items/{item.item_id}").text
    assign_form = page[page.index("/assign") :]
    assert f'name="version" value="{item.version}"' in assign_form[: assign_form.index("</form>")]
    store.assign([item.item_id], "bob", actor="bob")
    form = {"assignee": "rita", "version": str(item.version), "csrf_token": csrf_of(client)}
    response = client.post(f"/items/{item.item_id}/assign", data=form)
    assert response.status_code == 409
    assert store.item(item.item_id).assignee == "bob"
    fresh = {**form, "version": str(store.item(item.item_id).version)}
    assert client.post(f"/items/{item.item_id}/assign", data=fresh).status_code == 200
    assert store.item(item.item_id).assignee == "rita"
