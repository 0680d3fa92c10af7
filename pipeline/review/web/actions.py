"""The state-changing requests: reviewers only, each a CSRF-checked form POST that redirects."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

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
from pipeline.review.web.deps import base_path, current_reviewer, flash, store_of

MAX_BULK = 500  # a queue page holds at most this many items
MAX_VERSION = 9_999_999  # forms carry versions of at most seven digits
TICKED = re.compile(r"([0-9a-f]{32}):([0-9]{1,7})")  # a queue checkbox: <item_id>:<version>


async def reviewer_with_csrf(request: Request) -> Principal:
    """Logged in, a reviewer, and a genuine form of this app (in that order)."""
    principal = await current_reviewer(request)
    await require_csrf(request)
    return principal


router = APIRouter()
Reviewer = Annotated[Principal, Depends(reviewer_with_csrf)]


@contextmanager
def _refusals(retry: str) -> Iterator[None]:
    """The store's refusals of a change to one item as the answers the form gets."""
    try:
        yield
    except UnknownItem:
        raise HTTPException(404, "no such item") from None
    except StaleItem:
        raise HTTPException(
            409, f"someone changed this item meanwhile: reload and {retry}"
        ) from None
    except InvalidTransition as exc:
        raise params.BadInput(f"status: {exc}") from None


def _changed(request: Request) -> None:
    request.app.state.facets.invalidate()


def _checked_item_id(item_id: str) -> str:
    checked = params.item_id(item_id)
    if checked is None:
        raise HTTPException(404, "no such item")
    return checked


def _to_item(request: Request, item_id: str) -> RedirectResponse:
    return RedirectResponse(f"{base_path(request)}/items/{item_id}", status_code=303)


@router.post("/items/{item_id}/status")
def set_status(
    request: Request,
    item_id: str,
    user: Reviewer,
    status: Annotated[str, Form()],
    version: Annotated[str, Form()],
    note: Annotated[str, Form()] = "",
) -> RedirectResponse:
    """Decide one item; refused if someone changed it since the page was loaded."""
    checked = _checked_item_id(item_id)
    new_status = params.choice("status", status, STATUSES)
    if new_status is None:
        raise params.BadInput("status: choose one")
    expected = params.integer("version", version, low=0, high=MAX_VERSION, default=0)
    with _refusals("decide again"):
        store_of(request).set_status(
            [checked],
            new_status,
            actor=user.name,
            note=params.note("note", note),
            expected_version=expected,
        )
    _changed(request)
    flash(request, f"Status set to {new_status.replace('_', ' ')}.")
    return _to_item(request, checked)


@router.post("/items/{item_id}/assign")
def assign(
    request: Request,
    item_id: str,
    user: Reviewer,
    version: Annotated[str, Form()],
    assignee: Annotated[str, Form()] = "",
) -> RedirectResponse:
    """Assign one item to someone (empty: unassign); refused if it changed since the page."""
    checked = _checked_item_id(item_id)
    who = params.text("assignee", assignee)
    expected = params.integer("version", version, low=0, high=MAX_VERSION, default=0)
    with _refusals("assign again"):
        store_of(request).assign([checked], who, actor=user.name, expected_version=expected)
    _changed(request)
    flash(request, f"Assigned to {who}." if who else "Unassigned.")
    return _to_item(request, checked)


@router.post("/items/{item_id}/note")
def add_note(
    request: Request, item_id: str, user: Reviewer, note: Annotated[str, Form()]
) -> RedirectResponse:
    """Add a note to one item's audit trail."""
    checked = _checked_item_id(item_id)
    text = params.note("note", note)
    if text is None:
        raise params.BadInput("note: write something")
    with _refusals("write the note again"):
        store_of(request).add_note(checked, text, actor=user.name)
    flash(request, "Note added.")
    return _to_item(request, checked)


def _queue_return(request: Request, query: str) -> str:
    """Back to the queue view the form came from; its query is re-validated, never echoed."""
    return f"{base_path(request)}/queue?{params.queue_return(query)}"


def _ticked(values: list[str]) -> dict[str, int]:
    """item_id → the version its queue page showed, from checkbox values `<item_id>:<version>`."""
    ticked: dict[str, int] = {}
    for value in values:
        match = TICKED.fullmatch(value)
        if match is None:
            raise params.BadInput(f"item_id: {value[:60]!r} is not <item id>:<version>")
        item_id, version = match.group(1), int(match.group(2))
        if ticked.setdefault(item_id, version) != version:
            raise params.BadInput(f"item_id: {item_id} is ticked with two versions")
    return ticked


@router.post("/bulk")
def bulk(
    request: Request,
    user: Reviewer,
    action: Annotated[str, Form()],
    item_id: Annotated[list[str] | None, Form()] = None,
    status: Annotated[str, Form()] = "",
    assignee: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    back: Annotated[str, Form()] = "",
) -> RedirectResponse:
    """Set the status of, or assign, the items ticked on a queue page: all or none, and only
    if none changed since the page showed it."""
    target = _queue_return(request, back)
    values = item_id or []
    if not values:
        flash(request, "Tick at least one item first.", "error")
        return RedirectResponse(target, status_code=303)
    if len(values) > MAX_BULK:
        raise params.BadInput(f"item_id: at most {MAX_BULK} items at once")
    ticked = _ticked(values)
    store = store_of(request)
    try:
        if action == "status":
            new_status = params.choice("status", status, STATUSES)
            if new_status is None:
                raise params.BadInput("status: choose one")
            text = params.note("note", note)
            # one store call, one transaction: every item moves, or none does
            changed = store.set_status(
                list(ticked), new_status, actor=user.name, note=text, expected_version=ticked
            )
            done = f"set to {new_status.replace('_', ' ')}"
        elif action == "assign":
            who = params.text("assignee", assignee)
            changed = store.assign(list(ticked), who, actor=user.name, expected_version=ticked)
            done = f"assigned to {who}" if who else "unassigned"
        else:
            raise params.BadInput("action: must be status or assign")
    except UnknownItem as exc:
        raise HTTPException(404, f"{exc}: nothing was changed") from None
    except StaleItem as exc:
        raise HTTPException(409, f"{exc}: nothing was changed") from None
    except InvalidTransition as exc:
        flash(request, f"Nothing changed: {exc}", "error")
        return RedirectResponse(target, status_code=303)
    _changed(request)
    flash(request, f"{changed} of {len(ticked)} item(s) {done}.")
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
    app = params.text("app_id", app_id)
    chosen_rule = params.choice("rule", rule, params.ITEM_RULES)
    last_day = params.day("until", until)
    why = params.note("reason", reason)
    if app is None or chosen_rule is None or last_day is None or why is None:
        raise params.BadInput("app_id, rule, until and reason are all required")
    store_of(request).suppress(app, chosen_rule, last_day, why, actor=user.name)
    _changed(request)
    flash(request, f"{chosen_rule} suppressed for {app} until {last_day}.")
    return RedirectResponse(f"{base_path(request)}/suppressions", status_code=303)
