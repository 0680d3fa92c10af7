"""Validation of everything a request carries: queue filters, flag filters, form fields, ids.

Bad input raises BadInput (a 400 page naming the field); nothing unchecked reaches the store.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from urllib.parse import parse_qsl, urlencode

from pipeline.detect.coverage_alerts import COVERAGE_RULE
from pipeline.links import MAX_LINKED_ID, digest, linked_by_digest
from pipeline.review.store import DIGEST, KINDS, SORTS, STATUSES, AlertFilter
from pipeline.schema import ACTIONS, RULES, SEVERITIES

BEHAVIOUR_KINDS = ("partner_day", "app_user_day")  # a behaviour alert's rule: its entity kind
ALERT_RULES = (*RULES, *BEHAVIOUR_KINDS, COVERAGE_RULE)
MAX_PAGE = 100_000
PER_PAGE_CHOICES = (25, 50, 100, 200)
DEFAULT_PER_PAGE = 50
MAX_TEXT = 200  # a name typed here (assignee, user, request id) is at most this long
# Ids (partner, app, user, request) come from partners' data, where no length is set. A form (a
# suppression) takes one this long. A link repeats it (every link of its page): the queue and
# the partner page name a partner or app longer than MAX_LINKED_ID (pipeline.links) by its
# digest (`partner_digest=`, `app_digest=`, `/partners?digest=`); the alert page's user and
# request filters (read from the warehouse) refuse one, and pages show it unlinked. Control
# characters never occur in stored ids: ingest and the registry refuse them.
MAX_ID = 1_000_000
TOO_LONG_FOR_A_LINK = "too long for a link (the command line takes it: access-audit review list)"
MAX_NOTE = 4000
ALERT_ID = re.compile(r"^[0-9a-f]{32}$")  # alert and series ids: md5 hex
FLAGS_PER_PAGE = 50
MAX_FLAG_OFFSET = 10_000_000
# Printable text only: no control characters (PostgreSQL refuses NUL; logs and CSV hate the rest).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_EXCEPT_NEWLINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class BadInput(ValueError):
    """A request value is unusable; the message names the field."""


def text(name: str, value: str | None, *, limit: int = MAX_TEXT, lines: bool = False) -> str | None:
    """A short single-line value (or, with `lines`, free text of several), None when empty."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if len(value) > limit:
        raise BadInput(f"{name}: longer than {limit:,} characters")
    if (_CONTROL_EXCEPT_NEWLINES if lines else _CONTROL).search(value):
        raise BadInput(f"{name}: control characters are not allowed")
    return value


def identifier(name: str, value: str | None, *, linked: bool = False) -> str | None:
    """A partner, app, user or request id (as long as MAX_ID, or MAX_LINKED_ID in a link), None
    when empty."""
    if linked and value is not None and len(value.strip()) > MAX_LINKED_ID:
        raise BadInput(f"{name}: longer than {MAX_LINKED_ID:,} characters, {TOO_LONG_FOR_A_LINK}")
    return text(name, value, limit=MAX_ID)


def id_digest(name: str, value: str | None) -> str | None:
    """The digest naming an id too long for a link (pipeline.links.digest), None when empty."""
    if value is None or value == "":
        return None
    if not DIGEST.fullmatch(value):
        raise BadInput(f"{name}: not the SHA-256 hex digest of an id")
    return value


def linked_id(name: str, value: str | None, by_digest: str | None) -> dict[str, str | None]:
    """An id's query parameter: its text, or (too long for a link) `<name>_digest`."""
    if value is not None and linked_by_digest(value):
        return {name: None, f"{name}_digest": digest(value)}
    return {name: value, f"{name}_digest": by_digest}


def id_query(name: str, value: str) -> str:
    """The query string of a queue filter by one partner or app id, whatever its length."""
    return urlencode({k: v for k, v in linked_id(name, value, None).items() if v is not None})


def note(name: str, value: str | None) -> str | None:
    """Free text of several lines (a reviewer's note), or None when empty."""
    return text(name, value, limit=MAX_NOTE, lines=True)


def choice(name: str, value: str | None, allowed: tuple[str, ...]) -> str | None:
    if value is None or value == "":
        return None
    if value not in allowed:
        raise BadInput(f"{name}: {value[:40]!r} is not one of {', '.join(allowed)}")
    return value


def day(name: str, value: str | None) -> date | None:
    if value is None or value == "":
        return None
    try:
        if len(value) != 10:
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise BadInput(f"{name}: {value[:40]!r} is not a date (YYYY-MM-DD)") from None


def integer(name: str, value: str | None, *, low: int, high: int, default: int) -> int:
    if value is None or value == "":
        return default
    if not re.fullmatch(r"[0-9]{1,9}", value):
        raise BadInput(f"{name}: {value[:40]!r} is not a whole number from {low} to {high}")
    number = int(value)
    if not low <= number <= high:
        raise BadInput(f"{name}: {number} is not between {low} and {high}")
    return number


def alert_id(value: str) -> str | None:
    """The id (of an alert or a series) if it has the shape of one (md5 hex), else None (the
    caller answers 404)."""
    return value if ALERT_ID.fullmatch(value) else None


@dataclass(frozen=True)
class FlagQuery:
    """The alert page's flag filters and page (the flags are read from the warehouse)."""

    user: str | None = None
    request_id: str | None = None
    action: str | None = None
    offset: int = 0
    users_search: str | None = None
    timeline_user: str | None = None

    def params(self, **changes: object) -> dict[str, str]:
        query = replace(self, **changes)  # type: ignore[arg-type]
        values = {
            "user": query.user,
            "request_id": query.request_id,
            "action": query.action,
            "offset": str(query.offset) if query.offset else None,
            "users_q": query.users_search,
            "timeline": query.timeline_user,
        }
        return {k: v for k, v in values.items() if v is not None}

    def url_query(self, **changes: object) -> str:
        return urlencode(self.params(**changes))

    def filter_query(self) -> str:
        """The flag filters alone: for the CSV export of the alert's flags."""
        return urlencode(
            {k: v for k, v in self.params().items() if k in ("user", "request_id", "action")}
        )


def flag_query(params: Mapping[str, str]) -> FlagQuery:
    """Parse /alerts/<id>'s query string; BadInput names the first bad field."""
    return FlagQuery(
        user=identifier("user", params.get("user"), linked=True),
        request_id=identifier("request_id", params.get("request_id"), linked=True),
        action=choice("action", params.get("action"), ACTIONS),
        offset=integer("offset", params.get("offset"), low=0, high=MAX_FLAG_OFFSET, default=0),
        users_search=identifier("users_q", params.get("users_q"), linked=True),
        timeline_user=identifier("timeline", params.get("timeline"), linked=True),
    )


@dataclass(frozen=True)
class QueueQuery:
    """The queue's filter, sort and page, as parsed from (and written back to) a query string."""

    filt: AlertFilter
    sort: str = "-day"
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE

    def params(self, **changes: object) -> dict[str, str]:
        """The query parameters of this view (with `changes`), empty values left out."""
        query = replace(self, **changes)  # type: ignore[arg-type]
        f = query.filt
        values = {
            "start": f.start.isoformat() if f.start else None,
            "end": f.end.isoformat() if f.end else None,
            **linked_id("partner", f.partner_id, f.partner_digest),
            **linked_id("app", f.app_id, f.app_digest),
            "rule": f.rule,
            "severity": f.severity,
            "status": f.status,
            "assignee": f.assignee,
            "kind": f.kind,
            "sort": query.sort if query.sort != "-day" else None,
            "page": str(query.page) if query.page != 1 else None,
            "per_page": str(query.per_page) if query.per_page != DEFAULT_PER_PAGE else None,
        }
        return {k: v for k, v in values.items() if v is not None}

    def url_query(self, **changes: object) -> str:
        return urlencode(self.params(**changes))

    def filter_query(self) -> str:
        """The filter alone (no sort or page): for the CSV export and bulk actions' return."""
        return urlencode(
            {k: v for k, v in self.params().items() if k not in ("page", "per_page", "sort")}
        )


def queue_query(params: Mapping[str, str]) -> QueueQuery:
    """Parse /queue's query string; BadInput names the first bad field."""
    start, end = day("start", params.get("start")), day("end", params.get("end"))
    if start and end and end < start:
        raise BadInput(f"end: {end} is before start {start}")
    filt = AlertFilter(
        start=start,
        end=end,
        partner_id=identifier("partner", params.get("partner")),
        app_id=identifier("app", params.get("app")),
        partner_digest=id_digest("partner_digest", params.get("partner_digest")),
        app_digest=id_digest("app_digest", params.get("app_digest")),
        rule=choice("rule", params.get("rule"), ALERT_RULES),
        severity=choice("severity", params.get("severity"), SEVERITIES),
        status=choice("status", params.get("status"), STATUSES),
        assignee=text("assignee", params.get("assignee")),
        kind=choice("kind", params.get("kind"), KINDS),
    )
    per_page = integer(
        "per_page", params.get("per_page"), low=1, high=500, default=DEFAULT_PER_PAGE
    )
    return QueueQuery(
        filt=filt,
        sort=choice("sort", params.get("sort"), SORTS) or "-day",
        page=integer("page", params.get("page"), low=1, high=MAX_PAGE, default=1),
        per_page=per_page,
    )


def queue_return(query: str) -> str:
    """A queue view's query string, re-validated and rebuilt (never echoed); BadInput if bad."""
    return urlencode(queue_query(dict(parse_qsl(query[:4000]))).params())
