"""Session cookies last no longer than sessions (their server-side end: test_sessions.py),
nothing describes the API to strangers, and error responses carry the same security headers as
pages."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from fastapi.testclient import TestClient

from pipeline.config import Settings
from pipeline.review.store import ReviewStore
from pipeline.review.web.app import create_app
from pipeline.review.web.auth import SESSION_LIFETIME_SECONDS


def test_the_session_cookie_lives_no_longer_than_the_session(
    app_client: Callable[..., TestClient],
) -> None:
    response = app_client().get("/login")
    assert f"max-age={SESSION_LIFETIME_SECONDS}" in response.headers["set-cookie"].lower()


def test_no_api_description_is_served(app_client: Callable[..., TestClient]) -> None:
    for client in (app_client(), app_client(logged_in_as="vic")):
        for path in ("/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect"):
            response = client.get(path, follow_redirects=False)
            assert response.status_code in (303, 404), path
            assert "openapi" not in response.text.lower(), path


def failing_app(settings: Settings, store: ReviewStore) -> FastAPI:
    """The real app with one extra route that fails unexpectedly."""
    app = create_app(settings, store)

    def broken() -> None:
        raise RuntimeError("/secret/path exploded")

    app.add_api_route("/broken", broken)
    return app


def test_error_responses_carry_the_security_headers(
    web_settings: Settings, store: ReviewStore, app_client: Callable[..., TestClient]
) -> None:
    client = TestClient(failing_app(web_settings, store), raise_server_exceptions=False)
    crashed = client.get("/broken")
    assert crashed.status_code == 500
    assert "/secret/path" not in crashed.text
    not_static = app_client().get("/no/static/here")
    assert not_static.status_code == 404
    for response in (crashed, not_static):
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-store"
    static = app_client().get("/static/style.css")
    assert static.status_code == 200 and "cache-control" not in static.headers
