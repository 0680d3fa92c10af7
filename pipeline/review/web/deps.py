"""What every route needs: the logged-in principal, the store, and page rendering."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import HTTPException
from fastapi.templating import Jinja2Templates
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse

from pipeline.review.audit_chain import acting_from, record
from pipeline.review.sessions import engine_of
from pipeline.review.store import ReviewStore
from pipeline.review.web.auth import Authenticator, Principal
from pipeline.review.web.csrf import FORM_FIELD, csrf_token

FLASH_KEY = "flash"
SHORT_ID = 80  # characters of a partner-controlled id shown where a page lists many


class LoginRequired(Exception):
    """Nobody is logged in: a page request goes to the login page, anything else gets 401."""


def base_path(request: Request) -> str:
    """Where the app is mounted ('' standalone, '/access-audit' inside Airflow)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


async def current_principal(request: Request) -> Principal:
    """The logged-in principal; nothing is served to anyone else."""
    auth: Authenticator = request.app.state.auth
    principal = await auth.principal(request)
    if principal is None:
        raise LoginRequired
    request.state.principal = principal
    return principal


async def current_reviewer(request: Request) -> Principal:
    """The logged-in principal if they may change things (403 for viewers)."""
    principal = await current_principal(request)
    if not principal.can_change:
        raise HTTPException(403, f"{principal.name} is a viewer: only reviewers can change items")
    return principal


def store_of(request: HTTPConnection) -> ReviewStore:
    store: ReviewStore = request.app.state.store
    return store


def client_address(request: HTTPConnection) -> str | None:
    """The peer's address (a proxy's own unless the server is told to trust its headers)."""
    return request.client.host if request.client else None


def audit_text(value: str, limit: int = 500) -> str:
    """Text a visitor typed, fit for the audit trail: control characters (a NUL fails
    PostgreSQL) shown as escapes, and cut to `limit` characters."""
    cut = value[:limit]
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in cut)


def short_id(value: str, limit: int = SHORT_ID) -> str:
    """An id cut to `limit` characters for display (a list, a message), marked cut with `…`."""
    return value if len(value) <= limit else f"{value[: limit - 1]}…"


def web_origin(request: HTTPConnection) -> str:
    """Where a web request's audit rows say they came from."""
    return f"web {client_address(request) or 'unknown address'}"


def audit_event(
    request: HTTPConnection,
    action: str,
    actor: str,
    to_value: str | None = None,
    note: str | None = None,
) -> None:
    """Record a store-wide event of the UI (login, failure, logout, refusal, export) in the
    audit trail, from a worker thread (it writes to the database)."""
    store = store_of(request)
    entry = {
        "alert_id": None,
        "item_id": None,
        "actor": audit_text(actor, 200) or "(empty)",
        "at": datetime.now(UTC),
        "action": action,
        "from_value": None,
        "to_value": None if to_value is None else audit_text(to_value, 2000),
        "note": None if note is None else audit_text(note),
    }
    with acting_from(web_origin(request)):
        record(engine_of(store), [entry])


def flash(request: Request, message: str, level: str = "info") -> None:
    """A one-time message shown on the next page (after a redirect)."""
    request.session.setdefault(FLASH_KEY, [])
    request.session[FLASH_KEY] = [*request.session[FLASH_KEY], [level, message]][-5:]


def render(
    request: Request, template: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    """A page with the shared context: user, mount path, CSRF token, flashed messages."""
    templates: Jinja2Templates = request.app.state.templates
    principal = getattr(request.state, "principal", None)
    messages = request.session.pop(FLASH_KEY, []) if "session" in request.scope else []
    shared = {
        "user": principal,
        "base": base_path(request),
        "csrf_field": FORM_FIELD,
        "csrf_token": csrf_token(request) if "session" in request.scope else "",
        "messages": messages,
        "login_form": request.app.state.auth.login_form,
        "logout_url": request.app.state.auth.logout_url(request),
    }
    return templates.TemplateResponse(
        request, template, {**shared, **context}, status_code=status_code
    )
