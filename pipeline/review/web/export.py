"""CSV exports, streamed: the queue's alerts (its current filter) and one alert's flags (read
from the warehouse batch by batch, any size)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import StreamingResponse

from pipeline.review.store import Alert
from pipeline.review.web import params
from pipeline.review.web.deps import current_principal, store_of
from pipeline.review.web.pages import alert_or_404
from pipeline.schema import EXPORT_FLAG_COLUMNS
from pipeline.text_safety import csv_cell

router = APIRouter()

COLUMNS = (
    "alert_id",
    "kind",
    "day",
    "series_id",
    "rule",
    "severity",
    "status",
    "assignee",
    "partner_id",
    "app_id",
    "user_id",
    "flags",
    "users",
    "reads",
    "writes",
    "deletes",
    "first_event_time",
    "last_event_time",
    "score",
    "explanation",
)
FLAG_COLUMNS = EXPORT_FLAG_COLUMNS
FLUSH_BYTES = 64 * 1024


def safe_cell(value: object) -> str:
    """The cell's text, with a leading quote if a spreadsheet would read it as a formula
    (text_safety.csv_cell: `=`, its full-width forms, a leading space, NBSP, ZWSP, NUL ...)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return csv_cell(value) if isinstance(value, str) else str(value)


def _csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> Iterator[str]:
    """The header, then the rows, in chunks of about FLUSH_BYTES."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
        if buffer.tell() > FLUSH_BYTES:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _safe_column(column: pa.Array) -> pa.Array:
    """A column as CSV text, vectorised: times in UTC ISO form, and a leading quote on any text
    a spreadsheet would run as a formula. csv_cell judges each distinct first character (a
    batch has few), so the rule is text_safety's own, with no Python object per flag."""
    if pa.types.is_timestamp(column.type):
        return pc.strftime(column, format="%Y-%m-%dT%H:%M:%S%z")
    if not pa.types.is_string(column.type):
        return pc.cast(column, pa.string())
    first = pc.utf8_slice_codeunits(column, 0, 1)
    starts = [c for c in pc.unique(first).to_pylist() if c and csv_cell(c) != c]
    risky = pc.fill_null(pc.is_in(first, value_set=pa.array(starts, pa.string())), False)
    return pc.if_else(risky, pc.binary_join_element_wise("'", column, ""), column)


def flag_csv(batch: pa.RecordBatch) -> bytes:
    """CSV lines (no header) of a batch of flags, FLAG_COLUMNS in order."""
    table = pa.table({name: _safe_column(batch.column(name)) for name in FLAG_COLUMNS})
    sink = io.BytesIO()
    pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
    return sink.getvalue()


def csv_lines(alerts: Iterator[Alert]) -> Iterator[str]:
    """The header, then one line per alert."""
    return _csv(COLUMNS, ([getattr(a, c) for c in COLUMNS] for a in alerts))


def _attachment(name: str) -> dict[str, str]:
    return {"content-disposition": f'attachment; filename="{name}"'}


@router.get("/export.csv", dependencies=[Depends(current_principal)])
def export_csv(request: Request) -> StreamingResponse:
    """Every alert of the queue's filter (all pages), one line per alert."""
    query = params.queue_query(request.query_params)
    alerts = store_of(request).iter_alerts(query.filt, sort=query.sort)
    return StreamingResponse(
        csv_lines(alerts),
        media_type="text/csv; charset=utf-8",
        headers=_attachment("access-audit-alerts.csv"),
    )


@router.get("/alerts/{alert_id}/flags.csv", dependencies=[Depends(current_principal)])
def export_alert_flags(request: Request, alert_id: str) -> StreamingResponse:
    """Every flag of one alert (with the page's flag filters), streamed from the warehouse."""
    from pipeline.detect.alert_flags import iter_alert_flag_batches
    from pipeline.review.web.pages import warehouse_of

    alert = alert_or_404(request, alert_id)
    query = params.flag_query(request.query_params)
    batches = iter_alert_flag_batches(
        warehouse_of(request),
        alert.day,
        alert.alert_id,
        user=query.user,
        request_id=query.request_id,
        action=query.action,
    )

    def chunks() -> Iterator[bytes]:
        yield (",".join(FLAG_COLUMNS) + "\r\n").encode()
        for batch in batches:
            yield flag_csv(batch)

    return StreamingResponse(
        chunks(),
        media_type="text/csv; charset=utf-8",
        headers=_attachment(f"alert-{alert.alert_id}-flags.csv"),
    )
