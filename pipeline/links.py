"""Links to a page named by a partner-controlled id: the id is always one path segment, and an
id too long for a link is named by its digest."""

from __future__ import annotations

import hashlib
from urllib.parse import quote, urlencode

# Browsers resolve a segment "." or ".." (even written %2E) before sending the request, so a
# partner with such an id is linked by query instead: /partners/.. would open the site root.
DOT_SEGMENTS = (".", "..")
# Ids come from partners' data, where no length is set, and every link of a page may repeat one
# (clients refuse URLs over 64 KB, uvicorn lines over 16 KB): an id longer than this is linked
# by its digest (a fixed 64 characters), which the review store filters by exactly.
MAX_LINKED_ID = 4_000


def segment(value: str) -> str:
    """`value` as one path segment: `/`, `?`, `#`, `%` and the rest percent-encoded."""
    return quote(value, safe="")


def digest(value: str) -> str:
    """The stand-in for an id in a link: the SHA-256 hex of its UTF-8 text (as the store
    computes it in SQL)."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def linked_by_digest(value: str) -> bool:
    return len(value) > MAX_LINKED_ID


def partner_path(partner_id: str) -> str:
    """The partner page's path below the app's base, e.g. `/partners/p%2Fq`."""
    if linked_by_digest(partner_id):
        return f"/partners?{urlencode({'digest': digest(partner_id)})}"
    if partner_id in DOT_SEGMENTS:
        return f"/partners?{urlencode({'id': partner_id})}"
    return f"/partners/{segment(partner_id)}"


def alert_path(alert_id: str) -> str:
    """An alert's page below the app's base, e.g. `/alerts/<id>` (the id as one segment)."""
    return f"/alerts/{segment(alert_id)}"
