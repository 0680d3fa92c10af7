"""Requests from elsewhere: a forged Host never becomes a redirect target, a form post must name
this origin (scheme included) in Origin or Referer, and refusals and exports are recorded in
the audit trail."""

from __future__ import annotations

from dataclasses import replace

import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request

from pipeline.review.web.app import create_app
from pipeline.review.web.csrf import same_origin_refusal
from tests.review.web.backends import Backend, backend_fixture, first_new_alert  # noqa: F401 (fixture)
from tests.review.web.conftest import PASSWORDS, csrf_of, login

EVIL = "evil.example"


def logged_in(backend: Backend, name: str = "rita") -> TestClient:
    client = backend.client()
    login(client, name, PASSWORDS[name])
    return client


def test_a_forged_host_never_reaches_a_location_header(backend: Backend) -> None:
    anonymous = backend.client()
    rita = logged_in(backend)
    item = first_new_alert(backend)
    requests = [
        (anonymous, "GET", "/queue/", {}),
        (anonymous, "GET", "/queue", {}),
        (anonymous, "GET", "/login/", {}),
        (anonymous, "GET", f"/alerts/{item.alert_id}/", {}),
        (rita, "GET", "/queue/", {}),
        (rita, "GET", "/login", {}),
        (rita, "GET", "/partners/", {}),
        (rita, "POST", f"/alerts/{item.alert_id}/note", {"note": "n"}),
        (rita, "POST", "/logout", {}),
    ]
    locations = []
    for client, method, path, form in requests:
        token = csrf_of(client, "/login") if method == "POST" else ""
        response = client.request(
            method,
            path,
            data={**form, "csrf_token": token} if method == "POST" else None,
            headers={"host": EVIL, "origin": f"http://{EVIL}"},
            follow_redirects=False,
        )
        location = response.headers.get("location")
        if location is not None:
            locations.append(location)
            assert EVIL not in location, (path, location)
            assert location.startswith("/") and not location.startswith("//"), location
    assert len(locations) >= 6  # the redirects did happen, only never to another host


@pytest.mark.parametrize(
    ("headers", "accepted"),
    [
        ({"origin": "http://testserver"}, True),
        ({"referer": "http://testserver/queue"}, True),
        ({"origin": "https://testserver"}, False),  # same host, another scheme
        ({"referer": "https://testserver/queue"}, False),
        ({"origin": "http://testserver:8080"}, False),
        ({"origin": "http://testserver", "referer": "http://evil.example/"}, False),
        ({}, False),  # neither Origin nor Referer
    ],
)
def test_a_post_must_come_from_this_origin(
    backend: Backend, headers: dict[str, str], accepted: bool
) -> None:
    client = logged_in(backend)
    token = csrf_of(client)
    del client.headers["origin"]
    item = first_new_alert(backend)
    response = client.post(
        f"/alerts/{item.alert_id}/note",
        data={"note": "from somewhere", "csrf_token": token},
        headers=headers,
        follow_redirects=False,
    )
    assert response.status_code == (303 if accepted else 403), response.text
    notes = [e for e in backend.store.audit_trail(item.alert_id) if e.action == "note"]
    assert bool(notes) == accepted


def test_a_login_post_without_origin_or_referer_is_refused(backend: Backend) -> None:
    client = backend.client()
    token = csrf_of(client, "/login")
    del client.headers["origin"]
    response = client.post(
        "/login",
        data={"username": "rita", "password": PASSWORDS["rita"], "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 403 and "Origin or Referer" in response.text


def test_over_https_an_http_origin_is_refused(backend: Backend) -> None:
    settings = replace(backend.settings, review_url="https://review.example")
    client = TestClient(create_app(settings, backend.store), base_url="https://review.example")
    login(client, "rita", PASSWORDS["rita"])
    item = first_new_alert(backend)
    for origin, status in (("http://review.example", 403), ("https://review.example", 303)):
        response = client.post(
            f"/alerts/{item.alert_id}/note",
            data={"note": "n", "csrf_token": csrf_of(client)},
            headers={"origin": origin},
            follow_redirects=False,
        )
        assert response.status_code == status, origin


@pytest.mark.parametrize(
    ("origin", "refused"),
    [("https://review.example", False), ("http://review.example", True), (None, True)],
)
def test_behind_a_tls_proxy_the_configured_https_origin_is_expected(
    backend: Backend, origin: str | None, refused: bool
) -> None:
    """The proxy forwards plain http; the browser's origin is the configured https one."""
    app = create_app(replace(backend.settings, review_url="https://review.example"), backend.store)
    headers = [(b"host", b"review.example")]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    scope = {"type": "http", "scheme": "http", "method": "POST", "path": "/x", "app": app}
    request = Request({**scope, "headers": headers, "query_string": b""})
    assert (same_origin_refusal(request) is not None) == refused


def refusals(backend: Backend) -> list[tuple[str, str | None]]:
    return [(e.actor, e.to_value) for e in backend.store.audit_trail() if e.action == "refused"]


def test_refusals_of_logged_in_users_are_recorded(backend: Backend) -> None:
    vic = logged_in(backend, "vic")
    item = first_new_alert(backend)
    response = vic.post(
        f"/alerts/{item.alert_id}/note", data={"note": "n", "csrf_token": csrf_of(vic)}
    )
    assert response.status_code == 403
    rita = logged_in(backend)
    stale = rita.post(
        f"/alerts/{item.alert_id}/status",
        data={"status": "triaged", "version": str(item.version + 5), "csrf_token": csrf_of(rita)},
    )
    assert stale.status_code == 409
    forged = rita.post(f"/alerts/{item.alert_id}/note", data={"note": "n", "csrf_token": "forged"})
    assert forged.status_code == 403
    assert refusals(backend) == [
        ("rita", f"403 POST /alerts/{item.alert_id}/note"),
        ("rita", f"409 POST /alerts/{item.alert_id}/status"),
        ("vic", f"403 POST /alerts/{item.alert_id}/note"),
    ]
    trail = [e for e in backend.store.audit_trail() if e.action == "refused"]
    assert "CSRF" in (trail[0].note or "") and "viewer" in (trail[2].note or "")


def test_anonymous_refusals_do_not_grow_the_trail(backend: Backend) -> None:
    before = len(backend.store.audit_trail(limit=10_000))
    anonymous = backend.client()
    for _ in range(20):
        anonymous.post("/login", data={"username": "x", "password": "y", "csrf_token": "no"})
    assert len(backend.store.audit_trail(limit=10_000)) == before


def test_exports_are_recorded_with_their_filter(backend: Backend) -> None:
    vic = logged_in(backend, "vic")
    assert vic.get("/export.csv?rule=NO_SIGNIN&status=new").status_code == 200
    assert vic.get("/export.csv").status_code == 200
    exports = [(e.actor, e.to_value) for e in backend.store.audit_trail() if e.action == "export"]
    assert exports == [("vic", "(all)"), ("vic", "rule=NO_SIGNIN&status=new")]
    assert backend.client().get("/export.csv", follow_redirects=False).status_code == 303
    assert len([e for e in backend.store.audit_trail() if e.action == "export"]) == 2


def test_changes_made_in_the_ui_record_the_address_they_came_from(backend: Backend) -> None:
    rita = logged_in(backend)
    item = first_new_alert(backend)
    response = rita.post(
        f"/alerts/{item.alert_id}/note", data={"note": "from the UI", "csrf_token": csrf_of(rita)}
    )
    assert response.status_code == 200  # followed to the item page
    rows = backend.sql(
        "SELECT origin FROM review_audit WHERE alert_id = :item AND action = 'note'",
        item=item.alert_id,
    )
    assert rows == [("web testclient",)]
