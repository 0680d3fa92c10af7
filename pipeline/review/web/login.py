"""Standalone login and logout (inside Airflow, Airflow's own login is used instead)."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Form
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from pipeline.review.web import params
from pipeline.review.web.auth import SESSION_LOGIN_AT, SESSION_USER, StandaloneAuth
from pipeline.review.web.csrf import renew_csrf_token, require_csrf
from pipeline.review.web.deps import base_path, render

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
    principal = (
        auth.verify(username[:200], password[:1000]) if isinstance(auth, StandaloneAuth) else None
    )
    if principal is None:
        return render(
            request,
            "login.html",
            {"next": next_path, "error": "Wrong user name or password.", "username": username},
            status_code=401,
        )
    request.session.clear()  # no session fixation: nothing from before the login survives
    request.session[SESSION_USER] = principal.name
    request.session[SESSION_LOGIN_AT] = int(time.time())
    renew_csrf_token(request)
    return RedirectResponse(next_path, status_code=303)


@router.post("/logout", dependencies=[Depends(require_csrf)])
def logout(request: Request) -> Response:
    request.session.clear()
    renew_csrf_token(request)
    return RedirectResponse(request.app.state.auth.logout_url(request), status_code=303)
