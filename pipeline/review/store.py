"""The review store: alerts (SPEC §5) with their review decisions, series of rule alerts, an
append-only audit trail and suppressions, in SQLite (default) or PostgreSQL (SQLAlchemy Core)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from pipeline.config import SEVERITIES
from pipeline.errors import InvalidTransition, StaleItem, UnknownItem
from pipeline.links import MAX_LINKED_ID, digest
from pipeline.review.audit_chain import chain_entries
from pipeline.review.lifecycle import KINDS, OPEN_STATUSES, SORTS, STATUSES, TRANSITIONS
from pipeline.review.rows import FACTS, alert_rows
from pipeline.review.series import extend_series
from pipeline.review.tables import review_alerts, review_audit, review_suppressions
from pipeline.schema import NULLABLE_SORTS, UNKNOWN_PARTNER

log = logging.getLogger(__name__)

__all__ = [
    "KINDS",
    "SORTS",
    "STATUSES",
    "TRANSITIONS",
    "Alert",
    "AlertFilter",
    "AuditEntry",
    "InvalidTransition",
    "Page",
    "QueuePage",
    "QueueRow",
    "ReviewStore",
    "Series",
    "StaleItem",
    "Suppression",
    "UnknownItem",
]

MAX_PER_PAGE = 500
# The version a caller saw: one for every alert (and series), each one's own, or None (no check).
# A series' version is the sum of its alerts' versions: it grows whenever one of them changes.
ExpectedVersion = int | Mapping[str, int] | None
INGEST_ACTOR = "pipeline"
CHUNK_ROWS = 1000  # rows per executemany
CHUNK_IDS = 500  # ids per IN (...) list
A = review_alerts.c
DIGEST = re.compile(r"[0-9a-f]{64}")  # SHA-256 hex: how a link names an id too long for one


def _check_text(name: str, value: Any) -> None:
    if not isinstance(value, str):
        raise ValueError(f"filter {name}: {value!r} is not text")
    if "\x00" in value:
        raise ValueError(f"filter {name}: NUL characters are not allowed")


@dataclass(frozen=True)
class AlertFilter:
    """Which alerts the queue shows; every value is checked so that bad input fails clearly."""

    start: date | None = None
    end: date | None = None
    partner_id: str | None = None
    app_id: str | None = None
    rule: str | None = None
    severity: str | None = None
    status: str | None = None
    assignee: str | None = None
    kind: str | None = None  # rule | behaviour
    series_id: str | None = None
    # an id too long for a link, named by its digest (pipeline.links.digest)
    partner_digest: str | None = None
    app_digest: str | None = None
    include_suppressed: bool = False

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, date) or isinstance(value, datetime)):
                raise ValueError(f"filter {name}: {value!r} is not a date")
        for field in fields(self)[2:-1]:
            value = getattr(self, field.name)
            if value is not None:
                _check_text(field.name, value)
        for name, allowed in (("severity", SEVERITIES), ("status", STATUSES), ("kind", KINDS)):
            value = getattr(self, name)
            if value is not None and value not in allowed:
                raise ValueError(f"unknown {name} {value!r} (one of {', '.join(allowed)})")
        for name in ("partner_digest", "app_digest"):
            value = getattr(self, name)
            if value is not None and not DIGEST.fullmatch(value):
                raise ValueError(f"filter {name}: not a SHA-256 hex digest")


@dataclass(frozen=True)
class Alert:
    """One alert: its facts (schema.ALERTS), its series and its review state."""

    alert_id: str
    kind: str
    day: date
    partner_id: str | None
    partner_name: str | None
    app_id: str | None
    user_id: str | None
    rule: str
    severity: str
    flags: int
    users: int
    first_event_time: datetime | None
    last_event_time: datetime | None
    reads: int
    writes: int
    deletes: int
    flags_by_hour: list[int] | None
    evidence: dict[str, Any]
    sample_request_ids: list[str]
    score: float | None
    model_version: str | None
    explanation: str
    series_id: str | None
    status: str
    assignee: str | None
    version: int
    suppressed_by: int | None
    created_at: datetime
    updated_at: datetime


ALERT_FIELDS = tuple(f.name for f in fields(Alert))


@dataclass(frozen=True)
class Page:
    """One page of alerts and the number matching the filter."""

    alerts: list[Alert]
    total: int
    page: int
    per_page: int


@dataclass(frozen=True)
class QueueRow:
    """One row of the queue: a series (its alerts that match the filter, by day) or a lone alert
    (a behaviour alert)."""

    series_id: str | None
    alerts: list[Alert]
    series_days: int = 1  # days of the whole series (its alerts shown here may be fewer)
    series_version: int | None = None  # the whole series' version, as a series decision checks

    @property
    def key(self) -> str:
        return self.series_id or self.alerts[0].alert_id

    @property
    def first(self) -> Alert:
        return self.alerts[0]

    @property
    def last(self) -> Alert:
        return self.alerts[-1]

    @property
    def severity(self) -> str:
        return max((a.severity for a in self.alerts), key=SEVERITIES.index)

    @property
    def flags(self) -> int:
        return sum(a.flags for a in self.alerts)

    @property
    def users(self) -> int:
        """The most users of one day (users of several days are not additive)."""
        return max(a.users for a in self.alerts)

    @property
    def statuses(self) -> list[str]:
        return sorted({a.status for a in self.alerts}, key=STATUSES.index)

    @property
    def assignees(self) -> list[str]:
        return sorted({a.assignee for a in self.alerts if a.assignee})


@dataclass(frozen=True)
class QueuePage:
    """One page of queue rows and the number of rows matching the filter."""

    rows: list[QueueRow]
    total: int
    page: int
    per_page: int


@dataclass(frozen=True)
class Series:
    """Rule alerts of one app and rule on consecutive days (pipeline.detect.series)."""

    series_id: str
    alerts: list[Alert]  # by day

    @property
    def app_id(self) -> str | None:
        return self.alerts[0].app_id

    @property
    def rule(self) -> str:
        return self.alerts[0].rule

    @property
    def start(self) -> date:
        return self.alerts[0].day

    @property
    def end(self) -> date:
        return self.alerts[-1].day

    @property
    def version(self) -> int:
        return sum(a.version for a in self.alerts)

    @property
    def flags(self) -> int:
        return sum(a.flags for a in self.alerts)


@dataclass(frozen=True)
class AuditEntry:
    """One change: who did what when (alert_id None: a store-wide entry such as an ingest)."""

    id: int
    alert_id: str | None
    item_id: str | None  # the per-flag item an entry from before alerts was made on
    actor: str
    at: datetime
    action: str  # status | assign | note | suppress | ingest | migrate
    from_value: str | None
    to_value: str | None
    note: str | None
    via: str | None  # "series <id>", "selection of N"; None: the alert alone


@dataclass(frozen=True)
class Suppression:
    """Alerts of `app_id` and `rule` of days up to `until` stay out of the queue."""

    id: int
    app_id: str
    rule: str
    until: date
    reason: str
    created_by: str
    created_at: datetime


def engine_url(url: str) -> str:
    """`postgresql://` and `postgres://` use psycopg 3, the driver installed."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _sha256_hex(value: str | None) -> str | None:
    return None if value is None else digest(value)


def _sqlite_engine(url: sa.URL) -> Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # SQLAlchemy emits BEGIN itself (below), so that writers can take the lock up front
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            "busy_timeout=30000",
            "foreign_keys=ON",
            "synchronous=NORMAL",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()
        # the queue's filter by an id's digest (ReviewStore._digest_is), as PostgreSQL's sha256
        dbapi_connection.create_function("sha256_hex", 1, _sha256_hex, deterministic=True)

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        # BEGIN IMMEDIATE: a writer waits for the lock instead of failing on a stale snapshot
        writing = connection.get_execution_options().get("review_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")

    return engine


def _server_engine(url: sa.URL) -> Engine:
    # psycopg prepares a statement after five runs, and PostgreSQL may then keep a generic plan
    # that scans where an IN list of ids wants the primary key
    connect_args = {"prepare_threshold": None} if url.get_driver_name() == "psycopg" else {}
    return sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def _chunks(values: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _now() -> datetime:
    return datetime.now(UTC)


def _alert(row: sa.Row[Any]) -> Alert:
    values = row._mapping
    return Alert(**{name: values[name] for name in ALERT_FIELDS})


def _suppression(row: sa.Row[Any]) -> Suppression:
    return Suppression(**dict(row._mapping))


def _checked_id(value: Any) -> str:
    if not isinstance(value, str) or "\x00" in value:
        raise UnknownItem(value)
    return value


def _entry(
    alert_id: str | None,
    actor: str,
    at: datetime,
    action: str,
    from_value: str | None = None,
    to_value: str | None = None,
    note: str | None = None,
    via: str | None = None,
) -> dict[str, Any]:
    return {
        "alert_id": alert_id,
        "item_id": None,
        "actor": actor,
        "at": at,
        "action": action,
        "from_value": from_value,
        "to_value": to_value,
        "note": note,
        "via": via,
    }


# What each sort orders queue rows by: an aggregate over the row's alerts.
SORT_AGGREGATES: dict[str, Callable[[], sa.ColumnElement[Any]]] = {
    "day": lambda: sa.func.max(A.day),
    "severity": lambda: sa.func.max(A.severity_rank),
    "flags": lambda: sa.func.sum(A.flags),
    "users": lambda: sa.func.max(A.users),
    "partner_id": lambda: sa.func.min(A.partner_id),
    "score": lambda: sa.func.max(A.score),
}
SORT_COLUMNS: dict[str, sa.ColumnElement[Any]] = {
    "day": A.day,
    "severity": A.severity_rank,
    "flags": A.flags,
    "users": A.users,
    "partner_id": A.partner_id,
    "score": A.score,
}
# A queue row: a rule alert's series, or a lone (behaviour) alert.
ROW_KEY = sa.func.coalesce(A.series_id, A.alert_id)


class ReviewStore:
    """Alerts and decisions in one SQL database; safe for concurrent reviewers."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name

    @classmethod
    def open(cls, url: str) -> ReviewStore:
        """Connect and bring the schema to the newest migration."""
        from alembic import command
        from alembic.config import Config

        parsed = sa.make_url(engine_url(url))
        engine = (
            _sqlite_engine(parsed)
            if parsed.get_backend_name() == "sqlite"
            else _server_engine(parsed)
        )
        store = cls(engine)
        config = Config()
        config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        with store._writing() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        return store

    def dispose(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        with self._engine.connect() as connection:
            connection.execution_options(review_write=True)
            with connection.begin():
                yield connection

    def _audit(self, connection: Connection, entries: list[dict[str, Any]]) -> None:
        chain_entries(connection, entries)  # inserted now, hash-chained at commit

    # ingest

    def upsert_day(self, day: date, alerts: pa.Table) -> dict[str, int]:
        """Insert or refresh the day's alerts by id; review decisions are never touched.

        Returns how many alerts were inserted, updated (already there) and newly suppressed.
        Alerts of the day that are no longer produced are kept; the ingest audit entry counts
        them. The series of the day's rule alerts are brought up to date.
        """
        rows = alert_rows(day, alerts)
        ids = [row["alert_id"] for row in rows]
        now = _now()
        with self._writing() as connection:
            before = set(connection.execute(sa.select(A.alert_id).where(A.day == day)).scalars())
            fresh = {"status": "new", "version": 1, "created_at": now, "updated_at": now}
            statement = _on_conflict(self._insert())
            for chunk in _chunks([{**row, **fresh} for row in rows], CHUNK_ROWS):
                connection.execute(statement, list(chunk))
            extend_series(connection, day)
            suppressed = self._apply_suppressions(
                connection, self._active_suppressions(connection, day), day, INGEST_ACTOR, now
            )
            counts = {
                "inserted": len(set(ids) - before),
                "updated": len(set(ids) & before),
                "suppressed": suppressed,
            }
            gone = len(before - set(ids))
            note = ", ".join(f"{key} {n}" for key, n in counts.items())
            entry = _entry(None, INGEST_ACTOR, now, "ingest", to_value=day.isoformat())
            entry["note"] = f"{note}, no longer produced {gone}"
            self._audit(connection, [entry])
        log.info("review store: %s %s", day, counts)
        return counts

    def _insert(self) -> Any:
        return (postgresql if self._dialect == "postgresql" else sqlite).insert(review_alerts)

    # suppressions

    def _active_suppressions(self, connection: Connection, day: date) -> list[Suppression]:
        rows = connection.execute(
            sa.select(review_suppressions)
            .where(review_suppressions.c.until >= day)
            .order_by(review_suppressions.c.id)
        )
        return [_suppression(row) for row in rows]

    def _apply_suppressions(
        self,
        connection: Connection,
        suppressions: list[Suppression],
        day: date | None,
        actor: str,
        now: datetime,
    ) -> int:
        """Suppress unsuppressed new alerts matching each suppression (of `day`, or any day)."""
        total = 0
        for suppression in suppressions:
            match = [
                A.app_id == suppression.app_id,
                A.rule == suppression.rule,
                A.day <= suppression.until,
                A.status == "new",
                A.suppressed_by.is_(None),
            ]
            if day is not None:
                match.append(A.day == day)
            # one UPDATE … RETURNING: an alert a reviewer touches meanwhile is either already
            # changed (and left alone) or changed after; the trail names exactly those hidden
            ids = list(
                connection.execute(
                    sa.update(review_alerts)
                    .where(*match)
                    .values(suppressed_by=suppression.id, version=A.version + 1, updated_at=now)
                    .returning(A.alert_id)
                ).scalars()
            )
            self._audit(
                connection,
                [
                    _entry(alert_id, actor, now, "suppress", None, str(suppression.id))
                    | {"note": suppression.reason}
                    for alert_id in ids
                ],
            )
            total += len(ids)
        return total

    def suppress(self, app_id: str, rule: str, until: date, reason: str, actor: str) -> Suppression:
        """Keep matching alerts up to `until` out of the queue (never out of the warehouse)."""
        for name, value in (("app", app_id), ("rule", rule), ("reason", reason), ("actor", actor)):
            if not isinstance(value, str) or not value.strip() or "\x00" in value:
                raise ValueError(f"suppression {name} must be non-empty text")
        if not isinstance(until, date):
            raise ValueError(f"suppression until: {until!r} is not a date")
        now = _now()
        with self._writing() as connection:
            new_id = connection.execute(
                sa.insert(review_suppressions)
                .values(
                    app_id=app_id,
                    rule=rule,
                    until=until,
                    reason=reason,
                    created_by=actor,
                    created_at=now,
                )
                .returning(review_suppressions.c.id)
            ).scalar_one()
            suppression = Suppression(new_id, app_id, rule, until, reason, actor, now)
            hidden = self._apply_suppressions(connection, [suppression], None, actor, now)
            what = f"#{new_id}: app {app_id}, rule {rule}, until {until}"
            entry = _entry(None, actor, now, "suppress", to_value=what)
            entry["note"] = f"{reason} ({hidden} alerts hidden)"
            self._audit(connection, [entry])
        return suppression

    def suppressions(self, active_on: date | None = None) -> list[Suppression]:
        """Every suppression (or those still in force on `active_on`), newest first."""
        query = sa.select(review_suppressions).order_by(review_suppressions.c.id.desc())
        if active_on is not None:
            query = query.where(review_suppressions.c.until >= active_on)
        with self._engine.connect() as connection:
            return [_suppression(row) for row in connection.execute(query)]

    # queue

    def _conditions(self, filt: AlertFilter) -> list[sa.ColumnElement[bool]]:
        conditions: list[sa.ColumnElement[bool]] = []
        if filt.start is not None:
            conditions.append(A.day >= filt.start)
        if filt.end is not None:
            conditions.append(A.day <= filt.end)
        for name in (
            "partner_id",
            "app_id",
            "rule",
            "severity",
            "status",
            "assignee",
            "kind",
            "series_id",
        ):
            value = getattr(filt, name)
            if name == "partner_id" and value is not None:
                conditions.append(_partner_is(value))
            elif value is not None:
                conditions.append(A[name] == value)
        for column, wanted in ((A.partner_id, filt.partner_digest), (A.app_id, filt.app_digest)):
            if wanted is not None:
                conditions.append(self._digest_is(column, wanted))
        if not filt.include_suppressed:
            conditions.append(A.suppressed_by.is_(None))
        return conditions

    def _digest_is(self, column: sa.ColumnElement[Any], wanted: str) -> sa.ColumnElement[bool]:
        """The column's id is one named by `wanted` (only ids too long for a link are: shorter
        ones are linked by their text). The length test comes first, so SQLite computes the
        digest of the few long ids alone."""
        if self._dialect == "postgresql":
            hashed = sa.func.encode(sa.func.sha256(sa.func.convert_to(column, "UTF8")), "hex")
        else:
            hashed = sa.func.sha256_hex(column)  # registered on each connection (_sqlite_engine)
        return sa.and_(sa.func.length(column) > MAX_LINKED_ID, hashed == wanted)

    def _ordered(
        self, sort: str, column: sa.ColumnElement[Any], nullable: bool
    ) -> sa.ColumnElement[Any]:
        first = column.desc() if sort.startswith("-") else column.asc()
        # nulls sort as the smallest values on both databases (SQLite's own order)
        if nullable and self._dialect == "postgresql":
            first = first.nulls_last() if sort.startswith("-") else first.nulls_first()
        return first

    @staticmethod
    def _check_page(sort: str, page: int, per_page: int) -> None:
        if sort not in SORTS:
            raise ValueError(f"unknown sort {sort!r} (one of {', '.join(SORTS)})")
        if not isinstance(page, int) or page < 1:
            raise ValueError(f"page must be a whole number from 1, not {page!r}")
        if not isinstance(per_page, int) or not 1 <= per_page <= MAX_PER_PAGE:
            raise ValueError(f"per_page must be from 1 to {MAX_PER_PAGE}, not {per_page!r}")

    def _alert_order(self, sort: str) -> list[sa.ColumnElement[Any]]:
        name = sort.lstrip("-")
        first = self._ordered(sort, SORT_COLUMNS[name], name in NULLABLE_SORTS)
        tie = A.alert_id.desc() if sort.startswith("-") else A.alert_id.asc()
        return [first, tie]

    def alerts(
        self, filt: AlertFilter, sort: str = "-day", page: int = 1, per_page: int = 50
    ) -> Page:
        """One page of the alerts matching `filt` (one row per alert); past the end: empty."""
        self._check_page(sort, page, per_page)
        conditions = self._conditions(filt)
        with self._engine.connect() as connection:
            total = connection.execute(
                sa.select(sa.func.count()).select_from(review_alerts).where(*conditions)
            ).scalar_one()
            query = (
                sa.select(review_alerts)
                .where(*conditions)
                .order_by(*self._alert_order(sort))
                .limit(per_page)
                .offset((page - 1) * per_page)
            )
            return Page([_alert(r) for r in connection.execute(query)], total, page, per_page)

    def iter_alerts(self, filt: AlertFilter, sort: str = "-day") -> Iterator[Alert]:
        """Every alert matching `filt`, streamed (for exports)."""
        self._check_page(sort, 1, 1)
        query = sa.select(review_alerts).where(*self._conditions(filt))
        query = query.order_by(*self._alert_order(sort))
        with self._engine.connect() as connection:
            result = connection.execution_options(yield_per=CHUNK_ROWS).execute(query)
            for row in result:
                yield _alert(row)

    def queue(
        self, filt: AlertFilter, sort: str = "-day", page: int = 1, per_page: int = 50
    ) -> QueuePage:
        """One page of queue rows: each series (of the alerts matching `filt`) is one row, each
        behaviour alert another; rows sort by what their alerts have (the newest day, the
        highest severity, the most flags ...)."""
        self._check_page(sort, page, per_page)
        conditions = self._conditions(filt)
        name = sort.lstrip("-")
        aggregate = SORT_AGGREGATES[name]()
        key = ROW_KEY.label("row_key")
        with self._engine.connect() as connection:
            total = connection.execute(
                sa.select(sa.func.count(sa.distinct(ROW_KEY))).where(*conditions)
            ).scalar_one()
            tie: sa.ColumnElement[Any] = sa.literal_column("row_key")
            keys = list(
                connection.execute(
                    sa.select(key)
                    .where(*conditions)
                    .group_by(ROW_KEY)
                    .order_by(
                        self._ordered(sort, aggregate, name in NULLABLE_SORTS),
                        tie.desc() if sort.startswith("-") else tie.asc(),
                    )
                    .limit(per_page)
                    .offset((page - 1) * per_page)
                ).scalars()
            )
            if not keys:
                return QueuePage([], total, page, per_page)
            rows = connection.execute(
                sa.select(review_alerts)
                .where(*conditions, ROW_KEY.in_(keys))
                .order_by(A.day, A.alert_id)
            )
            grouped: dict[str, list[Alert]] = {k: [] for k in keys}
            for row in rows:
                alert = _alert(row)
                grouped[alert.series_id or alert.alert_id].append(alert)
            # each series whole (filters may show fewer of its days): what deciding it covers
            wholes = {
                sid: (int(n), int(version))
                for sid, n, version in connection.execute(
                    sa.select(A.series_id, sa.func.count(), sa.func.sum(A.version))
                    .where(A.series_id.in_(keys))
                    .group_by(A.series_id)
                )
            }
        return QueuePage(
            [
                QueueRow(alerts[0].series_id, alerts, *wholes.get(key, (1, None)))
                for key, alerts in grouped.items()
                if alerts
            ],
            total,
            page,
            per_page,
        )

    def alert(self, alert_id: str) -> Alert:
        """The alert with this id, or UnknownItem."""
        checked = _checked_id(alert_id)
        with self._engine.connect() as connection:
            row = connection.execute(sa.select(review_alerts).where(A.alert_id == checked)).first()
        if row is None:
            raise UnknownItem(alert_id)
        return _alert(row)

    def series(self, series_id: str) -> Series:
        """The series with this id (every alert of it, suppressed ones too), or UnknownItem."""
        checked = _checked_id(series_id)
        with self._engine.connect() as connection:
            rows = connection.execute(
                sa.select(review_alerts).where(A.series_id == checked).order_by(A.day)
            )
            alerts = [_alert(row) for row in rows]
        if not alerts:
            raise UnknownItem(series_id)
        return Series(checked, alerts)

    def audit_trail(
        self, alert_id: str | None = None, limit: int = 200, *, series_id: str | None = None
    ) -> list[AuditEntry]:
        """The newest `limit` audit entries (of one alert, of a series' alerts, or of the whole
        store), newest first."""
        query = sa.select(review_audit).order_by(review_audit.c.id.desc()).limit(max(limit, 0))
        if alert_id is not None:
            query = query.where(review_audit.c.alert_id == alert_id)
        if series_id is not None:
            members = sa.select(A.alert_id).where(A.series_id == series_id)
            query = query.where(review_audit.c.alert_id.in_(members))
        with self._engine.connect() as connection:
            return [AuditEntry(**dict(row._mapping)) for row in connection.execute(query)]

    # decisions

    def _targets(
        self,
        connection: Connection,
        alert_ids: Sequence[str],
        series_ids: Sequence[str],
        expected: ExpectedVersion,
    ) -> list[tuple[sa.Row[Any], str | None]]:
        """Lock the alerts named, directly or by series, and check the versions the caller saw;
        returns each alert's (id, status, assignee, version) row and how it was named.

        Every alert is locked in one order (by id: concurrent batches do not deadlock), FOR
        UPDATE on PostgreSQL; SQLite writers already hold the database lock since BEGIN.
        """
        series_ids = sorted({_checked_id(s) for s in series_ids})
        via: dict[str, str | None] = {}
        members: dict[str, set[str]] = {}
        for sid in series_ids:
            found = set(
                connection.execute(sa.select(A.alert_id).where(A.series_id == sid)).scalars()
            )
            if not found:
                raise UnknownItem(sid)
            members[sid] = found
            via.update(dict.fromkeys(found, f"series {sid}"))
        direct = {_checked_id(a) for a in alert_ids} - set(via)
        many = len(direct) > 1 or (direct and series_ids)
        via.update(
            dict.fromkeys(direct, f"selection of {len(via) + len(direct)}" if many else None)
        )
        locked: dict[str, Any] = {}
        for chunk in _chunks(sorted(via), CHUNK_IDS):
            query = (
                sa.select(A.alert_id, A.status, A.assignee, A.version, A.series_id)
                .where(A.alert_id.in_(chunk))
                .order_by(A.alert_id)
            )
            for row in connection.execute(query.with_for_update()):
                locked[row.alert_id] = row
        missing = sorted(set(via) - set(locked))
        if missing:
            raise UnknownItem(missing[0])
        for sid, found in members.items():
            now_in = {a for a, row in locked.items() if row.series_id == sid}
            if now_in != found:
                raise StaleItem(f"series {sid} changed meanwhile; reload it")
            seen = expected.get(sid) if isinstance(expected, Mapping) else expected
            version = sum(locked[a].version for a in found)
            if seen is not None and version != seen:
                raise StaleItem(
                    f"series {sid} changed (version {version}, you saw {seen}); reload it"
                )
        for alert_id in sorted(direct):
            seen = expected.get(alert_id) if isinstance(expected, Mapping) else expected
            current = locked[alert_id].version
            if seen is not None and current != seen:
                raise StaleItem(
                    f"alert {alert_id} changed (version {current}, you saw {seen}); reload it"
                )
        return [(locked[a], via[a]) for a in sorted(via)]

    def _change(
        self,
        alert_ids: Sequence[str],
        series_ids: Sequence[str],
        column: str,
        decide: Callable[[str, Any], Any],
        actor: str,
        expected_version: ExpectedVersion,
        note: str | None,
    ) -> int:
        """Apply `decide(alert_id, current value) -> new value` to each alert named (directly,
        or by a series) in one transaction (all or none); returns how many changed.

        The UPDATE is guarded by the version read under the lock: a concurrent change is never
        overwritten, and each audit entry's from-value is the value it replaced.
        """
        if isinstance(alert_ids, str) or isinstance(series_ids, str):
            raise TypeError("alert_ids and series_ids are sequences of ids, not one id")
        changed = 0
        with self._writing() as connection:
            entries = []
            for current, via in self._targets(connection, alert_ids, series_ids, expected_version):
                old = getattr(current, column)
                new = decide(current.alert_id, old)
                if new == old:
                    continue
                now = _now()
                updated = connection.execute(
                    sa.update(review_alerts)
                    .where(A.alert_id == current.alert_id, A.version == current.version)
                    .values({column: new, "version": current.version + 1, "updated_at": now})
                ).rowcount
                if updated != 1:
                    raise StaleItem(f"alert {current.alert_id} changed meanwhile; reload it")
                action = "status" if column == "status" else "assign"
                entries.append(_entry(current.alert_id, actor, now, action, old, new, note, via))
                changed += 1
            self._audit(connection, entries)
        return changed

    def set_status(
        self,
        alert_ids: Sequence[str],
        status: str,
        actor: str,
        note: str | None = None,
        expected_version: ExpectedVersion = None,
        *,
        series_ids: Sequence[str] = (),
    ) -> int:
        """Move alerts (and every alert of each series named) to `status`, all or none
        (InvalidTransition if one may not); returns how many changed."""
        if status not in STATUSES:
            raise InvalidTransition(f"unknown status {status!r} (one of {', '.join(STATUSES)})")

        def decide(alert_id: str, old: str) -> str:
            if status != old and status not in TRANSITIONS[old]:
                allowed = ", ".join(TRANSITIONS[old])
                raise InvalidTransition(
                    f"alert {alert_id} cannot move from {old} to {status} (allowed: {allowed})"
                )
            return status

        return self._change(alert_ids, series_ids, "status", decide, actor, expected_version, note)

    def assign(
        self,
        alert_ids: Sequence[str],
        assignee: str | None,
        actor: str,
        expected_version: ExpectedVersion = None,
        *,
        series_ids: Sequence[str] = (),
    ) -> int:
        """Give alerts (and every alert of each series named) to `assignee` (None: nobody);
        returns how many changed."""
        if assignee is not None and (not assignee.strip() or "\x00" in assignee):
            raise ValueError("assignee must be non-empty text (or None for nobody)")
        return self._change(
            alert_ids,
            series_ids,
            "assignee",
            lambda _id, _old: assignee,
            actor,
            expected_version,
            None,
        )

    def add_note(
        self, alert_ids: Sequence[str], note: str, actor: str, *, series_ids: Sequence[str] = ()
    ) -> int:
        """Append a note to the audit trail of each alert named (directly, or by a series)."""
        if not isinstance(note, str) or not note.strip() or "\x00" in note:
            raise ValueError("a note must be non-empty text")
        if isinstance(alert_ids, str) or isinstance(series_ids, str):
            raise TypeError("alert_ids and series_ids are sequences of ids, not one id")
        with self._writing() as connection:
            targets = self._targets(connection, alert_ids, series_ids, None)
            now = _now()
            self._audit(
                connection,
                [
                    _entry(row.alert_id, actor, now, "note", note=note, via=via)
                    for row, via in targets
                ],
            )
        return len(targets)

    # overviews

    def partner_counts(
        self, partner_id: str, start: date | None = None, end: date | None = None
    ) -> list[tuple[date, str, int]]:
        """Flags per day and rule of one partner's alerts (suppressed ones included; a
        behaviour alert counts once)."""
        weight = sa.func.sum(sa.case((A.kind == "rule", A.flags), else_=1))
        query = (
            sa.select(A.day, A.rule, weight)
            .where(_partner_is(partner_id))
            .group_by(A.day, A.rule)
            .order_by(A.day, A.rule)
        )
        if start is not None:
            query = query.where(A.day >= start)
        if end is not None:
            query = query.where(A.day <= end)
        with self._engine.connect() as connection:
            return [(day, rule, int(n)) for day, rule, n in connection.execute(query)]

    def partners(self) -> list[tuple[str, int, int]]:
        """Each partner with its open (new or triaged, not suppressed) and all alerts; the alerts
        of unknown apps under UNKNOWN_PARTNER."""
        is_open = sa.and_(A.status.in_(OPEN_STATUSES), A.suppressed_by.is_(None))
        open_count = sa.func.sum(sa.case((is_open, 1), else_=0))
        # an app the registry does not know counts under UNKNOWN_PARTNER, as the report counts it
        partner = sa.func.coalesce(A.partner_id, UNKNOWN_PARTNER)
        query = (
            sa.select(partner, open_count, sa.func.count())
            .group_by(partner)
            .order_by(open_count.desc(), partner)
        )
        with self._engine.connect() as connection:
            return [(partner, int(n_open), n) for partner, n_open, n in connection.execute(query)]


def _on_conflict(insert: Any) -> Any:
    """The upsert: an existing alert's facts are refreshed, never its review decision."""
    changes: dict[str, Any] = {name: insert.excluded[name] for name in (*FACTS, "updated_at")}
    return insert.on_conflict_do_update(index_elements=["alert_id"], set_=changes)


def _partner_is(partner_id: str) -> sa.ColumnElement[bool]:
    """Alerts of a partner; UNKNOWN_PARTNER names the alerts of apps the registry lacks."""
    if partner_id == UNKNOWN_PARTNER:
        return A.partner_id.is_(None)
    return A.partner_id == partner_id
