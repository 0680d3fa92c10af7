"""Who may do what: anonymous requests are refused, viewers read only, every change needs the
session's CSRF token from this origin, and logins check argon2 hashes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from pipeline.review.store import ItemFilter, ReviewStore
from tests.review.web.conftest import PASSWORDS, csrf_of, login

UI_EVENTS = ("refused", "login", "login_failed", "logout", "export")


def first_item_id(store: ReviewStore, **filters: str) -> str:
    return store.items(ItemFilter(**filters), per_page=1).items[0].item_id


def state(store: ReviewStore) -> tuple[object, ...]:
    """Everything a change could touch: every item's review fields and the audit trail."""
    items = tuple(
        (i.item_id, i.status, i.assignee, i.version) for i in store.iter_items(ItemFilter())
    )
    # the UI's own records of the refusals themselves (tests/review/web/test_audit_events.py)
    trail = tuple(e for e in store.audit_trail(limit=1000) if e.action not in UI_EVENTS)
    return items, trail, tuple(store.suppressions())


def change_requests(item_id: str) -> list[tuple[str, dict[str, str]]]:
    """One form post of each state-changing kind, valid apart from who sends it."""
    return [
        (f"/items/{item_id}/status", {"status": "false_positive", "version": "1", "note": "n"}),
        (f"/items/{item_id}/assign", {"assignee": "mallory", "version": "1"}),
        (f"/items/{item_id}/note", {"note": "sneaky"}),
        ("/bulk", {"action": "status", "status": "resolved", "item_id": f"{item_id}:1"}),
        ("/bulk", {"action": "assign", "assignee": "mallory", "item_id": f"{item_id}:1"}),
        (
            "/suppressions",
            {"app_id": "tunely-ios", "rule": "NO_SIGNIN", "until": "2027-01-01", "reason": "x"},
        ),
    ]


def test_anonymous_requests_are_refused(
    app_client: Callable[..., TestClient], store: ReviewStore
) -> None:
    item = store.items(ItemFilter(), per_page=1).items[0]
    client = app_client()
    pages = [
        "/",
        "/queue",
        "/queue?rule=NO_SIGNIN",
        f"/items/{item.item_id}",
        "/partners",
        f"/partners/{item.partner_id}",
        "/audit",
        "/suppressions",
        "/export.csv",
    ]
    for path in pages:
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next="), path
        assert item.item_id not in response.text and item.explanation not in response.text
    before = state(store)
    for path, form in change_requests(item.item_id):
        response = client.post(path, data=form, follow_redirects=False)
        assert response.status_code == 401, path
    assert state(store) == before


def test_export_refuses_anonymous_csv_clients(app_client: Callable[..., TestClient]) -> None:
    response = app_client().get("/export.csv", headers={"accept": "text/csv"})
    assert response.status_code == 401
    assert "item_id" not in response.text


def test_viewer_reads_but_cannot_change_anything(
    app_client: Callable[..., TestClient], store: ReviewStore
) -> None:
    client = app_client(logged_in_as="vic")
    item_id = first_item_id(store)
    page = client.get(f"/items/{item_id}")
    assert page.status_code == 200 and item_id in page.text
    assert 'id="status-form"' not in page.text  # no decision forms for viewers
    assert 'name="item_id"' not in client.get("/queue").text  # no bulk checkboxes
    token = csrf_of(client)
    before = state(store)
    for path, form in change_requests(item_id):
        response = client.post(path, data={**form, "csrf_token": token}, follow_redirects=False)
        assert response.status_code == 403, path
        assert "viewer" in response.text
    assert state(store) == before


def test_post_without_the_session_csrf_token_is_refused(
    app_client: Callable[..., TestClient], store: ReviewStore
) -> None:
    client = app_client(logged_in_as="rita")
    other_session_token = csrf_of(app_client(logged_in_as="rita"))
    item_id = first_item_id(store, status="new")
    before = state(store)
    for token in (None, "", "forged-token", other_session_token):
        for path, form in change_requests(item_id):
            data = form if token is None else {**form, "csrf_token": token}
            response = client.post(path, data=data, follow_redirects=False)
            assert response.status_code == 403, (path, token)
    assert state(store) == before
    # the same post with the page's own token goes through
    form = {"status": "false_positive", "version": "1", "csrf_token": csrf_of(client)}
    response = client.post(f"/items/{item_id}/status", data=form, follow_redirects=False)
    assert response.status_code == 303
    assert store.item(item_id).status == "false_positive"


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "https://evil.example"},
        {"origin": "null"},
        {"referer": "https://evil.example/page"},
        {"origin": "http://testserver.evil.example"},
    ],
)
def test_cross_origin_post_is_refused_even_with_a_token(
    app_client: Callable[..., TestClient], store: ReviewStore, headers: dict[str, str]
) -> None:
    client = app_client(logged_in_as="rita")
    item_id = first_item_id(store, status="new")
    form = {"status": "confirmed", "version": "1", "csrf_token": csrf_of(client)}
    response = client.post(
        f"/items/{item_id}/status", data=form, headers=headers, follow_redirects=False
    )
    assert response.status_code == 403
    assert store.item(item_id).status == "new"
    same_origin = client.post(
        f"/items/{item_id}/status",
        data=form,
        headers={"origin": "http://testserver"},
        follow_redirects=False,
    )
    assert same_origin.status_code == 303


@pytest.mark.parametrize(
    ("name", "password"),
    [("rita", "wrong"), ("rita", ""), ("nobody", PASSWORDS["rita"]), ("RITA", PASSWORDS["rita"])],
)
def test_login_refuses_wrong_credentials(
    app_client: Callable[..., TestClient], name: str, password: str
) -> None:
    client = app_client()
    token = csrf_of(client, "/login")
    response = client.post(
        "/login",
        data={"username": name, "password": password, "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 401
    assert "Wrong user name or password" in response.text
    assert client.get("/queue", follow_redirects=False).status_code == 303


def test_login_sets_a_protected_session_cookie_and_shows_the_role(
    app_client: Callable[..., TestClient],
) -> None:
    client = app_client()
    token = csrf_of(client, "/login")
    response = client.post(
        "/login",
        data={"username": "rita", "password": PASSWORDS["rita"], "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    page = client.get("/queue").text
    assert 'id="current-user">rita<' in page and "role-reviewer" in page
    assert csrf_of(client) != token  # a new token after login


def test_logout_ends_the_session(app_client: Callable[..., TestClient]) -> None:
    client = app_client(logged_in_as="vic")
    response = client.post("/logout", data={"csrf_token": csrf_of(client)}, follow_redirects=False)
    assert response.status_code == 303
    assert client.get("/queue", follow_redirects=False).status_code == 303


@pytest.mark.parametrize(
    "target",
    ["//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)", "x"],
)
def test_login_next_is_no_open_redirect(app_client: Callable[..., TestClient], target: str) -> None:
    assert login(app_client(), "vic", PASSWORDS["vic"], next_path=target) == "/queue"


def test_login_keeps_a_local_next_path(app_client: Callable[..., TestClient]) -> None:
    client = app_client()
    first = client.get("/partners?x=1", follow_redirects=False)
    assert first.headers["location"] == "/login?next=%2Fpartners%3Fx%3D1"
    assert login(client, "vic", PASSWORDS["vic"], next_path="/partners?x=1") == "/partners?x=1"


def test_every_response_carries_security_headers(app_client: Callable[..., TestClient]) -> None:
    client = app_client(logged_in_as="vic")
    for path in ("/login", "/queue", "/items/0123456789abcdef0123456789abcdef"):
        headers = client.get(path).headers
        policy = headers["content-security-policy"]
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["cache-control"] == "no-store"
