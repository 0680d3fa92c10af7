"""CSV export of the queue's current filter, streamed row by row."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import StreamingResponse

from pipeline.review.store import Item
from pipeline.review.web import params
from pipeline.review.web.deps import current_principal, store_of

router = APIRouter()

COLUMNS = (
    "item_id",
    "kind",
    "day",
    "event_time",
    "rule",
    "severity",
    "status",
    "assignee",
    "partner_id",
    "app_id",
    "user_id",
    "request_id",
    "resource",
    "action",
    "status_code",
    "score",
    "explanation",
)
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """The cell's text, with a leading quote if a spreadsheet would read it as a formula."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    text = str(value)
    if isinstance(value, str) and text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def csv_lines(items: Iterator[Item]) -> Iterator[str]:
    """The header, then one line per item."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for item in items:
        writer.writerow([safe_cell(getattr(item, column)) for column in COLUMNS])
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


@router.get("/export.csv", dependencies=[Depends(current_principal)])
def export_csv(request: Request) -> StreamingResponse:
    """Every item of the queue's filter (all pages), in the queue's order."""
    query = params.queue_query(request.query_params)
    items = store_of(request).iter_items(query.filt, sort=query.sort)
    return StreamingResponse(
        csv_lines(items),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="access-audit-items.csv"'},
    )
