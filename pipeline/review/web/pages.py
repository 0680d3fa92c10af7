"""The read-only pages: queue, item, partners, audit trail, suppressions."""

from __future__ import annotations

import logging
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from pipeline.errors import UnknownItem
from pipeline.review.store import SORTS, STATUSES, TRANSITIONS, Item, ItemFilter
from pipeline.review.web import params
from pipeline.review.web.auth import Principal
from pipeline.review.web.charts import rule_counts_chart, timeline_chart
from pipeline.review.web.deps import base_path, current_principal, render, store_of
from pipeline.review.web.facets import cached_facets
from pipeline.schema import SEVERITIES

log = logging.getLogger(__name__)
router = APIRouter()
LoggedIn = Annotated[Principal, Depends(current_principal)]

SORT_LABELS = {
    "-day": "newest day",
    "day": "oldest day",
    "-severity": "most severe",
    "severity": "least severe",
    "-event_time": "newest access",
    "event_time": "oldest access",
    "partner_id": "partner",
    "-score": "highest score",
}
TIMELINE_ERRORS = (OSError, ValueError, RuntimeError, KeyError)
# Statuses some item can move to ("new" is never one): the bulk action offers only these.
BULK_STATUSES = tuple(s for s in STATUSES if any(s in nexts for nexts in TRANSITIONS.values()))


@router.get("/", include_in_schema=False)
def home(request: Request, _user: LoggedIn) -> Response:
    return RedirectResponse(f"{base_path(request)}/queue", status_code=303)


@router.get("/queue", response_class=HTMLResponse)
def queue(request: Request, _user: LoggedIn) -> Response:
    """The review queue: filters, sorting, paging, bulk actions."""
    query = params.queue_query(request.query_params)
    store = store_of(request)
    page = store.items(query.filt, sort=query.sort, page=query.page, per_page=query.per_page)
    last_page = max(1, -(-page.total // query.per_page))
    return render(
        request,
        "queue.html",
        {
            "query": query,
            "page": page,
            "last_page": min(last_page, params.MAX_PAGE),
            "facets": cached_facets(request),
            "rules": params.ITEM_RULES,
            "severities": SEVERITIES,
            "statuses": STATUSES,
            "bulk_statuses": BULK_STATUSES,
            "kinds": params.KINDS,
            "sorts": [(s, SORT_LABELS.get(s, s)) for s in SORTS],
            "per_page_choices": params.PER_PAGE_CHOICES,
        },
    )


def _item_or_404(request: Request, item_id: str) -> Item:
    checked = params.item_id(item_id)
    if checked is None:
        raise HTTPException(404, "no such item")
    try:
        return store_of(request).item(checked)
    except UnknownItem:
        raise HTTPException(404, "no such item") from None


def _timeline(request: Request, item: Item) -> tuple[object | None, str | None]:
    """The item's timeline chart, or why there is none (never an error page)."""
    if not item.user_id or not item.app_id:
        return None, "No timeline: this item is not about one user and app."
    from pipeline.review.timeline import timeline_for

    try:
        timeline = timeline_for(
            request.app.state.settings, item.day, item.user_id, item.app_id, item.event_time
        )
    except TIMELINE_ERRORS:
        # The reason names warehouse paths: it goes to the log, not to the page.
        log.warning("timeline of item %s unavailable", item.item_id, exc_info=True)
        return None, "Timeline unavailable: the warehouse could not be read (see the server log)."
    return timeline_chart(timeline), None


@router.get("/items/{item_id}", response_class=HTMLResponse)
def item_page(request: Request, item_id: str, _user: LoggedIn) -> Response:
    """One item: explanation, evidence, timeline, decisions and its audit trail."""
    item = _item_or_404(request, item_id)
    chart, chart_note = _timeline(request, item)
    return render(
        request,
        "item.html",
        {
            "item": item,
            "chart": chart,
            "chart_note": chart_note,
            "next_statuses": TRANSITIONS.get(item.status, ()),
            "trail": store_of(request).audit_trail(item.item_id),
            "back": _back_to_queue(request.query_params.get("back", "")),
        },
    )


def _back_to_queue(back: str) -> str:
    """The queue view the item was opened from, re-validated; '' (the plain queue) if invalid."""
    try:
        return params.queue_return(back)
    except params.BadInput:
        return ""


def _partner_names(request: Request) -> dict[str, str]:
    """partner_id → name from the registry; empty if the registry cannot be read."""
    from pipeline.detect.registry import load_registry
    from pipeline.readers.landing import Landing

    try:
        registry, _ = load_registry(
            Landing(request.app.state.settings.landing, request.app.state.settings)
        )
    except TIMELINE_ERRORS as exc:
        log.warning("registry unavailable for partner names: %s", exc)
        return {}
    ids, names = registry["partner_id"].to_pylist(), registry["partner_name"].to_pylist()
    return dict(zip(ids, names, strict=True))


@router.get("/partners", response_class=HTMLResponse)
def partners(request: Request, _user: LoggedIn) -> Response:
    """Every partner with its open and total items, most open first."""
    rows = sorted(store_of(request).partners(), key=lambda r: (-r[1], -r[2], r[0]))
    return render(request, "partners.html", {"partners": rows, "names": _partner_names(request)})


@router.get("/partners/{partner_id}", response_class=HTMLResponse)
def partner_page(request: Request, partner_id: str, _user: LoggedIn) -> Response:
    """Counts by rule over time and the partner's open items."""
    partner = params.text("partner", partner_id)
    start = params.day("start", request.query_params.get("start"))
    end = params.day("end", request.query_params.get("end"))
    if start and end and end < start:
        raise params.BadInput(f"end: {end} is before start {start}")
    store = store_of(request)
    known = {row[0]: row for row in store.partners()}
    if partner is None or partner not in known:
        raise HTTPException(404, "no such partner")
    counts = store.partner_counts(partner, start, end)
    # Counted as the queue counts (suppressed items left out), so each figure matches the queue
    # view it links to; a partner has a handful of rules, one cheap count each.
    by_rule = []
    for rule in sorted({rule for _day, rule, _n in counts}):
        filt = ItemFilter(partner_id=partner, rule=rule, start=start, end=end)
        shown = params.QueueQuery(filt).filter_query()
        by_rule.append((rule, store.items(filt, per_page=1).total, shown))
    open_items = store.items(
        ItemFilter(partner_id=partner, status="new", start=start, end=end),
        sort="-severity",
        per_page=20,
    )
    return render(
        request,
        "partner.html",
        {
            "partner_id": partner,
            "partner_name": _partner_names(request).get(partner, ""),
            "open_count": known[partner][1],
            "total_count": known[partner][2],
            "chart": rule_counts_chart(counts),
            "by_rule": sorted(by_rule, key=lambda row: -row[1]),
            "all_items_query": params.QueueQuery(
                ItemFilter(partner_id=partner, start=start, end=end)
            ).filter_query(),
            "open_items": open_items,
            "start": start,
            "end": end,
        },
    )


@router.get("/audit", response_class=HTMLResponse)
def audit(request: Request, _user: LoggedIn) -> Response:
    """The newest entries of the audit trail, every item."""
    limit = params.integer(
        "limit", request.query_params.get("limit"), low=1, high=1000, default=200
    )
    return render(
        request, "audit.html", {"trail": store_of(request).audit_trail(None, limit=limit)}
    )


@router.get("/suppressions", response_class=HTMLResponse)
def suppressions(request: Request, _user: LoggedIn) -> Response:
    """Active and past suppressions (app + rule until a day) and the form to add one."""
    store = store_of(request)
    return render(
        request,
        "suppressions.html",
        {
            "suppressions": store.suppressions(),
            "active_ids": {s.id for s in store.suppressions(active_on=date.today())},
            "rules": params.ITEM_RULES,
            "facets": cached_facets(request),
        },
    )
