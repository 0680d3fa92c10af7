"""The review store's series: which rule alerts form one (pipeline.detect.series), kept on each
alert as `series_id` so that a series is listed and decided with one indexed query."""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipeline.detect.series import series_of
from pipeline.review.tables import review_alerts

CHUNK_KEYS = 200  # (app_id, rule) pairs per IN list


def refresh_series(connection: Connection, pairs: Iterable[tuple[str, str]] | None = None) -> int:
    """Give every rule alert of these (app_id, rule) pairs (None: of all) its series id; returns
    how many alerts changed series. A new day that extends a series changes no other alert's id:
    a series is named by its first day."""
    alerts = review_alerts.c
    base = sa.select(alerts.alert_id, alerts.app_id, alerts.rule, alerts.day, alerts.series_id)
    base = base.where(alerts.kind == "rule", alerts.app_id.is_not(None))
    queries = []
    if pairs is None:
        queries.append(base)
    else:
        wanted = sorted(set(pairs))
        for start in range(0, len(wanted), CHUNK_KEYS):
            chunk = wanted[start : start + CHUNK_KEYS]
            queries.append(base.where(sa.tuple_(alerts.app_id, alerts.rule).in_(chunk)))
    rows = [row for query in queries for row in connection.execute(query)]
    if not rows:
        return 0
    keys = pa.table(
        {
            "app_id": pa.array([r.app_id for r in rows], pa.string()),
            "rule": pa.array([r.rule for r in rows], pa.string()),
            "day": pa.array([r.day for r in rows], pa.date32()),
        }
    )
    series = series_of(keys).to_pydict()
    named = {
        (app, rule, day): sid
        for app, rule, day, sid in zip(
            series["app_id"], series["rule"], series["day"], series["series_id"], strict=True
        )
    }
    changes = [
        {"b_alert": r.alert_id, "b_series": named[(r.app_id, r.rule, r.day)]}
        for r in rows
        if named[(r.app_id, r.rule, r.day)] != r.series_id
    ]
    if changes:
        connection.execute(
            sa.update(review_alerts)
            .where(alerts.alert_id == sa.bindparam("b_alert"))
            .values(series_id=sa.bindparam("b_series")),
            changes,
        )
    return len(changes)
