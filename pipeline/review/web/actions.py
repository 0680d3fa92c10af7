"""The state-changing requests: reviewers only, each a CSRF-checked form POST that redirects."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse

from pipeline.review.store import (
    STATUSES,
    InvalidTransition,
    StaleItem,
    UnknownItem,
)
from pipeline.review.web import params
from pipeline.review.web.auth import Principal
from pipeline.review.web.csrf import require_csrf
from pipeline.review.web.deps import base_path, current_reviewer, flash, short_id, store_of

MAX_BULK = 500  # a queue page holds at most this many rows
MAX_VERSION = 999_999_999  # forms carry versions of at most nine digits (a series': a sum)
# a queue checkbox: a:<alert_id>:<version> or s:<series_id>:<series version>
TICKED = re.compile(r"([as]):([0-9a-f]{32}):([0-9]{1,9})")


async def reviewer_with_csrf(request: Request) -> Principal:
    """Logged in, a reviewer, and a genuine form of this app (in that order)."""
    principal = await current_reviewer(request)
    await require_csrf(request)
    return principal


router = APIRouter()
Reviewer = Annotated[Principal, Depends(reviewer_with_csrf)]


@contextmanager
def _refusals(retry: str, what: str = "alert") -> Iterator[None]:
    """The store's refusals of a change as the answers the form gets."""
    try:
        yield
    except UnknownItem:
        raise HTTPException(404, f"no such {what}") from None
    except StaleItem:
        raise HTTPException(
            409, f"someone changed this {what} meanwhile: reload and {retry}"
        ) from None
    except InvalidTransition as exc:
        raise params.BadInput(f"status: {exc}") from None


def _changed(request: Request) -> None:
    request.app.state.facets.invalidate()


def _checked(value: str, what: str) -> str:
    checked = params.alert_id(value)
    if checked is None:
        raise HTTPException(404, f"no such {what}")
    return checked


def _page_of(request: Request, kind: str, target: str) -> RedirectResponse:
    return RedirectResponse(f"{base_path(request)}/{kind}/{target}", status_code=303)


def _status_of(status: str) -> str:
    new_status = params.choice("status", status, STATUSES)
    if new_status is None:
        raise params.BadInput("status: choose one")
    return new_status


@dataclass(frozen=True)
class _Item:
    """What a decision form is about: one alert, or every day of a series (same forms)."""

    kind: str  # "alerts" or "series": its page's path
    item_id: str

    @property
    def what(self) -> str:
        return "alert" if self.kind == "alerts" else "series"

    def targets(self, version: str | None = None) -> dict[str, Any]:
        """The store call's targets; with the form's `version`, the one the page showed."""
        one = [self.item_id]
        chosen: dict[str, Any] = (
            {"alert_ids": one} if self.kind == "alerts" else {"alert_ids": [], "series_ids": one}
        )
        if version is not None:
            expected = params.integer("version", version, low=0, high=MAX_VERSION, default=0)
            chosen["expected_version"] = (
                expected if self.kind == "alerts" else {self.item_id: expected}
            )
        return chosen


def _item(kind: str, value: str) -> _Item:
    item = _Item(kind, value)
    return _Item(kind, _checked(value, item.what))


def _decide(
    request: Request, item: _Item, user: Principal, status: str, version: str, note: str
) -> RedirectResponse:
    """Set the status of an alert or a whole series; refused if it changed since the page."""
    new_status = _status_of(status)
    targets = item.targets(version)
    with _refusals("decide again", item.what):
        changed = store_of(request).set_status(
            status=new_status, actor=user.name, note=params.note("note", note), **targets
        )
    _changed(request)
    label = new_status.replace("_", " ")
    if item.kind == "alerts":
        flash(request, f"Status set to {label}.")
    else:
        flash(request, f"{changed} day(s) of the series set to {label}.")
    return _page_of(request, item.kind, item.item_id)


def _assign(
    request: Request, item: _Item, user: Principal, version: str, assignee: str
) -> RedirectResponse:
    """Assign an alert or a whole series (empty: unassign); refused if it changed."""
    who = params.text("assignee", assignee)
    targets = item.targets(version)
    with _refusals("assign again", item.what):
        store_of(request).assign(assignee=who, actor=user.name, **targets)
    _changed(request)
    if item.kind == "series":
        flash(request, f"Series assigned to {who}." if who else "Series unassigned.")
    else:
        flash(request, f"Assigned to {who}." if who else "Unassigned.")
    return _page_of(request, item.kind, item.item_id)


def _add_note(request: Request, item: _Item, user: Principal, note: str) -> RedirectResponse:
    """Add a note to an alert's trail, or to that of every day of a series."""
    text = params.note("note", note)
    if text is None:
        raise params.BadInput("note: write something")
    with _refusals("write the note again", item.what):
        store_of(request).add_note(note=text, actor=user.name, **item.targets())
    flash(
        request,
        "Note added." if item.kind == "alerts" else "Note added to every day of the series.",
    )
    return _page_of(request, item.kind, item.item_id)


Status = Annotated[str, Form()]
Version = Annotated[str, Form()]


@router.post("/alerts/{alert_id}/status")
def set_status(
    request: Request,
    alert_id: str,
    user: Reviewer,
    status: Status,
    version: Version,
    note: Annotated[str, Form()] = "",
) -> RedirectResponse:
    """Decide one alert; refused if someone changed it since the page was loaded."""
    return _decide(request, _item("alerts", alert_id), user, status, version, note)


@router.post("/alerts/{alert_id}/assign")
def assign(
    request: Request,
    alert_id: str,
    user: Reviewer,
    version: Version,
    assignee: Annotated[str, Form()] = "",
) -> RedirectResponse:
    """Assign one alert to someone (empty: unassign); refused if it changed since the page."""
    return _assign(request, _item("alerts", alert_id), user, version, assignee)


@router.post("/alerts/{alert_id}/note")
def add_note(
    request: Request, alert_id: str, user: Reviewer, note: Annotated[str, Form()]
) -> RedirectResponse:
    """Add a note to one alert's audit trail."""
    return _add_note(request, _item("alerts", alert_id), user, note)


@router.post("/series/{series_id}/status")
def set_series_status(
    request: Request,
    series_id: str,
    user: Reviewer,
    status: Status,
    version: Version,
    note: Annotated[str, Form()] = "",
) -> RedirectResponse:
    """Decide every day of a series at once; refused if any day changed since the page."""
    return _decide(request, _item("series", series_id), user, status, version, note)


@router.post("/series/{series_id}/assign")
def assign_series(
    request: Request,
    series_id: str,
    user: Reviewer,
    version: Version,
    assignee: Annotated[str, Form()] = "",
) -> RedirectResponse:
    """Assign every day of a series (empty: unassign); refused if any day changed."""
    return _assign(request, _item("series", series_id), user, version, assignee)


@router.post("/series/{series_id}/note")
def add_series_note(
    request: Request, series_id: str, user: Reviewer, note: Annotated[str, Form()]
) -> RedirectResponse:
    """Add a note to the trail of every day of a series."""
    return _add_note(request, _item("series", series_id), user, note)


def _queue_return(request: Request, query: str) -> str:
    """Back to the queue view the form came from; its query is re-validated, never echoed."""
    return f"{base_path(request)}/queue?{params.queue_return(query)}"


def _ticked(values: list[str]) -> tuple[list[str], list[str], dict[str, int]]:
    """Alert ids, series ids and the version each showed, from checkbox values
    `a:<alert_id>:<version>` and `s:<series_id>:<version>`."""
    alerts: list[str] = []
    series: list[str] = []
    versions: dict[str, int] = {}
    for value in values:
        match = TICKED.fullmatch(value)
        if match is None:
            raise params.BadInput(f"alert_id: {value[:80]!r} is not a:<alert id>:<version>")
        kind, target, version = match.group(1), match.group(2), int(match.group(3))
        if versions.setdefault(target, version) != version:
            raise params.BadInput(f"alert_id: {target} is ticked with two versions")
        (series if kind == "s" else alerts).append(target)
    return sorted(set(alerts)), sorted(set(series)), versions


@router.post("/bulk")
def bulk(
    request: Request,
    user: Reviewer,
    action: Annotated[str, Form()],
    alert_id: Annotated[list[str] | None, Form()] = None,
    status: Annotated[str, Form()] = "",
    assignee: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    back: Annotated[str, Form()] = "",
) -> RedirectResponse:
    """Set the status of, assign, or note the alerts and series ticked on a queue page: all or
    none, and only if none changed since the page showed it."""
    target = _queue_return(request, back)
    values = alert_id or []
    if not values:
        flash(request, "Tick at least one alert or series first.", "error")
        return RedirectResponse(target, status_code=303)
    if len(values) > MAX_BULK:
        raise params.BadInput(f"alert_id: at most {MAX_BULK} at once")
    alerts, series, versions = _ticked(values)
    store = store_of(request)
    try:
        if action == "status":
            new_status = _status_of(status)
            # one store call, one transaction: every alert moves, or none does
            changed = store.set_status(
                alerts,
                new_status,
                actor=user.name,
                note=params.note("note", note),
                expected_version=versions,
                series_ids=series,
            )
            done = f"set to {new_status.replace('_', ' ')}"
        elif action == "assign":
            who = params.text("assignee", assignee)
            changed = store.assign(
                alerts, who, actor=user.name, expected_version=versions, series_ids=series
            )
            done = f"assigned to {who}" if who else "unassigned"
        elif action == "note":
            text = params.note("note", note)
            if text is None:
                raise params.BadInput("note: write something")
            changed = store.add_note(alerts, text, actor=user.name, series_ids=series)
            done = "noted"
        else:
            raise params.BadInput("action: must be status, assign or note")
    except UnknownItem as exc:
        raise HTTPException(404, f"{exc}: nothing was changed") from None
    except StaleItem as exc:
        raise HTTPException(409, f"{exc}: nothing was changed") from None
    except InvalidTransition as exc:
        flash(request, f"Nothing changed: {exc}", "error")
        return RedirectResponse(target, status_code=303)
    _changed(request)
    picked = ", ".join(
        part
        for part in (
            f"{len(alerts)} alert(s)" if alerts else "",
            f"{len(series)} series" if series else "",
        )
        if part
    )
    flash(request, f"{changed} alert(s) {done} (ticked: {picked}).")
    return RedirectResponse(target, status_code=303)


@router.post("/suppressions")
def add_suppression(
    request: Request,
    user: Reviewer,
    app_id: Annotated[str, Form()],
    rule: Annotated[str, Form()],
    until: Annotated[str, Form()],
    reason: Annotated[str, Form()],
) -> RedirectResponse:
    """Suppress a rule for an app until a day (e.g. a partner's known, agreed migration)."""
    app = params.identifier("app_id", app_id)
    chosen_rule = params.choice("rule", rule, params.ALERT_RULES)
    last_day = params.day("until", until)
    why = params.note("reason", reason)
    if app is None or chosen_rule is None or last_day is None or why is None:
        raise params.BadInput("app_id, rule, until and reason are all required")
    store_of(request).suppress(app, chosen_rule, last_day, why, actor=user.name)
    _changed(request)
    flash(request, f"{chosen_rule} suppressed for {short_id(app)} until {last_day}.")
    return RedirectResponse(f"{base_path(request)}/suppressions", status_code=303)
