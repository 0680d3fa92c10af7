"""The review store's series: which rule alerts form one (pipeline.detect.series), kept on each
alert as `series_id` so that a series is listed and decided with one indexed query."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import date, timedelta

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipeline.detect.series import series_of
from pipeline.review.tables import review_alerts

CHUNK_KEYS = 200  # (app_id, rule) pairs per IN list


def series_id(app_id: str, rule: str, start: date) -> str:
    """The id pipeline.detect.series gives the series of `app_id` and `rule` from `start`."""
    text = "|".join(("series", app_id, rule, start.isoformat()))
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def _series_by_pair(connection: Connection, day: date) -> dict[tuple[str, str], str | None]:
    alerts = review_alerts.c
    rows = connection.execute(
        sa.select(alerts.app_id, alerts.rule, alerts.series_id).where(
            alerts.day == day, alerts.kind == "rule", alerts.app_id.is_not(None)
        )
    )
    return {(r.app_id, r.rule): r.series_id for r in rows}


def extend_series(connection: Connection, day: date) -> int:
    """Bring series up to date after `day`'s rule alerts were published; returns how many
    alerts changed series. Reads only the days around `day`: an alert of `day` joins the series
    of the day before (whose id is already right) or starts one; the series that began the day
    after, if any, is now part of it and takes its id (one indexed UPDATE)."""
    alerts = review_alerts.c
    before = _series_by_pair(connection, day - timedelta(days=1))
    today = _series_by_pair(connection, day)
    after = _series_by_pair(connection, day + timedelta(days=1))
    own: list[dict[str, str]] = []
    renamed: list[dict[str, str]] = []
    for (app, rule), current in today.items():
        wanted = before.get((app, rule)) or series_id(app, rule, day)
        if current != wanted:
            own.append({"b_app": app, "b_rule": rule, "b_series": wanted})
        following = after.get((app, rule))
        if following is not None and following != wanted:
            renamed.append({"b_old": following, "b_series": wanted})
    if own:
        connection.execute(
            sa.update(review_alerts)
            .where(
                alerts.day == day,
                alerts.kind == "rule",
                alerts.app_id == sa.bindparam("b_app"),
                alerts.rule == sa.bindparam("b_rule"),
            )
            .values(series_id=sa.bindparam("b_series")),
            own,
        )
    changed = len(own)
    for rename in renamed:  # a gap filled: rare, one indexed UPDATE each
        changed += connection.execute(
            sa.update(review_alerts)
            .where(alerts.series_id == rename["b_old"])
            .values(series_id=rename["b_series"])
        ).rowcount
    return changed


def refresh_series(connection: Connection, pairs: Iterable[tuple[str, str]] | None = None) -> int:
    """Give every rule alert of these (app_id, rule) pairs (None: of all) its series id from
    pipeline.detect.series over every day the store holds; returns how many alerts changed
    series. A whole rebuild (migration 0002); a publish uses extend_series."""
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
