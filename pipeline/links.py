"""Links to a page named by a partner-controlled id: the id is always one path segment."""

from __future__ import annotations

from urllib.parse import quote, urlencode

# Browsers resolve a segment "." or ".." (even written %2E) before sending the request, so a
# partner with such an id is linked by query instead: /partners/.. would open the site root.
DOT_SEGMENTS = (".", "..")


def segment(value: str) -> str:
    """`value` as one path segment: `/`, `?`, `#`, `%` and the rest percent-encoded."""
    return quote(value, safe="")


def partner_path(partner_id: str) -> str:
    """The partner page's path below the app's base, e.g. `/partners/p%2Fq`."""
    if partner_id in DOT_SEGMENTS:
        return f"/partners?{urlencode({'id': partner_id})}"
    return f"/partners/{segment(partner_id)}"
