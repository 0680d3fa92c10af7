"""The review UI's FastAPI app: one factory for the standalone server and the Airflow plugin."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp

from pipeline.config import Settings
from pipeline.review.store import ReviewStore
from pipeline.review.web import actions, export, login, pages
from pipeline.review.web.auth import SESSION_LIFETIME_SECONDS, Authenticator, StandaloneAuth
from pipeline.review.web.deps import LoginRequired, render
from pipeline.review.web.facets import FacetCache
from pipeline.review.web.headers import SecurityHeadersMiddleware
from pipeline.review.web.params import BadInput

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
SESSION_COOKIE = "access_audit_session"


def _wants_html(request: Request) -> bool:
    return request.method in ("GET", "HEAD") and "text/csv" not in request.headers.get("accept", "")


def _error_page(request: Request, status: int, message: str) -> Response:
    if "session" not in request.scope:  # failed before the session existed: plain text
        return PlainTextResponse(message, status_code=status)
    return render(request, "error.html", {"status": status, "message": message}, status)


def _install_error_pages(app: FastAPI) -> None:
    """Every refusal is a short page with the reason; none is a traceback."""

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, _exc: LoginRequired) -> Response:
        auth: Authenticator = request.app.state.auth
        if _wants_html(request):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(auth.login_url(request, target), status_code=303)
        return PlainTextResponse("log in first", status_code=401)

    @app.exception_handler(BadInput)
    async def bad_input(request: Request, exc: BadInput) -> Response:
        return _error_page(request, 400, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "request"
        return _error_page(request, 422, f"{where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return _error_page(request, exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("%s %s failed", request.method, request.url.path)
        return PlainTextResponse("internal error (logged)", status_code=500)


class ReviewApp(FastAPI):
    """FastAPI with the security headers outermost: they also reach the 500 page, which
    Starlette's error middleware sends from outside every added middleware."""

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeadersMiddleware(super().build_middleware_stack(), self.state.framed)


def create_app(
    settings: Settings,
    store: ReviewStore | None = None,
    auth: Authenticator | None = None,
    *,
    framed: bool = False,
    session_secret: str | None = None,
) -> FastAPI:
    """The review UI. `store` defaults to settings.review_db, `auth` to the standalone logins of
    settings.review_users; `framed` allows Airflow's UI (same origin) to show it in a frame."""
    # No API description: /openapi.json, /docs and /redoc would be served without a login.
    app = ReviewApp(
        title="Partner access audit: review", openapi_url=None, docs_url=None, redoc_url=None
    )
    app.state.framed = framed
    app.state.settings = settings
    app.state.store = store if store is not None else ReviewStore.open(settings.review_db)
    app.state.auth = auth if auth is not None else StandaloneAuth(settings.review_users)
    app.state.facets = FacetCache()
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["label"] = lambda value: str(value).replace("_", " ")
    app.state.templates = templates
    secret = session_secret or settings.review_session_secret or secrets.token_urlsafe(32)
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret,
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_LIFETIME_SECONDS,
        same_site="lax",
        https_only=settings.review_url.startswith("https://"),
    )
    _install_error_pages(app)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    for module in (login, pages, actions, export):
        app.include_router(module.router)
    return app


def serve(settings: Settings, host: str, port: int, **uvicorn_options: Any) -> None:
    """Run the standalone UI with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(create_app(settings), host=host, port=port, **uvicorn_options)
