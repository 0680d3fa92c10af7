"""Who may do what: anonymous requests are refused, viewers read only, every change needs the
session's CSRF token from this origin, and logins check argon2 hashes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from pipeline.review.store import AlertFilter, ReviewStore
from tests.review.web.conftest import PASSWORDS, csrf_of, login

UI_EVENTS = ("refused", "login", "login_failed", "logout", "export")


def first_alert_id(store: ReviewStore, **filters: str) -> str:
    return store.alerts(AlertFilter(kind="rule", **filters), per_page=1).alerts[0].alert_id


def first_series_id(store: ReviewStore) -> str:
    series = next(a.series_id for a in store.iter_alerts(AlertFilter()) if a.series_id)
    assert series is not None
    return series


def state(store: ReviewStore) -> tuple[object, ...]:
    """Everything a change could touch: every alert's review fields and the audit trail."""
    alerts = tuple(
        (a.alert_id, a.status, a.assignee, a.version)
        for a in store.iter_alerts(AlertFilter(include_suppressed=True))
    )
    # the UI's own records of the refusals themselves (test_origin_and_refusals.py)
    trail = tuple(e for e in store.audit_trail(limit=1000) if e.action not in UI_EVENTS)
    return alerts, trail, tuple(store.suppressions())


def change_requests(alert_id: str, series_id: str = "0" * 32) -> list[tuple[str, dict[str, str]]]:
    """One form post of each state-changing kind, valid apart from who sends it."""
    return [
        (f"/alerts/{alert_id}/status", {"status": "false_positive", "version": "1", "note": "n"}),
        (f"/alerts/{alert_id}/assign", {"assignee": "mallory", "version": "1"}),
        (f"/alerts/{alert_id}/note", {"note": "sneaky"}),
        (f"/series/{series_id}/status", {"status": "false_positive", "version": "1"}),
        (f"/series/{series_id}/assign", {"assignee": "mallory", "version": "1"}),
        (f"/series/{series_id}/note", {"note": "sneaky"}),
        ("/bulk", {"action": "status", "status": "resolved", "alert_id": f"a:{alert_id}:1"}),
        ("/bulk", {"action": "assign", "assignee": "mallory", "alert_id": f"a:{alert_id}:1"}),
        ("/bulk", {"action": "note", "note": "sneaky", "alert_id": f"s:{series_id}:1"}),
        (
            "/suppressions",
            {"app_id": "tunely-ios", "rule": "NO_SIGNIN", "until": "2027-01-01", "reason": "x"},
        ),
    ]


def test_anonymous_requests_are_refused(
    app_client: Callable[..., TestClient], store: ReviewStore
) -> None:
    alert = store.alerts(AlertFilter(kind="rule"), per_page=1).alerts[0]
    series = first_series_id(store)
    client = app_client()
    pages = [
        "/",
        "/queue",
        "/queue?rule=NO_SIGNIN",
        f"/alerts/{alert.alert_id}",
        f"/alerts/{alert.alert_id}?timeline=u1",
        f"/alerts/{alert.alert_id}/flags.csv",
        f"/series/{series}",
        "/partners",
        f"/partners/{alert.partner_id}",
        "/audit",
        "/suppressions",
        "/export.csv",
    ]
    for path in pages:
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next="), path
        assert alert.alert_id not in response.text and alert.explanation not in response.text
    before = state(store)
    for path, form in change_requests(alert.alert_id, series):
        response = client.post(path, data=form, follow_redirects=False)
        assert response.status_code == 401, path
    assert state(store) == before


def test_export_refuses_anonymous_csv_clients(
    app_client: Callable[..., TestClient], store: ReviewStore
) -> None:
    alert_id = first_alert_id(store)
    for path in ("/export.csv", f"/alerts/{alert_id}/flags.csv"):
        response = app_client().get(path, headers={"accept": "text/csv"})
        assert response.status_code == 401
        assert "alert_id" not in response.text and "flag_id" not in response.text


def test_viewer_reads_but_cannot_change_anything(
    app_client: Callable[..., TestClient], store: ReviewStore
) -> None:
    client = app_client(logged_in_as="vic")
    alert_id = first_alert_id(store)
    series = first_series_id(store)
    page = client.get(f"/alerts/{alert_id}")
    assert page.status_code == 200 and alert_id in page.text
    assert 'id="status-form"' not in page.text  # no decision forms for viewers
    assert 'id="series-status-form"' not in client.get(f"/series/{series}").text
    assert 'name="alert_id"' not in client.get("/queue").text  # no bulk checkboxes
    token = csrf_of(client)
    before = state(store)
    for path, form in change_requests(alert_id, series):
        response = client.post(path, data={**form, "csrf_token": token}, follow_redirects=False)
        assert response.status_code == 403, path
        assert "viewer" in response.text
    assert state(store) == before


def test_post_without_the_session_csrf_token_is_refused(
    app_client: Callable[..., TestClient], store: ReviewStore
) -> None:
    client = app_client(logged_in_as="rita")
    other_session_token = csrf_of(app_client(logged_in_as="rita"))
    alert_id = first_alert_id(store, status="new")
    series = first_series_id(store)
    before = state(store)
    for token in (None, "", "forged-token", other_session_token):
        for path, form in change_requests(alert_id, series):
            data = form if token is None else {**form, "csrf_token": token}
            response = client.post(path, data=data, follow_redirects=False)
            assert response.status_code == 403, (path, token)
    assert state(store) == before
    # the same post with the page's own token goes through
    form = {"status": "false_positive", "version": "1", "csrf_token": csrf_of(client)}
    response = client.post(f"/alerts/{alert_id}/status", data=form, follow_redirects=False)
    assert response.status_code == 303
    assert store.alert(alert_id).status == "false_positive"


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
    alert_id = first_alert_id(store, status="new")
    form = {"status": "confirmed", "version": "1", "csrf_token": csrf_of(client)}
    response = client.post(
        f"/alerts/{alert_id}/status", data=form, headers=headers, follow_redirects=False
    )
    assert response.status_code == 403
    assert store.alert(alert_id).status == "new"
    same_origin = client.post(
        f"/alerts/{alert_id}/status",
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
    for path in ("/login", "/queue", "/alerts/0123456789abcdef0123456789abcdef"):
        headers = client.get(path).headers
        policy = headers["content-security-policy"]
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["cache-control"] == "no-store"
