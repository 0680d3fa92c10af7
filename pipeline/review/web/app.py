"""The review UI's FastAPI app: one factory for the standalone server and the Airflow plugin."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
from fastapi import Depends, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from pipeline import links
from pipeline.config import Settings
from pipeline.errors import ConfigError
from pipeline.review.audit_chain import acting_from
from pipeline.review.login_throttle import LoginThrottle
from pipeline.review.secret_strength import secret_problem
from pipeline.review.sessions import SessionStore, engine_of
from pipeline.review.store import ReviewStore
from pipeline.review.web import actions, export, login, pages, params
from pipeline.review.web.auth import Authenticator, Principal, StandaloneAuth
from pipeline.review.web.deps import (
    LoginRequired,
    audit_event,
    client_address,
    current_principal,
    render,
    short_id,
    web_origin,
)
from pipeline.review.web.facets import FacetCache
from pipeline.review.web.headers import SecurityHeadersMiddleware
from pipeline.review.web.params import BadInput
from pipeline.review.web.session_middleware import COOKIE, ServerSessionMiddleware
from pipeline.text_safety import BIDI_CONTROLS, visible_bidi

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
SESSION_COOKIE = COOKIE
RECORDED_REFUSALS = (403, 409)


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
        if exc.status_code in RECORDED_REFUSALS:
            await _record_refusal(request, exc.status_code, str(exc.detail))
        return _error_page(request, exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("%s %s failed", request.method, request.url.path)
        return PlainTextResponse("internal error (logged)", status_code=500)


async def _record_refusal(request: Request, status: int, reason: str) -> None:
    """A refusal of a logged-in user goes to the audit trail; one of an anonymous visitor only
    to the log (anyone could otherwise grow the append-only trail without end)."""
    principal: Principal | None = getattr(request.state, "principal", None)
    what = f"{status} {request.method} {request.url.path}"
    if principal is None:
        log.warning("refused %s from %s: %s", what, client_address(request), reason)
        return
    await anyio.to_thread.run_sync(
        lambda: audit_event(request, "refused", principal.name, to_value=what, note=reason)
    )


def record_export(
    request: Request, principal: Annotated[Principal, Depends(current_principal)]
) -> None:
    """Every CSV export is recorded with its filter, before the first row is sent."""
    audit_event(request, "export", principal.name, to_value=request.url.query or "(all)")


class AuditOriginMiddleware:
    """Audit rows written while a request is served say which address it came from."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with acting_from(web_origin(HTTPConnection(scope))):
            await self.app(scope, receive, send)


def session_key(configured: str) -> str:
    """The secret keying CSRF tokens: the configured one if strong enough (ConfigError with a
    one-line reason if not), else a random one for this process."""
    if not configured:
        log.warning("review_session_secret is unset: open forms stop working at each restart")
        return secrets.token_urlsafe(32)
    problem = secret_problem(configured)
    if problem is not None:
        raise ConfigError(problem)
    return configured


class ReviewApp(FastAPI):
    """FastAPI with the security headers outermost: they also reach the 500 page, which
    Starlette's error middleware sends from outside every added middleware."""

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeadersMiddleware(super().build_middleware_stack(), self.state.framed)


def _shown(value: Any) -> Any:
    """Text shown in a page: direction overrides shown, not obeyed (markup passes as is)."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return visible_bidi(value)
    return value


_BIDI_REFERENCES = {ord(c): f"&#x{ord(c):04X};" for c in BIDI_CONTROLS}


def _exact(value: Any) -> Markup:
    """A form value kept exactly (so it submits what it holds), escaped, and its direction
    controls written as character references: the page's text holds none raw."""
    return Markup(str(escape(value)).translate(_BIDI_REFERENCES))


def _long_id(value: str) -> str:
    """An id where a page names one: whole, or (too long for a link) cut short with its
    length."""
    if not links.linked_by_digest(value):
        return value
    return f"{short_id(value)} ({len(value):,} characters)"


def _template_helpers(templates: Jinja2Templates) -> None:
    """Filters for partner-controlled text: shown inert, linked as one path segment, cut short
    for display (`exact` keeps a form value as it is, escaped but not rewritten)."""
    env = templates.env
    env.finalize = _shown
    env.filters["label"] = lambda value: str(value).replace("_", " ")
    env.filters["segment"] = links.segment
    env.filters["exact"] = _exact
    env.filters["short"] = short_id
    env.filters["long_id"] = _long_id
    env.globals["partner_path"] = links.partner_path
    env.globals["id_query"] = params.id_query  # a queue filter by a partner or app id
    env.globals["linkable"] = lambda value: len(value) <= params.MAX_LINKED_ID


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
    secret = session_key(session_secret or settings.review_session_secret)
    app.state.csrf_key = secret.encode()
    app.state.store = store if store is not None else ReviewStore.open(settings.review_db)
    sessions = SessionStore(engine_of(app.state.store))
    app.state.sessions = sessions
    app.state.throttle = LoginThrottle(engine_of(app.state.store))
    app.state.auth = auth if auth is not None else StandaloneAuth(settings.review_users, sessions)
    app.state.facets = FacetCache()
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    _template_helpers(templates)
    app.state.templates = templates
    app.add_middleware(
        ServerSessionMiddleware,
        sessions=sessions,
        https_only=settings.review_url.startswith("https://"),
    )
    app.add_middleware(AuditOriginMiddleware)
    _install_error_pages(app)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    for module in (login, pages, actions):
        app.include_router(module.router)
    app.include_router(export.router, dependencies=[Depends(record_export)])
    return app


def serve(settings: Settings, host: str, port: int, **uvicorn_options: Any) -> None:
    """Run the standalone UI with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(create_app(settings), host=host, port=port, **uvicorn_options)
