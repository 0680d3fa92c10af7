"""CSRF defence for every POST: a per-session synchronizer token plus a same-origin check."""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from fastapi import HTTPException
from starlette.requests import Request

SESSION_KEY = "csrf"
FORM_FIELD = "csrf_token"


def csrf_token(request: Request) -> str:
    """The session's token, made on first use; every form carries it."""
    token = request.session.get(SESSION_KEY)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session[SESSION_KEY] = token
    return token


def renew_csrf_token(request: Request) -> None:
    """A fresh token (at login and logout), so a token seen before login is worthless after."""
    request.session[SESSION_KEY] = secrets.token_urlsafe(32)


def _same_origin(request: Request) -> bool:
    """A browser names the page that sent a form (Origin, else Referer); it must be this host."""
    sender = request.headers.get("origin") or request.headers.get("referer")
    if sender is None:
        return True  # not a browser: the synchronizer token alone decides
    if sender == "null":
        return False
    return urlsplit(sender).netloc.lower() == request.headers.get("host", "").lower()


async def require_csrf(request: Request) -> None:
    """Refuse (403) a POST from another origin or without the session's token."""
    if not _same_origin(request):
        raise HTTPException(403, "cross-origin form post refused")
    expected = request.session.get(SESSION_KEY)
    sent = (await request.form()).get(FORM_FIELD)
    if (
        not isinstance(expected, str)
        or not isinstance(sent, str)
        or not hmac.compare_digest(expected.encode(), sent.encode())
    ):
        raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")
