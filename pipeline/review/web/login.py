"""Standalone login and logout (inside Airflow, Airflow's own login is used instead).

A login attempt is throttled per user name and per address (pipeline.review.login_throttle),
its password is checked in one of a few hashing slots, and it is recorded in the audit trail
(successes, failures and the start of each block)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from pipeline.review.login_throttle import LoginThrottle
from pipeline.review.sessions import SessionRecord, new_session_id
from pipeline.review.web import params
from pipeline.review.web.auth import LoginBusy, Principal, StandaloneAuth
from pipeline.review.web.csrf import require_csrf
from pipeline.review.web.deps import audit_event, base_path, client_address, render
from pipeline.review.web.session_middleware import session_state

router = APIRouter()


def safe_next(request: Request, target: str | None) -> str:
    """A path inside this app to go to after login; anything else (another host, //evil,
    a scheme) is replaced by the queue, so the login page is no open redirect."""
    base = base_path(request)
    if (
        target
        and target.startswith(f"{base}/")
        and not target.startswith("//")
        and "\\" not in target
        and params.text("next", target, limit=2000) == target
    ):
        return target
    return f"{base}/queue"


@router.get("/login")
async def login_page(request: Request) -> Response:
    auth = request.app.state.auth
    next_path = safe_next(request, request.query_params.get("next"))
    if not isinstance(auth, StandaloneAuth):
        return RedirectResponse(auth.login_url(request, next_path), status_code=303)
    if await auth.principal(request) is not None:
        return RedirectResponse(next_path, status_code=303)
    return render(request, "login.html", {"next": next_path, "error": None})


def _form_again(
    request: Request, next_path: str, username: str, error: str, status: int
) -> Response:
    return render(
        request,
        "login.html",
        {"next": next_path, "error": error, "username": username},
        status_code=status,
    )


def _check(
    request: Request, auth: StandaloneAuth, name: str, password: str
) -> tuple[Principal | None, int]:
    """(principal, 0) or (None, 0) for a wrong password, or (None, seconds) while blocked.
    The block is read inside the hashing slot: attempts racing each other wait for a slot and
    then see the failures counted before them."""
    throttle: LoginThrottle = request.app.state.throttle
    address = client_address(request)
    with auth.hashing_slot():
        wait = throttle.wait_seconds(name, address)
        if wait:
            return None, wait
        principal = auth.verify(name, password)
        if principal is None:
            blocked = throttle.failed(name, address)
            note = f"blocked for {blocked} s" if blocked else None
            audit_event(request, "login_failed", name, note=note)
        else:
            throttle.succeeded(name)
    return principal, 0


@router.post("/login", dependencies=[Depends(require_csrf)])
def login(
    request: Request,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    """Check the password against the user's argon2 hash; a new session on success."""
    auth = request.app.state.auth
    next_path = safe_next(request, next)
    name = username[:200]
    if not isinstance(auth, StandaloneAuth):
        return _form_again(request, next_path, username, "Log in through Airflow.", 401)
    try:
        principal, wait = _check(request, auth, name, password[:1000])
    except LoginBusy:
        return _form_again(request, next_path, username, "Too many logins at once: retry.", 503)
    if wait:
        response = _form_again(
            request,
            next_path,
            username,
            f"Too many failed logins: try again in {wait} seconds.",
            429,
        )
        response.headers["retry-after"] = str(wait)
        return response
    if principal is None:
        return _form_again(request, next_path, username, "Wrong user name or password.", 401)
    _start_session(request, auth, principal)
    audit_event(request, "login", principal.name)
    return RedirectResponse(next_path, status_code=303)


def _start_session(request: Request, auth: StandaloneAuth, principal: Principal) -> None:
    """A new session under a new id: nothing from before the login survives (no fixation)."""
    state = session_state(request)
    tag = auth.password_tag_of(principal.name)
    state.id = auth.sessions.start(principal.name, tag, client_address(request))
    now = auth.sessions.now()
    state.record = SessionRecord(principal.name, tag, now, now, {})
    state.saved_data = {}
    state.set_cookie = True
    request.session.clear()


@router.post("/logout", dependencies=[Depends(require_csrf)])
def logout(request: Request) -> Response:
    """End the session in the store (every copy of the cookie with it) and start afresh."""
    state = session_state(request)
    auth = request.app.state.auth
    ended = (
        state.record is not None
        and isinstance(auth, StandaloneAuth)
        and auth.sessions.end(state.id, "logout")
    )
    if ended and state.record is not None and state.record.user_name:
        audit_event(request, "logout", state.record.user_name)
    state.id, state.record, state.saved_data, state.set_cookie = new_session_id(), None, {}, True
    request.session.clear()
    return RedirectResponse(request.app.state.auth.logout_url(request), status_code=303)
