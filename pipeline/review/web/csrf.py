"""CSRF defence for every POST: a synchronizer token keyed to the session plus a same-origin
check that a browser cannot skip (no Origin and no Referer is refused too)."""

from __future__ import annotations

import hashlib
import hmac
from base64 import urlsafe_b64encode
from urllib.parse import urlsplit

from fastapi import HTTPException
from starlette.requests import Request

from pipeline.review.web.session_middleware import session_state

FORM_FIELD = "csrf_token"


def csrf_token(request: Request) -> str:
    """The session's token: an HMAC of its id under the app's secret, so nothing is stored and
    every worker agrees; a new id (at login and logout) makes earlier tokens worthless."""
    key: bytes = request.app.state.csrf_key
    digest = hmac.new(key, b"csrf|" + session_state(request).id.encode(), hashlib.sha256)
    return urlsafe_b64encode(digest.digest()).decode().rstrip("=")


def _origin_of(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def expected_origin(request: Request) -> tuple[str, str]:
    """This app's origin as the browser sees it: the configured `review_url` when the request
    came to its host (behind a TLS proxy the request itself says http), else the request's own
    scheme and Host."""
    host = request.headers.get("host", "").lower()
    configured = _origin_of(request.app.state.settings.review_url)
    if configured[1] == host:
        return configured
    return request.url.scheme.lower(), host


def same_origin_refusal(request: Request) -> str | None:
    """Why a POST does not come from a page of this origin, or None if it does. Browsers send
    Origin (or at least Referer) with every form post; a request with neither is refused, as
    the README says. Where both are sent, both must name this origin."""
    senders = [request.headers.get(name) for name in ("origin", "referer")]
    named = [sender for sender in senders if sender is not None]
    if not named:
        return "form post without Origin or Referer refused"
    ours = expected_origin(request)
    # both are checked when both are sent: a browser makes them agree
    if any(sender == "null" or _origin_of(sender) != ours for sender in named):
        return "cross-origin form post refused"
    return None


async def require_csrf(request: Request) -> None:
    """Refuse (403) a POST from another origin or without the session's token."""
    refusal = same_origin_refusal(request)
    if refusal is not None:
        raise HTTPException(403, refusal)
    sent = (await request.form()).get(FORM_FIELD)
    if not isinstance(sent, str) or not hmac.compare_digest(
        csrf_token(request).encode(), sent.encode("utf-8", "replace")
    ):
        raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")
