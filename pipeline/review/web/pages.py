"""The read-only pages: queue, alert, series, partners, audit trail, suppressions."""

from __future__ import annotations

import logging
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from pipeline import links
from pipeline.errors import UnknownItem
from pipeline.review.store import (
    SORTS,
    STATUSES,
    TRANSITIONS,
    Alert,
    AlertFilter,
    ReviewStore,
    Series,
)
from pipeline.review.web import params
from pipeline.review.web.auth import Principal
from pipeline.review.web.charts import hour_chart, rule_counts_chart, timeline_chart
from pipeline.review.web.deps import base_path, current_principal, render, store_of
from pipeline.review.web.facets import cached_facets
from pipeline.schema import ACTIONS, SEVERITIES

log = logging.getLogger(__name__)
router = APIRouter()
LoggedIn = Annotated[Principal, Depends(current_principal)]

SORT_LABELS = {
    "-day": "newest day",
    "day": "oldest day",
    "-severity": "most severe",
    "severity": "least severe",
    "-flags": "most flags",
    "flags": "fewest flags",
    "-users": "most users",
    "partner_id": "partner",
    "-score": "highest score",
}
WAREHOUSE_ERRORS = (OSError, ValueError, RuntimeError, KeyError)
# Statuses some alert can move to ("new" is never one): the bulk action offers only these.
BULK_STATUSES = tuple(s for s in STATUSES if any(s in nexts for nexts in TRANSITIONS.values()))
TOP_USERS = 20
NO_FLAGS = {
    "behaviour": "A behaviour alert has no flags of its own.",
    "coverage": "A coverage alert has no flags: it counts the accesses the audit could not "
    "judge, which no rule could flag.",
}
MAX_TIMELINE_ACCESSES = 2000  # the user's flagged accesses marked on the timeline


@router.get("/", include_in_schema=False)
def home(request: Request, _user: LoggedIn) -> Response:
    return RedirectResponse(f"{base_path(request)}/queue", status_code=303)


@router.get("/queue", response_class=HTMLResponse)
def queue(request: Request, _user: LoggedIn) -> Response:
    """The review queue: one row per series (or lone alert), filters, sorting, paging, bulk."""
    query = params.queue_query(request.query_params)
    store = store_of(request)
    page = store.queue(query.filt, sort=query.sort, page=query.page, per_page=query.per_page)
    last_page = max(1, -(-page.total // query.per_page))
    return render(
        request,
        "queue.html",
        {
            "query": query,
            "page": page,
            "last_page": min(last_page, params.MAX_PAGE),
            "facets": cached_facets(request),
            "by_digest": _named_by_digest(store, query.filt),
            "rules": params.ALERT_RULES,
            "severities": SEVERITIES,
            "statuses": STATUSES,
            "bulk_statuses": BULK_STATUSES,
            "kinds": params.KINDS,
            "sorts": [(s, SORT_LABELS.get(s, s)) for s in SORTS],
            "per_page_choices": params.PER_PAGE_CHOICES,
        },
    )


def _named_by_digest(store: ReviewStore, filt: AlertFilter) -> dict[str, tuple[str | None, str]]:
    """The filter's ids too long for its box, by field: (the id, None if no alert has it; its
    digest). The box shows the id cut short and submits the digest."""
    named: dict[str, tuple[str | None, str]] = {}
    for name, value, wanted in (
        ("partner", filt.partner_id, filt.partner_digest),
        ("app", filt.app_id, filt.app_digest),
    ):
        if value is not None and links.linked_by_digest(value):
            named[name] = (value, links.digest(value))
        elif value is None and wanted is not None:
            named[name] = (_id_of_digest(store, name, wanted), wanted)
    return named


def _id_of_digest(store: ReviewStore, name: str, wanted: str) -> str | None:
    """The partner or app id a digest names, from one alert that has it (None if none does)."""
    filt = AlertFilter(include_suppressed=True, **{f"{name}_digest": wanted})  # type: ignore[arg-type]
    found = store.alerts(filt, per_page=1).alerts
    return getattr(found[0], f"{name}_id") if found else None


def alert_or_404(request: Request, alert_id: str) -> Alert:
    checked = params.alert_id(alert_id)
    if checked is None:
        raise HTTPException(404, "no such alert")
    try:
        return store_of(request).alert(checked)
    except UnknownItem:
        raise HTTPException(404, "no such alert") from None


def series_or_404(request: Request, series_id: str) -> Series:
    checked = params.alert_id(series_id)
    if checked is None:
        raise HTTPException(404, "no such series")
    try:
        return store_of(request).series(checked)
    except UnknownItem:
        raise HTTPException(404, "no such series") from None


def _flags(request: Request, alert: Alert, query: params.FlagQuery) -> dict[str, Any]:
    """The alert's flags page, count and top users from the warehouse, or why there are none
    (never an error page: the reason, which names paths, goes to the log)."""
    if alert.kind != "rule":
        return {"flags_note": NO_FLAGS.get(alert.kind, NO_FLAGS["behaviour"]), "flags": None}
    from pipeline.detect.alert_flags import alert_flag_count, alert_flags, alert_users

    warehouse = warehouse_of(request)
    filters = {"user": query.user, "request_id": query.request_id, "action": query.action}
    try:
        total = alert_flag_count(warehouse, alert.day, alert.alert_id, **filters)
        page = alert_flags(
            warehouse,
            alert.day,
            alert.alert_id,
            **filters,
            offset=query.offset,
            limit=params.FLAGS_PER_PAGE,
        )
        users = alert_users(
            warehouse, alert.day, alert.alert_id, search=query.users_search, limit=TOP_USERS
        )
    except WAREHOUSE_ERRORS:
        log.warning("flags of alert %s unavailable", alert.alert_id, exc_info=True)
        return {
            "flags_note": "Flags unavailable: the warehouse could not be read "
            "(see the server log).",
            "flags": None,
        }
    return {
        "flags": page.to_pylist(),
        "flags_total": total,
        "users": users.to_pylist(),
        "flags_note": None,
    }


def _timeline(
    request: Request, alert: Alert, user_id: str | None
) -> tuple[object | None, str | None]:
    """The chosen user's timeline with their flagged accesses of this alert, or why none."""
    if user_id is None:
        return None, None
    if not alert.app_id or alert.kind != "rule":
        return None, "No timeline: this alert is not about one app's flags."
    from pipeline.detect.alert_flags import alert_flags
    from pipeline.review.timeline import timeline_for

    settings = request.app.state.settings
    try:
        accesses = alert_flags(
            warehouse_of(request),
            alert.day,
            alert.alert_id,
            user=user_id,
            limit=MAX_TIMELINE_ACCESSES,
        )["event_time"].to_pylist()
        if not accesses:
            return None, f"User {user_id} has no flags in this alert."
        timeline = timeline_for(settings, alert.day, user_id, alert.app_id, accesses)
    except WAREHOUSE_ERRORS:
        log.warning("timeline of alert %s unavailable", alert.alert_id, exc_info=True)
        return None, "Timeline unavailable: the warehouse could not be read (see the server log)."
    return timeline_chart(timeline), None


@router.get("/alerts/{alert_id}", response_class=HTMLResponse)
def alert_page(request: Request, alert_id: str, _user: LoggedIn) -> Response:
    """One alert: explanation, evidence, counts, its users and flags, a user's timeline,
    decisions and its audit trail."""
    alert = alert_or_404(request, alert_id)
    query = params.flag_query(request.query_params)
    chart, chart_note = _timeline(request, alert, query.timeline_user)
    series = None
    if alert.series_id is not None:
        series = store_of(request).series(alert.series_id)
    return render(
        request,
        "alert.html",
        {
            "alert": alert,
            "series": series,
            "hours": hour_chart(alert.flags_by_hour) if alert.flags_by_hour else None,
            "fq": query,
            "actions": ACTIONS,
            "per_page": params.FLAGS_PER_PAGE,
            **_flags(request, alert, query),
            "chart": chart,
            "chart_note": chart_note,
            "next_statuses": TRANSITIONS.get(alert.status, ()),
            "trail": store_of(request).audit_trail(alert.alert_id),
            "back": _back_to_queue(request.query_params.get("back", "")),
        },
    )


@router.get("/series/{series_id}", response_class=HTMLResponse)
def series_page(request: Request, series_id: str, _user: LoggedIn) -> Response:
    """A series: its days, what they add up to, decisions for the whole series, its trail."""
    series = series_or_404(request, series_id)
    statuses = {a.status for a in series.alerts}
    # a status the whole series may move to: every day either is there or may go there
    nexts = [
        s
        for s in STATUSES
        if all(s == a.status or s in TRANSITIONS[a.status] for a in series.alerts)
        and statuses != {s}
    ]
    return render(
        request,
        "series.html",
        {
            "series": series,
            "next_statuses": nexts,
            "trail": store_of(request).audit_trail(series_id=series.series_id, limit=500),
            "days": {a.alert_id: a.day for a in series.alerts},
            "back": _back_to_queue(request.query_params.get("back", "")),
        },
    )


def _back_to_queue(back: str) -> str:
    """The queue view the page was opened from, re-validated; '' (the plain queue) if invalid."""
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
    except WAREHOUSE_ERRORS as exc:
        log.warning("registry unavailable for partner names: %s", exc)
        return {}
    ids, names = registry["partner_id"].to_pylist(), registry["partner_name"].to_pylist()
    return dict(zip(ids, names, strict=True))


@router.get("/partners", response_class=HTMLResponse)
def partners(request: Request, _user: LoggedIn) -> Response:
    """Every partner with its open and total alerts, most open first; with `?id=`, one
    partner's page (how ids a browser would rewrite as a path, `.` and `..`, are linked), or
    with `?digest=` (how an id too long for a link is: pipeline.links.partner_path)."""
    if "digest" in request.query_params:
        wanted = params.id_digest("digest", request.query_params["digest"])
        partner = _id_of_digest(store_of(request), "partner", wanted) if wanted else None
        if partner is None:
            raise HTTPException(404, "no such partner")
        return _partner_page(request, partner)
    if "id" in request.query_params:
        return _partner_page(request, request.query_params["id"])
    rows = sorted(store_of(request).partners(), key=lambda r: (-r[1], -r[2], r[0]))
    return render(request, "partners.html", {"partners": rows, "names": _partner_names(request)})


@router.get("/partners/{partner_id:path}", response_class=HTMLResponse)
def partner_page(request: Request, partner_id: str, _user: LoggedIn) -> Response:
    """Flags by rule over time and the partner's open alerts. The id is the rest of the path
    (it may hold `/`, sent encoded as %2F: links.partner_path)."""
    return _partner_page(request, partner_id)


def _partner_page(request: Request, partner_id: str) -> Response:
    partner = params.identifier("partner", partner_id)
    start = params.day("start", request.query_params.get("start"))
    end = params.day("end", request.query_params.get("end"))
    if start and end and end < start:
        raise params.BadInput(f"end: {end} is before start {start}")
    store = store_of(request)
    known = {row[0]: row for row in store.partners()}
    names = _partner_names(request)
    # a registry partner without alerts has a page too: the report links it for its coverage
    if partner is None or (partner not in known and partner not in names):
        raise HTTPException(404, "no such partner")
    _id, open_count, total_count = known.get(partner, (partner, 0, 0))
    counts = store.partner_counts(partner, start, end)
    # Counted as the queue counts (suppressed alerts left out), so each figure matches the queue
    # view it links to; a partner has a handful of rules, one cheap count each.
    by_rule = []
    for rule in sorted({rule for _day, rule, _n in counts}):
        filt = AlertFilter(partner_id=partner, rule=rule, start=start, end=end)
        shown = params.QueueQuery(filt).filter_query()
        by_rule.append((rule, store.alerts(filt, per_page=1).total, shown))
    open_alerts = store.alerts(
        AlertFilter(partner_id=partner, status="new", start=start, end=end),
        sort="-severity",
        per_page=20,
    )
    return render(
        request,
        "partner.html",
        {
            "partner_id": partner,
            "partner_digest": links.digest(partner) if links.linked_by_digest(partner) else None,
            "partner_name": names.get(partner, ""),
            "open_count": open_count,
            "total_count": total_count,
            "chart": rule_counts_chart(counts),
            "by_rule": sorted(by_rule, key=lambda row: -row[1]),
            "all_alerts_query": params.QueueQuery(
                AlertFilter(partner_id=partner, start=start, end=end)
            ).filter_query(),
            "open_alerts": open_alerts,
            "start": start,
            "end": end,
            **_coverage_of(request, partner, start, end),
        },
    )


def _coverage_of(
    request: Request, partner: str, start: date | None, end: date | None
) -> dict[str, Any]:
    """The partner's coverage and measures section (templates/_coverage.html)."""
    from pipeline.review.web.partner_coverage import coverage_context

    settings = request.app.state.settings
    return coverage_context(
        warehouse_of(request), settings, partner, start, end, base_path(request)
    )


@router.get("/audit", response_class=HTMLResponse)
def audit(request: Request, _user: LoggedIn) -> Response:
    """The newest entries of the audit trail, every alert."""
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
            "rules": params.ALERT_RULES,
            "facets": cached_facets(request),
        },
    )


def warehouse_of(request: Request) -> Any:
    """The app's warehouse, opened with its settings (an S3 endpoint comes from them)."""
    from pipeline.warehouse import Warehouse

    settings = request.app.state.settings
    return Warehouse(settings.warehouse, settings)
